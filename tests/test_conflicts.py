"""Every side, cited: which documents are asked, how their answers are normalised and
merged into sides, and how the kind of disagreement is read from the documents; on small
hand-made passages, then end to end through OpenIndex with a scripted fake model."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag import conflicts, render
from rag.conflicts import Candidate, Side
from rag.index import OpenIndex
from rag.policy import RULES
from rag.records import AMBIGUOUS, ANSWER, CONFLICT, Answer, Citation, Grounded, Passage
from rag.settings import Settings, load_settings
from tests.fakes import HashEmbedder, Script, ScriptedGenerator

# --- hand-made documents -------------------------------------------------------------------

ORIGINAL = (
    "Talk Show is the first and only album by the R&B singer Shae Jones, released on "
    "January 26, 1999 through Uptown Records. The album peaked at number 42 on the chart."
)
# A planted copy: the original with the answer changed.
PLANTED = ORIGINAL.replace("Shae Jones", "Beyoncé")
# The original's answer again, in other words: it corroborates, it is no copy.
CORROBORATING = "Uptown Records put out Shae Jones and her single record Talk Show in 1999."
TITLED_1940 = (
    "Kevin Lewis (footballer, born 1940) Kevin Lewis (born 19 September 1940 in Ellesmere "
    "Port) is an English former professional footballer who played as a winger."
)
TITLED_1952 = (
    "Kevin Lewis (footballer, born 1952) Kevin William Lewis (born 25 September 1952) was "
    "an English footballer who played for Crewe Alexandra and Stoke City."
)
UNTITLED_1970 = "Lewis made his debut as a substitute at Millwall, aged 17; he was born in 1970."
# The same subject, by its title, in other words: a different claim, not a copy.
TITLED_1941 = (
    "Kevin Lewis (footballer, born 1940) Kevin Lewis, a winger from Ellesmere Port, first "
    "signed for Sheffield United; one club register gives 1941 as his year of birth."
)
TEXTS = {
    "original.txt": ORIGINAL,
    "planted.txt": PLANTED,
    "corroborating.txt": CORROBORATING,
    "lewis1940.txt": TITLED_1940,
    "lewis1952.txt": TITLED_1952,
    "lewis1970.txt": UNTITLED_1970,
    "lewis1941.txt": TITLED_1941,
}


def passage(doc: str, text: str, dense: float = 0.9, number: int = 1) -> Passage:
    return Passage(number, doc, 0, len(text), text, dense)


def candidate(value: str, *passages: Passage, accepted: bool = True) -> Candidate:
    return Candidate((Grounded(value, passages),), accepted)


def side(value: str, *docs: str, accepted: bool = True, confidence: float | None = None) -> Side:
    """A side stating `value`, cited to one passage of each of `docs`."""
    cited = tuple(passage(d, _text(d), number=n + 1) for n, d in enumerate(docs))
    return Side((Grounded(value, cited),), docs, accepted, confidence=confidence)


def _text(doc: str) -> str:
    """The hand-made document, or, for a name not among them, a text no other shares."""
    return TEXTS.get(doc, f"Nothing here but {doc} and its own words.")


# --- normalising values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "a", "b"),
    [
        ("Who made it?", "The Beatles", "Beatles"),
        ("Who made it?", "the Go-Go's", "The Go Go"),
        ("How many died?", "nine", "9"),
        ("How many were sent?", "1,000 troops", "1000 troops."),
        # The question's own words are not part of the value.
        ("When was Kevin Lewis born?", "Kevin Lewis was born in 1940", "1940"),
    ],
)
def test_equal_values_normalise_alike(question: str, a: str, b: str) -> None:
    assert conflicts.value_terms(question, a) == conflicts.value_terms(question, b)


@pytest.mark.parametrize(
    ("question", "a", "b"),
    [
        ("When was it founded?", "1989", "1981"),
        ("Who made it?", "North Korea", "South Korea"),
    ],
)
def test_different_values_stay_apart(question: str, a: str, b: str) -> None:
    assert conflicts.value_terms(question, a) != conflicts.value_terms(question, b)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("16 July 1989", "date"),
        ("1920", "date"),
        ("1884", "date"),
        ("the 1980s", "date"),
        ("1800s", "date"),
        ("2010s", "date"),
        ("1,294", "number"),
        ("80 persons", "number"),
        ("Kenny Loggins", "other"),
    ],
)
def test_value_kind(value: str, kind: str) -> None:
    """Only values of one kind are sides of one question; a decade is a date."""
    assert conflicts.value_kind(value) == kind


@pytest.mark.parametrize(
    ("value", "texts", "could"),
    [
        ("7 July 1965", ["Tomorrow's World was a long-running BBC series."], False),
        ("7 July 1965", ["A pilot ran on the BBC.", "It was first shown in 1959."], True),
        ("1884", ["The party was founded in the 1880s by farmers."], True),
        ("4,812", ["The town lies on the river.", "It has a market."], False),
        ("4,812", ["About nine hundred people live there."], True),  # "nine" is a number
        ("4,812", ["It had 3,900 residents in 2010."], True),
        ("film noir", ["Nothing about the film's genre here."], True),  # any text may
        ("7 July 1965", [], False),
    ],
)
def test_could_give_needs_a_value_of_the_answers_kind(
    value: str, texts: list[str], could: bool
) -> None:
    """A source with no value of the answer's kind cannot give a side: it is not asked."""
    assert conflicts.could_give(value, texts) is could


