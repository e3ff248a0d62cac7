"""The on-disk index: the documents' texts, their chunks under stable ids, a FAISS index
keyed by those ids, and a manifest (rag.manifest) that describes them.

Offsets point into the stored texts, so a citation can always be checked against what
was indexed, even for a PDF whose text was extracted (`rag text DOC` prints it).
Updates are incremental: `update` keeps the chunks and vectors of every document whose
text did not change and embeds only the others. Writes are atomic: data files get fresh
names, and the manifest that points at them is swapped in last with os.replace, so a
crash leaves either the old index or the new one. Writers hold a lock on the folder, so
one writer never deletes another's files.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import __version__
from rag.chunking import chunk_text
from rag.corpus import sha256_file as _sha256
from rag.embed import DIM, Embedder, model_version
from rag.errors import StoreError
from rag.manifest import (
    FORMAT_VERSION,
    LOCK_FILE,
    LOCK_TIMEOUT_S,
    MANIFEST,
    check_compatible,
    check_writable,
    expected_settings,
    lock,
    read_manifest,
    unwritable,
)
from rag.manifest import fsync_dir as _fsync_dir
from rag.manifest import write_atomic as _write_atomic
from rag.readers import extraction_version
from rag.records import Chunk, Document
from rag.vectors import changed, empty_index, kind, labels, with_ids

if TYPE_CHECKING:
    import faiss

# The folder's rules live in rag.manifest; their names stay importable from here, where
# callers have always found them. save and load call the file helpers through this
# module, so a test can make one of them fail.
__all__ = [
    "FORMAT_VERSION",
    "LOCK_FILE",
    "LOCK_TIMEOUT_S",
    "MANIFEST",
    "Store",
    "build",
    "check_compatible",
    "check_writable",
    "expected_settings",
    "load",
    "lock",
    "make_index",
    "read_manifest",
    "save",
    "update",
]

# Exact (flat) search is fast enough below this many chunks; above it, HNSW keeps search
# latency flat. benchmarks/run.py measures both and the README says why the line is here.
HNSW_ABOVE = 200_000
# A save elsewhere can swap the manifest and delete the files the one we read named,
# between our reads; a few fresh reads cover that without taking the writers' lock.
_LOAD_ATTEMPTS = 3

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Store:
    """A loaded index: its manifest, its documents, its chunks in corpus order, and the
    FAISS index, whose search labels are the chunks' ids."""

    manifest: dict[str, Any]
    chunks: tuple[Chunk, ...]
    vectors: faiss.Index
    # Each chunk's id, parallel to `chunks`; empty means the label of a chunk is its
    # position (an index built in memory with make_index, as the benchmarks do).
    ids: tuple[int, ...] = ()
    documents: Mapping[str, Document] = field(default_factory=dict)

    def chunk(self, label: int) -> Chunk:
        """The chunk that FAISS returns as `label`."""
        return self.chunks[self._positions[label]] if self.ids else self.chunks[label]

    def label(self, position: int) -> int:
        """The FAISS label of `chunks[position]`."""
        return self.ids[position] if self.ids else position

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {label: position for position, label in enumerate(self.ids)}


def build(
    docs: list[Document],
    corpus_hashes: dict[str, str],
    embedder: Embedder,
    chunk_chars: int,
    overlap: int,
    progress: Progress | None = None,
    batch: int = 256,
) -> Store:
    """Chunk and embed every document into an in-memory Store: a full build."""
    built, _ = update(None, docs, embedder, chunk_chars, overlap, progress, batch)
    return replace(built, manifest=built.manifest | {"corpus_files": corpus_hashes})


