"""Retrieval choices measured by gold-span recall, on the seeds and on SQuAD 2.0 corpora.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/retrieval.py [--json]
        [--corpora seeds,a,b,c] [--sample N --seed 0] [--cache DIR | --no-cache]

For every corpus and every configuration (retrieval dense | bm25 | hybrid, chunk_chars,
k, max_passages, rerank alpha) it runs the product's own retrieval path (rag.chunking,
rag.retrieve, OpenIndex.sentence_vectors) over every answerable question and scores:

- chunk recall@k: the share of questions where a top-k chunk holds a gold span wholly
  ("contains") or shares a character with one ("overlaps");
- passage recall: the share where one of the `max_passages` sentences shown to the model
  overlaps a gold span. This is what the model can see, so it is the figure that matters;
- the median CPU time per question of retrieve + passages + ranking, on one thread. It
  excludes embedding the question (the same for every configuration; printed once) and
  embedding sentences (cached for the life of the product's process, and here up front).

The rerank mixes each sentence's cosine with the question and the share of the question's
content terms (rag.text.terms) that the sentence holds: alpha 1.0 is the product today.

Configurations are chosen on seeds, a and b (the mean of their passage recalls, each
corpus weighing the same) and only then reported on c; c never chooses. Vectors are cached
by text under reports/retrieval-cache/ so a second run embeds nothing.
"""

from __future__ import annotations

import os

# One thread everywhere: the machine is shared, and timings are of one question at a time.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import numpy as np  # noqa: E402

# Run as a script, only benchmarks/ is on sys.path; the tests import it as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.chunking import chunk_text, sentence_spans  # noqa: E402
from rag.records import Chunk, Hit  # noqa: E402
from rag.retrieve import lexical_share, mix  # noqa: E402
from rag.text import terms  # noqa: E402

if TYPE_CHECKING:
    import bm25s

    from rag.embed import Embedder
    from rag.index import OpenIndex
    from rag.store import Store

REPO = Path(__file__).resolve().parent.parent
MODES = ("dense", "bm25", "hybrid")
CHUNK_CHARS = (200, 400, 800)
KS = (2, 4, 8, 12)
MAX_PASSAGES = (4, 6, 8, 10)
ALPHAS = (1.0, 0.7, 0.5)
OVERLAP_SENTENCES = 1
# Chosen on these corpora; REPORT only shows how the choice holds up.
FIT = ("seeds", "a", "b")
REPORT = ("c",)
TOP = 10

Span = tuple[str, int, int]


@dataclass(frozen=True)
class Config:
    retrieval: str
    chunk_chars: int
    k: int
    alpha: float

    def label(self) -> str:
        rerank = "none" if self.alpha == 1.0 else f"α={self.alpha:g}"
        return f"{self.retrieval}, chunk {self.chunk_chars}, k={self.k}, rerank {rerank}"


# The product today: rag.settings defaults (dense, 400 chars, k=4, 6 passages, no rerank).
DEFAULT = Config("dense", 400, 4, 1.0)
DEFAULT_PASSAGES = 6


@dataclass(frozen=True)
class Question:
    """An answerable question and its gold spans; any one of them is a hit."""

    id: str
    text: str
    gold: tuple[Span, ...]


@dataclass
class Row:
    """One configuration's figures on one corpus (passage recall by max_passages)."""

    config: Config
    contains: float = 0.0
    overlaps: float = 0.0
    passage: dict[int, float] = field(default_factory=dict)
    ms: float = 0.0


# --- pure helpers ------------------------------------------------------------------------


def contains(outer: Span, inner: Span) -> bool:
    """`outer` holds `inner` wholly, in the same document."""
    return outer[0] == inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2]


def overlaps(a: Span, b: Span) -> bool:
    """The spans share at least one character of the same document."""
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def hit(found: Iterable[Span], gold: Sequence[Span], test: Callable[[Span, Span], bool]) -> bool:
    """Some found span passes `test` against some gold span."""
    return any(test(f, g) for f in found for g in gold)