@pytest.mark.parametrize(
    ("question", "value", "text", "answers"),
    [
        # A number beside a term the question asks about beyond its names.
        ("What is the population of Hughesville?", "5,000", "The population was 2,197.", True),
        # Numbers, but nothing the question asks about: coordinates are no population.
        ("What is the population of Hughesville?", "5,000", "It is at (38.53, -76.78).", False),
        ("How many people live in Hughesville?", "5,000", "It had 2,197 people.", True),
        # No value of the kind at all.
        ("What is the population of Hughesville?", "5,000", "The population grew.", False),
        # A question asking about nothing but names: any sentence of the kind.
        ("What is Hughesville's?", "5,000", "It is at (38.53, -76.78).", True),
        # A date need not stand beside its verb: "(28 March 1613 – 1641)" answers "born".
        (
            "When was Borjigit born?",
            "1613",
            "Borjigit (28 March 1613 – 1641) was an empress.",
            True,
        ),
        ("When was Cove Fort built?", "1867", "Cove Fort was built of stone.", False),
        # Other kinds: any sentence could give one.
        ("Who built Cove Fort?", "Ira Hinckley", "It is made of stone.", True),
    ],
)
def test_answers_kind_needs_a_term_asked_about(
    question: str, value: str, text: str, answers: bool
) -> None:
    assert conflicts.answers_kind(question, value, text) is answers


# --- merging candidates into sides -----------------------------------------------------------

A = passage("a.txt", "The party was founded on August 10 in Pristina.", 0.9)
A_FULL = passage("a.txt", "The party was founded on August 10, 1966, in Pristina.", 0.9)
B_FULL = passage("b.txt", "It was founded on August 10, 1966, by students.", 0.85)
B_SHORT = passage("b.txt", "Students founded it on August 10.", 0.85)
C_1981 = passage("c.txt", "The other party of that name was founded in 1981.", 0.88)
D_1975 = passage("d.txt", "A chess club called the same was founded in 1975.", 0.8)
FAR = passage("e.txt", "A party of that name was founded in 1990 somewhere.", 0.5)
PLACE = passage("f.txt", "The party was founded in Pristina.", 0.9)
KURSK = passage("g.txt", "The regiment was deployed to Kursk in early August.", 0.9)
MAY = passage("h.txt", "The regiment was established in May.", 0.9)

MERGES = [
    (
        "a shortened form agrees and the side keeps the full value",
        "When was the party founded?",
        [candidate("August 10", A), candidate("August 10, 1966", B_FULL)],
        [("August 10, 1966", ("a.txt", "b.txt"), {A, B_FULL})],
    ),
    (
        "the full form first, then the shortened one: still the full value",
        "When was the party founded?",
        [candidate("August 10, 1966", A_FULL), candidate("August 10", B_SHORT)],
        [("August 10, 1966", ("a.txt", "b.txt"), {A_FULL, B_SHORT})],
    ),
    (
        "a three-way split, the first answer's side first",
        "When was the party founded?",
        [candidate("1966", A_FULL), candidate("1981", C_1981), candidate("1975", D_1975)],
        [
            ("1966", ("a.txt",), {A_FULL}),
            ("1981", ("c.txt",), {C_1981}),
            ("1975", ("d.txt",), {D_1975}),
        ],
    ),
    (
        "three sources, two agreeing: two sides, the agreeing documents grouped",
        "When was the party founded?",
        [candidate("1981", C_1981), candidate("1966", A_FULL), candidate("the year 1981", D_1975)],
        [("the year 1981", ("c.txt", "d.txt"), {C_1981, D_1975}), ("1966", ("a.txt",), {A_FULL})],
    ),
    (
        "a different kind of value (a place against a date) is left out",
        "When was the party founded?",
        [candidate("August 10, 1966", A_FULL), candidate("Pristina", PLACE)],
        [("August 10, 1966", ("a.txt",), {A_FULL})],
    ),
    (
        "evidence far less relevant than the first's is left out",
        "When was the party founded?",
        [candidate("1966", A_FULL), candidate("1990", FAR)],
        [("1966", ("a.txt",), {A_FULL})],
    ),
    (
        "a neighbouring topic (deployed, not established) is left out",
        "When was the regiment established in Kursk?",
        [candidate("May", MAY), candidate("early August", KURSK)],
        [("May", ("h.txt",), {MAY})],
    ),
    (
        "an answer that does not fit the question is left out",
        "How many troops were sent?",
        [candidate("1,000", passage("a.txt", "1,000 troops were sent.")), candidate("many", A)],
        [("1,000", ("a.txt",), None)],
    ),
    (
        "a year before 1900 is a date like any other",
        "When was the church founded?",
        [
            candidate("1884", passage("a.txt", "The church was founded in 1884.")),
            candidate("1920", passage("b.txt", "The church was founded in 1920.")),
        ],
        [("1884", ("a.txt",), None), ("1920", ("b.txt",), None)],
    ),
    (
        "an ungrounded candidate says nothing",
        "When was the party founded?",
        [candidate("1966", A_FULL), Candidate((), True)],
        [("1966", ("a.txt",), {A_FULL})],
    ),
]


@pytest.mark.parametrize(
    ("question", "candidates", "expected"), [m[1:] for m in MERGES], ids=[m[0] for m in MERGES]
)
def test_merge(
    question: str,
    candidates: list[Candidate],
    expected: list[tuple[str, tuple[str, ...], set[Passage] | None]],
) -> None:
    sides = conflicts.merge(question, candidates, RULES)
    assert [(s.value, s.docs) for s in sides] == [(v, d) for v, d, _ in expected]
    for s, (_, _, cited) in zip(sides, expected, strict=True):
        if cited is not None:
            assert {p for g in s.grounded for p in g.passages} == cited


@pytest.mark.parametrize(("coverage", "sides"), [(1.0, 1), (0.5, 2), (0.0, 2)])
def test_how_much_of_the_question_the_evidence_must_share(coverage: float, sides: int) -> None:
    """Sources about two people word a question differently: one cites "Ryan ... born",
    the other "Jimmy Ryan"; `conflict_coverage` says how alike that must be."""
    born = passage("a.txt", "Ryan was born in 1975 in Dublin.")
    named = passage("b.txt", "Jimmy Ryan, the trumpeter, dates from 1911.")
    merged = conflicts.merge(
        "When was Jimmy Ryan born?",
        [candidate("1975", born), candidate("1911", named)],
        replace(RULES, conflict_coverage=coverage),
    )
    assert len(merged) == sides


