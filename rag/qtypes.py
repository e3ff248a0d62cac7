"""What kind of answer a question asks for, and whether an answer is of that kind.

A tiny model asked for something the corpus lacks still answers, with whatever is nearby:
"one farmer" for the farmer's name, "decades" for the mission's cost. Those answers are
grounded (the words are in the passage) but they do not answer, so the question's own
type is checked before grounding."""

from __future__ import annotations

import re
from itertools import pairwise

from rag.text import NUMBER_WORDS, STOPWORDS, WORD, terms

_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
# Months that are everyday words in lower case: "the mission may mark", "they march".
_EVERYDAY = frozenset({"may", "march"})
_YEAR = re.compile(r"\b(19|20)\d\d\b")
_MONEY = re.compile(r"[$€£¥]|\b(?:dollars?|euros?|rubles?|roubles?|won|pounds?|yuan)\b", re.I)
_DATEISH = re.compile(
    r"\b(?:early|late|mid|last|next|this|spring|summer|autumn|fall|winter|ago|years?|"
    r"months?|weeks?|days?|today|yesterday)\b",
    re.I,
)
_ASKS_NAME = re.compile(r"\bnames?\b")
_ASKS_COST = re.compile(r"\b(?:cost|price|paid|spend|spent)\b")
_ASKS_DATE = re.compile(r"(?:when|in which (?:year|month)|what (?:year|month|date|day))\b")

# The name check. A name question needs a proper noun the question does not contain, and
# a place adjective ("Russian", "North Korean") is capitalised but is not a name. Its
# ending alone cannot tell: given names share every demonym ending (Brian, Jordan, Morgan,
# Adrian, Vivian, Christian, Dean, Reese, Ali), so a bare capitalised word always counts
# as a name. A run of capitalised words ending in a demonym ending is rejected only when
# it is used the way place adjectives are and names are not:
#   - it modifies the next word, a lowercase content word ("Russian military historian");
#   - an article or a count comes right before it ("a Russian", "the Koreans", "two
#     Russians"); a name answer is not "a Brian";
#   - a compass point leads it ("North Korean", "South African"), which makes a region
#     adjective even when the answer is those two words alone.
# Punctuation between words breaks "right before" and "next", so "Adrian, a farmer" is
# a name followed by an apposition. Known limit: a bare demonym ("Russian") passes, and a
# name whose next word is a lowercase verb ("Morgan led the unit") is rejected.
_DEMONYM_ENDING = re.compile(r"(?:an|ean|ese|ish|ian|i)s?$")
_DETERMINERS = frozenset({"a", "an", "the", *NUMBER_WORDS})
_COMPASS = frozenset("north south east west central northern southern eastern western".split())


def answer_kind(text: str) -> str:
    """A coarse type ("date", "number" or "other"), so only like answers are compared."""
    words = {w.strip(".,") for w in text.split()}
    lowered = {w.lower() for w in words if w not in _EVERYDAY}
    if lowered & _MONTHS or _YEAR.search(text):
        return "date"
    if any(t[0].isdigit() for t in terms(text)):
        return "number"
    return "other"


def asks_date(question: str) -> bool:
    """Whether the question asks when ("When ...", "What year ...", "In which month ...")."""
    return bool(_ASKS_DATE.match(question.lower()))


def fits_question(question: str, answer: str) -> bool:
    """Whether the answer is the kind of thing the question asks for.

    A name needs a proper noun the question does not already contain, a cost needs
    money, a count needs a number, a date needs a date; other questions take anything."""
    q = question.lower()
    if _ASKS_NAME.search(q):
        return _has_new_name(question, answer)
    numeric = any(t[0].isdigit() for t in terms(answer))
    if _ASKS_COST.search(q) or q.startswith("how much"):
        return bool(_MONEY.search(answer)) or numeric
    if q.startswith("how many"):
        return numeric
    if asks_date(q):
        return answer_kind(answer) == "date" or numeric or bool(_DATEISH.search(answer))
    return True


def _has_new_name(question: str, answer: str) -> bool:
    """Some run of capitalised words in the answer is a name, and not only the question's."""
    asked = {w.lower() for w in WORD.findall(question)}
    for run, before, after in _capitalised_runs(answer):
        if _is_demonym(run, before, after):
            continue
        if any(w.lower() not in asked for w in run):
            return True
    return False


def _capitalised_runs(text: str) -> list[tuple[list[str], str, str]]:
    """Each run of capitalised words (stopwords and number words excluded) separated by
    spaces only, with the word right before and right after it ("" if punctuation or the
    text's edge is in between)."""
    tokens = [(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]
    # Whether token i and token i+1 are separated by whitespace alone.
    joined = [text[a[2] : b[1]].isspace() for a, b in pairwise(tokens)]

    def capital(word: str) -> bool:
        low = word.lower()
        return word[0].isupper() and low not in STOPWORDS and low not in NUMBER_WORDS

    runs: list[tuple[list[str], str, str]] = []
    i = 0
    while i < len(tokens):
        if not capital(tokens[i][0]):
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and joined[j] and capital(tokens[j + 1][0]):
            j += 1
        before = tokens[i - 1][0] if i > 0 and joined[i - 1] else ""
        after = tokens[j + 1][0] if j + 1 < len(tokens) and joined[j] else ""
        runs.append(([t[0] for t in tokens[i : j + 1]], before, after))
        i = j + 1
    return runs


def _is_demonym(run: list[str], before: str, after: str) -> bool:
    """A place adjective by ending and by use; see the comment on _DEMONYM_ENDING."""
    if not _DEMONYM_ENDING.search(run[-1]):
        return False
    modifies = bool(after) and after[0].islower() and after.lower() not in STOPWORDS
    counted = before.lower() in _DETERMINERS or before[:1].isdigit()
    regional = len(run) > 1 and run[0].lower() in _COMPASS
    return modifies or counted or regional
