"""The fuller value: a shortened date becomes the date its cited passage states, a date
loses the words a model copied beside it, and a modifier gains its noun phrase's head."""

from __future__ import annotations

import pytest

from rag.records import Passage
from rag.values import dates, fuller, trimmed, whole


def passage(text: str) -> Passage:
    return Passage(number=1, doc="d.txt", start=0, end=len(text), text=text, dense=0.5)


CASES = [
    # (answer, passage, question, expected)
    (
        "1958",
        "The station opened on April 1, 1958.",
        "When was the station opened?",
        "April 1, 1958",
    ),
    (
        "1916",
        "Porush was born on 2 April 1916 in Jerusalem.",
        "When was Porush born?",
        "2 April 1916",
    ),
    ("August 10", "It aired on August 10, 1966 on NBC.", "When did it air?", "August 10, 1966"),
    ("May 1970", "It was released in May 12th, 1970.", "When was it released?", "May 12th, 1970"),
    ("1 April", "It opened on 1st of April 1958.", "When did it open?", "1st of April 1958"),
    # The year alone is what is asked.
    ("1958", "The station opened on April 1, 1958.", "In what year was it opened?", "1958"),
    # Two full dates hold the year: the passage does not say which, so nothing changes.
    ("1958", "Built on April 1, 1958 and opened on May 2, 1958.", "When?", "1958"),
    # Another day is not this one: "April 1" is not part of "April 10, 1958".
    ("April 1", "It opened on April 10, 1958.", "When did it open?", "April 1"),
    # Already full, or not a date at all.
    ("April 1, 1958", "It opened on April 1, 1958.", "When did it open?", "April 1, 1958"),
    ("Shae Jones", "Shae Jones released it on April 1, 1958.", "Who released it?", "Shae Jones"),
    ("in 1958", "It opened on April 1, 1958.", "When did it open?", "in 1958"),
]


@pytest.mark.parametrize(("answer", "text", "question", "expected"), CASES)
def test_fuller(answer: str, text: str, question: str, expected: str) -> None:
    assert fuller(answer, [passage(text)], question) == expected


def test_the_fuller_value_is_copied_from_the_passage() -> None:
    text = "It opened on April\n1,  1958."
    assert fuller("1958", [passage(text)], "When?") == "April 1, 1958"


@pytest.mark.parametrize(
    ("value", "question", "expected"),
    [
        # The words a tiny model copied beside the date go.
        ("22 October 1828 Gregorian", "When was Edmund Brockman born?", "22 October 1828"),
        ("born on 4 March 1999 in Kursk", "When was he born?", "4 March 1999"),
        ("April  1, 1958", "In which month did it open?", "April 1, 1958"),
        # Another number or month beside it is more than decoration: kept whole.
        (
            "between 1 May 1990 and 2 June 1991",
            "When was it built?",
            "between 1 May 1990 and 2 June 1991",
        ),
        (
            "On March 8, 2018 and again in 2019",
            "When did the strike take place?",
            "On March 8, 2018 and again in 2019",
        ),
        ("4 March 1999, a Friday in March", "When did it open?", "4 March 1999, a Friday in March"),
        # Not asked when, or no full date: unchanged.
        ("22 October 1828 Gregorian", "Who was born in Perth?", "22 October 1828 Gregorian"),
        ("from 1878 to 1880", "When did he serve?", "from 1878 to 1880"),
        ("early 1980s", "When was the PMK founded?", "early 1980s"),
    ],
)
def test_trimmed(value: str, question: str, expected: str) -> None:
    assert trimmed(value, question) == expected


@pytest.mark.parametrize(
    ("sentence", "found"),
    [
        ("It was built in 1743 and rebuilt.", ["1743"]),
        (
            "Opened 20 April 1910, closed June 1936, renovated in 2019.",
            ["20 April 1910", "June 1936", "2019"],
        ),
        # A year inside a fuller date is that date, not a second one.
        ("It aired on August 10, 1966.", ["August 10, 1966"]),
        # Counts and decades are not years.
        ("It holds 1,200 seats and 25000 books from the 1990s.", []),
    ],
)
def test_dates_are_found_as_fully_as_given(sentence: str, found: list[str]) -> None:
    assert [sentence[s:e] for s, e in dates(sentence)] == found


WHOLE = [
    # (value, passage, expected): the noun phrase's head the model dropped comes back.
    ("comedy", "The Squeeze is a 1987 American comedy film directed by Young.", "comedy film"),
    ("death metal", "It is an American death metal band from Tampa, Florida.", "death metal band"),
    ("comedy-drama", "It is a comedy-drama caper film by Yates.", "comedy-drama caper film"),
    ("tabla", "He was an Indian tabla player specialized in music.", "tabla player"),
    ("snooker", "It was a professional ranking snooker tournament.", "snooker tournament"),
    # Only where the passage defines its subject with the phrase, not in passing.
    ("basketball", "It is associated with the national basketball team.", "basketball"),
    ("comedy", "A 1997 comedy film.", "comedy"),
    ("comedy", "It is the first of his comedy films.", "comedy"),
    # The phrase already ends: punctuation, a stopword, a verb form, a plural.
    ("footballer", "He was an English professional footballer.", "footballer"),
    ("chef", "He is an American chef who was White House Executive Chef.", "chef"),
    ("basketball", "He played basketball as well.", "basketball"),
    ("drama", "It is a drama starring Kate Winslet.", "drama"),
    ("river", "It is the river flows into the sea.", "river"),
    ("dancer", "She was a dancer born in Kyiv.", "dancer"),
    # Not lower-case words, a count, or not in the passage: the model's words stay.
    ("Joe Jackson", "Joe Jackson band members played.", "Joe Jackson"),
    ("three", "It is the three weight rooms.", "three"),
    ("1958", "It opened in 1958 season tickets.", "1958"),
    ("opera", "It is a comedy film.", "opera"),
    # Part of a longer word is not the value.
    ("metal", "It is a heavy-metal band.", "metal"),
    # At most two words are added.
    ("indie", "They are an indie pop rock band.", "indie pop rock"),
]


@pytest.mark.parametrize(("value", "text", "expected"), WHOLE)
def test_whole(value: str, text: str, expected: str) -> None:
    assert whole(value, [passage(text)], 2) == expected


def test_whole_keeps_the_value_when_passages_widen_it_two_ways() -> None:
    cited = [passage("It is a 1997 comedy film."), passage("It is a comedy series.")]
    assert whole("comedy", cited, 2) == "comedy"
    assert whole("comedy", cited[:1], 2) == "comedy film"


def test_whole_switched_off() -> None:
    assert whole("comedy", [passage("It is a 1997 comedy film.")], 0) == "comedy"