def order(scores: np.ndarray) -> np.ndarray:
    """Indices by score, best first; ties keep retrieval order, as rank_passages does."""
    return np.argsort(-scores, kind="stable")


def share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def fit_score(rows: dict[str, dict[tuple[Config, int], float]], key: tuple[Config, int]) -> float:
    """Passage recall averaged over the fitting corpora present, each weighing the same."""
    present = [rows[name][key] for name in FIT if name in rows]
    return sum(present) / len(present) if present else 0.0


def cheaper_first(key: tuple[Config, int]) -> tuple[int, int, int, bool, int]:
    """Among equal recalls: fewer passages (prompt tokens), fewer and smaller chunks, no
    rerank, then the simpler retrieval (dense, bm25, hybrid)."""
    config, shown = key
    reranked = config.alpha != 1.0
    return shown, config.k, config.chunk_chars, reranked, MODES.index(config.retrieval)


# --- vectors -----------------------------------------------------------------------------


class CachedEmbedder:
    """An Embedder that remembers every text's vector, in memory and optionally on disk."""

    def __init__(self, inner: Embedder, folder: Path | None) -> None:
        self.inner = inner
        self.folder = folder
        self.vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if folder and (folder / "texts.json").exists():
            texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
            matrix = np.load(folder / "vectors.npy")
            if len(texts) == len(matrix):
                self.vectors = dict(zip(texts, matrix, strict=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.vectors})
        if missing:
            log(f"embedding {len(missing)} texts")
            for text, vector in zip(missing, self.inner.embed(missing), strict=True):
                self.vectors[text] = vector
            self._dirty = True
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        if not self.folder or not self._dirty:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        texts = list(self.vectors)
        np.save(self.folder / "vectors.tmp.npy", np.stack([self.vectors[t] for t in texts]))
        (self.folder / "texts.tmp.json").write_text(json.dumps(texts), encoding="utf-8")
        os.replace(self.folder / "vectors.tmp.npy", self.folder / "vectors.npy")
        os.replace(self.folder / "texts.tmp.json", self.folder / "texts.json")
        self._dirty = False


# --- corpora -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_questions() -> list[Question]:
    """Regression cases with evidence (answerable and conflict), evidence spans as gold."""
    from rag.cases import load_cases

    cases = load_cases(REPO / "tests/regression/cases.jsonl", REPO / "seeds")
    return [
        Question(c.id, c.question, tuple((e.doc, e.start, e.end) for e in c.evidence))
        for c in cases
        if c.evidence
    ]


def squad_questions(
    folder: Path, texts: dict[str, str], n: int | None, seed: int
) -> list[Question]:
    """The answerable SQuAD cases (a seeded sample when `n` is set), answer spans as gold."""
    from rag.external import sample
    from rag.external_squad import load_squad

    cases = [c for c in load_squad(folder) if not c.abstain]
    out = []
    for c in sample(cases, n, seed):
        gold = tuple((c.doc, s, e) for s, e in c.spans)
        if not any(texts[c.doc][s:e] in c.answers for _, s, e in gold):
            raise SystemExit(f"{folder}: case {c.id} has spans that do not match its answers")
        out.append(Question(c.id, c.question, gold))
    return out


# --- retrieval ---------------------------------------------------------------------------


def top_chunks(
    mode: str, question: str, qvec: np.ndarray, store: Store, k: int, bm25: bm25s.BM25
) -> list[Hit]:
    """The top-k chunks by the product's retrieve (dense, hybrid) or by BM25 alone."""
    from rag.retrieve import _bm25_ids, retrieve

    if mode == "dense":
        return retrieve(question, qvec, store, k)
    if mode == "hybrid":
        return retrieve(question, qvec, store, k, bm25)
    ids = _bm25_ids(bm25, question, k)
    return [Hit(store.chunks[i], score=0.0, dense=0.0, rank=r) for r, i in enumerate(ids)]


@dataclass
class _Tally:
    contains: list[bool] = field(default_factory=list)
    overlaps: list[bool] = field(default_factory=list)
    passage: dict[tuple[float, int], list[bool]] = field(default_factory=dict)
    ms: dict[float, list[float]] = field(default_factory=dict)


