"""Words as the grounding and evaluation code compare them.

Two texts say the same thing when they share terms: lower-cased words without stopwords,
numbers without separators ("1,000" is "1000"), number words as digits ("nine" is "9")
and a light stem ("troops" is "troop"). The same module owns the one pattern for the
citation markers "[1]" and "[1, 2]" that rendered answers carry."""

from __future__ import annotations

import re

from rag.chunking import sentence_spans

# A number (with separators and an ordinal or plural tail), or a word that starts with
# a letter and may carry apostrophes and hyphens ("Kim’s", "Jong-un").
WORD = re.compile(r"\d[\d,.]*\d(?:st|nd|rd|th|s)?|\d|[^\W\d_][\w’'\-]*", re.UNICODE)

NUMBER_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "fifteen": "15",
    "twenty": "20",
    "hundred": "100",
    "thousand": "1000",
}

STOPWORDS = frozenset(
    """a about above after again all almost also am an and any approximately are around as at
    be been before being between both but by can could did do does during each few for from
    had has have he her here him his how i if in into is it its just last least less many me
    more most much my no nor not of off on once only or other our out over own roughly same
    she should so some such than that the their them then there these they this those to too
    under until up very was we were what when where which while who whom why will with would
    you your yes according reportedly nearly""".split()
)

# Stopwords only as written: "may" is the modal ("the mission may mark"), as empty as
# "can"; "May" is the month, and an answer "May" must find the month in its passage.
_CASED_STOPWORDS = frozenset({"may"})

# A citation marker: "[1]" or "[1, 2]"; group 1 holds the numbers as written.
MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# Stripping also takes the space before a marker, so "two [1]." becomes "two.".
_SPACED_MARKERS = re.compile(r"\s*" + MARKERS.pattern)


def terms(text: str) -> list[str]:
    """Normalised content terms: lower case, numbers without separators, light stemming."""
    out = []
    for raw in WORD.findall(text):
        if raw in _CASED_STOPWORDS:
            continue
        token = raw.lower().replace("’", "'").removesuffix("'s")
        # "Jong-un" and "Jong Un" are the same name; "mine-clearance" is two words.
        for word in token.split("-") if not token[0].isdigit() else [token]:
            word = word.strip("'")
            if not word or word in STOPWORDS:
                continue
            if word[0].isdigit():
                word = word.replace(",", "").rstrip(".")
            word = NUMBER_WORDS.get(word, word)
            out.append(stem(word))
    return out


def stem(word: str) -> str:
    """The word without one common inflection (-ing, -ed, -es, -s), if it stays 4+ long."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def answer_sentences(text: str) -> list[str]:
    """The sentences of an answer, stripped, empty ones dropped: cut where a source's
    sentences are cut (rag.chunking), so "John M. Stahl" stays one name here too."""
    return [text[s:e] for s, e in sentence_spans(text, max_chars=max(1, len(text)))]


def strip_markers(text: str) -> str:
    """The text without citation markers, and without the space before each."""
    return _SPACED_MARKERS.sub("", text)
