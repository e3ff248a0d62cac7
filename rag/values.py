"""The value an answer states, as fully as its source states it.

A tiny model shortens what it copies: asked when a station opened, it answers "1958"
where the passage says "April 1, 1958". The shortened value is not wrong, but it is less
than the source says, and two sources that give "April 1, 1958" and "January 1, 1958"
would look alike. So a date that is part of a fuller date in its cited passage is
replaced by that fuller date, by code, copying the passage's words (whitespace
collapsed). A question that asks for the year alone ("In what year ...") keeps the year."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.qtypes import asks_date
from rag.records import Passage

_MONTH = (
    r"(?:Jan(?:uary|\.)?|Feb(?:ruary|\.)?|Mar(?:ch|\.)?|Apr(?:il|\.)?|May|June?|July?|"
    r"Aug(?:ust|\.)?|Sep(?:t(?:ember|\.)?|\.)?|Oct(?:ober|\.)?|Nov(?:ember|\.)?|Dec(?:ember|\.)?)"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"\d{3,4}"
# "1 April 1958", "1st of April, 1958", "April 1, 1958", "April 1 1958": a day, a month
# and a year, in either order.
FULL_DATE = re.compile(
    rf"\b(?:{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}|{_MONTH}\s+{_DAY},?\s+{_YEAR})\b"
)
# What a shortened date looks like: a year, a month and year, or a day and month.
_PARTIAL = re.compile(
    rf"^(?:{_YEAR}|{_MONTH}\s+{_YEAR}|{_DAY}\s+(?:of\s+)?{_MONTH}|{_MONTH}\s+{_DAY})$"
)
# A month with its year ("June 1936") and a year on its own (1000-2099), for what a
# sentence gives when it gives no full date.
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+{_YEAR}\b")
_BARE_YEAR = re.compile(r"(?<![\d,.])\b(?:1\d{3}|20\d\d)\b(?![\d,.]\d)")
_ASKS_YEAR = re.compile(r"\b(?:what|which)\s+(?:year|decade|century)\b", re.I)
# Words and numbers, an ordinal's suffix dropped: "1st" is the day "1".
_TOKEN = re.compile(r"(\d+)(?:st|nd|rd|th)\b|\w+")


def _tokens(text: str) -> set[str]:
    return {m.group(1) or m.group().lower() for m in _TOKEN.finditer(text)}


def dates(sentence: str) -> list[tuple[int, int]]:
    """Each date the sentence gives, as fully as it gives it: its full dates, then its
    months with a year outside them, then its years outside both, as (start, end)."""
    found: list[tuple[int, int]] = []
    for pattern in (FULL_DATE, _MONTH_YEAR, _BARE_YEAR):
        for m in pattern.finditer(sentence):
            if not any(s <= m.start() < e for s, e in found):
                found.append(m.span())
    return sorted(found)


def trimmed(value: str, question: str) -> str:
    """Asked when, the one full date of the value without the words around it, if those
    hold no other number or month: a tiny model copies what stands next to the date
    ("22 October 1828 Gregorian", "born on 4 March 1999 in Kursk"), and the extra words
    keep two sources that give the same date from agreeing."""
    if not asks_date(question):
        return value
    found = list(FULL_DATE.finditer(value))
    if len(found) != 1:
        return value
    rest = value[: found[0].start()] + " " + value[found[0].end() :]
    if re.search(rf"\d|\b{_MONTH}\b", rest):
        return value
    return " ".join(found[0].group().split())


def fuller(value: str, cited: Sequence[Passage], question: str) -> str:
    """The value, or the one fuller date of the cited passages that contains it."""
    bare = value.strip().rstrip(".")
    if not _PARTIAL.match(bare) or _ASKS_YEAR.search(question):
        return value
    wanted = _tokens(bare)
    found = {
        " ".join(m.group().split())
        for p in cited
        for m in FULL_DATE.finditer(p.text)
        if wanted <= _tokens(m.group())
    }
    # Two different full dates hold the short one: the source does not say which.
    return found.pop() if len(found) == 1 else value
