"""The on-disk index: the documents' texts and their chunks under stable ids in SQLite
(rag.table), the vectors in FAISS keyed by those ids (rag.vectors), and a manifest
(rag.manifest) that describes them and names the files that hold them.

Offsets point into the stored texts, so a citation can always be checked against what
was indexed, even for a PDF whose text was extracted (`rag text DOC` prints it).
Updates are incremental: `update` keeps the chunks and vectors of every document whose
text did not change and embeds only the others; saving one changes only new rows and a
small vector delta, so replacing one document in a million-chunk index rewrites neither
the texts nor the vectors. Writes are atomic: the manifest that names the live rows and
files is swapped in last with os.replace, so a crash leaves either the old index or the
new one. Writers hold a lock on the folder, so one writer never deletes another's files.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag import __version__, table
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
from rag.manifest import fsync as _fsync
from rag.manifest import write_atomic as _write_atomic
from rag.readers import extraction_version
from rag.records import Chunk, Document
from rag.rows import Documents, MemoryRows, Overlay, Rows, text_sha256
from rag.vectors import FaissVectors, build_base
from rag.vectors import read as read_vectors
from rag.vectors import write as write_vectors

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

# A save elsewhere can swap the manifest and delete the files the one we read named,
# between our reads; a few fresh reads cover that without taking the writers' lock.
_LOAD_ATTEMPTS = 3
# Data files up to this size are checked against their SHA-256 on every open. The base
# vectors of a large index are not: hashing 400 MB would take most of the 2-second open
# budget, so they are checked by size and by FAISS reading their structure.
VERIFY_BELOW = 64 * 2**20
# Indexes up to this size get the full check on open (every span inside its text, one
# vector per chunk id): well under 0.1 s here, and at a million chunks, seconds.
FULL_CHECK_UP_TO = 20_000
# Data files of an index folder, by the manifest key that names them.
FILE_KEYS = ("chunks_file", "vectors_file", "delta_file", "removed_file")
_PATTERNS = ("chunks-*.sqlite*", "vectors-*.faiss", "delta-*.faiss", "removed-*.npy")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Store:
    """An index: its manifest, its rows (documents and chunks) and its vectors, whose
    search labels are the chunks' ids. `fresh` holds what an update added, until saved."""

    manifest: dict[str, Any]
    rows: Rows
    vectors: Any  # FaissVectors, a plain FAISS index (benchmarks), or rag.milvus's vectors
    fresh: tuple[tuple[Document, tuple[tuple[int, Chunk], ...]], ...] = ()
    # Ids an update replaced, to remove when saving to a store that has them.
    gone: tuple[int, ...] = ()
    # Ids the update added, with their vectors (for backends that take them by id).
    added: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        manifest: dict[str, Any],
        chunks: Sequence[Chunk],
        vectors: Any,
        ids: Sequence[int] = (),
        documents: Mapping[str, Document] | None = None,
    ) -> Store:
        """An in-memory store; without ids a chunk's label is its position (the
        benchmarks' use, with make_index)."""
        labels = list(ids) if ids else list(range(len(chunks)))
        docs = list((documents or {}).values())
        return cls(manifest, MemoryRows(docs, list(zip(labels, chunks, strict=True))), vectors)

    @cached_property
    def _all(self) -> list[tuple[int, Chunk]]:
        return self.rows.all_chunks()

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """Every chunk in corpus order (read from the rows on first use)."""
        return tuple(c for _, c in self._all)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(i for i, _ in self._all)

    @property
    def size(self) -> int:
        """How many chunks (and vectors) the store holds."""
        return int(self.vectors.ntotal)

    @property
    def documents(self) -> Mapping[str, Document]:
        return Documents(self.rows)

    def chunk(self, label: int) -> Chunk:
        """The chunk that a vector search returns as `label`."""
        return self.rows.chunk(label)

    def label(self, position: int) -> int:
        """The label of `chunks[position]`."""
        return self._all[position][0]


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
    built, _ = update(None, list(docs), embedder, chunk_chars, overlap, progress, batch)
    return replace(built, manifest=built.manifest | {"corpus_files": corpus_hashes})