@pytest.mark.parametrize(("relevance", "same"), [(None, False), (0.3, False), (0.8, True)])
def test_a_source_asked_by_kind_is_as_relevant_as_its_best_sentence(
    relevance: float | None, same: bool
) -> None:
    """Its date stands in a sentence unlike the question (cosine 0.2); the source's
    relevance is that of its sentence most like the question, when one is given."""
    first = candidate("1857", passage("a.txt", "The rock fort was built in 1857.", dense=0.7))
    dated = passage("b.txt", "It was founded in 1867 by Ira Hinckley.", dense=0.2)
    other = replace(candidate("1867", dated), relevance=relevance)
    assert conflicts.same_question("When was Cove Fort built?", first, other, RULES) is same


@pytest.mark.parametrize(("share", "same"), [(0.8, False), (0.7, True), (0.5, True)])
def test_side_relevance_is_a_share_of_the_first_answers_sentence(share: float, same: bool) -> None:
    """The other source's best sentence scores 0.53 against the first's 0.7 (0.76 of it):
    a side at a share of 0.7, not at 0.8."""
    first = candidate("1857", passage("a.txt", "The rock fort was built in 1857.", dense=0.7))
    other = candidate("1867", passage("b.txt", "The fort was built in 1867.", dense=0.53))
    policy = replace(RULES, side_relevance=share)
    assert conflicts.same_question("When was Cove Fort built?", first, other, policy) is same


STRIKES = "When did the series of strikes happen?"
STRIKES_FIRST = candidate("1973", passage("a.txt", "A series of strikes in 1973 closed the pits."))


@pytest.mark.parametrize(
    ("sentence", "needs", "sides"),
    [
        # Names nothing the question does and opens on a subject of its own.
        ("ARPANET and SITA HLN became operational in 1969.", True, 1),
        ("ARPANET and SITA HLN became operational in 1969.", False, 2),
        # Refers back to its document's subject.
        ("It was founded in 1969 by the union.", True, 2),
        ("Their last walkout came in 1969.", True, 2),
        # Holds a term of the question.
        ("The dockers' strikes began in 1969.", True, 2),
    ],
)
def test_a_side_must_name_the_question_or_refer_back(
    sentence: str, needs: bool, sides: int
) -> None:
    """Evidence with no term of the question says nothing against the first answer's part
    of it, so `same_part` passes it; `side_needs_terms` asks for a term or a pronoun."""
    other = candidate("1969", passage("b.txt", sentence))
    merged = conflicts.merge(
        STRIKES, [STRIKES_FIRST, other], replace(RULES, side_needs_terms=needs)
    )
    assert len(merged) == sides


def test_a_side_is_named_by_any_source_that_gives_it() -> None:
    """One source cites a fragment, another the sentence that names what is asked: the
    value stands, with both."""
    fragment = candidate(
        "1969", passage("b.txt", "ARPANET and SITA HLN became operational in 1969.")
    )
    named = candidate("1969", passage("c.txt", "The strikes of 1969 followed.", dense=0.5))
    merged = conflicts.merge(STRIKES, [STRIKES_FIRST, fragment, named], RULES)
    assert [(s.value, s.docs) for s in merged] == [
        ("1973", ("a.txt",)),
        ("1969", ("b.txt", "c.txt")),
    ]


def test_a_date_read_by_code_answers_the_part_asked() -> None:
    """The first answer's sentence names the church; the other source's says only that it
    was built then. A model's evidence that shares no part would be another question's;
    a date code read next to "built" answers this one."""
    question = "When was the Swedish Lutheran Church built?"
    first = candidate("1874", passage("a.txt", "The Swedish Lutheran Church dates from 1874."))
    text = "It was built in 1872 by settlers."
    read = conflicts.dated_side(question, "b.txt", text, 0.8, 4)
    assert read is not None
    model = candidate("1872", passage("b.txt", text))
    assert not conflicts.same_question(question, first, model, RULES)
    assert conflicts.same_question(question, first, read, RULES)


def test_a_rejected_candidate_makes_no_side_shown_but_still_merges() -> None:
    sides = conflicts.merge(
        "When was the party founded?",
        [candidate("1966", A_FULL), candidate("1981", C_1981, accepted=False)],
        RULES,
    )
    assert [(s.value, s.accepted) for s in sides] == [("1966", True), ("1981", False)]
    shown, kind = conflicts.judge(sides, _text, RULES)
    assert [s.value for s in shown] == ["1966"] and kind == ANSWER


# --- the documents: near-copies and titles ---------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        (ORIGINAL, ORIGINAL, 1.0, 1.0),
        (ORIGINAL, PLANTED, 0.6, 0.9),
        # A slice of a document is still a copy of it.
        (ORIGINAL, ORIGINAL[:80], 1.0, 1.0),
        (ORIGINAL, CORROBORATING, 0.0, 0.0),
        (TITLED_1940, TITLED_1952, 0.0, 0.2),
        ("", ORIGINAL, 0.0, 0.0),
    ],
)
def test_overlap_of_shingles(a: str, b: str, low: float, high: float) -> None:
    assert low <= conflicts.overlap(a, b, RULES.shingle_words) <= high


def test_near_copies_are_found_among_other_documents() -> None:
    found = conflicts.near_copies(["original.txt"], list(TEXTS), _text, RULES)
    assert found == ["planted.txt"]


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (TITLED_1940, "Kevin Lewis (footballer, born 1940)"),
        ("Pittsville, Maryland Pittsville is a town in Wicomico County.", "Pittsville, Maryland"),
        (
            "Supreme Electoral Tribunal (Honduras) The Supreme Electoral Tribunal is ...",
            "Supreme Electoral Tribunal (Honduras)",
        ),
        ("# Talk Show (album)\n\nTalk Show is the first album.", "Talk Show (album)"),
        ("George Short House The George Short House is a historic house.", "George Short House"),
        # Running text, not a title.
        (ORIGINAL, ""),
        ("The ceremony was held at Kigye Airport on December 12th.", ""),
        ("Ognissanti, Florence The chiesa di San Salvatore di Ognissanti is a church.", ""),
        ("or older. The average household size was 2.42.", ""),
    ],
)
def test_subject_is_the_title_a_document_opens_with(text: str, title: str) -> None:
    assert conflicts.subject(text) == title


