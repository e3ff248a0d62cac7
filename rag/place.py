"""Where an index lives, chosen by `--store` / `RAG_STORE`: a folder on this machine
(FAISS, the default) or a Milvus deployment (rag.milvus). Both answer the same few calls,
so the sync (rag.sync) and the open index (rag.index) do not care which it is."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag import store

if TYPE_CHECKING:
    from rag.settings import Settings


class Place(Protocol):
    """An index's home: read its manifest, load it, save an update to it, under a lock."""

    name: str
    # Whether questions check the corpus for changes before answering (a local index of a
    # corpus on this machine), or the index is kept current by `rag index` alone.
    follows_corpus: bool

    def check_writable(self) -> None: ...

    def lock(self) -> AbstractContextManager[None]: ...

    def read_manifest(self) -> dict[str, Any] | None: ...

    def load(self) -> store.Store: ...

    def save(self, built: store.Store) -> store.Store: ...

    def version(self) -> str | None:
        """A cheap token that changes whenever a save commits (None: no index yet)."""
        ...


class Folder:
    """An index folder: SQLite rows, FAISS vectors and a manifest file (rag.store)."""

    follows_corpus = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = str(folder)

    def check_writable(self) -> None:
        store.check_writable(self.folder)

    def lock(self) -> AbstractContextManager[None]:
        return store.lock(self.folder)

    def read_manifest(self) -> dict[str, Any] | None:
        return store.read_manifest(self.folder)

    def load(self) -> store.Store:
        return store.load(self.folder)

    def save(self, built: store.Store) -> store.Store:
        return store.save(built, self.folder)

    def version(self) -> str | None:
        try:
            st = (self.folder / store.MANIFEST).stat()
        except OSError:
            return None
        return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


class MilvusPlace:
    """A Milvus deployment (rag.milvus): embedded Milvus Lite, or a server."""

    follows_corpus = False

    def __init__(self, uri: str, token: str) -> None:
        from rag.milvus import Milvus

        self.milvus = Milvus(uri, token)
        self.name = uri

    def check_writable(self) -> None:
        self.milvus.ensure()

    def lock(self) -> AbstractContextManager[None]:
        return self.milvus.lock()

    def read_manifest(self) -> dict[str, Any] | None:
        return self.milvus.read_manifest()

    def load(self) -> store.Store:
        from rag.milvus import load

        return load(self.milvus)

    def save(self, built: store.Store) -> store.Store:
        self.milvus.save(built)
        return self.load()

    def version(self) -> str | None:
        generation = self.milvus.generation()
        return None if generation is None else str(generation)


def place(s: Settings) -> Place:
    """The index the settings name."""
    if s.store == "faiss":
        return Folder(s.index)
    return MilvusPlace(s.store, s.milvus_token)
