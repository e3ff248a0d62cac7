"""Incremental indexing: a full build of a 1,000-file corpus against the updates that follow
one changed, added or deleted file, with the real embedder (sentence-transformers).

    nice -n 19 .venv/bin/python benchmarks/incremental.py [--files N] [--threads N] [--json]

The corpus is synthetic: seed sentences recombined by a seeded RNG, one to four paragraphs
per file. The target is an update under 5% of the full build. Progress goes to stderr;
the figures (or, with --json, one JSON object) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, only benchmarks/ is on sys.path; the suite imports itself as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stats import machine
from benchmarks.synthetic import SEED, seed_sentences
from rag.corpus import file_stats, load_corpus
from rag.embed import Embedder
from rag.index import OpenIndex, build
from rag.settings import REPO, Settings, load_settings

TARGET_SHARE = 0.05
CHECKS = 20  # per-question change checks timed


def write_corpus(folder: Path, files: int, seed: int = SEED) -> None:
    """`files` text files of recombined seed sentences, in ten subfolders."""
    docs, _ = load_corpus(REPO / "seeds")
    sentences = seed_sentences(docs)
    rng = random.Random(seed)
    for n in range(files):
        paragraphs = [
            " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 5)))
            for _ in range(rng.randint(1, 4))
        ]
        path = folder / f"part{n % 10}" / f"{n:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run(
    folder: Path, files: int, embedder: Embedder, log: Callable[[str], None]
) -> dict[str, object]:
    """Every figure, measured in `folder` (which must be empty)."""
    corpus = folder / "corpus"
    write_corpus(corpus, files)
    settings: Settings = load_settings(corpus=corpus, index=folder / "index")
    messages: list[str] = []

    def index() -> None:
        messages.clear()
        build(settings, embedder, messages.append)
        log(messages[-1])

    log(f"full build of {files} files")
    full_s = timed(index)
    chunks = int(messages[-1].split("; ")[1].split()[0].replace(",", ""))
    target = corpus / "part3" / "00003.txt"
    figures: dict[str, object] = {"files": files, "chunks": chunks, "full_build_s": full_s}

    def edit() -> None:
        target.write_text(target.read_text() + "One more sentence was added at the end.\n")

    new_file = corpus / "part0" / "new.txt"

    def add() -> None:
        new_file.write_text(target.read_text())

    steps: list[tuple[str, Callable[[], None]]] = [
        ("unchanged", lambda: None),
        ("change_one", edit),
        ("add_one", add),
        ("delete_one", new_file.unlink),
    ]
    for name, apply in steps:
        apply()
        log(f"rag index after: {name.replace('_', ' ')}")
        figures[f"{name}_s"] = seconds = timed(index)
        figures[f"{name}_share"] = seconds / full_s
        figures[f"{name}_report"] = messages[-1]
    # What a question pays to learn that nothing changed: sizes and mtimes of every file.
    opened = OpenIndex(settings, index_embedder=embedder, log=log)
    opened.sync()
    checks = [timed(opened.sync) for _ in range(CHECKS)]
    figures["per_question_check_ms"] = statistics.median(checks) * 1000
    figures["file_stats_ms"] = statistics.median(
        timed(lambda: file_stats(corpus)) * 1000 for _ in range(CHECKS)
    )
    # An open index told of one changed file updates before it answers (the CLI's path).
    edit()
    figures["open_index_change_one_s"] = timed(opened.sync)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rag.embed import SentenceTransformerEmbedder

    torch.set_num_threads(args.threads)
    embedder = SentenceTransformerEmbedder()
    # The model loads once, before any timing: both builds would pay it alike.
    embedder.embed(["warm up"])
    info = machine() | {"torch_threads": args.threads}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        figures = run(Path(tmp), args.files, embedder, log)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"machine": info, "figures": figures}))
        return 0
    full = figures["full_build_s"]
    print(f"{info['date']}, {info['cores']} cores, {info['cpu']}, torch threads {args.threads}")
    print(f"load average {info['loadavg_start']} at the start, {info['loadavg_end']} at the end")
    print(f"{figures['files']} files, {figures['chunks']:,} chunks")
    rows = [("full build", full, "")]
    for name in ("unchanged", "change_one", "add_one", "delete_one"):
        share = float(figures[f"{name}_share"])  # type: ignore[arg-type]
        ok = "✓" if share < TARGET_SHARE else "✗"
        rows.append(
            (f"rag index, {name.replace('_', ' ')}", figures[f"{name}_s"], f"{share:7.2%} {ok}")
        )
    rows.append(("open index, one file changed", figures["open_index_change_one_s"], ""))
    for label, seconds, note in rows:
        print(f"{label:<32}{float(seconds):8.2f} s {note}")  # type: ignore[arg-type]
    for name in ("change_one", "add_one", "delete_one"):
        print(f"  {name.replace('_', ' ')}: {figures[f'{name}_report']}")
    print(f"{'per-question change check':<32}{figures['per_question_check_ms']:8.1f} ms")
    print(f"{'  of which file_stats':<32}{figures['file_stats_ms']:8.1f} ms")
    print(f"target: an update under {TARGET_SHARE:.0%} of the full build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