JUDGED = [
    (
        "a planted copy against its original alone: both disputed, both shown",
        [side("Shae Jones", "original.txt"), side("Beyoncé", "planted.txt")],
        [("Shae Jones", True), ("Beyoncé", True)],
        CONFLICT,
    ),
    (
        "an original with independent support is not disputed; its copy is",
        [side("Shae Jones", "original.txt", "corroborating.txt"), side("Beyoncé", "planted.txt")],
        [("Shae Jones", False), ("Beyoncé", True)],
        CONFLICT,
    ),
    (
        "a planted value that passed alone is shown only beside the original's",
        [side("Beyoncé", "planted.txt"), side("Shae Jones", "original.txt", accepted=False)],
        [("Beyoncé", True), ("Shae Jones", True)],
        CONFLICT,
    ),
    (
        "a corroborated original that passed alone stands alone",
        [
            side("Shae Jones", "original.txt", "corroborating.txt"),
            side("Beyoncé", "planted.txt", accepted=False),
        ],
        [("Shae Jones", False)],
        ANSWER,
    ),
    (
        "titled documents about different subjects: subjects that share a name",
        [side("19 September 1940", "lewis1940.txt"), side("25 September 1952", "lewis1952.txt")],
        [("19 September 1940", False), ("25 September 1952", False)],
        AMBIGUOUS,
    ),
    (
        "a side without a title cannot be told apart by its document: the sources differ",
        [
            side("19 September 1940", "lewis1940.txt"),
            side("25 September 1952", "lewis1952.txt"),
            side("1970", "lewis1970.txt"),
        ],
        [("19 September 1940", False), ("25 September 1952", False), ("1970", False)],
        CONFLICT,
    ),
    (
        "one title on both sides: the same subject, different claims",
        [side("19 September 1940", "lewis1940.txt"), side("1941", "lewis1941.txt")],
        [("19 September 1940", False), ("1941", False)],
        CONFLICT,
    ),
]


@pytest.mark.parametrize(
    ("sides", "expected", "kind"), [j[1:] for j in JUDGED], ids=[j[0] for j in JUDGED]
)
def test_judge(sides: list[Side], expected: list[tuple[str, bool]], kind: str) -> None:
    shown, got = conflicts.judge(sides, _text, RULES)
    assert [(s.value, s.disputed) for s in shown] == expected
    assert got == kind


# (case, sides, side_confidence, values shown)
CONFIDENT = [
    (
        "no threshold: every accepted side",
        [side("1940", "lewis1940.txt", confidence=0.1), side("1952", "k.txt", confidence=0.1)],
        0.0,
        ["1940", "1952"],
    ),
    (
        "a second side below the threshold is left out",
        [side("1940", "lewis1940.txt", confidence=0.9), side("1952", "k.txt", confidence=0.2)],
        0.3,
        ["1940"],
    ),
    (
        "the first answer passed its own decision: the side threshold is not its",
        [side("1940", "lewis1940.txt", confidence=0.1), side("1952", "k.txt", confidence=0.5)],
        0.3,
        ["1940", "1952"],
    ),
    (
        "a three-way split keeps each side that reaches it",
        [
            side("1940", "lewis1940.txt", confidence=0.8),
            side("1952", "lewis1952.txt", confidence=0.3),
            side("1970", "lewis1970.txt", confidence=0.29),
        ],
        0.3,
        ["1940", "1952"],
    ),
    (
        "a side with no score (the hand-set rules) is not filtered",
        [side("1940", "lewis1940.txt"), side("1952", "k.txt")],
        0.3,
        ["1940", "1952"],
    ),
    (
        "a low-scored original is still shown beside the planted copy it disputes",
        [
            side("Beyoncé", "planted.txt", confidence=0.9),
            side("Shae Jones", "original.txt", confidence=0.05),
        ],
        0.3,
        ["Beyoncé", "Shae Jones"],
    ),
    (
        "a low-scored copy that contradicts a corroborated first side is shown beside it",
        [
            side("Beyoncé", "planted.txt", "corroborating.txt", confidence=0.9),
            side("Shae Jones", "original.txt", confidence=0.05),
        ],
        0.3,
        ["Beyoncé", "Shae Jones"],
    ),
    (
        "... but not when it did not pass the decision",
        [
            side("Beyoncé", "planted.txt", "corroborating.txt", confidence=0.9),
            side("Shae Jones", "original.txt", accepted=False, confidence=0.05),
        ],
        0.3,
        ["Beyoncé"],
    ),
]


@pytest.mark.parametrize(
    ("sides", "threshold", "values"), [c[1:] for c in CONFIDENT], ids=[c[0] for c in CONFIDENT]
)
def test_sides_beyond_the_first_need_side_confidence(
    sides: list[Side], threshold: float, values: list[str]
) -> None:
    shown, _ = conflicts.judge(sides, _text, replace(RULES, side_confidence=threshold))
    assert [s.value for s in shown] == values


def test_a_disputed_value_is_never_shown_alone() -> None:
    """Whatever passed the decision, a disputed side is shown beside another side."""
    for planted_ok in (True, False):
        for original_ok in (True, False):
            sides = [
                side("Beyoncé", "planted.txt", accepted=planted_ok),
                side("Shae Jones", "original.txt", accepted=original_ok),
            ]
            shown, kind = conflicts.judge(sides, _text, RULES)
            if any(s.disputed for s in shown):
                assert len(shown) >= 2 and kind == CONFLICT


def test_subjects_label_the_sides_of_an_ambiguous_answer() -> None:
    sides = [side("19 September 1940", "lewis1940.txt"), side("25 September 1952", "lewis1952.txt")]
    shown, _ = conflicts.judge(sides, _text, RULES)
    assert [s.subject for s in shown] == [
        "Kevin Lewis (footballer, born 1940)",
        "Kevin Lewis (footballer, born 1952)",
    ]


