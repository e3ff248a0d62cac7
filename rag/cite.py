"""From the model's raw JSON to grounded statements with exact citations.

The model only points at passage numbers. Code decides what is cited: numbers that name
no shown passage are dropped, and a statement whose key content (numbers, names, other
content words) is not in its cited passages is re-cited from the shown passages or
dropped. Tiny models answer from their own memory, so nothing here trusts them."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from rag.records import Passage

_WORD = re.compile(r"\d[\d,.]*\d(?:st|nd|rd|th|s)?|\d|[^\W\d_][\w’'\-]*", re.UNICODE)
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fifteen": "15", "twenty": "20", "hundred": "100", "thousand": "1000",
}
STOPWORDS = frozenset(
    """a about above after again all almost also am an and any approximately are around as at
    be been before being between both but by can could did do does during each few for from
    had has have he her here him his how i if in into is it its just last least less many me
    more most much my no nor not of off on once only or other our out over own roughly same
    she should so some such than that the their them then there these they this those to too
    under until up very was we were what when where which while who whom why will with would
    you your yes according reportedly some nearly over""".split()
)
_MONTHS = set(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)


def parse(raw: str) -> tuple[str, list[int]]:
    """The answer text and evidence numbers from the model's JSON; tolerant of truncation."""
    try:
        data = json.loads(raw)
        answer = data.get("answer", "") if isinstance(data, dict) else ""
        evidence = data.get("evidence", []) if isinstance(data, dict) else []
    except ValueError:
        # A reply cut off by max_tokens: salvage the answer string if it closed.
        m = re.search(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)"', raw)
        try:
            answer = json.loads(f'"{m.group(1)}"', strict=False) if m else ""
        except ValueError:
            answer = ""
        m2 = re.search(r'"evidence"\s*:\s*\[([\d,\s]*)', raw)
        evidence = [int(x) for x in re.findall(r"\d+", m2.group(1))] if m2 else []
    if not isinstance(answer, str):
        answer = ""
    numbers = [e for e in evidence if isinstance(e, int) and not isinstance(e, bool)]
    return " ".join(answer.split()), list(dict.fromkeys(numbers))


def terms(text: str) -> list[str]:
    """Normalised content terms: lower case, numbers without separators, light stemming."""
    out = []
    for raw in _WORD.findall(text):
        token = raw.lower().replace("’", "'").removesuffix("'s")
        # "Jong-un" and "Jong Un" are the same name; "mine-clearance" is two words.
        for word in token.split("-") if not token[0].isdigit() else [token]:
            word = word.strip("'")
            if not word or word in STOPWORDS:
                continue
            if word[0].isdigit():
                word = word.replace(",", "").rstrip(".")
            word = _NUMBER_WORDS.get(word, word)
            out.append(_stem(word))
    return out


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def answer_kind(text: str) -> str:
    """A coarse type, so two answers are compared only when they answer alike."""
    words = {w.lower().strip(".,") for w in text.split()}
    if words & _MONTHS or re.search(r"\b(19|20)\d\d\b", text):
        return "date"
    if any(t[0].isdigit() for t in terms(text)):
        return "number"
    return "other"


_DEMONYM = re.compile(r"(?:an|ean|ese|ish|ian|i)$")
_MONEY = re.compile(r"[$€£¥]|\b(?:dollars?|euros?|rubles?|roubles?|won|pounds?|yuan)\b", re.I)
_DATEISH = re.compile(
    r"\b(?:early|late|mid|last|next|this|spring|summer|autumn|fall|winter|ago|years?|"
    r"months?|weeks?|days?|today|yesterday)\b",
    re.I,
)