def update(
    base: Store | None,
    docs: list[Document | str],
    embedder: Embedder,
    chunk_chars: int,
    overlap: int,
    progress: Progress | None = None,
    batch: int = 256,
) -> tuple[Store, int]:
    """A Store of exactly `docs`, in their order, and how many chunks were embedded.

    A name (str) in `docs` keeps that document of `base` as it is, unread. A document
    whose text, pages and headings equal those `base` holds keeps its chunks, ids and
    vectors; every other document is chunked and embedded under new ids, and the chunks
    of documents that are gone or changed leave the vectors by id."""
    before = base.rows.text_sha256() if base is not None else {}
    recorded: dict[str, str] = base.manifest.get("corpus_files", {}) if base is not None else {}
    next_id = int(base.manifest.get("next_id", base.size)) if base is not None else 0
    order: list[str] = []
    fresh: list[tuple[Document, list[tuple[int, Chunk]]]] = []
    kept: set[str] = set()
    for d in docs:
        if isinstance(d, str) or before.get(d.name) == text_sha256(d):
            name = d if isinstance(d, str) else d.name
            order.append(name)
            kept.add(name)
            continue
        chunks = []
        for c in chunk_text(d.name, d.text, chunk_chars, overlap):
            chunks.append((next_id, c))
            next_id += 1
        order.append(d.name)
        fresh.append((d, chunks))
    texts = [c.text for _, chunks in fresh for _, c in chunks]
    new_ids = np.array([i for _, chunks in fresh for i, _ in chunks], dtype=np.int64)
    vectors = np.empty((len(texts), DIM), dtype=np.float32)
    if progress and texts:
        progress(0, len(texts))  # the clock for rate and time left starts here
    for lo in range(0, len(texts), batch):
        part = texts[lo : lo + batch]
        vectors[lo : lo + len(part)] = embedder.embed(part)
        if progress:
            progress(lo + len(part), len(texts))
    fresh_rows = MemoryRows([d for d, _ in fresh], [x for _, chunks in fresh for x in chunks])
    gone: list[int] = []
    if base is None:
        rows: Rows = fresh_rows
        index: Any = FaissVectors(build_base(vectors, new_ids))
        count = len(new_ids)
    else:
        for name in base.rows.order:
            if name not in kept:
                gone += base.rows.chunk_ids(name)
        rows = Overlay(base.rows, fresh_rows, order)
        index = base.vectors.copy()
        index.remove(np.array(gone, dtype=np.int64))
        index.add(new_ids, vectors)
        count = int(index.ntotal)
    manifest = expected_settings(chunk_chars, overlap) | {
        "embedding_package_version": model_version(),
        "index_type": getattr(index, "kind", "flat"),
        "extraction_version": extraction_version(),
        "corpus_files": {d.name: d.sha256 for d in docs if not isinstance(d, str)}
        | {n: recorded[n] for n in kept if n in recorded},
        "corpus_stats": {},
        "skipped": {},
        "documents": order,
        "chunk_count": count,
        "next_id": next_id,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rag_version": __version__,
    }
    built = Store(
        manifest,
        rows,
        index,
        fresh=tuple((d, tuple(chunks)) for d, chunks in fresh),
        gone=tuple(gone),
        added=(new_ids, vectors),
        extra={"base": base},
    )
    return built, len(texts)


def make_index(vectors: np.ndarray) -> FaissVectors:
    """Vectors labelled by position, of the type their number calls for (the benchmarks'
    in-memory use)."""
    return FaissVectors(build_base(vectors, np.arange(len(vectors), dtype=np.int64)))


def save(store: Store, folder: Path) -> Store:
    """Write the store into `folder` under its lock, then delete the files nothing names;
    the store as saved, read back from the folder."""
    try:
        with lock(folder):
            _save(store, folder)
    except OSError as exc:
        raise unwritable(folder, exc) from None
    return load(folder)


