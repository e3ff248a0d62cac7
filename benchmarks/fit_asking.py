"""Fit which other sources are worth a model call: rag.policy's `ask_weights`,
`ask_intercept` and `ask_confidence`.

    .venv/bin/python benchmarks/fit_asking.py \\
        --fit reports/external/conf/ramdocs-a-n60-s0/results.jsonl \\
        --fit reports/external/conf/squad2-a-n120-s0/results.jsonl \\
        --fit reports/external/conf/squad2-b-n120-s0/results.jsonl \\
        [--calibration rag/calibration.json] [--budget 3.5] [--write [--adopt]]

Reads runs of benchmarks/external.py made with no ask score (every source that could give
a side was asked) and with side_confidence 0, whose answers record each source asked
(`asked`: what was known of it before the call, what it gave, what the call cost). A call
paid off when its source is among the documents of a side the answer shows beyond the
first (at the side threshold in the calibration file, or pinned beside a disputed side)
that states one of the question's gold answers; on SQuAD, where a second side is a false
conflict, no call pays off. A logistic regression over the features (standardised, as the
answer score) estimates that chance. Near-copies of a cited document are always heard, so
they are left out.

The threshold meets the latency budget first: each RAMDocs question's latency is
re-estimated as its measured total less the measured seconds of the calls the threshold
skips, and only thresholds whose median over the RAMDocs fitting runs is within `--budget`
(the every-side issue's 3.5 s) are candidates. Among them the one kept shows the most
right sides less wrong ones (RIGHT_WEIGHT, as benchmarks/fit_sides.py), the lowest on a
tie. A side is lost only when every document giving it was skipped; a skipped call's turn
going to the next source is not modelled, so the estimate errs toward fewer sides. Never
give it the runs you report on.

--write stores the score and the threshold it found (`ask_fit`) in the calibration file;
only --adopt makes that threshold the default `ask_confidence`. It is not the default
today (README "Every side"): on the seed suite it skipped the second source of two of the
five conflicts. RAG_ASK_CONFIDENCE=<threshold> turns it on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.calibrate import fit_logistic
from benchmarks.fit_sides import RIGHT_WEIGHT, gold_answers, pinned
from rag.conflicts import sure_enough
from rag.decide import logistic
from rag.external import read_jsonl, states
from rag.policy import CALIBRATION

# What rag.answer.source_features gives, less "copy" (near-copies are always heard).
FEATURES = ("similarity", "relevance", "coverage", "first_confidence", "chars")
BUDGET_S = 3.5


@dataclass(frozen=True)
class Call:
    """One source asked: its features, and whether a right side shown came from it."""

    features: tuple[float, ...]
    paid: bool


@dataclass(frozen=True)
class Question:
    """One answer of a run: its latency, its calls, and its sides beyond the first."""

    ramdocs: bool
    total_s: float
    calls: list[tuple[str, tuple[float, ...], float]]  # doc, features, seconds
    # Each side beyond the first that is shown: its documents and whether it is right.
    sides: list[tuple[frozenset[str], bool]]


def questions(
    rows: list[dict[str, Any]], gold: dict[str, list[str]], side: float
) -> list[Question]:
    out = []
    for row in rows:
        answer = row["answer"]
        statements = answer.get("statements") or []
        everything = pinned(statements)
        sides = [
            (frozenset(s["docs"]), any(states(g, s["text"]) for g in gold.get(row["id"], [])))
            for s in statements[1:]
            if everything or sure_enough(s.get("confidence"), side)
        ]
        calls = [
            (a["doc"], tuple(float(a["before"][f]) for f in FEATURES), float(a["seconds"]))
            for a in answer.get("asked") or []
            # A rescue's call seeks an answer, not a side: it has no first answer to weigh.
            if not a["before"]["copy"] and not a.get("rescue")
        ]
        ramdocs = str(row["set"]).startswith("ramdocs")
        out.append(Question(ramdocs, float(answer["timings"]["total_s"]), calls, sides))
    return out


def calls_of(qs: list[Question]) -> list[Call]:
    return [
        Call(features, any(right and doc in docs for docs, right in q.sides))
        for q in qs
        for doc, features, _ in q.calls
    ]


def skipped(q: Question, chance: list[float], t: float) -> set[str]:
    return {doc for (doc, _, _), p in zip(q.calls, chance, strict=True) if p < t}


def outcome(qs: list[Question], chances: list[list[float]], t: float) -> dict[str, float]:
    """What threshold `t` would have done: calls made, right and wrong sides shown, and
    the estimated median latency of the RAMDocs questions."""
    made = right = wrong = 0
    latency = []
    for q, chance in zip(qs, chances, strict=True):
        skip = skipped(q, chance, t)
        made += len(q.calls) - len(skip)
        kept = [r for docs, r in q.sides if not docs <= skip]
        right += sum(kept)
        wrong += len(kept) - sum(kept)
        if q.ramdocs:
            latency.append(q.total_s - sum(s for d, _, s in q.calls if d in skip))
    return {
        "threshold": t,
        "calls": made,
        "right": right,
        "wrong": wrong,
        "p50": statistics.median(latency) if latency else 0.0,
    }


def fit(qs: list[Question], budget: float) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """The fitted score and the chosen threshold, with the outcome of each candidate."""
    calls = calls_of(qs)
    x = np.array([c.features for c in calls], dtype=float)
    y = np.array([float(c.paid) for c in calls])
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    weights, intercept = fit_logistic((x - mean) / scale, y)

    # Scored as the product scores it (decide.worth_a_call), so the threshold fits it.
    fitted = tuple(
        (n, float(m), float(s), float(w))
        for n, m, s, w in zip(FEATURES, mean, scale, weights, strict=True)
    )

    def chance(features: tuple[float, ...]) -> float:
        return logistic(dict(zip(FEATURES, features, strict=True)), fitted, intercept)

    chances = [[chance(f) for _, f, _ in q.calls] for q in qs]
    steps = sorted({0.0, *(round(p, 4) for ps in chances for p in ps), 1.01})
    table = [outcome(qs, chances, t) for t in steps]
    within = [r for r in table if r["p50"] <= budget]
    if not within:
        raise SystemExit(f"no threshold brings the median under {budget} s")
    best = max(within, key=lambda r: (RIGHT_WEIGHT * r["right"] - r["wrong"], -r["threshold"]))
    score = {
        "ask_weights": [{"signal": n, "mean": m, "scale": s, "weight": w} for n, m, s, w in fitted],
        "ask_intercept": intercept,
        "ask_confidence": best["threshold"],
        "calls": len(calls),
        "paid": int(y.sum()),
    }
    return score, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", type=Path, action="append", required=True)
    parser.add_argument("--calibration", type=Path, default=CALIBRATION)
    parser.add_argument("--budget", type=float, default=BUDGET_S)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--adopt", action="store_true", help="make the threshold the default")
    args = parser.parse_args(argv)
    data = json.loads(args.calibration.read_text(encoding="utf-8"))
    side = float(data.get("side_confidence", 0.0))
    qs: list[Question] = []
    for path in args.fit:
        rows = read_jsonl(path)
        qs += questions(rows, gold_answers(str(rows[0]["set"])), side)
    score, table = fit(qs, args.budget)
    print(f"{score['calls']} calls, {score['paid']} paid off (side threshold {side})")
    print("| threshold | calls | right sides shown | wrong sides shown | RAMDocs p50 (est.) |")
    print("|---|---|---|---|---|")
    marks = {0.0, score["ask_confidence"]}
    shown_rows = [r for i, r in enumerate(table) if r["threshold"] in marks or i % 8 == 0]
    for r in shown_rows:
        star = " **(kept)**" if r["threshold"] == score["ask_confidence"] else ""
        print(
            f"| {r['threshold']:.4f}{star} | {r['calls']} | {r['right']} | {r['wrong']} "
            f"| {r['p50']:.2f} s |"
        )
    for w in score["ask_weights"]:
        print(f"  {w['signal']:<17} {w['weight']:+.3f}")
    print(f"ask_confidence = {score['ask_confidence']:.4f}")
    if args.write:
        data |= {k: score[k] for k in ("ask_weights", "ask_intercept")}
        data["ask_confidence"] = score["ask_confidence"] if args.adopt else 0.0
        data["ask_fit"] = {
            "fitted_on": [str(p) for p in args.fit],
            "budget_s": args.budget,
            "calls": score["calls"],
            "paid": score["paid"],
            "fitted_threshold": score["ask_confidence"],
        }
        args.calibration.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote the ask score to {args.calibration}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
