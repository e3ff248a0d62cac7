"""Runs `rag eval --json` once per configuration and prints a Markdown table of the
results, for the README's comparison of retrieval modes, k, and GGUF candidates.

    .venv/bin/python benchmarks/compare.py [--jobs 2] [--only NAME ...]

Each configuration runs in its own process. With --jobs 2 two run side by side with one
llama.cpp thread each: quality figures are unchanged, latency figures are not comparable
with a single quiet run (the README says which is which).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RAG = Path(sys.executable).parent / "rag"

# name -> (flags, environment). The comparison rows in the README were measured with the
# JSON grammar on (the default then), so they keep it here to reproduce.
GRAMMAR = {"RAG_GRAMMAR": "1"}
CONFIGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "qwen dense k=4 (default)": ([], {}),
    "qwen dense k=4, grammar": ([], GRAMMAR),
    "qwen hybrid k=4": (["--retrieval", "hybrid"], GRAMMAR),
    "qwen hybrid k=4, 8 passages": (["--retrieval", "hybrid"], GRAMMAR | {"RAG_MAX_PASSAGES": "8"}),
    "qwen hybrid k=2": (["--retrieval", "hybrid", "-k", "2"], GRAMMAR),
    "smollm2 hybrid k=4": (["--retrieval", "hybrid", "--model", "smollm2"], GRAMMAR),
    "gemma hybrid k=4": (["--retrieval", "hybrid", "--model", "gemma"], GRAMMAR),
}
COLUMNS = (
    ("answer_accuracy", "answer acc."),
    ("citation_recall", "cit. recall"),
    ("citation_precision", "cit. precision"),
    ("char_iou", "char IoU"),
    ("citation_validity", "validity"),
    ("refusal_accuracy", "refusal acc."),
    ("false_refusal_rate", "false refusals"),
    ("false_conflict_rate", "false conflicts"),
    ("conflict_detection", "conflicts found"),
    ("retrieval_recall_at_k", "retrieval R@k"),
    ("median_cited_chars", "median cited chars"),
    ("latency_p50", "p50 s"),
    ("latency_p95", "p95 s"),
)


def run(name: str, threads: int) -> tuple[str, dict[str, float] | str]:
    flags, env = CONFIGS[name]
    proc = subprocess.run(
        [str(RAG), "eval", "--json", "--no-gate", *flags],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ | env | {"RAG_THREADS": str(threads), "HF_HUB_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        return name, proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
    return name, json.loads(proc.stdout)["summary"]


def table(results: list[tuple[str, dict[str, float] | str]]) -> str:
    head = "| configuration | " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    rows = [head, rule]
    for name, summary in results:
        if isinstance(summary, str):
            rows.append(f"| {name} | " + f"failed: {summary} |")
            continue
        cells = [
            f"{summary[key]:.0f}" if key == "median_cited_chars" else f"{summary[key]:.2f}"
            for key, _ in COLUMNS
        ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1, help="configurations run at once")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="a subset")
    args = parser.parse_args()
    names = args.only or list(CONFIGS)
    threads = max(1, (os.cpu_count() or 2) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda n: run(n, threads), names))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