def _save(store: Store, folder: Path) -> dict[str, Any]:
    on_disk = _readable_manifest(folder)
    base: Store | None = store.extra.get("base")
    tag = secrets.token_hex(4)
    vectors: FaissVectors = store.vectors
    in_place = (
        on_disk is not None
        and base is not None
        and isinstance(base.rows, table.Table)
        and base.rows.path == folder / on_disk["chunks_file"]
        and on_disk["next_id"] <= store.manifest["next_id"]
    )
    names: dict[str, str] = {}
    if in_place:
        assert on_disk is not None
        names["chunks_file"] = on_disk["chunks_file"]
        db = table.connect(folder / names["chunks_file"], write=True)
        try:
            # Rows neither live nor one update old are leftovers: a crashed update's, or an
            # old version no answer still reads.
            table.collect(db, [*on_disk["document_ids"], *on_disk["retired_ids"]])
            next_doc = int(on_disk["next_document_id"])
            doc_ids = dict(zip(on_disk["documents"], on_disk["document_ids"], strict=True))
            fresh = []
            for d, chunks in store.fresh:
                fresh.append((next_doc, d, text_sha256(d), chunks))
                doc_ids[d.name] = next_doc
                next_doc += 1
            table.write(db, fresh)
        finally:
            db.close()
        live = [doc_ids[n] for n in store.manifest["documents"]]
        retired = sorted(set(on_disk["document_ids"]) - set(live))
    else:
        names["chunks_file"] = f"chunks-{tag}.sqlite"
        db = table.connect(folder / names["chunks_file"], write=True)
        try:
            by_doc: dict[str, list[tuple[int, Chunk]]] = {}
            for i, c in store.rows.all_chunks():
                by_doc.setdefault(c.doc, []).append((i, c))
            rows = []
            for n, name in enumerate(store.rows.order):
                d = store.rows.document(name)
                rows.append((n, d, text_sha256(d), by_doc.get(name, [])))
            table.write(db, rows)
        finally:
            db.close()
        live, retired, next_doc = list(range(len(store.rows.order))), [], len(store.rows.order)
    if not isinstance(vectors, FaissVectors):
        raise StoreError("only FAISS vectors can be saved in an index folder")
    base_file = on_disk["vectors_file"] if on_disk is not None else None
    reuse_base = (
        in_place
        and base is not None
        and base.vectors.base is vectors.base
        and not vectors.needs_compaction()
    )
    if not reuse_base:
        if vectors.needs_compaction():
            vectors = vectors.compacted()
        base_file = f"vectors-{tag}.faiss"
        write_vectors(vectors.base, folder / base_file)
        _fsync(folder / base_file)
    assert base_file is not None
    names["vectors_file"] = base_file
    names["delta_file"] = f"delta-{tag}.faiss"
    names["removed_file"] = f"removed-{tag}.npy"
    import faiss

    _write_atomic(folder / names["delta_file"], bytes(faiss.serialize_index(vectors.delta)))
    _write_atomic(folder / names["removed_file"], _npy(vectors.removed))
    # The data files' names must be on disk before a manifest that names them.
    _fsync(folder)
    manifest = (
        store.manifest
        | names
        | {
            "format_version": FORMAT_VERSION,
            "index_type": vectors.kind,
            "chunk_count": vectors.ntotal,
            "document_ids": live,
            "retired_ids": retired,
            "next_document_id": next_doc,
            "vectors_size": (folder / base_file).stat().st_size,
        }
    )
    for key in ("vectors", "delta", "removed"):
        path = folder / names[f"{key}_file"]
        if key != "vectors" or path.stat().st_size < VERIFY_BELOW:
            manifest[f"{key}_sha256"] = _sha256(path)
        elif on_disk is not None and on_disk["vectors_file"] == base_file:
            manifest[f"{key}_sha256"] = on_disk["vectors_sha256"]
        else:
            manifest[f"{key}_sha256"] = _sha256(path)
    _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    _fsync(folder)
    # Under the lock no other writer is mid-save, so every data file but ours is
    # unreferenced and every temporary file was left by an interrupted write.
    keep = {manifest[k] for k in FILE_KEYS}
    keep |= {f"{manifest['chunks_file']}-journal", f"{manifest['chunks_file']}-wal"}
    keep.add(f"{manifest['chunks_file']}-shm")
    for pattern in (*_PATTERNS, ".*.tmp"):
        for old in folder.glob(pattern):
            if old.name not in keep:
                old.unlink(missing_ok=True)
    return manifest


def _readable_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(folder)
    except StoreError:
        return None


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.int64), allow_pickle=False)
    return buffer.getvalue()


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
        paths = {key: folder / manifest[f"{key}_file"] for key in ("vectors", "delta", "removed")}
        for key, path in paths.items():
            size = path.stat().st_size
            if key == "vectors" and size != manifest["vectors_size"]:
                raise StoreError(f"index file {path} does not match its manifest")
            if (key != "vectors" or size < VERIFY_BELOW) and _sha256(path) != manifest[
                f"{key}_sha256"
            ]:
                raise StoreError(f"index file {path} does not match its manifest")
        base = read_vectors(paths["vectors"], mmap=True)
        delta = faiss.deserialize_index(np.frombuffer(paths["delta"].read_bytes(), dtype=np.uint8))
        removed = np.load(paths["removed"], allow_pickle=False).astype(np.int64)
        vectors = FaissVectors(base, delta, removed, source=paths["vectors"])
        doc_ids = dict(zip(manifest["documents"], manifest["document_ids"], strict=True))
        rows = table.Table(folder / manifest["chunks_file"], doc_ids, manifest["documents"])
        consistent = (
            len(doc_ids) == len(manifest["documents"])
            and vectors.ntotal == manifest["chunk_count"]
            and vectors.d == manifest["dim"]
            and rows.count() == manifest["chunk_count"]
        )
    except StoreError as exc:
        raise StoreError(f"{exc}; the index is corrupt, run `rag index`") from None
    except (OSError, AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise StoreError(f"index in {folder} is corrupt ({exc}); run `rag index`") from None
    if not consistent:
        raise StoreError(f"index in {folder} is inconsistent; run `rag index`")
    opened = Store(manifest, rows, vectors)
    if manifest["chunk_count"] <= FULL_CHECK_UP_TO:
        verify(opened, folder)
    return opened


def verify(loaded: Store, folder: Path) -> None:
    """The full check `rag index` can afford and an answer cannot: every chunk lies inside
    its text and every live id has exactly one vector."""
    try:
        pairs = loaded.rows.all_chunks()
        ids = [i for i, _ in pairs]
        labels = loaded.vectors.labels()
        ok = len(set(ids)) == len(ids) and np.array_equal(np.sort(np.array(ids)), labels)
        ok = ok and all(0 <= i < loaded.manifest["next_id"] for i in ids)
    except (KeyError, ValueError, StoreError) as exc:
        raise StoreError(f"index in {folder} is corrupt ({exc}); run `rag index`") from None
    if not ok:
        raise StoreError(f"index in {folder} is inconsistent; run `rag index`")
