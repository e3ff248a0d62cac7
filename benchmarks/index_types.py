"""FAISS index types side by side at one size, on the clustered synthetic vectors: recall@10
against exact search, single-thread query p50/p95, build time, resident memory and open
time of the saved index (measured in a fresh process), on-disk size, and what replacing
one document's 100 vectors costs. `benchmarks/scale.py --compare` runs it; the README's
index-type table, which chose rag.vectors' default, is its output at 10^6 chunks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, only benchmarks/ is on sys.path; the suite imports itself as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clustered import DOC_CHUNKS, Clustered
from benchmarks.stats import percentile

QUERIES = 1_000
K = 10
# Types compared, in FAISS's factory terms (IVF lists follow the size; see `factory`).
TYPES = ("flat", "hnsw", "hnsw-sq8", "hnsw48-sq8", "hnsw64-sq8", "ivf-sq8", "ivf-pq")


def data(n: int, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectors, queries and exact top-K ids for `n` chunks, made once and cached in
    `folder` (outside the repository: 1.5 GB at a million)."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.npy" for name in ("vectors", "queries", "truth")]
    if all(p.exists() for p in paths):
        return tuple(np.load(p, mmap_mode="r") for p in paths)
    gen = Clustered(n)
    vectors = np.load(paths[0]) if paths[0].exists() else gen.all()
    queries = gen.queries(QUERIES, vectors)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, K)
    for path, array in zip(paths, (vectors, queries, truth), strict=True):
        np.save(path, array)
    return vectors, queries, truth


def factory(kind: str, n: int) -> tuple[str, dict[str, int]]:
    """The FAISS factory string for `kind` at `n` vectors, and its search parameter."""
    lists = max(64, 1 << round(np.log2(4 * np.sqrt(n))))  # FAISS's 4·sqrt(n) rule, power of 2
    return {
        "flat": ("IDMap2,Flat", {}),
        "hnsw": ("IDMap2,HNSW32,Flat", {"efSearch": 128}),
        "hnsw-sq8": ("IDMap2,HNSW32,SQ8", {"efSearch": 128}),
        # Wider graphs: more links per vector cost memory (4 bytes each, twice M on the
        # bottom layer) and build time, and keep greedy search from stalling on this data.
        "hnsw48-sq8": ("IDMap2,HNSW48,SQ8", {"efSearch": 256}),
        "hnsw64-sq8": ("IDMap2,HNSW64,SQ8", {"efSearch": 256}),
        "ivf-sq8": (f"IVF{lists},SQ8", {"nprobe": 32}),
        "ivf-pq": (f"IVF{lists},PQ48", {"nprobe": 32}),
    }[kind]


def build(kind: str, vectors: np.ndarray, path: Path) -> dict[str, Any]:
    """Build `kind` over `vectors` (ids = row numbers), write it to `path`; the build time,
    the file size, and the cost of replacing one document's chunks in memory and on disk."""
    import faiss

    n, dim = vectors.shape
    spec, _ = factory(kind, n)
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    # Any: the stubs type the extracted index as the IVF base class, without its subclasses'
    # attributes.
    ivf: Any = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        # k-means on 64 points a list is within a hair of FAISS's default 256 here, at a
        # quarter of the training time.
        ivf.cp.max_points_per_centroid = 64
        if isinstance(ivf, faiss.IndexIVFPQ):
            # Polysemous codes serve Hamming pre-filtering, unused here, and their
            # training took minutes.
            ivf.do_polysemous_training = False  # type: ignore[attr-defined]  # not in the stubs
    hnsw: Any = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
    if hnsw is not None and hasattr(hnsw, "hnsw"):
        hnsw.hnsw.efConstruction = 80
    started = time.perf_counter()
    if not index.is_trained:
        sample = np.random.default_rng(0).choice(n, size=min(n, 64 * 4096), replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        index.add_with_ids(np.ascontiguousarray(vectors[lo:hi]), np.arange(lo, hi))
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    faiss.write_index(index, str(path))
    write_s = time.perf_counter() - started
    replace_s: float | None = None
    if hnsw is None or not hasattr(hnsw, "hnsw"):
        doc = np.arange(DOC_CHUNKS, dtype=np.int64)
        started = time.perf_counter()
        index.remove_ids(doc)  # type: ignore[arg-type]  # the Python wrapper takes an id array
        index.add_with_ids(np.ascontiguousarray(vectors[:DOC_CHUNKS]), doc)
        replace_s = time.perf_counter() - started
    return {
        "type": kind,
        "factory": spec,
        "build_s": build_s,
        "disk_mb": path.stat().st_size / 2**20,
        "replace_in_memory_s": replace_s,  # None: HNSW cannot remove vectors
        "rewrite_file_s": write_s,
    }


def measure(kind: str, path: Path, folder: Path, param: int | None) -> dict[str, Any]:
    """In this (fresh) process: open `path` memory-mapped where FAISS can, search every
    query one at a time on one thread, and report open time, latency, recall and RSS."""
    import faiss
    import psutil

    faiss.omp_set_num_threads(1)
    _, queries, truth = data(0, folder)
    queries = np.ascontiguousarray(queries)
    base_rss = psutil.Process().memory_info().rss
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if kind.startswith("ivf") else 0
    if kind == "flat" or kind.startswith("hnsw"):
        flags = faiss.IO_FLAG_MMAP_IFC
    started = time.perf_counter()
    index = faiss.read_index(str(path), flags)
    open_s = time.perf_counter() - started
    _, params = factory(kind, index.ntotal)
    if param is not None:
        params = {next(iter(params)): param}
    for name, value in params.items():
        faiss.ParameterSpace().set_index_parameter(index, name, value)
    times, hits = [], 0
    for i in range(len(queries)):
        started = time.perf_counter()
        _, ids = index.search(queries[i : i + 1], K)
        times.append((time.perf_counter() - started) * 1000)
        hits += len(set(ids[0].tolist()) & set(truth[i].tolist()))
    rss = psutil.Process().memory_info().rss
    return {
        "type": kind,
        "params": params,
        "open_s": open_s,
        "query_p50_ms": percentile(times, 50),
        "query_p95_ms": percentile(times, 95),
        "recall_at_10": hits / (K * len(queries)),
        "rss_mb": rss / 2**20,
        "rss_before_open_mb": base_rss / 2**20,
        "mmap": bool(flags),
    }


def compare(
    n: int, kinds: list[str], folder: Path, sweep: dict[str, list[int]]
) -> list[dict[str, Any]]:
    """Build each type once, then measure it in a fresh process per search parameter."""
    import faiss

    vectors, _, _ = data(n, folder)
    rows = []
    for kind in kinds:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        path = folder / f"{kind}.faiss"
        built = build(kind, vectors, path)
        for param in sweep.get(kind, [None]):
            argv = [sys.executable, __file__, "--measure", kind, str(path), str(folder)]
            if param is not None:
                argv.append(str(param))
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            row = built | json.loads(out) | {"chunks": n}
            print(json.dumps(row), flush=True)
            rows.append(row)
        path.unlink()
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--measure"]:
    kind, path, folder = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    param = int(sys.argv[5]) if len(sys.argv) > 5 else None
    print(json.dumps(measure(kind, path, folder, param)))
