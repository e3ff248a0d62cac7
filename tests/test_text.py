"""rag.text: the normalised terms grounding compares, answer sentences, citation markers."""

import pytest

from rag.text import MARKERS, answer_sentences, stem, strip_markers, terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Case, thousands separators, number words and plurals all normalise away.
        ("The 1,000 Troops and nine deaths", ["1000", "troop", "9", "death"]),
        ("twelve hundred", ["12", "100"]),
        ("It was approximately 15,000.", ["15000"]),
        ("3.5 million dollars", ["3.5", "million", "dollar"]),
        ("December 12th, 2024", ["december", "12th", "2024"]),
        # A hyphenated name and the spaced spelling are the same terms.
        ("Kim Jong-un", ["kim", "jong", "un"]),
        ("Kim Jong Un", ["kim", "jong", "un"]),
        # Possessives, with either apostrophe, are the bare word.
        ("Kim’s unit", ["kim", "unit"]),
        ("Kim's unit", ["kim", "unit"]),
        ("mine-clearance", ["mine", "clearance"]),
        ("according to the report", ["report"]),
        # "may" is the modal, as empty as "can"; "May" is the month.
        ("the mission may mark a new chapter", ["mission", "mark", "new", "chapter"]),
        ("established in May", ["establish", "may"]),
        ("", []),
    ],
)
def test_terms(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("troops", "troop"),
        ("clearing", "clear"),
        ("dispatched", "dispatch"),
        ("passes", "pass"),
        # Short words keep their ending: "bus" and "was" are not plurals.
        ("bus", "bus"),
        ("sing", "sing"),
        ("red", "red"),
    ],
)
def test_stem_removes_one_ending_only_from_long_words(word: str, expected: str) -> None:
    assert stem(word) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("About 1,000. Nine died.", ["About 1,000.", "Nine died."]),
        ("Who? 3 left!", ["Who?", "3 left!"]),
        # No split inside a number or before a lowercase word.
        ("It cost 1.5 million.", ["It cost 1.5 million."]),
        ("Troops, e.g. engineers, went.", ["Troops, e.g. engineers, went."]),
        # A name's initial ends no sentence, as in the sources (rag.chunking).
        (
            "John M. Stahl directed it. Sirk did not.",
            ["John M. Stahl directed it.", "Sirk did not."],
        ),
        ("  Padded.  ", ["Padded."]),
        ("   ", []),
    ],
)
def test_answer_sentences(text: str, expected: list[str]) -> None:
    assert answer_sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("two [1].", "two."),
        ("two [1, 2] and three [3]", "two and three"),
        ("a [1][2] b", "a b"),
        ("no markers here", "no markers here"),
        # Only numbers in brackets are markers.
        ("list [a] and [ ]", "list [a] and [ ]"),
    ],
)
def test_strip_markers(text: str, expected: str) -> None:
    assert strip_markers(text) == expected


def test_markers_capture_the_numbers_as_written() -> None:
    assert MARKERS.findall("one [1], two [2, 3], not [x]") == ["1", "2, 3"]
