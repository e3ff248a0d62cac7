"""The benchmark suite: index build and embedding throughput, query path, cold and warm
answers, start-up, memory, and growth to 100k chunks.

    .venv/bin/python benchmarks/run.py [--json] [--repeats N] [--quick] [--growth/--no-growth]

Prints a table (or, with --json, one JSON object) on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

# Run as a script, only benchmarks/ is on sys.path; the suite imports itself as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.processes import REPO, measure_cli_index, measure_cold_ask, measure_startup
from benchmarks.stats import Figure, Target, by_section, machine, render_table
from rag import store
from rag.cases import load_cases
from rag.chunking import chunk_text
from rag.corpus import file_hashes, load_corpus
from rag.errors import RagError
from rag.generate import Generator, OnText
from rag.prompts import Prompt
from rag.records import Completion
from rag.settings import Settings, load_settings

CASES = REPO / "tests" / "regression" / "cases.jsonl"
QUICK_QUESTIONS = 5
THROUGHPUT_TARGET = 0.9
FLAT_BUDGET_MS = 20.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_build(settings: Settings, repeats: int) -> list[Figure]:
    """Seed-corpus build via rag.store.build, against bare sentence-transformers encode."""
    from sentence_transformers import SentenceTransformer

    from rag.embed import MiniLM, SentenceTransformerEmbedder, model_dir

    docs, _ = load_corpus(settings.corpus)
    hashes = file_hashes(settings.corpus)
    cc, ov = settings.chunk_chars, settings.overlap_sentences
    texts = [c.text for d in docs for c in chunk_text(d.name, d.text, cc, ov)]
    started = time.perf_counter()
    ours = SentenceTransformerEmbedder()
    ours.embed(["warm up"])
    load_s = time.perf_counter() - started
    bare = SentenceTransformer(str(model_dir()))
    bare.encode(["warm up"])
    mini = MiniLM()
    mini.embed(["warm up"])
    build_s, bare_s, mini_s = [], [], []
    built = None
    for r in range(repeats):
        log(f"build: repeat {r + 1}/{repeats}")
        # Interleaved, so a change in machine load hits all three alike.
        t = time.perf_counter()
        built = store.build(docs, hashes, ours, cc, ov)
        build_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare.encode(texts)
        bare_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        mini.embed(texts)
        mini_s.append(time.perf_counter() - t)
    assert built is not None and len(built.chunks) == len(texts)
    n = len(texts)
    section = "index build (seed corpus)"
    return [
        Figure(section, "embedding model load (first use, torch import included)", "s", (load_s,)),
        Figure(
            section,
            f"index build in-process, {len(docs)} docs, {n} chunks (rag.store.build)",
            "s",
            tuple(build_s),
        ),
        Figure(section, "build path throughput", "chunks/s", tuple(n / s for s in build_s)),
        Figure(
            section,
            "bare SentenceTransformer.encode throughput",
            "chunks/s",
            tuple(n / s for s in bare_s),
        ),
        Figure(
            section,
            "build path ÷ bare encode",
            "×",
            tuple(b / s for b, s in zip(bare_s, build_s, strict=True)),
            Target(">=", THROUGHPUT_TARGET),
            "paired per repeat; the build includes chunking and the FAISS add",
        ),
        Figure(section, "MiniLM (NumPy) throughput", "chunks/s", tuple(n / s for s in mini_s)),
        Figure(
            section,
            "MiniLM (NumPy) ÷ bare encode",
            "×",
            tuple(b / s for b, s in zip(bare_s, mini_s, strict=True)),
            note="information only: MiniLM serves single queries, not builds",
        ),
    ]


def measure_query(
    settings: Settings, built: store.Store, questions: list[str], repeats: int
) -> list[Figure]:
    """Per-question query embedding (MiniLM), search (rag.retrieve.retrieve: FAISS + BM25
    fusion) and sentence ranking, the pieces of the retrieve stage."""
    from rag.embed import MiniLM
    from rag.retrieve import build_bm25, passages, rank_passages, retrieve

    docs, _ = load_corpus(settings.corpus)
    texts = {d.name: d.text for d in docs}
    mini = MiniLM()
    mini.embed(["warm up"])
    t = time.perf_counter()
    import bm25s  # noqa: F401

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    bm25 = build_bm25(built.chunks)
    bm25_s = time.perf_counter() - t
    embed_ms, search_ms, rank_ms = [], [], []
    for r in range(repeats):
        log(f"query path: repeat {r + 1}/{repeats}")
        for q in questions:
            t0 = time.perf_counter()
            qvec = mini.embed([q])[0]
            t1 = time.perf_counter()
            hits = retrieve(q, qvec, built, settings.k, bm25)
            t2 = time.perf_counter()
            spans = passages(hits, texts.__getitem__)
            rank_passages(spans, mini.embed([s[3] for s in spans]), qvec, settings.max_passages)
            t3 = time.perf_counter()
            embed_ms.append((t1 - t0) * 1000)
            search_ms.append((t2 - t1) * 1000)
            rank_ms.append((t3 - t2) * 1000)
    section = f"query path ({len(questions)} regression questions × {repeats})"
    torch_note = "torch loaded in this process" if "torch" in sys.modules else "torch not loaded"
    return [
        Figure(
            section, "import bm25s (every process that answers pays it)", "ms", (import_s * 1000,)
        ),
        Figure(
            section, "BM25 build over the seed chunks (also at every start)", "ms", (bm25_s * 1000,)
        ),
        Figure(section, "query embedding (MiniLM, NumPy)", "ms", tuple(embed_ms), note=torch_note),
        Figure(section, "search: FAISS + BM25 fusion (retrieve)", "ms", tuple(search_ms)),
        Figure(section, "sentence ranking (embeds the retrieved sentences)", "ms", tuple(rank_ms)),
    ]


class Recorder:
    """Passes through the Generator seam and keeps every Completion, so per-call figures
    (first token, decode rate) stay separate when an answer makes two model calls."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.generations: list[Completion] = []

    def warm_up(self) -> None:
        self.inner.warm_up()

    def complete(
        self, prompt: Prompt, *, max_tokens: int, on_text: OnText | None = None
    ) -> Completion:
        done = self.inner.complete(prompt, max_tokens=max_tokens, on_text=on_text)
        self.generations.append(done)
        return done


