"""The on-disk index: a FAISS index, a chunk table, and a manifest that describes them.

Writes are atomic: data files get fresh names, and the manifest that points at them is
swapped in last with os.replace, so a crash leaves either the old index or the new one.
Writers hold a lock on the folder, so one writer never deletes another's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from rag import __version__
from rag.chunking import chunk_text
from rag.embed import DIM, MODEL_NAME, Embedder, model_version
from rag.errors import StoreError
from rag.records import Chunk, Document

if TYPE_CHECKING:
    import faiss

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Exact (flat) search is fast enough below this many chunks; above it, HNSW keeps search
# latency flat. benchmarks/run.py measures both and the README says why the line is here.
HNSW_ABOVE = 200_000
LOCK_FILE = ".lock"
# A rebuild may hold the lock throughout: 100k chunks embed in ~35 min at the ~50 chunks/s
# the README measures. A lock dies with its process, so a longer wait means a hung writer.
LOCK_TIMEOUT_S = 3600.0
# A save elsewhere can swap the manifest and delete the files the one we read named,
# between our reads; a few fresh reads cover that without taking the writers' lock.
_LOAD_ATTEMPTS = 3
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The type of every manifest key that load, check_compatible or the pipeline relies on.
_SHAPE: dict[str, type] = {
    "format_version": int,
    "embedding_model": str,
    "dim": int,
    "chunking": dict,
    "corpus_files": dict,
    "documents": list,
    "chunk_count": int,
    "chunks_file": str,
    "chunks_sha256": str,
    "vectors_file": str,
    "vectors_sha256": str,
}
# Which folders this thread holds the lock of, so save can run inside a caller's lock.
_held = threading.local()


@dataclass(frozen=True)
class Store:
    """A loaded index: its manifest, its chunks in vector order, and the FAISS index."""

    manifest: dict[str, Any]
    chunks: tuple[Chunk, ...]
    vectors: faiss.Index


def expected_settings(chunk_chars: int, overlap: int) -> dict[str, Any]:
    """The manifest fields that must match the running settings for an index to be usable."""
    return {
        "format_version": FORMAT_VERSION,
        "embedding_model": MODEL_NAME,
        "dim": DIM,
        "chunking": {"max_chars": chunk_chars, "overlap_sentences": overlap},
    }


def build(
    docs: list[Document],
    corpus_hashes: dict[str, str],
    embedder: Embedder,
    chunk_chars: int,
    overlap: int,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 256,
) -> Store:
    """Chunk and embed every document into an in-memory Store."""
    import faiss

    chunks = [c for d in docs for c in chunk_text(d.name, d.text, chunk_chars, overlap)]
    vectors = np.empty((len(chunks), DIM), dtype=np.float32)
    for lo in range(0, len(chunks), batch):
        part = chunks[lo : lo + batch]
        vectors[lo : lo + len(part)] = embedder.embed([c.text for c in part])
        if progress:
            progress(lo + len(part), len(chunks))
    index = make_index(vectors)
    manifest = expected_settings(chunk_chars, overlap) | {
        "embedding_package_version": model_version(),
        "index_type": "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat",
        "corpus_files": corpus_hashes,
        "documents": [d.name for d in docs],
        "chunk_count": len(chunks),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rag_version": __version__,
    }
    return Store(manifest=manifest, chunks=tuple(chunks), vectors=index)


def make_index(vectors: np.ndarray) -> faiss.Index:
    """Inner product over unit vectors is cosine similarity."""
    import faiss

    if len(vectors) > HNSW_ABOVE:
        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        # 64 gave recall@10 0.94 against exact search at 100k chunks; 128 gives 0.96.
        hnsw.hnsw.efSearch = 128
        index: faiss.Index = hnsw
    else:
        index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def check_writable(folder: Path) -> None:
    """Raise unless an index can be written in `folder`, creating it; run before embedding."""
    probe = folder / f".write-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _unwritable(folder, exc) from None


@contextmanager
def lock(folder: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the folder's write lock, reentrant in one thread; others wait up to `timeout` s."""
    held: set[Path] = _held.__dict__.setdefault("folders", set())
    key = folder.resolve()
    if key in held:
        # The caller holds it across a whole rebuild, and save takes it again inside.
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(folder / LOCK_FILE)
        file_lock.acquire(timeout=timeout)
    except Timeout:
        raise StoreError(
            f"another process has been writing the index in {folder} for over {timeout:g} s; "
            "try again when it has finished"
        ) from None
    except OSError as exc:
        raise _unwritable(folder, exc) from None
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        file_lock.release()


