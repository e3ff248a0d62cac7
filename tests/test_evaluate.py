"""The metrics give exact, hand-checked numbers on hand-built answers."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest

from rag.cases import Case, Evidence
from rag.evaluate import (
    THRESHOLDS,
    CaseResult,
    check_thresholds,
    render_table,
    score_case,
    summarize,
    write_report,
)
from rag.records import ANSWER, Answer, Chunk, Citation, Statement, Timings
from rag.records import REFUSAL as REFUSED
from rag.text import strip_markers

TEXTS = {
    # a.txt: "Alpha one." [0, 10)  "Bravo two." [11, 21)  "Charlie three." [22, 36)
    "a.txt": "Alpha one. Bravo two. Charlie three.",
    # b.txt: "Delta four." [0, 11)  "Echo five." [12, 22)
    "b.txt": "Delta four. Echo five.",
}


def ev(doc: str, quote: str) -> Evidence:
    start = TEXTS[doc].index(quote)
    return Evidence(doc, quote, start, start + len(quote))


def cite(doc: str, start: int, end: int, quote: str | None = None) -> Citation:
    """A citation whose quote is the true span unless one is given."""
    return Citation(doc, start, end, TEXTS[doc][start:end] if quote is None else quote)


def chunk(doc: str, start: int, end: int) -> Chunk:
    return Chunk(doc, start, end, TEXTS[doc][start:end])


BRAVO = ev("a.txt", "Bravo two.")
ECHO = ev("b.txt", "Echo five.")
ANSWERABLE = Case("bravo", "What does Bravo say?", "answerable", "first", ("two",), (), (BRAVO,))
BOTH = Case("both", "Bravo and Echo?", "answerable", "both", ("two",), (), (BRAVO, ECHO))
UNANSWERABLE = Case("none", "What is the capital of France?", "unanswerable", "none", (), (), ())
CONFLICT = Case(
    "conflict",
    "Which number?",
    "conflict",
    "both",
    ("two", "five"),
    (("a.txt", ("two",)), ("b.txt", ("five",))),
    (BRAVO, ECHO),
)


def answer(
    text: str,
    *citations: Citation,
    abstained: bool = False,
    retrieved: tuple[Chunk, ...] = (),
    latency: float = 0.0,
) -> Answer:
    """An answer whose one statement is `text` without its markers, as rag.render writes."""
    stated = () if abstained else (Statement(strip_markers(text), citations),)
    return Answer(
        question="q",
        kind=REFUSED if abstained else ANSWER,
        statements=stated,
        text=text,
        citations=citations,
        timings=Timings(total_s=latency),
        retrieved=retrieved,
    )


REFUSAL = "The documents do not say."

# (name, case, answer, the CaseResult fields to check)
ROWS = [
    (
        "exact citation",
        ANSWERABLE,
        answer("Bravo says two [1].", cite("a.txt", 11, 21), retrieved=(chunk("a.txt", 0, 21),)),
        dict(
            correct=True,
            refused=False,
            cited_any_expected=True,
            cited_all_expected=True,
            n_citations=1,
            n_citations_on_target=1,
            char_cited=10,
            char_expected=10,
            char_shared=10,
            valid_citations=1,
            invalid_citations=0,
            retrieval_hit=1.0,
            cited_chars=10,
        ),
    ),
    (
        "partial overlap, evidence split across chunks",
        ANSWERABLE,
        answer("two [1]", cite("a.txt", 5, 15), retrieved=(chunk("a.txt", 12, 36),)),
        dict(
            correct=True,
            cited_any_expected=True,
            cited_all_expected=True,
            n_citations_on_target=1,
            char_cited=10,
            char_shared=4,
            valid_citations=1,
            retrieval_hit=0.0,
        ),
    ),
    (
        "same offsets in the wrong doc are off target",
        ANSWERABLE,
        answer("two [1]", cite("b.txt", 11, 21)),
        dict(
            correct=True,
            cited_any_expected=False,
            cited_all_expected=False,
            n_citations=1,
            n_citations_on_target=0,
            char_cited=10,
            char_shared=0,
            valid_citations=1,
            invalid_citations=0,
        ),
    ),
    (
        "a citation that only touches the evidence does not overlap it",
        ANSWERABLE,
        answer("two [1]", cite("a.txt", 0, 11)),
        dict(cited_any_expected=False, n_citations_on_target=0, char_cited=11, char_shared=0),
    ),
    (
        "invalid citations: quote mismatch and unknown doc",
        ANSWERABLE,
        answer("two [1][2]", cite("a.txt", 11, 21, "Bravo 2."), Citation("z.txt", 0, 3, "abc")),
        dict(
            n_citations=2,
            n_citations_on_target=1,
            valid_citations=0,
            invalid_citations=2,
            char_cited=13,
            char_shared=10,
            cited_chars=13,
        ),
    ),
    (
        "overlapping citations are not double counted",
        ANSWERABLE,
        answer("two [1][2]", cite("a.txt", 11, 21), cite("a.txt", 15, 21)),
        dict(n_citations=2, n_citations_on_target=2, char_cited=10, char_shared=10, cited_chars=16),
    ),
    (
        "answer strings ignore case, curly quotes and markers",
        Case("m", "q", "answerable", "first", ("Bravo's two.",), (), (BRAVO,)),
        answer("BRAVO\u2019S TWO [1].", cite("a.txt", 11, 21)),
        dict(correct=True),
    ),
    (
        "a wrong answer",
        ANSWERABLE,
        answer("three [1]", cite("a.txt", 22, 36)),
        dict(correct=False, cited_any_expected=False, n_citations_on_target=0, char_shared=0),
    ),
    (
        "refusal on an unanswerable case",
        UNANSWERABLE,
        answer(REFUSAL, abstained=True, latency=0.25),
        dict(
            correct=True,
            refused=True,
            n_citations=0,
            cited_any_expected=False,
            cited_all_expected=False,
            char_expected=0,
            retrieval_hit=0.0,
            latency=0.25,
        ),
    ),
    (
        "an answer to an unanswerable case",
        UNANSWERABLE,
        answer("Paris [1]", cite("a.txt", 0, 10)),
        dict(correct=False, refused=False, n_citations=1, n_citations_on_target=0),
    ),
    (
        "false refusal",
        ANSWERABLE,
        answer(REFUSAL + " two", abstained=True, retrieved=(chunk("a.txt", 0, 36),)),
        dict(
            correct=False,
            refused=True,
            n_citations=0,
            cited_any_expected=False,
            char_expected=10,
            retrieval_hit=1.0,
        ),
    ),
    (
        "conflict naming only one side is wrong",
        CONFLICT,
        answer("It is two [1].", cite("a.txt", 11, 21)),
        dict(correct=False, cited_any_expected=True, cited_all_expected=False),
    ),
    (
        "conflict naming both sides is right",
        CONFLICT,
        answer(
            "a.txt says two [1]; b.txt says five [2].", cite("a.txt", 11, 21), cite("b.txt", 12, 22)
        ),
        dict(correct=True, cited_all_expected=True, char_expected=20, char_shared=20),
    ),
    (
        "a refused conflict is wrong even if it names both",
        CONFLICT,
        answer("two or five, unclear", abstained=True),
        dict(correct=False, refused=True),
    ),
    (
        "retrieval hit is the share of evidence spans inside a chunk",
        BOTH,
        answer("two [1]", cite("a.txt", 11, 21), retrieved=(chunk("a.txt", 0, 36),)),
        dict(
            correct=True,
            cited_any_expected=True,
            cited_all_expected=False,
            retrieval_hit=0.5,
            char_expected=20,
            char_shared=10,
        ),
    ),
]


@pytest.mark.parametrize(
    ("case", "ans", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_score_case(case: Case, ans: Answer, expected: dict[str, object]) -> None:
    result = asdict(score_case(case, ans, TEXTS))
    assert {k: result[k] for k in expected} == expected


def suite() -> list[CaseResult]:
    """Five results whose summary is worked out by hand in test_summarize."""
    rows = [
        (
            ANSWERABLE,
            answer("two", cite("a.txt", 11, 21), retrieved=(chunk("a.txt", 0, 21),), latency=1.0),
        ),
        (ANSWERABLE, answer("two", cite("a.txt", 5, 15), latency=2.0)),
        (
            ANSWERABLE,
            answer(REFUSAL, abstained=True, retrieved=(chunk("a.txt", 0, 36),), latency=3.0),
        ),
        (UNANSWERABLE, answer(REFUSAL, abstained=True, latency=4.0)),
        (UNANSWERABLE, answer("Paris", cite("a.txt", 0, 10, "Paris"), latency=5.0)),
    ]
    return [score_case(case, ans, TEXTS) for case, ans in rows]


def test_summarize() -> None:
    summary = summarize(suite())
    assert summary == pytest.approx(
        {
            "answer_accuracy": 2 / 3,
            "citation_recall": 2 / 3,
            "citation_recall_any": 2 / 3,
            "citation_precision": 1.0,  # 2 on target of 2 (the unanswerable case's is not counted)
            "char_precision": 14 / 20,
            "char_recall": 14 / 30,
            "char_iou": 14 / 36,
            "citation_validity": 2 / 3,  # over all cases: "Paris" is not a[0:10]
            "refusal_accuracy": 0.5,
            "false_refusal_rate": 1 / 3,
            "retrieval_recall_at_k": 2 / 3,
            "false_conflict_rate": 0.0,
            "conflict_detection": 0.0,
            "median_cited_chars": 10.0,
            "latency_p50": 3.0,
            "latency_p95": 4.8,
            "n_cases": 5.0,
            "n_answerable": 3.0,
            "n_conflict": 0.0,
            "n_unanswerable": 2.0,
        }
    )


def test_a_conflict_claimed_on_an_answerable_case_counts_as_false() -> None:
    flagged = replace(answer("two", cite("a.txt", 5, 15)), kind="conflict")
    results = [
        score_case(ANSWERABLE, flagged, TEXTS),
        score_case(ANSWERABLE, answer("two", cite("a.txt", 5, 15)), TEXTS),
    ]
    assert summarize(results)["false_conflict_rate"] == 0.5


def test_summarize_without_citations() -> None:
    summary = summarize([score_case(UNANSWERABLE, answer(REFUSAL, abstained=True), TEXTS)])
    assert summary["citation_validity"] == 1.0
    assert summary["citation_precision"] == 0.0
    assert summary["median_cited_chars"] == 0.0


def test_check_thresholds() -> None:
    summary = {"accuracy": 0.5, "latency": 2.0, "recall": 0.9}
    bars = {
        "accuracy": (">=", 0.6),
        "latency": ("<=", 3.0),
        "recall": ("<=", 0.5),
        "missing": (">=", 0.1),
        "odd": ("==", 1.0),
    }
    summary["odd"] = 1.0
    assert check_thresholds(summary, bars) == [
        "accuracy = 0.500, needs >= 0.600",
        "recall = 0.900, needs <= 0.500",
        "missing: missing from the summary",
        "odd: unknown comparison '=='; use '>=' or '<='",
    ]


def test_thresholds_name_real_metrics() -> None:
    assert set(THRESHOLDS) <= set(summarize(suite()))
    assert all(op in (">=", "<=") for op, _ in THRESHOLDS.values())


def test_render_table_puts_failures_first() -> None:
    lines = render_table(suite(), width=12).splitlines()
    assert lines[0].split() == ["status", "id", "kind", "answer", "cites"]
    statuses = [line.split()[0] for line in lines[1:]]
    # Row 1 passes; row 2 passes (its partial citation still overlaps); 3 and 5 fail.
    assert statuses == ["FAIL", "FAIL", "PASS", "PASS", "PASS"]
    assert "The documen…" in lines[1]
    assert lines[1].endswith("0")


def test_write_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = suite()
    folder = tmp_path / "reports" / "run"
    write_report(results, summarize(results), folder, extra={"model": "fake|1"})
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "| model | fake\\|1 |" in report
    assert "| answer_accuracy | 0.667 |" in report
    assert report.index("| FAIL |") < report.index("| PASS |")
    assert (folder / "metrics.png").read_bytes().startswith(b"\x89PNG")