# --- which documents are asked ---------------------------------------------------------------


def shown_passages(*docs_and_scores: tuple[str, float]) -> list[Passage]:
    return [passage(d, f"text {n}", s, n + 1) for n, (d, s) in enumerate(docs_and_scores)]


@pytest.mark.parametrize(
    ("side_depth", "floor", "cited", "expected"),
    [
        (0, 0.5, {"a"}, ["b", "c"]),  # "d" is not among the top 3 passages
        (0, 0.5, {"a", "b"}, ["c"]),
        # Deeper retrieval adds documents below the shown passages, best first, when
        # nearly as relevant as the best chunk: "f" (0.5 < 0.8 * 0.95) is not.
        (3, 0.5, {"a"}, ["b", "c", "e"]),
        (4, 0.5, {"a"}, ["b", "c", "e"]),
        (2, 0.5, {"a"}, ["b", "c"]),  # "e" is the third deepest chunk
        # Below the floor a chunk is no source, however close to the best it scores.
        (3, 0.85, {"a"}, ["b", "c"]),
    ],
)
def test_other_documents(
    side_depth: int, floor: float, cited: set[str], expected: list[str]
) -> None:
    shown = shown_passages(("a", 0.9), ("b", 0.85), ("b", 0.8), ("d", 0.9))
    shown[2] = replace(shown[2], doc="c")
    deep = [("a", 0.95), ("b", 0.9), ("e", 0.8), ("f", 0.5)]
    policy = replace(RULES, side_depth=side_depth, side_floor=floor)
    assert conflicts.other_documents(shown, deep, cited, policy) == expected


def test_a_document_not_relevant_enough_is_not_asked() -> None:
    shown = shown_passages(("a", 0.9), ("b", 0.5), ("c", 0.85))
    assert conflicts.other_documents(shown, [], {"a"}, replace(RULES, max_sides=5)) == ["c"]


def test_documents_holding_the_value_agree_without_a_model_call() -> None:
    spans = [
        ("x.txt", 0, 20, "Nothing about it."),
        ("x.txt", 21, 60, "It was released on August 10, 1966."),
        ("x.txt", 61, 90, "Again August 10, 1966."),
        ("y.txt", 0, 30, "Released in 1967."),
    ]
    found = conflicts.agreeing("When was it released?", "August 10, 1966", spans)
    assert [(c.accepted, [(p.doc, p.start) for p in c.passages]) for c in found] == [
        (True, [("x.txt", 21)])
    ]


# --- rendering ------------------------------------------------------------------------------


def cite(p: Passage) -> Citation:
    return Citation(p.doc, p.start, p.end, p.text)


RENDERED = [
    (
        "one side: the plain answer",
        [side("1966", "a.txt")],
        ANSWER,
        "1966 [1].",
    ),
    (
        "agreeing documents grouped on one side",
        [side("1981", "c.txt", "d.txt"), side("1966", "a.txt")],
        CONFLICT,
        "The sources differ: 1981 [1][2]; 1966 [3].",
    ),
    (
        "a disputed value is marked",
        [side("Shae Jones", "original.txt", "corroborating.txt"), side("Beyoncé", "planted.txt")],
        CONFLICT,
        "The sources differ: Shae Jones [1][2]; Beyoncé (disputed) [3].",
    ),
    (
        "subjects that share a name, each with its title",
        [
            replace(side("19 September 1940", "x.txt"), subject="Kevin Lewis (1940)"),
            replace(side("25 September 1952", "y.txt"), subject="Kevin Lewis (1952)"),
            replace(side("1970", "z.txt"), subject="Kevin Lewis (1970)"),
        ],
        AMBIGUOUS,
        "Three subjects share this name. Kevin Lewis (1940): 19 September 1940 [1]; "
        "Kevin Lewis (1952): 25 September 1952 [2]; Kevin Lewis (1970): 1970 [3].",
    ),
]


@pytest.mark.parametrize(
    ("sides", "kind", "text"), [r[1:] for r in RENDERED], ids=[r[0] for r in RENDERED]
)
def test_render(sides: list[Side], kind: str, text: str) -> None:
    marked = [replace(s, disputed=s.value == "Beyoncé") for s in sides]
    stated = render.statements(marked, cite)
    assert render.text(stated, kind) == text
    assert [s.docs for s in stated] == [s.docs for s in marked]


def test_statements_carry_the_side_to_json() -> None:
    sides = [
        side("Shae Jones", "original.txt"),
        replace(side("Beyoncé", "planted.txt"), disputed=True),
    ]
    stated = render.statements(sides, cite)
    answer = Answer("q", CONFLICT, stated, citations=render.citations(stated))
    out = json.loads(json.dumps(answer.to_json()))
    assert [(s["text"], s["disputed"], s["docs"]) for s in out["statements"]] == [
        ("Shae Jones", False, ["original.txt"]),
        ("Beyoncé", True, ["planted.txt"]),
    ]
    assert out["conflict"] is True and out["kind"] == "conflict"
    assert Answer("q", AMBIGUOUS, stated).conflict


# --- end to end through OpenIndex -------------------------------------------------------------


# The hash embedder's cosines are low and flat: at half the best's relevance its sources
# are asked, and their answers stand as sides.
HALF_AS_RELEVANT = {"conflict_relevance": 0.5, "side_relevance": 0.5}


def open_corpus(
    tmp_path: Path, docs: dict[str, str], script: Script, **policy: object
) -> OpenIndex:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings: Settings = load_settings(
        corpus=folder,
        index=tmp_path / "index",
        min_similarity=0.05,
        model_cache=tmp_path / "m",
        **policy,
    )
    emb = HashEmbedder()
    return OpenIndex(
        settings,
        embedder=emb,
        index_embedder=emb,
        generator=ScriptedGenerator(script),
        log=lambda m: None,
    )