def measure_answers(settings: Settings, questions: list[str]) -> list[Figure]:
    """Warm end-to-end answers over the regression questions, one OpenIndex warmed once."""
    from rag.index import OpenIndex

    recorder = Recorder(OpenIndex(settings).generator)
    pipeline = OpenIndex(settings, generator=recorder)
    pipeline.warm_up()
    wall, retrieve_ms, prompt, calls, silent = [], [], [], [], 0
    for n, q in enumerate(questions, 1):
        log(f"warm answers: {n}/{len(questions)}")
        before = len(recorder.generations)
        t = time.perf_counter()
        answer = pipeline.ask(q)
        wall.append(time.perf_counter() - t)
        retrieve_ms.append(answer.timings.retrieve_s * 1000)
        made = len(recorder.generations) - before
        if made:
            prompt.append(float(answer.prompt_tokens))
            calls.append(float(made))
        else:
            silent += 1
    gens = recorder.generations
    ttft = tuple(g.first_token_s for g in gens if g.completion_tokens)
    rate = tuple(
        g.completion_tokens / (g.generate_s - g.first_token_s)
        for g in gens
        if g.completion_tokens and g.generate_s > g.first_token_s
    )
    section = f"warm answers ({len(questions)} regression questions)"
    return [
        Figure(
            section,
            "end-to-end answer latency (warm)",
            "s",
            tuple(wall),
            note=f"{silent} of {len(questions)} refused before any model call",
        ),
        Figure(section, "retrieve stage (Answer.timings.retrieve_s)", "ms", tuple(retrieve_ms)),
        Figure(
            section,
            "prompt tokens per answer (answers that called the model)",
            "tokens",
            tuple(prompt),
        ),
        Figure(
            section, "model calls per answer (2 = second source checked)", "calls", tuple(calls)
        ),
        Figure(section, "time to first token, per call", "s", ttft),
        Figure(
            section,
            "generation speed, per call",
            "tokens/s",
            rate,
            note="completion_tokens / (generate_s − first_token_s); tokens = streamed pieces",
        ),
        Figure(
            section,
            "completion tokens, per call",
            "tokens",
            tuple(float(g.completion_tokens) for g in gens),
        ),
    ]


def skipped(section: str, names: list[str], reason: str) -> list[Figure]:
    return [Figure(section, name, "", (), note=f"skipped: {reason}") for name in names]


def llama_missing() -> str | None:
    """Why llama_cpp cannot be used here, or None when it imports."""
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"llama_cpp does not import ({exc})"
    return None