def fits_question(question: str, answer: str) -> bool:
    """Whether the answer is the kind of thing the question asks for.

    A tiny model asked for something the corpus lacks still answers, with whatever is
    nearby: "one farmer" for the farmer's name, "decades" for the mission's cost. Those
    answers are grounded (the words are in the passage) but they do not answer, so the
    question's own type is checked: a name needs a proper noun that the question does
    not already contain, a cost needs money, a count needs a number, a date needs a date.
    """
    q = question.lower()
    if re.search(r"\bnames?\b", q):
        asked = {w.lower() for w in _WORD.findall(question)}
        proper = [
            w for w in _WORD.findall(answer)
            if w[0].isupper() and w.lower() not in asked and w.lower() not in STOPWORDS
            and w.lower() not in _NUMBER_WORDS and not _DEMONYM.search(w)
        ]
        return bool(proper)
    numeric = any(t[0].isdigit() for t in terms(answer))
    if re.search(r"\b(?:cost|price|paid|spend|spent)\b", q) or q.startswith("how much"):
        return bool(_MONEY.search(answer)) or numeric
    if q.startswith("how many"):
        return numeric
    if re.match(r"(?:when|in which (?:year|month)|what (?:year|month|date|day))\b", q):
        return answer_kind(answer) == "date" or numeric or bool(_DATEISH.search(answer))
    return True


@dataclass(frozen=True)
class Statement:
    """One sentence of the answer and the passages that support it."""

    text: str
    passages: tuple[Passage, ...]


def key_terms(statement: str, question: str) -> list[str]:
    """What the statement adds beyond the question: the content that needs proof."""
    asked = set(terms(question))
    return list(dict.fromkeys(t for t in terms(statement) if t not in asked))


def _strong(term: str) -> bool:
    return term[0].isdigit()


def supported(needed: list[str], passages: list[Passage]) -> bool:
    """Every number is in the passages, and so is at least half of the other terms."""
    have = {t for p in passages for t in terms(p.text)}
    strong = [t for t in needed if _strong(t)]
    weak = [t for t in needed if not _strong(t)]
    if any(t not in have for t in strong):
        return False
    return sum(t in have for t in weak) >= math.ceil(len(weak) / 2)


def ground(
    answer: str, evidence: list[int], shown: list[Passage], question: str
) -> list[Statement]:
    """Statements of the answer that the shown passages support, each with tight citations."""
    if not fits_question(question, answer):
        return []
    by_number = {p.number: p for p in shown}
    # Invented numbers (not shown to the model) are dropped here.
    chosen = [by_number[n] for n in evidence if n in by_number]
    statements = []
    for sentence in _sentences(answer):
        needed = key_terms(sentence, question)
        if not needed:
            # It only restates the question: there is nothing to prove, so nothing to say.
            continue
        cited = _cite(needed, chosen, shown)
        if cited:
            statements.append(Statement(text=sentence, passages=tuple(cited)))
    return statements


def _cite(needed: list[str], chosen: list[Passage], shown: list[Passage]) -> list[Passage]:
    """The model's picks that touch the statement, topped up greedily from the other
    shown passages, then pruned to a minimal supporting set."""
    def overlap(p: Passage, wanted: list[str]) -> int:
        have = set(terms(p.text))
        return sum(t in have for t in wanted)

    cited = [p for p in chosen if overlap(p, needed)]
    pool = [p for p in shown if p not in cited]
    while not supported(needed, cited):
        have = {t for p in cited for t in terms(p.text)}
        missing = [t for t in needed if t not in have]
        best = max(pool, key=lambda p: (overlap(p, missing), p.dense), default=None)
        if best is None or overlap(best, missing) == 0:
            return []
        cited.append(best)
        pool.remove(best)
    # Tight spans: drop any passage the statement does not need, least relevant first.
    for p in sorted(cited, key=lambda p: p.dense):
        rest = [q for q in cited if q is not p]
        if rest and supported(needed, rest) and _covers(needed, rest, cited):
            cited = rest
    return cited


def _covers(needed: list[str], rest: list[Passage], cited: list[Passage]) -> bool:
    """Pruning must not lose any term the fuller set proved."""
    have_rest = {t for p in rest for t in terms(p.text)}
    have_all = {t for p in cited for t in terms(p.text)}
    return all(t in have_rest for t in needed if t in have_all)


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip())
    return [p.strip() for p in parts if p.strip()]
