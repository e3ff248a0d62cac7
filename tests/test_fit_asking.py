"""benchmarks/fit_asking.py: which calls it counts as paid off, what skipping them does,
and the threshold it keeps under a latency budget."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.fit_asking import FEATURES, Question, calls_of, fit, outcome, questions


def asked(doc: str, coverage: float, seconds: float = 1.0, copy: bool = False) -> dict[str, Any]:
    before = dict.fromkeys(FEATURES, 0.5) | {"coverage": coverage, "copy": float(copy)}
    return {"doc": doc, "before": before, "seconds": seconds}


def result(qid: str, statements: list[tuple[str, list[str], float]], calls: list[Any]) -> Any:
    return {
        "id": qid,
        "set": "ramdocs/a",
        "answer": {
            "timings": {"total_s": 2.0 + sum(c["seconds"] for c in calls)},
            "statements": [
                {"text": t, "docs": d, "confidence": c, "disputed": False} for t, d, c in statements
            ],
            "asked": calls,
        },
    }


GOLD = {"q1": ["1981", "1989"], "q2": ["1975"]}
ROWS = [
    # q1: the source asked gives a second right side; the copy is always heard, left out.
    result(
        "q1",
        [("1981", ["first.txt"], 0.9), ("1989", ["right.txt"], 0.5)],
        [asked("right.txt", 1.0), asked("copy.txt", 1.0, copy=True)],
    ),
    # q2: one source's side is wrong, another's too unsure to be shown, one gives nothing.
    result(
        "q2",
        [("1975", ["first.txt"], 0.9), ("1921", ["wrong.txt"], 0.6), ("1900", ["low.txt"], 0.1)],
        [asked("wrong.txt", 0.0), asked("low.txt", 0.0), asked("none.txt", 0.0)],
    ),
]


def test_a_call_paid_off_when_its_source_gives_a_right_side_that_is_shown() -> None:
    qs = questions(ROWS, GOLD, side=0.3)
    assert [len(q.calls) for q in qs] == [1, 3]  # the copy is not a choice
    assert [c.paid for c in calls_of(qs)] == [True, False, False, False]
    assert qs[1].sides == [(frozenset({"wrong.txt"}), False)]  # "1900" is under 0.3


def test_skipping_a_call_loses_only_the_sides_no_other_source_gives() -> None:
    q = Question(
        True,
        5.0,
        [("a.txt", (0.0,), 1.0), ("b.txt", (0.0,), 1.5)],
        [(frozenset({"a.txt", "agrees.txt"}), True), (frozenset({"b.txt"}), False)],
    )
    skip_all = outcome([q], [[0.1, 0.2]], 0.5)
    assert (skip_all["calls"], skip_all["right"], skip_all["wrong"]) == (0, 1, 0)
    assert skip_all["p50"] == pytest.approx(2.5)
    keep_all = outcome([q], [[0.1, 0.2]], 0.0)
    assert (keep_all["calls"], keep_all["right"], keep_all["wrong"], keep_all["p50"]) == (
        2,
        1,
        1,
        5.0,
    )


def test_the_threshold_kept_meets_the_budget_and_then_shows_the_most() -> None:
    qs = questions(ROWS, GOLD, side=0.3)
    # Totals: q1 3.0 s (one choice), q2 5.0 s; the median of the two is 4.0 s.
    loose, _ = fit(qs, budget=10.0)
    assert loose["ask_confidence"] > 0  # the wrong side's call is skipped: +1, nothing lost
    assert loose["calls"] == 4 and loose["paid"] == 1
    tight, table = fit(qs, budget=2.5)
    assert all(r["p50"] > 2.5 for r in table if r["threshold"] < tight["ask_confidence"])
    with pytest.raises(SystemExit, match=r"under 1\.0 s"):
        fit(qs, budget=1.0)