def save(store: Store, folder: Path) -> None:
    """Write the store into `folder` under its lock, then delete the files it replaced."""
    import faiss

    try:
        with lock(folder):
            tag = secrets.token_hex(4)
            chunks_name, vectors_name = f"chunks-{tag}.json", f"vectors-{tag}.faiss"
            table = [[c.doc, c.start, c.end, c.text] for c in store.chunks]
            _write_atomic(folder / chunks_name, json.dumps(table, ensure_ascii=False).encode())
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
        raise _unwritable(folder, exc) from None


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest, or None when no index was ever built here."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"index manifest {path} is unreadable ({exc}); run `rag index`") from None
    if not isinstance(manifest, dict):
        raise StoreError(f"index manifest {path} is corrupt; run `rag index`")
    version = manifest.get("format_version")
    if _is_int(version) and version != FORMAT_VERSION:
        raise StoreError(
            f"index in {folder} has format version {version}, this rag reads version "
            f"{FORMAT_VERSION}; run `rag index` to rebuild it"
        )
    problem = _shape_problem(manifest)
    if problem:
        raise StoreError(f"index manifest {path} is corrupt ({problem}); run `rag index`")
    return manifest


def check_compatible(manifest: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    """Raise when the index was built with other settings than the ones running now."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            raise StoreError(
                f"index in {folder} was built with {key}={have!r}, but {want!r} is configured; "
                "run `rag index` to rebuild it"
            )


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
        table = json.loads(chunks_path.read_text(encoding="utf-8"))
        chunks = tuple(Chunk(doc=d, start=s, end=e, text=t) for d, s, e, t in table)
        vectors = faiss.deserialize_index(np.frombuffer(vectors_path.read_bytes(), dtype=np.uint8))
        consistent = (
            vectors.ntotal == len(chunks) == manifest["chunk_count"]
            and vectors.d == manifest["dim"]
            and {c.doc for c in chunks} <= set(manifest["documents"])
        )
    except StoreError as exc:
        raise StoreError(f"{exc}; the index is corrupt, run `rag index`") from None
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise StoreError(f"index in {folder} is corrupt ({exc}); run `rag index`") from None
    if not consistent:
        raise StoreError(f"index in {folder} is inconsistent; run `rag index`")
    return Store(manifest=manifest, chunks=chunks, vectors=vectors)


def _shape_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the manifest's keys and types, if anything."""
    for key, kind in _SHAPE.items():
        value = manifest.get(key)
        if not (_is_int(value) if kind is int else isinstance(value, kind)):
            return f"{key!r} is missing or not {kind.__name__}"
    chunking = manifest["chunking"]
    if not all(_is_int(chunking.get(k)) for k in ("max_chars", "overlap_sentences")):
        return "'chunking' lacks max_chars or overlap_sentences"
    if not all(
        isinstance(k, str) and isinstance(v, str) for k, v in manifest["corpus_files"].items()
    ):
        return "'corpus_files' is not a table of file hashes"
    if not all(isinstance(d, str) for d in manifest["documents"]):
        return "'documents' is not a list of names"
    for key in ("chunks_file", "vectors_file"):
        # A bare name in this folder: a path could point load (and its checks) elsewhere.
        if manifest[key] in ("", ".", "..", MANIFEST) or Path(manifest[key]).name != manifest[key]:
            return f"{key!r} is not a file name"
    for key in ("chunks_sha256", "vectors_sha256"):
        if not _SHA256.fullmatch(manifest[key]):
            return f"{key!r} is not a SHA-256"
    if manifest["dim"] < 1 or manifest["chunk_count"] < 0:
        return "'dim' or 'chunk_count' is out of range"
    return None


def _is_int(value: object) -> bool:
    # JSON true and false load as bool, which Python counts as int.
    return isinstance(value, int) and not isinstance(value, bool)


def _unwritable(folder: Path, exc: OSError) -> StoreError:
    if folder.exists() and not folder.is_dir():
        reason = "it is a file, not a folder"
    elif isinstance(exc, NotADirectoryError):
        reason = "a folder above it is a file"
    else:
        reason = exc.strerror or str(exc)
        if exc.filename and Path(exc.filename) != folder:
            reason = f"{exc.filename}: {reason}"
    return StoreError(f"cannot write the index in {folder}: {reason}; pass --index DIR")


def _write_atomic(path: Path, data: bytes) -> None:
    # The random part keeps two threads of one process off each other's temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    # A rename is durable only once the directory holding it is synced.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
