"""Where a store's documents and chunks are read from: memory (a fresh build), an update's
new documents over a saved store's rows, SQLite (rag.table) or Milvus (rag.milvus). All
answer the same few calls, so the store and retrieval never ask which."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from rag.records import Chunk, Document


class Rows(Protocol):
    """Where a store's documents and chunks live: memory, SQLite, or a Milvus collection."""

    order: list[str]

    def document(self, name: str) -> Document: ...

    def chunk(self, label: int) -> Chunk: ...

    def all_chunks(self) -> list[tuple[int, Chunk]]: ...

    def text_sha256(self) -> dict[str, str]: ...

    def chunk_ids(self, name: str) -> list[int]: ...


class MemoryRows:
    """Documents and chunks held in memory: a fresh build, or an update before it is saved."""

    def __init__(self, docs: Sequence[Document], chunks: Sequence[tuple[int, Chunk]]) -> None:
        self.order = [d.name for d in docs]
        self.docs = {d.name: d for d in docs}
        self.chunks = list(chunks)
        self.by_id = dict(self.chunks)

    def document(self, name: str) -> Document:
        return self.docs[name]

    def chunk(self, label: int) -> Chunk:
        return self.by_id[label]

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        return self.chunks

    def text_sha256(self) -> dict[str, str]:
        return {name: text_sha256(d) for name, d in self.docs.items()}

    def chunk_ids(self, name: str) -> list[int]:
        return [i for i, c in self.chunks if c.doc == name]


class Overlay:
    """A saved store's rows with an update's new documents over them, until it is saved."""

    def __init__(self, base: Rows, fresh: MemoryRows, order: list[str]) -> None:
        self.base, self.fresh, self.order = base, fresh, order
        self._fresh_names = set(fresh.order)

    def document(self, name: str) -> Document:
        if name in self._fresh_names:
            return self.fresh.document(name)
        if name not in self.order:
            raise KeyError(name)
        return self.base.document(name)

    def chunk(self, label: int) -> Chunk:
        if label in self.fresh.by_id:
            return self.fresh.chunk(label)
        return self.base.chunk(label)

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        base: dict[str, list[tuple[int, Chunk]]] = {}
        for i, c in self.base.all_chunks():
            base.setdefault(c.doc, []).append((i, c))
        out: list[tuple[int, Chunk]] = []
        for name in self.order:
            if name in self._fresh_names:
                out += [(i, c) for i, c in self.fresh.chunks if c.doc == name]
            else:
                out += base.get(name, [])
        return out

    def text_sha256(self) -> dict[str, str]:
        kept = self.base.text_sha256()
        fresh = self.fresh.text_sha256()
        return {n: fresh[n] if n in fresh else kept[n] for n in self.order}

    def chunk_ids(self, name: str) -> list[int]:
        if name in self._fresh_names:
            return self.fresh.chunk_ids(name)
        return self.base.chunk_ids(name)


class Documents(Mapping[str, Document]):
    """The live documents by name, read on demand."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def __getitem__(self, name: str) -> Document:
        if name not in self.rows.order:
            raise KeyError(name)
        return self.rows.document(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows.order)

    def __len__(self) -> int:
        return len(self.rows.order)


def text_sha256(d: Document) -> str:
    """A fingerprint of what chunks and citations follow from: text, pages, headings."""
    body = json.dumps([d.text, d.pages, d.headings], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()