def first_match(pattern: str) -> Script:
    """A fake model that answers with what `pattern` finds in the best passage it is shown,
    citing that passage: asked with one document's passages, it answers for that document."""

    def script(shown: list[tuple[int, str]], question: str) -> tuple[str, list[int]]:
        for number, text in shown:
            m = re.search(pattern, text)
            if m:
                return m.group(), [number]
        return "unknown", [1]

    return script


def spans_hold(answer: Answer, folder: Path) -> bool:
    return all(
        (folder / c.doc).read_text(encoding="utf-8")[c.start : c.end] == c.quote
        for c in answer.citations
    )


YEAR = r"\b19\d\d\b"


def ask_in(folder: Path, docs: dict[str, str], question: str, **policy: object) -> Answer:
    """`question` asked of `docs` in a corpus of its own under `folder`, the fake model
    answering with each passage's year; every citation must hold its span."""
    folder.mkdir()
    answer = open_corpus(folder, docs, first_match(YEAR), **policy).ask(question)
    assert spans_hold(answer, folder / "corpus")
    return answer


PARTIES = {
    "kosovo.txt": "The PMK was founded in 1989 by students in Pristina.",
    "tamil.txt": "Founded in 1981, the PMK is a party of Tamil Nadu.",
    "chess.txt": "The PMK chess club in Lyon was founded during 1975.",
    "noise.txt": "Lyon is a city in France with many museums and bridges.",
}


def test_three_documents_three_sides(tmp_path: Path) -> None:
    opened = open_corpus(tmp_path, PARTIES, first_match(YEAR), max_sides=3, **HALF_AS_RELEVANT)
    answer = opened.ask("When was the PMK founded?")
    assert answer.kind == CONFLICT and answer.conflict
    assert {(s.docs, s.text) for s in answer.statements} == {
        (("kosovo.txt",), "1989"),
        (("tamil.txt",), "1981"),
        (("chess.txt",), "1975"),
    }
    assert answer.model_calls == 3
    assert answer.text.startswith("The sources differ: ")
    assert spans_hold(answer, tmp_path / "corpus")
    # Each source asked is recorded with what was known of it before the call.
    assert [(a.doc, a.value, a.accepted) for a in answer.asked] == [
        ("kosovo.txt", "1989", True),
        ("tamil.txt", "1981", True),
    ]
    assert all(0 < a.before["relevance"] <= 1 and a.before["copy"] == 0 for a in answer.asked)
    assert all(a.before["coverage"] == 1.0 for a in answer.asked)  # "pmk", "founded"
    asked: Any = answer.to_json()["asked"]  # the JSON contract is typed as plain objects
    assert asked[0]["before"]["chars"] > 0


@pytest.mark.parametrize(("threshold", "asked"), [(0.0, ["kosovo.txt", "tamil.txt"]), (0.5, [])])
def test_a_source_not_worth_a_call_is_not_asked(
    tmp_path: Path, threshold: float, asked: list[str]
) -> None:
    """The fitted chance of a right side, here read from the source's length alone."""
    opened = open_corpus(
        tmp_path,
        PARTIES,
        first_match(YEAR),
        max_sides=3,
        **HALF_AS_RELEVANT,
        ask_weights=(("chars", 1000.0, 100.0, 1.0),),  # a short source scores near 0
        ask_confidence=threshold,
    )
    answer = opened.ask("When was the PMK founded?")
    assert [a.doc for a in answer.asked] == asked
    assert answer.model_calls == 1 + len(asked)


def test_the_default_asks_at_most_three_other_documents(tmp_path: Path) -> None:
    """Four other documents could give a side (a cap of 5 asks all four); the default
    spends three calls on them, and reads the fourth's date by code."""
    docs = {
        **PARTIES,
        "club.txt": "The PMK football club of Lille was founded in 1921.",
        "union.txt": "The PMK trade union of Lagos was founded in 1962.",
        "bank.txt": "The PMK savings bank of Oslo was founded in 1950.",
    }
    opened = open_corpus(tmp_path, docs, first_match(YEAR), **HALF_AS_RELEVANT)
    answer = opened.ask("When was the PMK founded?")
    assert answer.model_calls == 4 and len(answer.asked) == 3


def test_a_source_below_the_top_k_is_found_side_depth_deep(tmp_path: Path) -> None:
    """With k=1 only one chunk is read for the first answer; the other parties sit deeper."""
    found = {}
    for depth in (0, 4):
        answer = ask_in(
            tmp_path / str(depth),
            PARTIES,
            "When was the PMK founded?",
            k=1,
            max_sides=3,
            **HALF_AS_RELEVANT,
            side_depth=depth,
            side_floor=0.0,
        )
        found[depth] = {s.text for s in answer.statements}
    assert len(found[0]) == 1
    assert found[4] == {"1989", "1981", "1975"}


def test_a_source_that_gives_the_value_agrees_without_a_model_call(tmp_path: Path) -> None:
    docs = {
        "kosovo.txt": PARTIES["kosovo.txt"],
        "again.txt": "Students founded the PMK of Pristina in 1989, in Kosovo.",
        "noise.txt": PARTIES["noise.txt"],
    }
    opened = open_corpus(tmp_path, docs, first_match(YEAR), max_sides=3, **HALF_AS_RELEVANT)
    answer = opened.ask("When was the PMK founded?")
    assert answer.kind == ANSWER and answer.model_calls == 1
    assert {c.doc for c in answer.citations} == {"kosovo.txt", "again.txt"}
    assert spans_hold(answer, tmp_path / "corpus")


def test_titled_documents_are_subjects_that_share_a_name(tmp_path: Path) -> None:
    docs = {
        "kosovo.txt": "PMK (Kosovo) PMK was a party founded in 1989 by students in Pristina.",
        "tamil.txt": "PMK (India) PMK is a party founded in 1981 in Tamil Nadu.",
        "noise.txt": PARTIES["noise.txt"],
    }
    opened = open_corpus(tmp_path, docs, first_match(YEAR), **HALF_AS_RELEVANT)
    answer = opened.ask("When was the PMK founded?")
    assert answer.kind == AMBIGUOUS and answer.conflict
    assert {(s.subject, s.text) for s in answer.statements} == {
        ("PMK (Kosovo)", "1989"),
        ("PMK (India)", "1981"),
    }
    assert answer.text.startswith("Two subjects share this name. PMK (")