def measure_chunking(
    mode: str,
    chunk_chars: int,
    questions: list[Question],
    qvecs: np.ndarray,
    store: Store,
    bm25: bm25s.BM25,
    index: OpenIndex,
    texts: dict[str, str],
) -> list[Row]:
    """Rows for every k, alpha and max_passages of one retrieval mode and chunk size."""
    from rag.retrieve import passages, rank_passages

    text_of = texts.__getitem__
    rows = []
    for k in KS:
        tally = _Tally()
        for q, qvec in zip(questions, qvecs, strict=True):
            t0 = time.thread_time()
            hits = top_chunks(mode, q.text, qvec, store, k, bm25)
            spans = passages(hits, text_of)
            vectors = index.sentence_vectors(spans)
            t1 = time.thread_time()
            shown = rank_passages(spans, vectors, qvec, max(MAX_PASSAGES))
            t2 = time.thread_time()
            question_terms = set(terms(q.text))
            lexical = np.array([lexical_share(question_terms, sp[3]) for sp in spans])
            cosines = vectors @ qvec
            t3 = time.thread_time()
            chunk_spans = [(h.chunk.doc, h.chunk.start, h.chunk.end) for h in hits]
            tally.contains.append(hit(chunk_spans, q.gold, contains))
            tally.overlaps.append(hit(chunk_spans, q.gold, overlaps))
            for alpha in ALPHAS:
                if alpha == 1.0:
                    ranked = [(p.doc, p.start, p.end) for p in shown]
                    spent = t2 - t0
                else:
                    t4 = time.thread_time()
                    best = order(mix(cosines, lexical, alpha))[: max(MAX_PASSAGES)]
                    ranked = [spans[i][:3] for i in best]
                    spent = (t1 - t0) + (t3 - t2) + (time.thread_time() - t4)
                tally.ms.setdefault(alpha, []).append(spent * 1000)
                for limit in MAX_PASSAGES:
                    found = hit(ranked[:limit], q.gold, overlaps)
                    tally.passage.setdefault((alpha, limit), []).append(found)
        for alpha in ALPHAS:
            rows.append(
                Row(
                    Config(mode, chunk_chars, k, alpha),
                    contains=share(tally.contains),
                    overlaps=share(tally.overlaps),
                    passage={n: share(tally.passage[(alpha, n)]) for n in MAX_PASSAGES},
                    ms=statistics.median(tally.ms[alpha]),
                )
            )
    return rows


def measure_corpus(
    name: str, folder: Path, questions: list[Question], embedder: CachedEmbedder
) -> dict[str, Any]:
    """Every configuration's row on one corpus, plus its chunk counts."""
    import faiss

    from rag.corpus import load_corpus
    from rag.index import OpenIndex
    from rag.retrieve import build_bm25, passages
    from rag.settings import Settings
    from rag.store import Store, make_index

    faiss.omp_set_num_threads(1)
    docs, warnings = load_corpus(folder)
    for w in warnings:
        log(f"{name}: warning: {w}")
    texts = {d.name: d.text for d in docs}
    qvecs = embedder.embed([q.text for q in questions])
    # Only the sentence-vector cache of OpenIndex is used; its constructor loads nothing.
    index = OpenIndex(Settings(corpus=folder), embedder=embedder)
    everything = [(d.name, s, e, d.text[s:e]) for d in docs for s, e in sentence_spans(d.text)]
    index.sentence_vectors(everything)
    rows: list[Row] = []
    counts = {}
    for chunk_chars in CHUNK_CHARS:
        chunks = tuple(
            c for d in docs for c in chunk_text(d.name, d.text, chunk_chars, OVERLAP_SENTENCES)
        )
        counts[chunk_chars] = len(chunks)
        vectors = embedder.embed([c.text for c in chunks])
        store = Store.of(manifest={}, chunks=chunks, vectors=make_index(vectors))
        bm25 = build_bm25(chunks)
        # Every sentence any retrieval can show, embedded now so no timing includes it.
        index.sentence_vectors(passages(_as_hits(chunks), texts.__getitem__))
        embedder.save()
        for mode in MODES:
            log(f"{name}: {mode}, chunk {chunk_chars}, {len(questions)} questions")
            rows += measure_chunking(mode, chunk_chars, questions, qvecs, store, bm25, index, texts)
    return {"questions": len(questions), "chunks": counts, "rows": rows}