def update(
    base: Store | None,
    docs: list[Document],
    embedder: Embedder,
    chunk_chars: int,
    overlap: int,
    progress: Progress | None = None,
    batch: int = 256,
) -> tuple[Store, int]:
    """A Store of exactly `docs`, in their order, and how many chunks were embedded.

    A document whose text, pages and headings equal those `base` holds keeps its chunks,
    ids and vectors; every other document is chunked and embedded under new ids, and the
    chunks of documents that are gone or changed leave the FAISS index by id."""
    old: dict[str, list[int]] = {}  # document -> positions of its chunks in base
    if base is not None:
        for position, c in enumerate(base.chunks):
            old.setdefault(c.doc, []).append(position)
    next_id = int(base.manifest.get("next_id", len(base.chunks))) if base else 0
    chunks: list[Chunk] = []
    ids: list[int] = []
    fresh: list[int] = []  # positions in `chunks` whose vectors must be computed
    for d in docs:
        if base is not None and same_text(base.documents.get(d.name), d):
            positions = old.get(d.name, [])
            chunks += [base.chunks[p] for p in positions]
            ids += [base.label(p) for p in positions]
            continue
        for c in chunk_text(d.name, d.text, chunk_chars, overlap):
            fresh.append(len(chunks))
            chunks.append(c)
            ids.append(next_id)
            next_id += 1
    vectors = np.empty((len(fresh), DIM), dtype=np.float32)
    if progress and fresh:
        progress(0, len(fresh))  # the clock for rate and time left starts here
    for lo in range(0, len(fresh), batch):
        part = fresh[lo : lo + batch]
        vectors[lo : lo + len(part)] = embedder.embed([chunks[p].text for p in part])
        if progress:
            progress(lo + len(part), len(fresh))
    new_ids = np.array([ids[p] for p in fresh], dtype=np.int64)
    hnsw = len(chunks) > HNSW_ABOVE
    if base is None:
        index = with_ids(vectors, new_ids, hnsw)
    else:
        keep = set(ids)
        gone = [base.label(p) for p in range(len(base.chunks)) if base.label(p) not in keep]
        index = changed(base.vectors, gone, new_ids, vectors, hnsw)
    manifest = expected_settings(chunk_chars, overlap) | {
        "embedding_package_version": model_version(),
        "index_type": kind(index),
        "extraction_version": extraction_version(),
        "corpus_files": {d.name: d.sha256 for d in docs},
        "corpus_stats": {},
        "skipped": {},
        "documents": [d.name for d in docs],
        "chunk_count": len(chunks),
        "next_id": next_id,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rag_version": __version__,
    }
    built = Store(manifest, tuple(chunks), index, tuple(ids), {d.name: d for d in docs})
    return built, len(fresh)


def same_text(before: Document | None, now: Document) -> bool:
    """Whether `now` can keep what `before` was indexed with: chunks follow from the text
    alone, and citations read pages and headings from the document."""
    if before is None:
        return False
    return (before.text, before.pages, before.headings) == (now.text, now.pages, now.headings)


def make_index(vectors: np.ndarray) -> faiss.Index:
    """A FAISS index over `vectors`, labelled by position (the benchmarks' in-memory use)."""
    index = empty_index(vectors.shape[1], hnsw=len(vectors) > HNSW_ABOVE)
    index.add(vectors)
    return index


def save(store: Store, folder: Path) -> Store:
    """Write the store into `folder` under its lock, then delete the files it replaced;
    the store with the manifest as written."""
    import faiss

    try:
        with lock(folder):
            tag = secrets.token_hex(4)
            chunks_name, vectors_name = f"chunks-{tag}.json", f"vectors-{tag}.faiss"
            _write_atomic(folder / chunks_name, _table(store))
            _write_atomic(folder / vectors_name, bytes(faiss.serialize_index(store.vectors)))
            # The data files' names must be on disk before a manifest that names them.
            _fsync_dir(folder)
            manifest = store.manifest | {
                "chunks_file": chunks_name,
                "chunks_sha256": _sha256(folder / chunks_name),
                "vectors_file": vectors_name,
                "vectors_sha256": _sha256(folder / vectors_name),
            }
            _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
            _fsync_dir(folder)
            # Under the lock no other writer is mid-save, so every data file but ours is
            # unreferenced and every temporary file was left by an interrupted write.
            stale = [*folder.glob("chunks-*.json"), *folder.glob("vectors-*.faiss")]
            for old in [*stale, *folder.glob(".*.tmp")]:
                if old.name not in (chunks_name, vectors_name):
                    old.unlink(missing_ok=True)
    except OSError as exc:
        raise unwritable(folder, exc) from None
    return replace(store, manifest=manifest)