def talk_show(shown: list[tuple[int, str]], question: str) -> tuple[str, list[int]]:
    """Answers with the singer named in the best passage."""
    return first_match(r"Shae Jones|Beyoncé")(shown, question)


def test_a_planted_copy_is_surfaced_beside_the_original(tmp_path: Path) -> None:
    """No other document is asked (max_sides 1), yet the near-copy of the cited document
    is heard: whichever of the two the first answer cites, both values are shown,
    disputed. What the copy says is read by aligning its sentence with the cited one,
    with no second model call."""
    docs = {"original.txt": ORIGINAL, "planted.txt": PLANTED, "noise.txt": PARTIES["noise.txt"]}
    opened = open_corpus(tmp_path, docs, talk_show, max_sides=1)
    answer = opened.ask("Who is the artist of the album Talk Show?")
    assert answer.kind == CONFLICT and answer.model_calls == 1
    assert {(s.docs, s.text, s.disputed) for s in answer.statements} == {
        (("original.txt",), "Shae Jones", True),
        (("planted.txt",), "Beyoncé", True),
    }
    assert "(disputed)" in answer.text
    assert spans_hold(answer, tmp_path / "corpus")


def test_a_copy_whose_sentence_does_not_align_is_asked(tmp_path: Path) -> None:
    """The copy rewrote the sentence that holds the value, so alignment finds no changed
    value in it: the copy is asked on its own, and its answer is the disputed side."""
    rewritten = PLANTED.replace(
        "Talk Show is the first and only album by the R&B singer Beyoncé, released on",
        "Beyoncé recorded the album Talk Show, her one R&B record; it came out on",
    )
    docs = {"original.txt": ORIGINAL, "planted.txt": rewritten}
    opened = open_corpus(tmp_path, docs, talk_show, max_sides=1, near_copy=0.2)
    answer = opened.ask("Who is the artist of the album Talk Show?")
    assert answer.model_calls == 2
    assert {s.text for s in answer.statements} == {"Shae Jones", "Beyoncé"}
    assert spans_hold(answer, tmp_path / "corpus")


def test_a_corroborated_original_stands_and_its_copy_is_disputed(tmp_path: Path) -> None:
    docs = {"original.txt": ORIGINAL, "planted.txt": PLANTED, "corroborating.txt": CORROBORATING}
    opened = open_corpus(
        tmp_path,
        docs,
        talk_show,
        max_sides=3,
        conflict_top=6,
        conflict_relevance=0.3,
        side_relevance=0.3,
    )
    answer = opened.ask("Who is the artist of the album Talk Show?")
    assert answer.kind == CONFLICT
    by_value = {s.text: s for s in answer.statements}
    assert set(by_value) == {"Shae Jones", "Beyoncé"}
    assert set(by_value["Shae Jones"].docs) == {"original.txt", "corroborating.txt"}
    assert not by_value["Shae Jones"].disputed
    assert by_value["Beyoncé"].docs == ("planted.txt",) and by_value["Beyoncé"].disputed


@pytest.mark.parametrize(
    ("other", "calls"),
    [
        ("The Kursk bridge opened to traffic after years of delay and debate.", 1),
        ("The Kursk bridge opened to traffic in 2001 after years of delay and debate.", 2),
    ],
)
def test_a_source_without_a_value_of_the_kind_is_not_asked(
    tmp_path: Path, other: str, calls: int
) -> None:
    """Asked when, a source with no date anywhere in its sentences cannot give a side."""
    assert _bridge(tmp_path, other).model_calls == calls


def _bridge(tmp_path: Path, other: str, **policy: object) -> Answer:
    """When the Kursk bridge opened, asked of a first source that gives a date and of
    `other`, every other source relevant enough to be asked."""
    docs = {"first.txt": "The Kursk bridge opened to traffic on 4 March 1999.", "other.txt": other}
    opened = open_corpus(
        tmp_path,
        docs,
        first_match(r"\d+ March \d{4}|\d{4}"),
        conflict_top=6,
        conflict_relevance=0.0,
        side_relevance=0.0,
        side_floor=0.0,
        **policy,
    )
    return opened.ask("When did the Kursk bridge open to traffic?")


@pytest.mark.parametrize(("kind_sentences", "calls"), [(True, 2), (False, 1)])
def test_a_source_is_asked_with_its_sentences_that_hold_the_kind(
    tmp_path: Path, kind_sentences: bool, calls: int
) -> None:
    """Its sentence most like the question holds no date, a later one does: the source is
    asked with that one (and gives its side) instead of being passed over."""
    other = (
        "The Kursk bridge opened to traffic after years of delay and debate. "
        "Its builders finished the work in 2001."
    )
    answer = _bridge(tmp_path, other, side_passages=1, kind_sentences=kind_sentences)
    assert answer.model_calls == calls
    if kind_sentences:
        assert {s.text for s in answer.statements} == {"4 March 1999", "2001"}
        assert answer.asked[0].doc == "other.txt"
    assert spans_hold(answer, tmp_path / "corpus")


@pytest.mark.parametrize(("asked_sentences", "value"), [(True, "2,197"), (False, "38.53")])
def test_a_source_is_asked_with_its_number_beside_what_is_asked(
    tmp_path: Path, asked_sentences: bool, value: str
) -> None:
    """The other source's sentence most like the question holds numbers (coordinates), but
    its population stands in a later one: it is asked with that one and gives its side."""
    docs = {
        "first.txt": "The population of Hughesville was 5,000 in 2010.",
        "other.txt": "Hughesville is what it is, at (38.53, -76.78). "
        "The population was 2,197 at the 2010 census.",
    }
    opened = open_corpus(
        tmp_path,
        docs,
        first_match(r"\d[\d,.]*\d"),
        conflict_top=6,
        conflict_relevance=0.0,
        side_relevance=0.0,
        side_floor=0.0,
        side_passages=1,
        asked_sentences=asked_sentences,
    )
    answer = opened.ask("What is the population of Hughesville?")
    assert answer.asked[0].doc == "other.txt" and answer.asked[0].value == value
    if asked_sentences:
        assert {s.text for s in answer.statements} == {"5,000", "2,197"}
    assert spans_hold(answer, tmp_path / "corpus")


