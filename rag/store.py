"""The on-disk index: a FAISS index, a chunk table, and a manifest that describes them.

Writes are atomic: data files get fresh names, and the manifest that points at them is
swapped in last with os.replace, so a crash leaves either the old index or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
        index: faiss.Index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        # 64 gave recall@10 0.94 against exact search at 100k chunks; 128 gives 0.96.
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def save(store: Store, folder: Path) -> None:
    """Write the store atomically into `folder`, then delete the files it replaced."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(4)
    chunks_name, vectors_name = f"chunks-{tag}.json", f"vectors-{tag}.faiss"
    table = [[c.doc, c.start, c.end, c.text] for c in store.chunks]
    _write_atomic(folder / chunks_name, json.dumps(table, ensure_ascii=False).encode())
    _write_atomic(folder / vectors_name, bytes(faiss.serialize_index(store.vectors)))
    manifest = store.manifest | {
        "chunks_file": chunks_name,
        "chunks_sha256": _sha256(folder / chunks_name),
        "vectors_file": vectors_name,
        "vectors_sha256": _sha256(folder / vectors_name),
    }
    _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    for old in list(folder.glob("chunks-*.json")) + list(folder.glob("vectors-*.faiss")):
        if old.name not in (chunks_name, vectors_name):
            old.unlink(missing_ok=True)


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
    import faiss

    manifest = read_manifest(folder)
    if manifest is None:
        raise StoreError(f"no index in {folder}; run `rag index`")
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
    except StoreError as exc:
        raise StoreError(f"{exc}; the index is corrupt, run `rag index`") from None
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise StoreError(f"index in {folder} is corrupt ({exc}); run `rag index`") from None
    # One query at a time gains nothing from OpenMP threads, and on a busy 2-core machine
    # they stall: flat search over 100k chunks took 48 ms with 2 threads, 6 ms with one.
    faiss.omp_set_num_threads(1)
    if vectors.ntotal != len(chunks) or vectors.d != manifest.get("dim"):
        raise StoreError(f"index in {folder} is inconsistent; run `rag index`")
    return Store(manifest=manifest, chunks=chunks, vectors=vectors)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
