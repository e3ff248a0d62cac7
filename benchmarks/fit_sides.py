"""Fit `side_confidence`: how sure the calibrated score must be of a side beyond the first
before it is shown.

    .venv/bin/python benchmarks/fit_sides.py \\
        --fit reports/external/conf/ramdocs-a-n60-s0/results.jsonl \\
        --fit reports/external/conf/squad2-a-n120-s0/results.jsonl \\
        --fit reports/external/conf/squad2-b-n120-s0/results.jsonl \\
        [--calibration rag/calibration.json] [--write]

Reads runs of benchmarks/external.py made with side_confidence 0 (every accepted side
shown), whose statements carry their confidence. A side beyond the first is right when it
states one of the question's gold answers, else wrong (on SQuAD, where each question has
one answer or none, a wrong side is a false conflict). The threshold kept is the one that
maximises twice the right sides shown less the wrong ones (RIGHT_WEIGHT) over the fitting
runs pooled, the lowest on a tie. A disputed side, or one beside a disputed side, is
shown whatever its score (rag.conflicts.judge), so it counts at every threshold. With
--write it is stored in the calibration file beside the score it reads; a refit of that
score (benchmarks/calibrate.py) writes the file anew and so drops it. Never give it the
runs you report on.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.conflicts import sure_enough
from rag.external import read_jsonl, states
from rag.policy import CALIBRATION

# A right side left out counts twice a wrong side shown. A wrong side is shown beside the
# others under "the sources differ", with its citation, for the reader to check; a right
# side left out is silent, and when the first answer is a planted one it is what would
# have flagged it (RAMDocs b, at equal weights: "What sport did Jack Snow play?" lost
# "American football" and stated "basketball" as fact).
RIGHT_WEIGHT = 2


@dataclass(frozen=True)
class SideRow:
    run: str
    question: str
    text: str
    confidence: float
    right: bool
    # Shown whatever its score: disputed, or beside a disputed side.
    pinned: bool


def pinned(statements: list[dict[str, Any]]) -> bool:
    """Whether every side of the answer is shown whatever its score: judge shows a disputed
    side and the sides it copies (taken here as every side of such an answer)."""
    return any(s.get("disputed") for s in statements)


def sides(run: str, rows: list[dict[str, Any]], gold_of: dict[str, list[str]]) -> list[SideRow]:
    """The sides beyond the first of each answer in one run."""
    out = []
    for row in rows:
        statements = row["answer"].get("statements") or []
        wanted = gold_of.get(row["id"], [])
        for s in statements[1:]:
            # A side read from a near-copy by code carries no score, and judge shows it
            # whatever the threshold (rag.conflicts.sure_enough): it counts as pinned.
            out.append(
                SideRow(
                    run,
                    row["answer"]["question"],
                    s["text"],
                    float(s["confidence"] or 0.0),
                    any(states(g, s["text"]) for g in wanted),
                    pinned(statements) or s.get("confidence") is None,
                )
            )
    return out


def shown(rows: list[SideRow], t: float) -> list[SideRow]:
    return [r for r in rows if r.pinned or sure_enough(r.confidence, t)]


def fit(rows: list[SideRow]) -> float:
    """The threshold maximising RIGHT_WEIGHT per right side shown less one per wrong side
    shown; the lowest on a tie."""
    candidates = sorted({0.0, *(r.confidence for r in rows)})

    def utility(t: float) -> int:
        kept = shown(rows, t)
        return sum(RIGHT_WEIGHT if r.right else -1 for r in kept)

    return max(candidates, key=lambda t: (utility(t), -t))


def table(rows: list[SideRow], thresholds: list[float]) -> str:
    runs = sorted({r.run for r in rows})
    head = "| threshold | " + " | ".join(f"{r}: right / wrong shown" for r in runs) + " |"
    lines = [head, "|" + "---|" * (len(runs) + 1)]
    for t in thresholds:
        cells = []
        for run in runs:
            kept = shown([r for r in rows if r.run == run], t)
            cells.append(f"{sum(r.right for r in kept)} / {sum(not r.right for r in kept)}")
        lines.append(f"| {t:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gold_answers(case_set: str) -> dict[str, list[str]]:
    """Each question id's gold answers, read from the external data beside the project."""
    from benchmarks.external import data_root
    from rag.external_ramdocs import load_ramdocs
    from rag.external_squad import load_squad

    kind, part = case_set.split("/")
    folder = data_root() / kind / part
    if kind == "ramdocs":
        return {c.id: list(c.gold_answers) for c in load_ramdocs(folder)}
    return {c.id: list(c.answers) for c in load_squad(folder)}