def run(args: argparse.Namespace) -> tuple[list[Figure], dict[str, object]]:
    """Every benchmark, in an order that keeps heavy in-process state out of the way of the
    fresh-process timings that come before it."""
    repeats = args.repeats or (2 if args.quick else 5)
    growth = (not args.quick) if args.growth is None else args.growth
    info = machine()
    load_start = os.getloadavg()[0]
    settings = load_settings()
    cases = load_cases(CASES, settings.corpus)
    questions = [c.question for c in cases]
    asked = questions[:QUICK_QUESTIONS] if args.quick else questions
    cold_question = next(c.question for c in cases if c.kind == "answerable")
    figures: list[Figure] = []
    notes: list[str] = []
    growth_info: dict[str, object] | None = None
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        settings = replace(settings, index=Path(tmp) / "index")
        env = os.environ | {"RAG_INDEX": str(settings.index)}
        log("startup: --help in fresh processes")
        figures += measure_startup(repeats, env)
        log("index: `rag index` in a fresh process")
        figures += measure_cli_index(env)
        # The query path runs before anything here imports sentence-transformers, as in a
        # real `ask`: it brings torch's, scipy's and sklearn's thread pools, which would
        # compete with NumPy's for two cores.
        figures += measure_query(settings, store.load(settings.index), asked, repeats)
        reason = llama_missing()
        if reason is None:
            try:
                log("cold ask: fresh processes")
                figures += measure_cold_ask(cold_question, repeats, env)
                figures += measure_answers(settings, asked)
            except (RagError, RuntimeError) as exc:
                # A failing `ask` is itself a finding: report it and carry on with the rest.
                reason = str(exc)
        if reason is not None:
            notes.append(f"answer benchmarks skipped: {reason}")
            figures += skipped("cold ask", ["cold `ask --json`", "peak RSS of `ask`"], reason)
            figures += skipped("warm answers", ["end-to-end, TTFT, tokens/s"], reason)
        gc.collect()
        figures += measure_build(settings, repeats)
    if growth:
        from benchmarks.growth import describe, run_growth

        growth_figures, growth_info, growth_notes = run_growth(
            settings,
            questions,
            args.growth_sizes,
            repeats,
            args.embed_budget,
            FLAT_BUDGET_MS,
            log,
        )
        figures += growth_figures
        notes += growth_notes + describe(growth_info)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    # The run itself keeps both cores busy, so only the load before it says who else was.
    if load_start > (os.cpu_count() or 1) / 2:
        notes.insert(
            0,
            f"other work was running when the benchmark started (1-min load "
            f"{load_start:.2f} on {os.cpu_count()} cores): timings are pessimistic",
        )
    figures = by_section(figures)
    verdicts = [f.ok for f in figures if f.ok is not None]
    return figures, {
        "machine": info,
        "run": {
            "repeats": repeats,
            "quick": args.quick,
            "growth": growth,
            "questions": len(asked),
            "cold_question": cold_question,
        },
        # The figures depend on the decision (refusals skip the model), so the report
        # names the policy it ran with.
        "policy": settings.policy.describe(),
        "figures": [f.to_json() for f in figures],
        "growth": growth_info,
        "notes": notes,
        "targets_met": all(verdicts),
    }


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr, so nothing a library (or llama.cpp's C code)
    prints can spoil the one JSON object on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def header(result: dict[str, object]) -> list[str]:
    m = result["machine"]
    r = result["run"]
    assert isinstance(m, dict) and isinstance(r, dict)
    return [
        f"rag benchmarks, {m['date']}",
        f"machine: {m['cores']} cores, {m['cpu']} ({m['platform']}), Python {m['python']}",
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
        " (1, 5, 15 min; above the core count means the machine was shared)",
        f"repeats: {r['repeats']}; questions: {r['questions']}; growth: {r['growth']}",
        f"policy: {_policy_line(result.get('policy'))}",
    ]


def _policy_line(policy: object) -> str:
    """The policy's values, short: the fitted weights are named by their count."""
    if not isinstance(policy, dict):
        return "unknown"
    shown = {k: (f"{len(v)} weights" if k == "weights" else v) for k, v in policy.items()}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run the rag benchmark suite.")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--repeats", type=int, help="repeats per figure (default 5; 2 with --quick)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: few repeats, {QUICK_QUESTIONS} questions, no growth",
    )
    p.add_argument(
        "--growth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="synthetic-corpus growth benchmark (default on, off with --quick)",
    )
    p.add_argument(
        "--growth-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10_000, 100_000],
        help="chunk counts (default 10000,100000)",
    )
    p.add_argument(
        "--embed-budget",
        type=float,
        default=600.0,
        help="seconds a growth set may spend embedding for real (default 600)",
    )
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with stdout_to_stderr() if args.json else contextlib.nullcontext():
        figures, result = run(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        notes = result["notes"]
        assert isinstance(notes, list)
        verdict = "all targets met" if result["targets_met"] else "some targets missed (✗)"
        print(render_table(figures, header(result), [*notes, verdict]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
