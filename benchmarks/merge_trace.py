"""Every disagreeing answer the merge weighed in a RAMDocs run, and why it was left out.

    .venv/bin/python benchmarks/merge_trace.py --set a --sample 200 --seed 0 \\
        --trace reports/merge/ramdocs-a.jsonl [--out reports/merge/run]

Runs benchmarks/external.py on a RAMDocs set with rag.conflicts.same_question wrapped, so
each decision is written to `--trace` with what it weighed: whether the two values are of
one kind, the share of question terms the evidence has in common (held to
`conflict_coverage`), the source's relevance as a share of the first answer's
(`side_relevance`), and the source's calibrated confidence. Then it prints, for the
accepted answers of the first answer's kind that were left out, how many state a right
answer, a planted one or another value, by the test that left them out, and each one
left out for relevance alone, by confidence. The product has no trace hook: this is a
diagnostic, so the wrapping lives here. Use it on the fitting set (a), not to tune on b.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import conflicts
from rag.external import read_jsonl, states
from rag.external_ramdocs import RamCase, load_ramdocs
from rag.policy import Policy


def traced(sink: IO[str]) -> Any:
    """rag.conflicts.same_question, writing each decision and its inputs to `sink`."""
    decide = conflicts.same_question

    def same_question(
        question: str, anchor: conflicts.Candidate, other: conflicts.Candidate, policy: Policy
    ) -> bool:
        top = max(p.dense for p in anchor.passages)
        held = decide(question, anchor, other, policy)
        row = {
            "question": question,
            "anchor": anchor.value,
            "value": other.value,
            "one_kind": conflicts.value_kind(anchor.value) == conflicts.value_kind(other.value),
            "same_part": conflicts.same_part(question, anchor, other, policy),
            "relevance": conflicts.evidence_relevance(other) / top if top else 0.0,
            "confidence": other.confidence,
            "accepted": other.accepted,
            # Kept as a side only if this source, or another giving its value, speaks to
            # the question (rag.conflicts.merge): this source's own part of that test.
            "speaks_to": conflicts.speaks_to(question, other),
            "kept": held,
        }
        sink.write(json.dumps(row) + "\n")
        return held

    return same_question


def label(row: Mapping[str, Any], case: RamCase) -> str:
    """What the weighed value states: a right answer, a planted one, or another value."""
    if any(states(g, row["value"]) for g in case.gold_answers):
        return "right"
    if any(states(w, row["value"]) for w in case.wrong_answers):
        return "planted"
    return "other"


def summary(rows: Sequence[Mapping[str, Any]], cases: Mapping[str, RamCase]) -> dict[str, Any]:
    """Counts of the decisions, and of the accepted values of the first answer's kind
    left out, by label and by the test that left them out."""
    left = [r for r in rows if not r["kept"] and r["one_kind"] and r["accepted"]]
    by_relevance = [r for r in left if r["same_part"]]

    def counted(group: list[Mapping[str, Any]]) -> dict[str, int]:
        return dict(Counter(label(r, cases[r["question"]]) for r in group))

    return {
        "weighed": len(rows),
        "kept": sum(bool(r["kept"]) for r in rows),
        "left_out_for_relevance": counted(by_relevance),
        "left_out_for_the_part_asked": counted([r for r in left if not r["same_part"]]),
        "by_confidence": [
            {
                "confidence": r["confidence"],
                "relevance": round(r["relevance"], 3),
                "label": label(r, cases[r["question"]]),
                "question": r["question"],
                "value": r["value"],
            }
            for r in sorted(by_relevance, key=lambda r: -(r["confidence"] or 0.0))
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("a", "b"), required=True)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trace", type=Path, required=True, help="where decisions are written")
    parser.add_argument("--out", type=Path, default=Path("reports/merge/run"))
    parser.add_argument("--read", action="store_true", help="summarise --trace; run nothing")
    args = parser.parse_args(argv)
    from benchmarks.external import data_root
    from benchmarks.external import main as run

    folder = data_root() / "ramdocs" / args.set
    if not (folder / "cases.jsonl").is_file():
        print(f"error: {folder / 'cases.jsonl'} does not exist", file=sys.stderr)
        return 2
    if not args.read:
        args.trace.parent.mkdir(parents=True, exist_ok=True)
        decide = conflicts.same_question
        with args.trace.open("w", encoding="utf-8") as sink:
            conflicts.same_question = traced(sink)
            try:
                code = run(
                    [
                        f"--set=ramdocs/{args.set}",
                        f"--sample={args.sample}",
                        f"--seed={args.seed}",
                        f"--out={args.out}",
                    ]
                )
            finally:
                conflicts.same_question = decide
        if code:
            return code
    elif not args.trace.is_file():
        print(f"error: {args.trace} does not exist", file=sys.stderr)
        return 2
    cases = {c.question: c for c in load_ramdocs(folder)}
    print(json.dumps(summary(read_jsonl(args.trace), cases), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