def at(answer: dict[str, Any], t: float) -> dict[str, Any]:
    """The answer as judge would have shown it at side threshold `t`: the first statement,
    the pinned ones and those reaching `t`. (Citations are left as they were: the scores
    read them only for validity, which dropping a statement cannot change.)"""
    statements = answer.get("statements") or []
    everything = pinned(statements)
    kept = [
        s
        for i, s in enumerate(statements)
        if i == 0 or everything or sure_enough(s.get("confidence"), t)
    ]
    return answer | {"statements": kept, "conflict": len(kept) > 1}


def effect(run: str, rows: list[dict[str, Any]], thresholds: list[float]) -> str:
    """What each threshold does to a run's figures, recomputed from its answers."""
    from benchmarks.external import data_root
    from rag.external import load_texts
    from rag.external_ramdocs import load_ramdocs, score_ramdocs, summarize_ramdocs

    kind, part = str(rows[0]["set"]).split("/")
    lines = []
    if kind == "ramdocs":
        folder = data_root() / kind / part
        cases = {c.id: c for c in load_ramdocs(folder)}
        texts = load_texts(folder / "corpus")
        keys = ("all_gold", "gold_share", "two_plus_gold", "wrong_unflagged", "wrong_stated")
        lines.append(f"| {run} threshold | " + " | ".join(keys) + " |")
        for t in thresholds:
            scores = [score_ramdocs(cases[r["id"]], at(r["answer"], t), texts) for r in rows]
            summary = summarize_ramdocs(scores)
            lines.append(f"| {t:.4f} | " + " | ".join(f"{summary[k]:.3f}" for k in keys) + " |")
    else:
        lines.append(f"| {run} threshold | answers naming two or more sides |")
        for t in thresholds:
            multi = sum(len(at(r["answer"], t)["statements"]) > 1 for r in rows)
            lines.append(f"| {t:.4f} | {multi / len(rows):.3f} ({multi} of {len(rows)}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", type=Path, action="append", required=True)
    parser.add_argument("--calibration", type=Path, default=CALIBRATION)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    # A list, not a dict by name: two runs may share a folder name under different parents.
    runs = [(path.parent.name, read_jsonl(path)) for path in args.fit]
    rows: list[SideRow] = []
    for run, answers in runs:
        rows += sides(run, answers, gold_answers(str(answers[0]["set"])))
    best = fit(rows)
    print(f"{len(rows)} sides beyond the first; right {sum(r.right for r in rows)}")
    steps = sorted({0.0, best, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5})
    print(table(rows, steps))
    print(f"side_confidence = {best:.4f}")
    for run, answers in runs:
        print(effect(run, answers, sorted({0.0, best})))
    if args.write:
        data = json.loads(args.calibration.read_text(encoding="utf-8"))
        data["side_confidence"] = round(best, 4)
        data["side_fit"] = {
            "fitted_on": [str(p) for p in args.fit],
            "sides": len(rows),
            "right": sum(r.right for r in rows),
            "shown_right": sum(r.right for r in shown(rows, best)),
            "shown_wrong": sum(not r.right for r in shown(rows, best)),
        }
        args.calibration.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote side_confidence to {args.calibration}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
