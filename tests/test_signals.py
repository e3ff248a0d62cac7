"""The decision's signals on hand-made passages and completions: each number means what
its name says, and the answer's log-probabilities are read from the answer's tokens only."""

from __future__ import annotations

import pytest

from rag.records import Completion, Grounded, Passage
from rag.signals import NAMES, compute

P1 = Passage(1, "a.txt", 0, 40, "The bridge opened in March after four years.", 0.8)
P2 = Passage(2, "a.txt", 41, 80, "Traffic doubled since the opening.", 0.5)
P3 = Passage(3, "b.txt", 0, 30, "The mayor praised the bridge.", 0.45)


def completion(answer: str, logprob: float = -0.1, scaffold: float = -3.0) -> Completion:
    """A reply whose scaffold tokens carry `scaffold` and whose answer tokens `logprob`."""
    pieces = ['{"evidence": [1], "answer": "', *answer.split(" "), '"']
    pieces = [p if i in (0, len(pieces) - 1) or i == 1 else " " + p for i, p in enumerate(pieces)]
    logprobs = [scaffold] + [logprob] * (len(pieces) - 2) + [scaffold]
    return Completion(text="".join(pieces), tokens=tuple(pieces), logprobs=tuple(logprobs))


def test_every_named_signal_is_computed() -> None:
    row = compute(
        "When did the bridge open?",
        [P1, P2],
        "March",
        [Grounded("March", (P1,))],
        completion("March"),
    )
    assert list(row) == list(NAMES)


def test_retrieval_signals() -> None:
    row = compute(
        "When did the bridge open?",
        [P1, P2, P3],
        "March",
        [Grounded("March", (P2,))],
        completion("March"),
    )
    assert row["top_similarity"] == pytest.approx(0.8)
    assert row["similarity_margin"] == pytest.approx(0.3)
    assert row["cited_similarity"] == pytest.approx(0.5)
    assert row["cited_rank"] == pytest.approx(1 / 2)  # the second shown passage is cited
    assert row["cited_passages"] == 1.0


@pytest.mark.parametrize(
    ("question", "coverage"),
    [("When did the bridge open?", 1.0), ("When did the tunnel open?", 0.5), ("Who?", 0.0)],
)
def test_question_coverage_is_the_share_of_question_terms_in_the_cited_text(
    question: str, coverage: float
) -> None:
    row = compute(question, [P1], "March", [Grounded("March", (P1,))], completion("March"))
    assert row["question_coverage"] == pytest.approx(coverage)


def test_answer_logprobs_ignore_the_json_scaffold() -> None:
    row = compute(
        "When?",
        [P1],
        "in March",
        [Grounded("in March", (P1,))],
        completion("in March", logprob=-0.2, scaffold=-5.0),
    )
    assert row["answer_logprob_mean"] == pytest.approx(-0.2)
    assert row["answer_logprob_min"] == pytest.approx(-0.2)


def test_type_fit_and_verbatim() -> None:
    good = compute(
        "How many years did it take?",
        [P1],
        "four years",
        [Grounded("four years", (P1,))],
        completion("four years"),
    )
    assert good["fits_type"] == 1.0 and good["verbatim"] == 1.0
    bad = compute(
        "How many years did it take?",
        [P1],
        "a long time",
        [Grounded("a long time", (P1,))],
        completion("a long time"),
    )
    assert bad["fits_type"] == 0.0 and bad["verbatim"] == 0.0


def test_nothing_grounded_still_gives_a_full_row() -> None:
    row = compute("Who?", [P1], "Paris", [], completion("Paris"))
    assert row["cited_passages"] == 0.0 and row["cited_similarity"] == 0.0
    assert set(row) == set(NAMES)
