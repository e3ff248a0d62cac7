"""The decision's signals on hand-made passages and completions: each number means what
its name says, and the answer's log-probabilities are read from the answer's tokens only."""

from __future__ import annotations

import pytest

from rag.records import Completion, Grounded, Passage
from rag.signals import LACKS, NAMES, compute, lacks

P1 = Passage(1, "a.txt", 0, 40, "The bridge opened in March after four years.", 0.8)
P2 = Passage(2, "a.txt", 41, 80, "Traffic doubled since the opening.", 0.5)
P3 = Passage(3, "b.txt", 0, 30, "The mayor praised the bridge.", 0.45)
DOCUMENTS = {"a.txt": f"{P1.text} {P2.text}", "b.txt": P3.text}


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
        DOCUMENTS.__getitem__,
    )
    assert list(row) == [*NAMES, *LACKS]


def test_retrieval_signals() -> None:
    row = compute(
        "When did the bridge open?",
        [P1, P2, P3],
        "March",
        [Grounded("March", (P2,))],
        completion("March"),
        DOCUMENTS.__getitem__,
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
    row = compute(
        question,
        [P1],
        "March",
        [Grounded("March", (P1,))],
        completion("March"),
        DOCUMENTS.__getitem__,
    )
    assert row["question_coverage"] == pytest.approx(coverage)


def test_answer_logprobs_ignore_the_json_scaffold() -> None:
    row = compute(
        "When?",
        [P1],
        "in March",
        [Grounded("in March", (P1,))],
        completion("in March", logprob=-0.2, scaffold=-5.0),
        DOCUMENTS.__getitem__,
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
        DOCUMENTS.__getitem__,
    )
    assert good["fits_type"] == 1.0 and good["verbatim"] == 1.0
    bad = compute(
        "How many years did it take?",
        [P1],
        "a long time",
        [Grounded("a long time", (P1,))],
        completion("a long time"),
        DOCUMENTS.__getitem__,
    )
    assert bad["fits_type"] == 0.0 and bad["verbatim"] == 0.0


def test_nothing_grounded_still_gives_a_full_row() -> None:
    row = compute("Who?", [P1], "Paris", [], completion("Paris"), DOCUMENTS.__getitem__)
    assert row["cited_passages"] == 0.0 and row["cited_similarity"] == 0.0
    assert set(row) == {*NAMES, *LACKS}


DOC = (
    "AppleTalk was developed in 1985 by Apple Inc. for Macintosh computers. "
    "The 528th Regiment returned to Pyongyang from the Russian front."
)


@pytest.mark.parametrize(
    ("question", "unseen"),
    [
        ("Who developed AppleTalk in 1985?", 0),
        # SQuAD 2.0's adversarial edit: the number swapped, the sentence still answers.
        ("Who developed AppleTalk in 1995?", 1),
        ("For which computers did Microsoft develop AppleTalk in 1995?", 2),
        # A word is matched on its first five letters, a numeral with its suffix whole.
        ("When did the 528th Regiment leave Russia?", 0),
        ("When did the 529th Regiment leave Russia?", 1),
        # The question's first word is not taken for a name.
        ("Macintosh computers ran what?", 0),
        ("What did apple develop?", 0),  # lower case is no name
    ],
)
def test_names_unseen_counts_the_question_names_no_cited_document_holds(
    question: str, unseen: int
) -> None:
    assert lacks(question, [DOC], [DOC])["names_unseen"] == unseen


@pytest.mark.parametrize(
    ("question", "unseen"),
    [
        ("Who developed AppleTalk in 1985?", 0),
        ("For which computers did Microsoft develop AppleTalk in 1995?", 1),  # not the name
        ("When did the 529th Regiment leave in 1985?", 1),
        ("How many computers ran AppleTalk?", 0),
    ],
)
def test_numbers_unseen_counts_only_the_numbers(question: str, unseen: int) -> None:
    assert lacks(question, [DOC], [DOC])["numbers_unseen"] == unseen


def test_names_are_looked_for_in_the_whole_cited_documents_not_the_sentences() -> None:
    sentence = "It was developed in 1985."
    assert lacks("Who developed AppleTalk in 1985?", [sentence], [DOC])["names_unseen"] == 0
    nothing_cited = lacks("Who developed AppleTalk in 1995?", [], [])
    assert nothing_cited["names_unseen"] == nothing_cited["numbers_unseen"] == 0


@pytest.mark.parametrize(
    ("question", "sentence", "unmatched"),
    [
        ("Who did not develop AppleTalk?", "Apple developed AppleTalk.", 1),
        ("Who didn't develop AppleTalk?", "Apple developed AppleTalk.", 1),
        ("What was never developed?", "Apple developed AppleTalk.", 1),
        ("Who did not develop AppleTalk?", "Xerox did not develop AppleTalk.", 0),
        ("Who did not develop AppleTalk?", "Xerox never had a part in it.", 0),
        ("Who developed AppleTalk?", "Apple developed AppleTalk.", 0),
        ("Who developed AppleTalk?", "Xerox did not develop it.", 0),
    ],
)
def test_negation_unmatched_is_a_negated_question_with_no_negated_cited_sentence(
    question: str, sentence: str, unmatched: int
) -> None:
    assert lacks(question, [sentence], [sentence])["negation_unmatched"] == unmatched


@pytest.mark.parametrize(
    ("question", "sentence", "swapped"),
    [
        # Another name stands where the question's stood, beside the same word.
        ("What did Toyota rebrand its Forte as?", "Mitsubishi rebranded its Forte as D-50.", 1),
        ("Who can the American Commission act against?", "The European Commission can act.", 1),
        ("What did the Canadian Union form?", "They formed the European Union in 1993.", 1),
        # The question's names are all there, or the sentence refers back with a pronoun.
        ("What did Mitsubishi rebrand its Forte as?", "Mitsubishi rebranded its Forte.", 0),
        ("When was Cove Fort built?", "It was built in 1743 by Ira Hinckley.", 0),
        # The same name written another way: accents, a hyphen, a possessive.
        ("When did Tugh Temur die?", "After the death of Tugh Temür in 1332.", 0),
        ("When did Kim Jong Un speak?", "Kim Jong-un spoke at the airport.", 0),
        ("What is Jon Hill's profession?", "Jon Hill is an American chef.", 0),
        # The name written out in more words is not another name.
        ("When was Senator Bloomer born?", "Robert Asa Bloomer was born in 1921.", 0),
        # Punctuation between breaks "beside": a list is not a swap.
        (
            "When was the Swedish Evangelical Church built?",
            "Used by Swedish, Norwegian and German.",
            0,
        ),
    ],
)
def test_name_swapped_is_another_name_beside_the_question_name_s_neighbour(
    question: str, sentence: str, swapped: int
) -> None:
    assert lacks(question, [sentence], [sentence])["name_swapped"] == swapped
