"""The golden regression cases are well-formed and honest: every quote is a real, unique
span of its document, and the mix of kinds covers what the suite is meant to test."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.cases import Case, load_cases

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "regression" / "cases.jsonl"
CORPUS = REPO / "seeds"

MUST_HAVE = {
    "How many engineer troops did North Korea send to Russia?": ["1,000"],
    "How many personnel died during the operations?": ["nine"],
    "What award was given to the regiment?": ["Order of Freedom and Independence"],
    "What is the capital of France?": [],
}


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases(CASES, CORPUS)


def test_every_line_is_a_case(cases: list[Case]) -> None:
    lines = [line for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(cases) == len(lines)
    assert [c.id for c in cases] == [json.loads(line)["id"] for line in lines]


def test_the_mix_of_kinds(cases: list[Case]) -> None:
    kinds = Counter(c.kind for c in cases)
    sources = Counter(c.source for c in cases if c.kind == "answerable")
    assert len(cases) >= 40
    assert kinds["unanswerable"] >= 10
    assert kinds["conflict"] >= 4
    assert sources["first"] >= 10 and sources["second"] >= 10 and sources["both"] >= 4
    assert sum("near-miss" in c.tags for c in cases if c.kind == "unanswerable") >= 6
    assert sum("paraphrase" in c.tags for c in cases) >= 6


def test_conflict_evidence_names_both_documents(cases: list[Case]) -> None:
    conflicts = [c for c in cases if c.kind == "conflict"]
    both = [c for c in conflicts if len({ev.doc for ev in c.evidence}) == 2]
    assert len(both) >= 3
    assert both == conflicts


def test_must_have_questions_are_present(cases: list[Case]) -> None:
    by_question = {c.question: c for c in cases}
    for question, answers in MUST_HAVE.items():
        case = by_question[question]
        assert set(answers) <= set(case.answers)
        assert (case.kind == "unanswerable") == (not answers)


def test_accepted_answers_are_grounded_in_the_evidence(cases: list[Case]) -> None:
    """At least one accepted string appears in the quotes, per document for conflicts."""
    for case in cases:
        if case.kind == "answerable":
            quotes = " ".join(ev.quote for ev in case.evidence).casefold()
            assert any(a.casefold() in quotes for a in case.answers), case.id
        for doc, group in case.answers_by_doc:
            quotes = " ".join(ev.quote for ev in case.evidence if ev.doc == doc).casefold()
            assert any(a.casefold() in quotes for a in group), (case.id, doc)