def test_a_copy_that_holds_the_answer_is_not_asked(tmp_path: Path) -> None:
    """A near-copy that already states the value would only agree: no model call."""
    copy = ORIGINAL.replace("peaked at number 42", "reached number 42")
    docs = {"original.txt": ORIGINAL, "copy.txt": copy}
    opened = open_corpus(tmp_path, docs, talk_show, max_sides=1)
    answer = opened.ask("Who is the artist of the album Talk Show?")
    assert answer.kind == ANSWER and answer.model_calls == 1


def _read_alone(shown: list[tuple[int, str]], question: str) -> tuple[str, list[int]]:
    """A fake model that finds the date only in one document read alone: shown several
    passages together, it answers with words none of them holds (refused by grounding)."""
    if len(shown) == 1:
        m = re.search(r"\d+ March \d{4}", shown[0][1])
        if m:
            return m.group(), [1]
    return "no such thing", [1]


def _rescued(tmp_path: Path, docs: dict[str, str], **policy: object) -> Answer:
    opened = open_corpus(
        tmp_path,
        docs,
        _read_alone,
        conflict_top=6,
        conflict_relevance=0.0,
        side_relevance=0.0,
        **{"side_floor": 0.0, **policy},
    )
    return opened.ask("When did the Kursk bridge open to traffic?")


TWO_SOURCES = {
    "dated.txt": "The Kursk bridge opened to traffic on 4 March 1999.",
    "painted.txt": "The Kursk bridge was painted green when it opened to traffic.",
}


def test_a_refused_first_answer_is_rescued_by_a_source_read_alone(tmp_path: Path) -> None:
    answer = _rescued(tmp_path, TWO_SOURCES, rescue=True)
    assert answer.kind == ANSWER
    assert [s.text for s in answer.statements] == ["4 March 1999"]
    assert answer.citations[0].doc == "dated.txt"
    rescues = [a for a in answer.asked if a.rescue]
    assert rescues and rescues[-1].doc == "dated.txt" and rescues[-1].accepted
    assert spans_hold(answer, tmp_path / "corpus")


@pytest.mark.parametrize(
    ("policy", "calls"),
    [
        ({"rescue": False}, 1),
        # No source is relevant enough to be read alone.
        ({"rescue": True, "side_floor": 0.99}, 1),
        # No call to spare beyond the first.
        ({"rescue": True, "max_sides": 1}, 1),
    ],
)
def test_no_rescue_leaves_the_refusal(
    tmp_path: Path, policy: dict[str, object], calls: int
) -> None:
    answer = _rescued(tmp_path, TWO_SOURCES, **policy)
    assert answer.abstained and answer.model_calls == calls


def test_a_single_source_is_not_asked_again_alone(tmp_path: Path) -> None:
    """Its sentences alone are the prompt the first answer already had."""
    docs = {
        "one.txt": "The Kursk bridge was painted green. The Kursk bridge opened to traffic early."
    }
    answer = _rescued(tmp_path, docs, rescue=True)
    assert answer.abstained and answer.model_calls == 1


# --- a source's date read by code -----------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "text", "value"),
    [
        # The one date near what is asked ("built"), in a sentence without the name.
        (
            "When was Cove Fort built?",
            "Cove Fort is a battery near Cobh. It was built in 1743 by the army.",
            "1743",
        ),
        # The same date twice: the fullest wording is kept.
        (
            "When was Porush born?",
            "Porush was born in 1916. He was born on 2 April 1916 in Jerusalem.",
            "2 April 1916",
        ),
        # A date a clause away dates something else.
        (
            "When was Kevin Lewis born?",
            "Lewis was born in Hull and played for the youth team before joining Stoke in 1972.",
            None,
        ),
        # Two dates in the sentence, or two sentences with different dates: not one answer.
        ("When was the church built?", "The church was built in 1872 and rebuilt in 1928.", None),
        (
            "When was the church built?",
            "The first church was built in 1872. The new church was built in 1928.",
            None,
        ),
        # Only the question's names near the date: not what is asked.
        ("When was Cove Fort built?", "Cove Fort hosted 300 visitors in 1990.", None),
        # Not asked when.
        ("Where was Cove Fort built?", "It was built in 1743 by the army.", None),
    ],
)
def test_dated_side_reads_the_one_date_a_source_gives(
    question: str, text: str, value: str | None
) -> None:
    side = conflicts.dated_side(question, "d.txt", text, 0.7, 4)
    assert (side.value if side else None) == value
    if side is not None:
        (p,) = side.passages
        assert text[p.start : p.end] == p.text and side.value in p.text
        assert side.accepted and side.confidence is None and side.relevance == 0.7


def test_a_source_over_the_cap_gives_its_date_without_a_call(tmp_path: Path) -> None:
    """Three sources besides the first, two calls: the third is read by code, and cited
    to the sentence it read."""
    docs = {**PARTIES, "club.txt": "The PMK football club of Lille was founded in 1921."}
    answers = {}
    for dated in (False, True):
        answer = ask_in(
            tmp_path / str(dated),
            docs,
            "When was the PMK founded?",
            max_sides=3,
            **HALF_AS_RELEVANT,
            side_floor=0.0,
            dated_sides=dated,
        )
        answers[dated] = {s.text for s in answer.statements}
        assert answer.model_calls == 3
    assert len(answers[False]) == 3
    assert answers[True] == {"1989", "1981", "1975", "1921"}
    (tamil,) = [s for s in answer.statements if s.docs == ("tamil.txt",)]
    assert tamil.text == "1981" and tamil.confidence is None
