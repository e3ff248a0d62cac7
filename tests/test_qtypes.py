"""rag.qtypes: an answer must be the kind of thing its question asks for."""

import pytest

from rag.qtypes import answer_kind, fits_question

NAME = "What is the name of the commander?"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("December 12th", "date"),
        ("on Friday", "date"),
        ("in 1990", "date"),
        ("in May", "date"),
        ("March 3", "date"),
        # Months that are everyday words in lower case are not dates.
        ("the mission may mark a new chapter", "other"),
        ("they march on", "other"),
        ("about 1,000", "number"),
        ("nine personnel", "number"),
        ("Kigye Airport", "other"),
        ("Pyongyang", "other"),
    ],
)
def test_answer_kind(text: str, kind: str) -> None:
    assert answer_kind(text) == kind


@pytest.mark.parametrize(
    ("question", "answer", "fits"),
    [
        # Given names that share a demonym's ending are names (the reported bug).
        (NAME, "Brian", True),
        (NAME, "Ali", True),
        (NAME, "Jordan", True),
        (NAME, "Morgan", True),
        (NAME, "Kim Jong-un", True),
        (NAME, "Adrian", True),
        (NAME, "Damian", True),
        (NAME, "Lilian", True),
        (NAME, "Christian", True),
        (NAME, "Vivian", True),
        (NAME, "Sean Morgan", True),
        (NAME, "Colonel Ri", True),
        (NAME, "Ali, a farmer", True),
        (NAME, "Brian was the commander", True),
        (NAME, "General Adrian Petrov of the Russian army", True),
        # A place adjective is not a name: before a noun, after an article or a count,
        # or led by a compass point.
        (NAME, "one Russian soldier", False),
        (NAME, "a North Korean officer", False),
        (NAME, "North Korean", False),
        (NAME, "South African", False),
        (NAME, "a Russian", False),
        (NAME, "the Koreans", False),
        (NAME, "two Russians", False),
        (NAME, "Japanese officials", False),
        ("What is the name of the official?", "Russian military historian", False),
        # The country itself is a name.
        ("What is the name of the country?", "North Korea", True),
        # No proper noun at all, or only the question's own.
        ("What is the name of the farmer?", "one farmer", False),
        ("What were the names of the engineers who died?", "Nine personnel", False),
        ("What is the name of the Russian official?", "Russian", False),
        ("What is the name of the regiment's commander?", "Colonel Ri", True),
        ("How much did the mission cost?", "decades", False),
        ("How much did the mission cost?", "$3 million", True),
        ("How much did the mission cost?", "40 billion won", True),
        ("How many engineer troops were sent?", "about 1,000", True),
        ("How many engineer troops were sent?", "nine", True),
        ("How many mines were cleared?", "a vast territory", False),
        ("When did the mission begin?", "early August", True),
        ("When did the mission begin?", "in 2024", True),
        ("When was the ceremony held?", "Friday", True),
        ("When was the ceremony held?", "at the airport", False),
        ("In which month was the regiment established?", "May", True),
        ("Where was the ceremony held?", "Kigye Airport", True),
        ("Why did they go?", "to clear mines", True),
    ],
)
def test_answers_must_fit_the_question_type(question: str, answer: str, fits: bool) -> None:
    assert fits_question(question, answer) is fits