def _as_hits(chunks: Sequence[Chunk]) -> list[Hit]:
    return [Hit(c, score=0.0, dense=0.0, rank=r) for r, c in enumerate(chunks)]


def query_embed_ms(questions: list[Question], n: int = 20) -> float:
    """Median CPU ms for the product's query encoder (NumPy MiniLM) to embed one question."""
    from rag.embed import MiniLM

    encoder = MiniLM()
    encoder.embed(["warm up"])
    spent = []
    for q in questions[:n]:
        t0 = time.thread_time()
        encoder.embed([q.text])
        spent.append((time.thread_time() - t0) * 1000)
    return statistics.median(spent)


# --- output ------------------------------------------------------------------------------


def _f(x: float) -> str:
    return f"{x:.3f}"


def corpus_table(name: str, result: dict[str, Any]) -> str:
    counts = ", ".join(f"{c}→{n}" for c, n in result["chunks"].items())
    lines = [
        f"### {name}: {result['questions']} answerable questions; chunks by chunk_chars {counts}",
        "",
        "| retrieval | chunk | k | rerank α | chunk R@k contains | chunk R@k overlaps | "
        + " | ".join(f"passage R ({n})" for n in MAX_PASSAGES)
        + " | CPU ms/q |",
        "|---|---|---|---|---|---|" + "---|" * len(MAX_PASSAGES) + "---|",
    ]
    for row in result["rows"]:
        c = row.config
        cells = [
            c.retrieval,
            str(c.chunk_chars),
            str(c.k),
            f"{c.alpha:g}",
            _f(row.contains),
            _f(row.overlaps),
            *[_f(row.passage[n]) for n in MAX_PASSAGES],
            f"{row.ms:.2f}",
        ]
        if c == DEFAULT:
            cells = [f"**{x}**" for x in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def one_lever(base: Config, shown: int) -> list[tuple[Config, int]]:
    """`base` with one setting changed at a time, each to every value measured."""
    out: list[tuple[Config, int]] = [(base, shown)]
    out += [(replace(base, retrieval=m), shown) for m in MODES if m != base.retrieval]
    out += [(replace(base, chunk_chars=c), shown) for c in CHUNK_CHARS if c != base.chunk_chars]
    out += [(replace(base, k=k), shown) for k in KS if k != base.k]
    out += [(replace(base, alpha=a), shown) for a in ALPHAS if a != base.alpha]
    out += [(base, n) for n in MAX_PASSAGES if n != shown]
    return out


def selection(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The best configurations by passage recall on the fitting corpora, overall and for
    each max_passages budget, with their figures on the reporting corpora; and the
    default with one lever moved at a time."""
    recall = {
        name: {(r.config, n): r.passage[n] for r in res["rows"] for n in MAX_PASSAGES}
        for name, res in results.items()
    }
    ms = {name: {r.config: r.ms for r in res["rows"]} for name, res in results.items()}
    keys = list(next(iter(recall.values())))

    def entry(key: tuple[Config, int]) -> dict[str, Any]:
        config, shown = key
        return {
            "config": asdict(config),
            "max_passages": shown,
            "label": f"{config.label()}, {shown} passages",
            "fit": fit_score(recall, key),
            "by_corpus": {name: recall[name][key] for name in recall},
            "cpu_ms": statistics.mean(ms[name][config] for name in ms),
        }

    ranked = sorted(keys, key=lambda key: (-fit_score(recall, key), cheaper_first(key)))
    per_budget = [next(key for key in ranked if key[1] == n) for n in MAX_PASSAGES]
    return {
        "fit_on": [n for n in FIT if n in recall],
        "report_on": [n for n in REPORT if n in recall],
        "top": [entry(key) for key in ranked[:TOP]],
        "best_per_max_passages": [entry(key) for key in per_budget],
        "default": entry((DEFAULT, DEFAULT_PASSAGES)),
        "one_lever_from_default": [entry(key) for key in one_lever(DEFAULT, DEFAULT_PASSAGES)],
    }


def selection_table(picked: dict[str, Any], corpora: list[str]) -> str:
    header = "| configuration | fit (mean of " + ", ".join(picked["fit_on"]) + ") | "
    header += " | ".join(corpora) + " | CPU ms/q (mean) |"
    lines = []
    for title, entries in (
        ("Best by passage recall on the fitting corpora", picked["top"]),
        ("Best for each max_passages budget", picked["best_per_max_passages"]),
        ("The default today", [picked["default"]]),
        ("The default with one lever moved", picked["one_lever_from_default"]),
    ):
        lines += [f"#### {title}", "", header, "|---|---|" + "---|" * (len(corpora) + 1)]
        for e in entries:
            cells = [e["label"], _f(e["fit"]), *[_f(e["by_corpus"][n]) for n in corpora]]
            lines.append("| " + " | ".join([*cells, f"{e['cpu_ms']:.2f}"]) + " |")
        lines.append("")
    return "\n".join(lines)


def _jsonable(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: {
            "questions": res["questions"],
            "chunks": res["chunks"],
            "rows": [
                asdict(r.config)
                | {
                    "chunk_recall_contains": r.contains,
                    "chunk_recall_overlaps": r.overlaps,
                    "passage_recall": {str(n): v for n, v in r.passage.items()},
                    "cpu_ms_per_question": r.ms,
                }
                for r in res["rows"]
            ],
        }
        for name, res in results.items()
    }


# --- command -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from rag.external import DEFAULT_ROOT

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="seeds,a,b,c", help="seeds and/or SQuAD a,b,c")
    parser.add_argument("--sample", type=int, default=None, help="questions per SQuAD corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=REPO / "reports/retrieval-cache")
    parser.add_argument("--no-cache", action="store_true", help="keep vectors in memory only")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch

    torch.set_num_threads(1)
    from rag.embed import SentenceTransformerEmbedder, model_version

    folder = None if args.no_cache else args.cache / f"minilm-{model_version()}"
    embedder = CachedEmbedder(SentenceTransformerEmbedder(), folder)
    squad = Path(os.environ.get("RAG_EXTERNAL") or DEFAULT_ROOT) / "squad2"
    names = [n.strip() for n in args.corpora.split(",") if n.strip()]
    results: dict[str, dict[str, Any]] = {}
    first: list[Question] = []
    for name in names:
        if name == "seeds":
            corpus, questions = REPO / "seeds", seed_questions()
        else:
            from rag.cases import read_texts

            corpus = squad / name / "corpus"
            if not corpus.is_dir():
                log(f"no SQuAD corpus at {corpus}; skipping {name}")
                continue
            questions = squad_questions(squad / name, read_texts(corpus), args.sample, args.seed)
        first = first or questions
        results[name] = measure_corpus(name, corpus, questions, embedder)
    embedder.save()
    if not results:
        log("no corpus measured")
        return 1
    embed_ms = query_embed_ms(first)
    picked = selection(results)
    elapsed = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {
                    "corpora": _jsonable(results),
                    "selection": picked,
                    "query_embed_cpu_ms": embed_ms,
                    "sample": args.sample,
                    "seed": args.seed,
                    "run_s": elapsed,
                }
            )
        )
        return 0
    for name, res in results.items():
        print(corpus_table(name, res) + "\n")
    print(selection_table(picked, list(results)))
    print(
        f"Passage recall: a shown sentence overlaps a gold span. CPU ms/q: median "
        f"retrieve + passages + ranking, one thread, without embedding the question "
        f"(NumPy MiniLM: {embed_ms:.1f} ms more). "
        f"Questions: {'all answerable' if args.sample is None else f'sample {args.sample}'}"
        f" (seed {args.seed}). Run time {elapsed:.0f} s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
