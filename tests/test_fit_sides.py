"""benchmarks/fit_sides.py: the side threshold it fits, what it simulates, and how the
policy reads what it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fit_sides import SideRow, at, fit, shown, sides
from rag.policy import calibrated


def row(confidence: float, right: bool, pinned: bool = False) -> SideRow:
    return SideRow("run", "q", "v", confidence, right, pinned)


# (case, sides, threshold fitted)
FITS = [
    ("no sides: nothing to leave out", [], 0.0),
    ("every side right: keep them all", [row(0.1, True), row(0.6, True)], 0.0),
    (
        "a wrong side below every right one is cut at the lowest right one",
        [row(0.1, False), row(0.3, True), row(0.7, True)],
        0.3,
    ),
    (
        "a right side counts twice a wrong one: one right above two wrong is kept",
        [row(0.2, True), row(0.3, False), row(0.4, False), row(0.8, True)],
        0.0,
    ),
    (
        "three wrong above one right: the right one is given up",
        [row(0.2, True), row(0.3, False), row(0.4, False), row(0.5, False), row(0.8, True)],
        0.8,
    ),
    (
        "a pinned (disputed) wrong side is shown at any threshold, so it moves nothing",
        [row(0.05, False, pinned=True), row(0.6, True)],
        0.0,
    ),
]


@pytest.mark.parametrize(("rows", "threshold"), [f[1:] for f in FITS], ids=[f[0] for f in FITS])
def test_fit(rows: list[SideRow], threshold: float) -> None:
    assert fit(rows) == threshold


def test_at_keeps_the_first_and_the_sides_that_reach_the_threshold() -> None:
    statements: list[dict[str, Any]] = [
        {"text": "a", "confidence": 0.1, "disputed": False},
        {"text": "b", "confidence": 0.5, "disputed": False},
        {"text": "c", "confidence": 0.2, "disputed": False},
    ]
    answer = {"conflict": True, "statements": statements}
    kept = at(answer, 0.3)
    assert [s["text"] for s in kept["statements"]] == ["a", "b"] and kept["conflict"]
    alone = at(answer, 0.6)
    assert [s["text"] for s in alone["statements"]] == ["a"] and not alone["conflict"]
    # Beside a disputed side every side is shown (rag.conflicts.judge).
    disputed = {"text": "d", "confidence": 0.0, "disputed": True}
    assert len(at({"statements": [*statements[:2], disputed]}, 0.9)["statements"]) == 3


def test_a_side_read_from_a_copy_carries_no_score_and_counts_at_every_threshold() -> None:
    statements = [
        {"text": "7 July 1965", "confidence": 0.9, "disputed": False},
        {"text": "15 August 1970", "confidence": None, "disputed": False},
        {"text": "2017", "confidence": 0.1, "disputed": False},
    ]
    rows = [{"id": "q", "answer": {"question": "When?", "statements": statements}}]
    [copy, asked] = sides("run", rows, {"q": ["7 July 1965", "15 August 1970"]})
    assert (copy.pinned, copy.right, asked.pinned, asked.right) == (True, True, False, False)
    assert shown([copy, asked], 0.5) == [copy] and shown([copy, asked], 0.0) == [copy, asked]


def test_the_policy_reads_the_written_threshold(tmp_path: Path) -> None:
    shipped = json.loads((Path(__file__).parent.parent / "rag" / "calibration.json").read_text())
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(shipped | {"side_confidence": 0.42}))
    assert calibrated(path).side_confidence == 0.42
    # A refit of the score writes the file anew, without it: no side threshold.
    del shipped["side_confidence"]
    path.write_text(json.dumps(shipped))
    assert calibrated(path).side_confidence == 0.0