def _table(store: Store) -> bytes:
    """The documents (with the texts every offset points into) and the chunks by id. A
    chunk's text is not stored: it is its document's text[start:end], by construction."""
    documents = [
        {"name": d.name, "sha256": d.sha256, "text": d.text, "pages": d.pages,
         "headings": d.headings}
        for d in store.documents.values()
    ]  # fmt: skip
    chunks = [[store.label(p), c.doc, c.start, c.end] for p, c in enumerate(store.chunks)]
    return json.dumps({"documents": documents, "chunks": chunks}, ensure_ascii=False).encode()


def load(folder: Path) -> Store:
    """Read and verify a saved store; any damage is a StoreError that says what to run."""
    for _ in range(_LOAD_ATTEMPTS):
        manifest = read_manifest(folder)
        if manifest is None:
            raise StoreError(f"no index in {folder}; run `rag index`")
        try:
            return _load(folder, manifest)
        except StoreError:
            if read_manifest(folder) == manifest:
                raise
    raise StoreError(f"the index in {folder} kept changing while it was read; try again")


def _load(folder: Path, manifest: dict[str, Any]) -> Store:
    import faiss

    # One query at a time gains nothing from OpenMP threads, and on a busy 2-core machine
    # they stall: flat search over 100k chunks took 48 ms with 2 threads, 6 ms with one.
    faiss.omp_set_num_threads(1)
    try:
        chunks_path = folder / manifest["chunks_file"]
        vectors_path = folder / manifest["vectors_file"]
        for path, digest in (
            (chunks_path, manifest["chunks_sha256"]),
            (vectors_path, manifest["vectors_sha256"]),
        ):
            if _sha256(path) != digest:
                raise StoreError(f"index file {path} does not match its manifest")
        documents, ids, chunks = _read_table(json.loads(chunks_path.read_text(encoding="utf-8")))
        vectors = faiss.deserialize_index(np.frombuffer(vectors_path.read_bytes(), dtype=np.uint8))
        consistent = (
            list(documents) == manifest["documents"]
            and vectors.ntotal == len(chunks) == manifest["chunk_count"]
            and vectors.d == manifest["dim"]
            and len(set(ids)) == len(ids)
            and set(labels(vectors)) == set(ids)
            and all(0 <= i < manifest["next_id"] for i in ids)
        )
    except StoreError as exc:
        raise StoreError(f"{exc}; the index is corrupt, run `rag index`") from None
    except (OSError, AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise StoreError(f"index in {folder} is corrupt ({exc}); run `rag index`") from None
    if not consistent:
        raise StoreError(f"index in {folder} is inconsistent; run `rag index`")
    return Store(manifest, tuple(chunks), vectors, tuple(ids), documents)


def _read_table(
    table: dict[str, Any],
) -> tuple[dict[str, Document], list[int], list[Chunk]]:
    """The documents and chunks of a chunk file; ValueError when a span leaves its text."""
    documents = {
        d["name"]: Document(
            name=str(d["name"]),
            text=str(d["text"]),
            sha256=str(d["sha256"]),
            pages=tuple((int(s), int(e), int(n)) for s, e, n in d["pages"]),
            headings=tuple((int(o), str(h)) for o, h in d["headings"]),
        )
        for d in table["documents"]
    }
    ids: list[int] = []
    chunks: list[Chunk] = []
    for label, doc, start, end in table["chunks"]:
        text = documents[doc].text
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise ValueError(f"chunk {label} lies outside {doc}")
        ids.append(int(label))
        chunks.append(Chunk(doc=doc, start=start, end=end, text=text[start:end]))
    return documents, ids, chunks
