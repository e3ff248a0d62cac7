"""The index at scale, through the product's own code: build (rag.store / rag.milvus),
open in a fresh process, search, and replace one document's 100 chunks.

    python benchmarks/scale.py --chunks 1000000 --store faiss --json
    python benchmarks/scale.py --chunks 100000 --store milvus-lite --json
    python benchmarks/scale.py --compare --chunks 1000000      # FAISS index types

Vectors are the clustered synthetic set of benchmarks/clustered.py (embedding a million
chunks for real would take days here); documents are 100 sentences of ~90 characters,
each its own chunk, so the store holds real texts and spans. Embedding is left out of
build_s and update_s, and measured on its own (MiniLM over the SQuAD articles' chunks),
so that a real build's time is the arithmetic printed with it. Heavy: run under the
shared lock (`flock /tmp/heavy.lock ...`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, only benchmarks/ is on sys.path; the suite imports itself as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clustered import DOC_CHUNKS
from benchmarks.index_types import TYPES, K, compare, data
from benchmarks.stats import percentile
from rag import store
from rag.records import Document

CACHE = Path(tempfile.gettempdir()) / "rag-scale"
SENTENCE = "Sentence {:06d} of document {:06d} says one thing about its subject in plain words."
SQUAD = Path("/work/shared/external/squad2")
QUERIES = 300


class Precomputed:
    """An embedder that hands out the synthetic vectors in order: the store's build path
    runs as in production, with the embedding itself taken out of the clock."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors, self.at = vectors, 0

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.asarray(self.vectors[self.at : self.at + len(texts)], dtype=np.float32)
        self.at += len(texts)
        return out


def document(d: int, version: int = 0) -> Document:
    text = " ".join(SENTENCE.format(i + version * DOC_CHUNKS, d) for i in range(DOC_CHUNKS))
    return Document(name=f"doc{d:06d}.txt", text=text, sha256=f"{d:064x}")


def folder_size(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def build(n: int, where: str, target: Path) -> dict[str, Any]:
    vectors, _, _ = data(n, CACHE / str(n))
    docs = [document(d) for d in range(n // DOC_CHUNKS)]
    started = time.perf_counter()
    # Each sentence is one chunk: 100 characters a chunk, no overlap.
    built = store.build(docs, {d.name: d.sha256 for d in docs}, Precomputed(vectors), 100, 0)
    assert built.size == n, built.size
    home = _place(where, target)
    with home.lock():
        home.save(built)
    return {"build_s": time.perf_counter() - started}


def _place(where: str, target: Path) -> Any:
    from rag.place import Folder, MilvusPlace

    if where == "faiss":
        return Folder(target)
    return MilvusPlace(str(target / "rag.db"), "")


def measure(n: int, where: str, target: Path) -> dict[str, Any]:
    """In a fresh process: open, search QUERIES questions one at a time (vector search and
    the rows of the hits, as an answer reads them), recall against exact, and RSS."""
    import faiss
    import psutil

    faiss.omp_set_num_threads(1)
    _, queries, truth = data(n, CACHE / str(n))
    home = _place(where, target)
    started = time.perf_counter()
    opened = home.load()
    open_s = time.perf_counter() - started
    times, hits = [], 0
    for i in range(QUERIES):
        q = np.ascontiguousarray(queries[i : i + 1])
        started = time.perf_counter()
        _, ids = opened.vectors.search(q, K)
        texts = [opened.chunk(int(label)).text for label in ids[0] if label >= 0]
        times.append((time.perf_counter() - started) * 1000)
        assert texts
        hits += len(set(ids[0].tolist()) & set(truth[i].tolist()))
    me = psutil.Process()
    engine = sum(c.memory_info().rss for c in me.children(recursive=True))
    return {
        "open_s": open_s,
        "query_p50_ms": percentile(times, 50),
        "query_p95_ms": percentile(times, 95),
        "recall_at_10": hits / (K * QUERIES),
        "rss_mb": me.memory_info().rss / 2**20,
        "engine_rss_mb": engine / 2**20,  # Milvus Lite runs its engine in a child process
        "index_type": opened.manifest["index_type"],
    }


def update(n: int, where: str, target: Path) -> dict[str, Any]:
    """Replace one document's 100 chunks (new text, new vectors), not counting embedding."""
    vectors, _, _ = data(n, CACHE / str(n))
    home = _place(where, target)
    names: list[Document | str] = [document(d).name for d in range(n // DOC_CHUNKS)]
    names[len(names) // 2] = document(len(names) // 2, version=1)
    fresh = Precomputed(np.asarray(vectors[:DOC_CHUNKS])[::-1])
    started = time.perf_counter()
    with home.lock():
        base = home.load()
        built, embedded = store.update(base, names, fresh, 100, 0)
        home.save(built)
    assert embedded == DOC_CHUNKS
    return {"update_s": time.perf_counter() - started}


def embedding_throughput(limit: int) -> dict[str, Any]:
    """MiniLM through the build path's embedder, over real chunks (SQuAD articles)."""
    from rag.chunking import chunk_text
    from rag.corpus import load_corpus
    from rag.embed import SentenceTransformerEmbedder

    texts: list[str] = []
    for sub in "abc":
        docs, _ = load_corpus(SQUAD / sub / "corpus")
        texts += [c.text for d in docs for c in chunk_text(d.name, d.text, 400, 1)]
    texts = texts[:limit]
    embedder = SentenceTransformerEmbedder()
    embedder.embed(texts[:8])  # load the model off the clock
    started = time.perf_counter()
    for lo in range(0, len(texts), 256):
        embedder.embed(texts[lo : lo + 256])
    rate = len(texts) / (time.perf_counter() - started)
    return {
        "embed_chunks_per_s": rate,
        "embed_sample": len(texts),
        "embed_1m_hours": 1_000_000 / rate / 3600,
    }


def _child(phase: str, args: argparse.Namespace, target: Path) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--chunks", str(args.chunks), "--store", args.store]
    argv += ["--phase", phase, "--target", str(target)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, required=True)
    p.add_argument("--store", choices=["faiss", "milvus-lite"], default="faiss")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--embed-sample", type=int, default=0, help="chunks to embed for throughput")
    p.add_argument("--compare", action="store_true", help="FAISS index types instead")
    p.add_argument("--types", default=",".join(TYPES))
    p.add_argument("--phase", choices=["build", "measure", "update"], help=argparse.SUPPRESS)
    p.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase is not None:
        # Each phase in its own process: Milvus Lite opens a .db in one process at a time,
        # and the open index's memory is measured apart from the build's.
        phase = {"build": build, "measure": measure, "update": update}[args.phase]
        print(json.dumps(phase(args.chunks, args.store, args.target)))
        return 0
    if args.compare:
        compare(args.chunks, args.types.split(","), CACHE / str(args.chunks), {})
        return 0
    target = Path(tempfile.mkdtemp(prefix="rag-scale-", dir=CACHE))
    try:
        row: dict[str, Any] = {"chunks": args.chunks, "store": args.store}
        row |= _child("build", args, target)
        row["disk_mb"] = folder_size(target)
        row |= _child("measure", args, target)
        row |= _child("update", args, target)
        if args.embed_sample:
            row |= embedding_throughput(args.embed_sample)
        row["load_average"] = os.getloadavg()
    finally:
        shutil.rmtree(target, ignore_errors=True)
    print(json.dumps(row) if args.json else "\n".join(f"{k}: {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
