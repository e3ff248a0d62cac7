"""How the index behaves as the corpus grows: build time, search latency (flat vs HNSW),
memory, HNSW recall, and the chunk count at which flat search outgrows its budget."""

from __future__ import annotations

import contextlib
import gc
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.stats import Figure, Target, percentile, progress_text, recall_at_k
from benchmarks.synthetic import SEED, noisy_vectors, seed_sentences, synthetic_documents
from rag import store
from rag import vectors as vectors_module
from rag.chunking import chunk_text
from rag.corpus import load_corpus
from rag.embed import MiniLM, SentenceTransformerEmbedder
from rag.records import Chunk
from rag.retrieve import CANDIDATES, build_bm25, retrieve
from rag.settings import Settings

if TYPE_CHECKING:
    import faiss

Log = Callable[[str], None]
# Flat-search sizes for locating the switch point, cut at the largest set measured.
SWEEP = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000)
RECALL_K = 10
# efSearch values tried besides the shipped one.
EF_SEARCH = (128, 256)


class Bar:
    """A one-line progress bar on stderr, shaped like rag.store.build's progress callback."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        line = progress_text(self.label, done, total, time.perf_counter() - self.started)
        print("\r" + line, end="\n" if done >= total else "", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Switch:
    """Where flat search crosses the latency budget."""

    chunks: int | None
    extrapolated: bool


def switch_point(points: list[tuple[int, float]], budget_ms: float) -> Switch:
    """The chunk count where flat-search latency reaches `budget_ms`: interpolated between
    the two measured sizes around the crossing, else extrapolated from a least-squares line
    (flat search is a linear scan). None when latency does not grow with size."""
    points = sorted(points)
    for (n0, ms0), (n1, ms1) in itertools.pairwise(points):
        if ms0 <= budget_ms < ms1:
            return Switch(round(n0 + (budget_ms - ms0) * (n1 - n0) / (ms1 - ms0)), False)
    if points and points[0][1] > budget_ms:
        return Switch(points[0][0], False)
    if len(points) < 2:
        return Switch(None, True)
    slope, intercept = np.polyfit([n for n, _ in points], [ms for _, ms in points], 1)
    # A flat line fits with a slope of float noise (1e-18 on some BLAS builds), not zero.
    if slope <= 1e-12:
        return Switch(None, True)
    return Switch(round((budget_ms - intercept) / slope), True)


def round_down(n: int) -> int:
    """Two significant figures, rounded down, so a recommended threshold errs towards HNSW."""
    if n < 100:
        return n
    scale = 10 ** (len(str(n)) - 2)
    return n // scale * scale


def run_growth(
    settings: Settings,
    questions: list[str],
    sizes: list[int],
    repeats: int,
    embed_budget_s: float,
    budget_ms: float,
    log: Log,
) -> tuple[list[Figure], dict[str, object], list[str]]:
    """Measure every size; the first is embedded for real, later ones for real only when
    the rate seen so far says it fits in `embed_budget_s`, else by noising real vectors."""
    docs, _ = load_corpus(settings.corpus)
    sentences = seed_sentences(docs)
    mini = MiniLM()
    # Real questions, plus the seed sentences as extra probes, as the query path embeds them.
    query_vecs = mini.embed(questions + sentences)
    question_vecs = query_vecs[: len(questions)]
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    figures: list[Figure] = []
    notes: list[str] = []
    kinds: list[dict[str, object]] = []
    real: np.ndarray | None = None
    rate: float | None = None
    vectors = np.empty((0, 0), dtype=np.float32)
    for n in sorted(sizes):
        section = f"growth: {n:,} chunks"
        sdocs = synthetic_documents(
            sentences, n, SEED, settings.chunk_chars, settings.overlap_sentences
        )
        chunks = tuple(
            c
            for d in sdocs
            for c in chunk_text(d.name, d.text, settings.chunk_chars, settings.overlap_sentences)
        )
        estimate = len(chunks) / rate if rate else 0.0
        if real is None or estimate <= embed_budget_s:
            log(f"growth: embedding {len(chunks):,} synthetic chunks for real")
            started = time.perf_counter()
            built = store.build(
                sdocs,
                {},
                embedder,
                settings.chunk_chars,
                settings.overlap_sentences,
                progress=Bar(f"embedding {len(chunks):,} chunks"),
            )
            build_s = time.perf_counter() - started
            vectors = built.vectors.base.reconstruct_n(0, built.vectors.base.ntotal)
            rate = len(chunks) / build_s
            real = vectors
            kinds.append({"chunks": len(chunks), "vectors": "real"})
            figures += [
                Figure(section, "index build with real embeddings (store.build)", "s", (build_s,)),
                Figure(section, "build throughput", "chunks/s", (rate,)),
            ]
            del built
        else:
            notes.append(
                f"{len(chunks):,} chunks: embedding them would take ≈{estimate:,.0f} s at "
                f"{rate:.0f} chunks/s (budget {embed_budget_s:.0f} s), so the vectors are the "
                f"{len(real):,} real ones plus copies with seeded Gaussian noise (σ=0.02) added "
                "and renormalised; the texts (for BM25) are real recombined chunks"
            )
            vectors = noisy_vectors(real, len(chunks), SEED)
            kinds.append({"chunks": len(chunks), "vectors": "real+noise"})
        figures += _measure(
            section,
            chunks,
            vectors,
            query_vecs,
            questions,
            question_vecs,
            settings.k,
            repeats,
            budget_ms,
            log,
        )
        gc.collect()
    import faiss

    log("growth: flat-search sweep for the switch point")
    sweep = _sweep(vectors, query_vecs, repeats)
    info: dict[str, object] = {
        "sizes": kinds,
        "budget_ms": budget_ms,
        "queries": len(query_vecs),
        "faiss_threads": faiss.omp_get_max_threads(),
        "flat_sweep": sweep,
        "current_hnsw_above": vectors_module.APPROXIMATE_ABOVE,
    }
    for suffix in ("", "_1_thread"):
        switch = switch_point(
            [(int(p["chunks"]), p["median_ms" + suffix]) for p in sweep], budget_ms
        )
        info["flat_over_budget_at" + suffix] = switch.chunks
        info["extrapolated" + suffix] = switch.extrapolated
        info["recommended_hnsw_above" + suffix] = (
            round_down(switch.chunks) if switch.chunks else None
        )
    return figures, info, notes


def _measure(
    section: str,
    chunks: tuple[Chunk, ...],
    vectors: np.ndarray,
    query_vecs: np.ndarray,
    questions: list[str],
    question_vecs: np.ndarray,
    k: int,
    repeats: int,
    budget_ms: float,
    log: Log,
) -> list[Figure]:
    import faiss

    n = len(vectors)
    rss0 = _rss_mib()
    started = time.perf_counter()
    flat = _forced_index(vectors, hnsw=False)
    flat_s, flat_mib = time.perf_counter() - started, _rss_mib() - rss0
    log(f"growth: building HNSW over {n:,} vectors")
    rss0 = _rss_mib()
    started = time.perf_counter()
    hnsw = _forced_index(vectors, hnsw=True)
    hnsw_s, hnsw_mib = time.perf_counter() - started, _rss_mib() - rss0
    budget = Target("<=", budget_ms)
    threads = faiss.omp_get_max_threads()
    flat_ms = _search_ms(flat, query_vecs, repeats)
    with _faiss_threads(1):
        flat1_ms = _search_ms(flat, query_vecs, repeats)
    figures = [
        Figure(section, "flat index build", "s", (flat_s,)),
        Figure(section, "HNSW index build (M=32, efConstruction=80)", "s", (hnsw_s,)),
        Figure(
            section,
            f"flat search, top {CANDIDATES}, {threads} FAISS threads (as shipped)",
            "ms",
            tuple(flat_ms),
            budget,
        ),
        Figure(
            section, f"flat search, top {CANDIDATES}, 1 FAISS thread", "ms", tuple(flat1_ms), budget
        ),
    ]
    # Recall and latency at the shipped efSearch (the target) and at larger ones, so a
    # miss comes with the setting that would fix it.
    shipped_ef = hnsw.hnsw.efSearch
    exact_scores, _ = flat.search(query_vecs, RECALL_K)
    for ef in sorted({shipped_ef, *EF_SEARCH}):
        hnsw.hnsw.efSearch = ef
        ms = _search_ms(hnsw, query_vecs, repeats)
        approx_scores, approx_ids = hnsw.search(query_vecs, RECALL_K)
        recall = [
            recall_at_k(e, i, s)
            for e, i, s in zip(exact_scores, approx_ids, approx_scores, strict=True)
        ]
        # How much worse the neighbours HNSW returns are, in cosine: near-duplicate copies
        # can cost recall while costing the answer nothing.
        ratio = approx_scores.clip(0).sum(1) / np.maximum(exact_scores.clip(0).sum(1), 1e-9)
        shipped = ef == shipped_ef
        tag = f"efSearch={ef}" + (" (as shipped)" if shipped else "")
        figures += [
            Figure(
                section,
                f"HNSW search, top {CANDIDATES}, {tag}",
                "ms",
                tuple(ms),
                budget if shipped else None,
            ),
            Figure(
                section,
                f"HNSW recall@{RECALL_K} vs flat, {tag}",
                "",
                (float(np.mean(recall)),),
                Target(">=", 0.95) if shipped else None,
                f"mean over {len(recall)} queries; worst {min(recall):.2f}; "
                f"{sum(r == 1.0 for r in recall)} with full recall; top-{RECALL_K} cosine "
                f"sum HNSW/exact: mean {ratio.mean():.4f}, worst {ratio.min():.4f}",
            ),
        ]
    hnsw.hnsw.efSearch = shipped_ef
    log(f"growth: BM25 and hybrid retrieval over {n:,} chunks")
    rss0 = _rss_mib()
    started = time.perf_counter()
    bm25 = build_bm25(chunks)
    bm25_s, bm25_mib = time.perf_counter() - started, _rss_mib() - rss0
    hybrid_ms = []
    flat_store = store.Store.of(manifest={}, chunks=chunks, vectors=flat)
    for _ in range(repeats):
        for q, v in zip(questions, question_vecs, strict=True):
            t = time.perf_counter()
            retrieve(q, v, flat_store, k, bm25)
            hybrid_ms.append((time.perf_counter() - t) * 1000)
    sizes, loads = {}, {}
    for name, index in (("flat", flat), ("HNSW", hnsw)):
        blob = faiss.serialize_index(index)
        sizes[name] = len(blob) / 2**20
        t = time.perf_counter()
        faiss.deserialize_index(blob)
        loads[name] = time.perf_counter() - t
    return [
        *figures,
        Figure(section, "hybrid retrieve() over flat + BM25", "ms", tuple(hybrid_ms)),
        Figure(section, "BM25 build (Pipeline does this at every start)", "s", (bm25_s,)),
        Figure(
            section,
            "RSS growth: flat index",
            "MiB",
            (flat_mib,),
            note=f"vectors alone are {vectors.nbytes / 2**20:.0f} MiB",
        ),
        Figure(section, "RSS growth: HNSW index", "MiB", (hnsw_mib,)),
        Figure(section, "RSS growth: BM25 index", "MiB", (bm25_mib,)),
        Figure(section, "index file size, flat", "MiB", (sizes["flat"],)),
        Figure(section, "index file size, HNSW", "MiB", (sizes["HNSW"],)),
        Figure(section, "index load (deserialize), flat", "s", (loads["flat"],)),
        Figure(section, "index load (deserialize), HNSW", "s", (loads["HNSW"],)),
    ]


def _sweep(vectors: np.ndarray, query_vecs: np.ndarray, repeats: int) -> list[dict[str, float]]:
    """Median and p95 flat-search latency over growing prefixes of `vectors`, with FAISS's
    own thread count and with one thread."""
    import faiss

    sizes = [s for s in SWEEP if s < len(vectors)] + [len(vectors)]
    out = []
    for s in sizes:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors[:s])
        ms = _search_ms(index, query_vecs, repeats)
        with _faiss_threads(1):
            ms1 = _search_ms(index, query_vecs, repeats)
        out.append(
            {
                "chunks": s,
                "median_ms": percentile(ms, 50),
                "p95_ms": percentile(ms, 95),
                "median_ms_1_thread": percentile(ms1, 50),
                "p95_ms_1_thread": percentile(ms1, 95),
            }
        )
        del index
    return out


@contextlib.contextmanager
def _faiss_threads(n: int) -> Iterator[None]:
    import faiss

    saved = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(saved)


def _forced_index(vectors: np.ndarray, hnsw: bool) -> Any:
    """Exact search, or the HNSW index this benchmark was written for (M=32, efSearch
    128). The product's own choice above its switch point is measured by
    benchmarks/scale.py."""
    import faiss

    if not hnsw:
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        return flat
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.hnsw.efSearch = 128
    index.add(vectors)
    return index


def _search_ms(index: faiss.Index, query_vecs: np.ndarray, repeats: int) -> list[float]:
    """Latency of one-question searches, as retrieve() issues them, to its candidate depth."""
    depth = min(CANDIDATES, index.ntotal)
    out = []
    for _ in range(repeats):
        for q in query_vecs:
            t = time.perf_counter()
            index.search(q.reshape(1, -1), depth)
            out.append((time.perf_counter() - t) * 1000)
    return out


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def describe(info: dict[str, object]) -> list[str]:
    """The switch-point lines under the table."""
    sweep = info["flat_sweep"]
    budget = info["budget_ms"]
    assert isinstance(sweep, list) and isinstance(budget, float)
    lines = []
    for suffix, label in (
        ("", f"{info['faiss_threads']} FAISS threads (as shipped)"),
        ("_1_thread", "1 FAISS thread"),
    ):
        points = ", ".join(f"{p['chunks']:,}: {p['median_ms' + suffix]:.2f}" for p in sweep)
        lines.append(f"flat search median ms by chunk count, {label}: {points}")
        over = info["flat_over_budget_at" + suffix]
        if over is None:
            lines.append(f"  with {label}, flat latency did not grow with size: no switch point")
            continue
        how = "extrapolated past the largest set" if info["extrapolated" + suffix] else "measured"
        lines.append(
            f"  with {label}, flat search passes {budget:g} ms per query at ≈{over:,} chunks "
            f"({how}): HNSW_ABOVE = {info['recommended_hnsw_above' + suffix]:,}"
        )
    lines.append(f"rag.vectors.APPROXIMATE_ABOVE is currently {info['current_hnsw_above']:,}")
    return lines
