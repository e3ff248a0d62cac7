"""`rag eval`: run every regression case through the same pipeline as `ask`, score it,
print the table, and fail below the thresholds in rag.evaluate.THRESHOLDS."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from rag.cases import load_cases, read_texts
from rag.evaluate import THRESHOLDS, check_thresholds, render_table, score_case, summarize
from rag.index import OpenIndex
from rag.models import resolve
from rag.settings import REPO, Settings

DEFAULT_CASES = REPO / "tests" / "regression" / "cases.jsonl"
EXIT_BELOW_THRESHOLD = 1


def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    cases = load_cases(args.cases or DEFAULT_CASES, settings.corpus)
    model = resolve(settings.model, settings.model_cache)
    opened = OpenIndex(settings)
    started = time.perf_counter()
    opened.warm_up()
    load_s = time.perf_counter() - started
    texts = read_texts(settings.corpus)
    results = []
    for n, case in enumerate(cases, 1):
        answer = opened.ask(case.question)
        result = score_case(case, answer, texts)
        results.append(result)
        mark = "ok " if result.passed else "BAD"
        print(f"[{n}/{len(cases)}] {mark} {case.id}: {answer.text[:90]}", file=sys.stderr)
    summary = summarize(results)
    failures = [] if args.no_gate else check_thresholds(summary, THRESHOLDS)
    about = {
        "model": model.name,
        "retrieval": settings.retrieval,
        "k": settings.k,
        "max_passages": settings.max_passages,
        "cases": str(args.cases or DEFAULT_CASES.relative_to(REPO)),
        "load_s": round(load_s, 2),
    } | {f"policy.{k}": v for k, v in settings.policy.describe().items()}
    if args.json:
        print(
            json.dumps(
                {
                    "settings": about,
                    "summary": summary,
                    "failures": failures,
                    "cases": [asdict(r) for r in results],
                },
                ensure_ascii=False,
            )
        )
    else:
        print(render_table(results))
        print()
        print("  ".join(f"{k}={v}" for k, v in about.items()))
        for name, value in summary.items():
            print(f"{name:24s} {value:.3f}")
    if args.report:
        from rag.evaluate import write_report

        write_report(results, summary, args.report, about)
        print(f"report written to {args.report}/report.md and metrics.png", file=sys.stderr)
    for line in failures:
        print(f"below threshold: {line}", file=sys.stderr)
    return EXIT_BELOW_THRESHOLD if failures else 0
