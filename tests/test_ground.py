"""rag.ground: what the model says versus what the code cites."""

import pytest

from rag.ground import ground, key_terms, supported
from rag.policy import DEFAULT, Policy
from rag.records import Grounded, Passage


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
    ("answer", "evidence", "question", "cited"),
    [
        # The model's own pick, kept.
        ("About 1,000", [1], "How many engineer troops were sent?", [1]),
        # A digit answer is proved by the number word in the passage ("nine").
        ("9", [2], "How many died?", [2]),
        # A wrong pick is replaced by the passage that really holds the content.
        ("Order of Freedom and Independence", [1], "What award?", [3]),
        # Invented numbers are dropped; the support is found among shown passages.
        ("nine personnel", [7, 42], "How many died?", [2]),
        # No pick at all: the support is still found.
        ("Kigye Airport", [], "Where was the ceremony?", [4]),
        # Content that no passage holds is not presented: refusal.
        ("Paris", [1], "What is the capital of France?", None),
        ("Kyrgyzstan", [4], "Where was the ceremony?", None),
        ("15,000 troops", [1], "How many troops?", None),
        # An answer that only restates the question proves nothing.
        ("The engineer troops", [1], "How many engineer troops?", None),
        # Grounding proves words, not that they answer: the type check is rag.decide's.
        ("nine personnel", [2], "What were the names of the engineers who died?", [2]),
    ],
)
def test_ground(answer: str, evidence: list[int], question: str, cited: list[int] | None) -> None:
    grounded = ground(answer, evidence, SHOWN, question, DEFAULT)
    if cited is None:
        assert grounded == []
    else:
        assert [p.number for g in grounded for p in g.passages] == cited


def test_the_month_is_not_proved_by_the_modal() -> None:
    """An answer "May" cited to "the mission may mark ..." would cite a modal verb as a
    date: the month is found where the passage names it, or nowhere."""
    modal = P(1, "For the soldiers, the mission may mark the beginning of a new chapter.")
    month = P(2, "The regiment was established in May.")
    question = "When will the regiment next be deployed?"
    assert ground("May", [1], [modal, month], question, DEFAULT) == [
        Grounded(text="May", passages=(month,))
    ]
    assert ground("May", [1], [modal], question, DEFAULT) == []


def test_citations_are_pruned_to_what_the_statement_needs() -> None:
    grounded = ground("About 1,000", [1, 2, 3], SHOWN, "How many troops?", DEFAULT)
    assert grounded == [Grounded(text="About 1,000", passages=(SHOWN[0],))]


def test_each_sentence_is_grounded_on_its_own() -> None:
    answer = "About 1,000 engineers went. Nine personnel died. Paris fell."
    grounded = ground(answer, [1, 2], SHOWN, "What happened?", DEFAULT)
    assert [(g.text, [p.number for p in g.passages]) for g in grounded] == [
        ("About 1,000 engineers went.", [1]),
        ("Nine personnel died.", [2]),
    ]


def test_support_share_comes_from_the_policy() -> None:
    """2 of the 3 terms of "Order of Freedom and Glory" are in passage 3: enough at the
    default share (ceil(3 * 0.5) = 2), not when the policy asks for all of them."""
    answer, question = "Order of Freedom and Glory", "What award?"
    assert ground(answer, [3], SHOWN, question, DEFAULT)
    assert ground(answer, [3], SHOWN, question, Policy(support_share=1.0)) == []


@pytest.mark.parametrize(
    ("needed", "share", "ok"),
    [
        # ceil(len * share) words must be present: 2 of 4 at 0.5, 3 of 4 at 0.75.
        (["alpha", "bravo", "xray", "yankee"], 0.5, True),
        (["alpha", "bravo", "xray", "yankee"], 0.75, False),
        # An odd count rounds up: 1 of 3 is not half.
        (["alpha", "xray", "yankee"], 0.5, False),
        (["alpha", "bravo", "xray"], 0.5, True),
        # 3 of 10 at 0.3, although 10 * 0.3 is 3.0000000000000004 in floating point.
        (["alpha", "bravo", "charlie", *[f"x{i}" for i in range(7)]], 0.3, True),
        # Every number must be present, whatever the share.
        (["1000", "alpha", "bravo"], 0.0, True),
        (["1001", "alpha", "bravo"], 0.0, False),
        ([], 0.5, True),
    ],
)
def test_supported(needed: list[str], share: float, ok: bool) -> None:
    passages = [P(1, "Alpha bravo charlie 1,000.")]
    assert supported(needed, passages, Policy(support_share=share)) is ok


@pytest.mark.parametrize(
    ("statement", "question", "expected"),
    [
        ("About 1,000 engineer troops", "How many engineer troops?", ["1000"]),
        ("Nine troops, nine deaths", "How many died?", ["9", "troop", "death"]),
        ("The engineer troops", "How many engineer troops?", []),
    ],
)
def test_key_terms_are_what_the_statement_adds(
    statement: str, question: str, expected: list[str]
) -> None:
    assert key_terms(statement, question) == expected


def test_a_statement_keeps_its_noun_phrase_whole_as_the_policy_says() -> None:
    film = [P(1, "The Squeeze is a 1987 American comedy film directed by Roger Young.")]
    question = "What is the genre of The Squeeze?"
    assert [g.text for g in ground("comedy", [1], film, question, DEFAULT)] == ["comedy film"]
    off = Policy(phrase_words=0)
    assert [g.text for g in ground("comedy", [1], film, question, off)] == ["comedy"]
