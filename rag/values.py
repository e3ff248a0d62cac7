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
from rag.text import NUMBER_WORDS, STOPWORDS

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


# Words that end a noun phrase even when lower-case: an irregular past participle or a
# verb the stopwords do not hold ("film made by", "a dancer born in"). Those ending in
# -ed or -s are left to `_continues`.
_VERBS = frozenset(
    """born made built won became become began begun took taken gave given wrote written
    held left known found grown shown seen set put run came went got told sold brought
    thought met paid said spent stood taught""".split()
)
# A word that may continue a noun phrase: lower-case letters and inner hyphens.
_HEAD = re.compile(r"[a-z][a-z\-]*[a-z]")
# The next word after a value, with only spaces between (punctuation ends the phrase).
_NEXT = re.compile(r"[ \t]+([^\W\d_][\w\-’']*)")
# What stands before a value in a sentence that defines its subject with it: a copula and
# an article, then at most five words ("is a 1987 American", "was an", "is a former").
_DEFINES = re.compile(r"\b(?:is|was|are|were)\s+(?:an?|the)\s+((?:[\w\-’',]+\s+){0,5})$")


def _continues(word: str) -> bool:
    """The word can be the phrase's next word: lower-case, not a stopword or a verb, and
    not a verb's or adverb's ending ("directed", "starring", "mainly") nor a plural or a
    verb in -s ("bands", "flows"), which a single value's head rarely is."""
    return (
        bool(_HEAD.fullmatch(word))
        and word not in STOPWORDS
        and word not in _VERBS
        and not word.endswith(("ed", "ing", "ly", "s"))
    )


def _defines(before: str) -> bool:
    """The words before a value define its subject with it: a copula, an article and
    words that are no stopwords ("The Squeeze is a 1987 American" comedy film), not a
    mention in passing ("associated with the Chinese national" basketball team)."""
    m = _DEFINES.search(before)
    if m is None:
        return False
    return not any(w.strip(",") in STOPWORDS for w in m.group(1).split())


def whole(value: str, cited: Sequence[Passage], words: int) -> str:
    """A lower-case value widened to the end of its noun phrase, by at most `words`
    words, where a cited passage defines its subject with that phrase: "comedy" in "The
    Squeeze is a 1987 American comedy film directed by" is "comedy film", "death metal" in
    "Six Feet Under is an American death metal band from" is "death metal band". The model
    copies the modifier and drops the head; the source states the whole phrase, and the
    head says what the subject is, which tells apart two subjects that share a name. Only
    a definition counts: in "associated with the Chinese national basketball team" the
    head names something else. Kept as it is when the value is not lower-case words or is
    a count, when no cited passage defines with it, or when they widen it two ways."""
    bare = value.strip().rstrip(".")
    if words <= 0 or not bare or not all(_HEAD.fullmatch(w) for w in bare.split()):
        return value
    if any(w in NUMBER_WORDS for w in bare.split()):
        # "three" in "three weight rooms" is a count, not a modifier of the answer.
        return value
    pattern = re.compile(rf"(?<![\w\-’']){re.escape(bare)}(?![\w\-’'])")
    found: set[str] = set()
    for p in cited:
        for m in pattern.finditer(p.text):
            if not _defines(p.text[: m.start()]):
                continue
            tail: list[str] = []
            at = m.end()
            while len(tail) < words and (step := _NEXT.match(p.text, at)):
                if not _continues(step.group(1)):
                    break
                tail.append(step.group(1))
                at = step.end()
            found.add(" ".join([bare, *tail]))
    return found.pop() if len(found) == 1 else value
