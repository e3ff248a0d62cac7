"""benchmarks/merge_trace.py: each merge decision is written with what it weighed, and the
values left out are counted by what they state and the test that left them out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from benchmarks.merge_trace import label, main, summary, traced
from rag.conflicts import Candidate
from rag.external_ramdocs import RamCase
from rag.policy import Policy
from rag.records import Grounded, Passage

Q = "When was the fort built?"
CASE = RamCase("x1", Q, ("1857",), ("1920",), ())


def candidate(value: str, text: str, dense: float, confidence: float = 0.5) -> Candidate:
    p = Passage(1, "d.txt", 0, len(text), text, dense)
    return Candidate((Grounded(value, (p,)),), True, confidence)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("built in 1857", "right"), ("1920", "planted"), ("1901", "other")],
)
def test_label(value: str, expected: str) -> None:
    assert label({"value": value}, CASE) == expected


def test_each_decision_is_written_with_its_inputs() -> None:
    sink = io.StringIO()
    same = traced(sink)
    anchor = candidate("1857", "The fort was built in 1857.", 0.8)
    near = candidate("1920", "The fort was built in 1920.", 0.72, confidence=0.3)
    far = candidate("1901", "The fort was built in 1901.", 0.4)
    assert same(Q, anchor, near, Policy()) is True
    assert same(Q, anchor, far, Policy()) is False
    rows = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [r["kept"] for r in rows] == [True, False]
    assert rows[0]["relevance"] == pytest.approx(0.9)
    assert rows[1]["relevance"] == pytest.approx(0.5)
    assert rows[0]["confidence"] == 0.3
    assert all(r["one_kind"] and r["same_part"] for r in rows)


def test_summary_counts_what_was_left_out_and_why() -> None:
    def row(value: str, kept: bool, same_part: bool = True, **more: object) -> dict[str, object]:
        base = {"question": Q, "value": value, "kept": kept, "one_kind": True}
        return base | {"same_part": same_part, "accepted": True, "relevance": 0.7} | more

    rows = [
        row("1857", True),
        row("1857", False, confidence=0.2),
        row("1920", False, confidence=0.6),
        row("1901", False, same_part=False),
        row("1902", False, accepted=False),  # not accepted: never a side
        row("dozens", False, one_kind=False),  # another kind of value: never a side
    ]
    got = summary(rows, {Q: CASE})
    assert got["weighed"] == 6 and got["kept"] == 1
    assert got["left_out_for_relevance"] == {"right": 1, "planted": 1}
    assert got["left_out_for_the_part_asked"] == {"other": 1}
    assert [r["label"] for r in got["by_confidence"]] == ["planted", "right"]


def test_read_needs_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EXTERNAL", str(tmp_path))
    (tmp_path / "ramdocs" / "a").mkdir(parents=True)
    (tmp_path / "ramdocs" / "a" / "cases.jsonl").write_text("", encoding="utf-8")
    code = main(["--set", "a", "--read", "--trace", str(tmp_path / "none.jsonl")])
    assert code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.jsonl'} does not exist\n"


def test_a_set_without_its_cases_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EXTERNAL", str(tmp_path))
    code = main(["--set", "b", "--read", "--trace", str(tmp_path / "t.jsonl")])
    assert code == 2
    assert "ramdocs/b/cases.jsonl does not exist" in capsys.readouterr().err
