"""Citation parsing and grounding: what the model says versus what the code cites."""

import pytest

from rag.cite import answer_kind, ground, parse, terms
from rag.records import Passage


def P(n: int, text: str, doc: str = "a.txt", dense: float = 0.5) -> Passage:
    start = n * 100
    return Passage(number=n, doc=doc, start=start, end=start + len(text), text=text, dense=dense)


SHOWN = [
    P(1, "North Korea reportedly dispatched approximately 1,000 engineer troops.", dense=0.8),
    P(2, "Kim acknowledged the deaths of nine personnel during operations.", dense=0.6),
    P(3, "He awarded the Order of Freedom and Independence to the regiment.", dense=0.5),
    P(4, "The ceremony was held at Kigye Airport on December 12th.", dense=0.4),
]


@pytest.mark.parametrize(
    ("raw", "answer", "evidence"),
    [
        ('{"answer": "About 1,000", "evidence": [1]}', "About 1,000", [1]),
        ('{"answer": "nine", "evidence": [2, 2, 9]}', "nine", [2, 9]),
        ('{"answer": "x", "evidence": [true, "3", 3]}', "x", [3]),
        ('{"answer": "cut off", "evidence": [1, 2', "cut off", [1, 2]),
        ('{"answer": "never clos', "", []),
        ("not json at all", "", []),
        ('{"answer": 5, "evidence": []}', "", []),
        ('["a list"]', "", []),
        # A raw line break inside the string (a base model's habit) in a truncated reply.
        ('{"answer": "two\nlines", "evidence": [1', "two lines", [1]),
        ('{"answer": "bad \\u12 escape", "evidence": [1]', "", [1]),
    ],
)
def test_parse(raw: str, answer: str, evidence: list[int]) -> None:
    assert parse(raw) == (answer, evidence)


@pytest.mark.parametrize(
    ("answer", "evidence", "question", "cited"),
    [
        # The model's own pick, kept.
        ("About 1,000", [1], "How many engineer troops were sent?", [1]),
        # Number words and digits are the same term.
        ("9", [2], "How many died?", [2]),
        # A wrong pick is replaced by the passage that really holds the content.
        ("Order of Freedom and Independence", [1], "What award?", [3]),
        # Invented numbers are dropped; the support is found among shown passages.
        ("nine personnel", [7, 42], "How many died?", [2]),
        # Content that no passage holds is not presented: refusal.
        ("Paris", [1], "What is the capital of France?", None),
        ("Kyrgyzstan", [4], "Where was the ceremony?", None),
        ("15,000 troops", [1], "How many troops?", None),
        # An answer that only restates the question proves nothing.
        ("The engineer troops", [1], "How many engineer troops?", None),
    ],
)
def test_ground(answer: str, evidence: list[int], question: str, cited: list[int] | None) -> None:
    statements = ground(answer, evidence, SHOWN, question)
    if cited is None:
        assert statements == []
    else:
        assert [p.number for s in statements for p in s.passages] == cited


def test_citations_are_pruned_to_what_the_statement_needs() -> None:
    statements = ground("About 1,000", [1, 2, 3], SHOWN, "How many troops?")
    assert [p.number for p in statements[0].passages] == [1]


def test_terms_normalise_numbers_case_and_plurals() -> None:
    assert terms("The 1,000 Troops and nine deaths") == ["1000", "troop", "9", "death"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [("December 12th", "date"), ("on Friday", "date"), ("about 1,000", "number"),
     ("Kigye Airport", "other"), ("Pyongyang", "other")],
)
def test_answer_kind(text: str, kind: str) -> None:
    assert answer_kind(text) == kind


@pytest.mark.parametrize(
    ("question", "answer", "fits"),
    [
        ("What is the name of the farmer?", "one farmer", False),
        ("What were the names of the engineers who died?", "Nine personnel", False),
        ("What is the name of the official?", "Russian military historian", False),
        ("What is the name of the regiment's commander?", "Colonel Ri", True),
        ("How much did the mission cost?", "decades", False),
        ("How much did the mission cost?", "$3 million", True),
        ("How many engineer troops were sent?", "about 1,000", True),
        ("How many mines were cleared?", "a vast territory", False),
        ("When did the mission begin?", "early August", True),
        ("When was the ceremony held?", "Friday", True),
        ("When was the ceremony held?", "at the airport", False),
        ("In which month was the regiment established?", "May", True),
        ("Where was the ceremony held?", "Kigye Airport", True),
    ],
)
def test_answers_must_fit_the_question_type(question: str, answer: str, fits: bool) -> None:
    from rag.cite import fits_question

    assert fits_question(question, answer) is fits
