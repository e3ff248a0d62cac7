"""Shared pieces of the external evaluation sets (SQuAD 2.0 and RAMDocs): where the data
lives, SQuAD answer normalisation, token F1, when an answer states a phrase, reading an
`ask --json` answer dict, and seeded sampling. Pure functions; no model is loaded here.

The set-specific loaders and scores are in `rag.external_squad` and `rag.external_ramdocs`.
The data is third-party and read-only: it is read in place, never copied into the repo.
"""

from __future__ import annotations

import json
import random
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rag.errors import InputError
from rag.text import strip_markers

# The folder beside the repository that holds squad2/ and ramdocs/ (see their READMEs).
DEFAULT_ROOT = (Path(__file__).resolve().parents[1] / "../shared/external").resolve()

# Markers like "[1]" or "[1, 2]" can sit between an answer and its punctuation ("May [1].").
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Digits with thousands separators or a decimal part: "3,171", "42.7", "1989".
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

T = TypeVar("T")
Answer = Mapping[str, Any]


def _is_punctuation(ch: str) -> bool:
    # SQuAD removes string.punctuation; Unicode punctuation (en dashes, curly quotes) is
    # removed too, because these corpora write "1923–1929" where a model writes "1923-1929".
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    have = normalize(prediction)
    return float(any(have == normalize(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred, want = normalize(prediction).split(), normalize(gold).split()
    if not pred or not want:
        # SQuAD's rule: two empty answers agree, an empty and a non-empty one do not.
        return float(pred == want)
    same = sum((Counter(pred) & Counter(want)).values())
    if not same:
        return 0.0
    precision, recall = same / len(pred), same / len(want)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 against the best-matching gold answer (0.0 when there is none)."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


def numbers(text: str) -> frozenset[str]:
    """The numbers written in the text, thousands separators dropped ("3,171" -> "3171")."""
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(text))


def occurs(phrase: str, text: str) -> bool:
    """The normalised phrase occurs in the normalised text as whole tokens."""
    want = normalize(phrase)
    return bool(want) and f" {want} " in f" {normalize(text)} "


def states(phrase: str, text: str) -> bool:
    """The text states the phrase: it occurs after normalisation, or the phrase has numbers
    and every one of them occurs in the text ("19 Sept. 1940" states "19 September 1940")."""
    if occurs(phrase, text):
        return True
    wanted = numbers(phrase)
    return bool(wanted) and wanted <= numbers(text)


@dataclass(frozen=True)
class Claim:
    """One statement of an answer: its text and every document it cites or names."""

    text: str
    docs: frozenset[str]


def claims(answer: Answer) -> list[Claim]:
    """The answer's statements; a refusal has none. An answer dict without statements (an
    older contract) is one claim: its text without markers, citing all its citations."""
    if answer.get("abstained"):
        return []
    cites = answer.get("citations") or []
    statements = answer.get("statements") or []
    if not statements:
        text = strip_markers(str(answer.get("answer", ""))).strip()
        return [Claim(text, frozenset(c["doc"] for c in cites))] if text else []
    return [
        Claim(
            text=str(s["text"]),
            docs=frozenset(s.get("docs") or ()) | {cites[i]["doc"] for i in s.get("citations", [])},
        )
        for s in statements
    ]


def answer_text(answer: Answer) -> str:
    """What the answer claims, read from its statements (never from the rendered prose, so
    "The sources differ." and document-name prefixes are not scored); empty for a refusal."""
    return " ".join(c.text for c in claims(answer))


def citation_valid(citation: Mapping[str, Any], texts: Mapping[str, str]) -> bool:
    """The span invariant: the document exists and its text[start:end] is the quote."""
    text = texts.get(citation.get("doc", ""))
    start, end = citation.get("start"), citation.get("end")
    return (
        text is not None
        and isinstance(start, int)
        and isinstance(end, int)
        and 0 <= start <= end <= len(text)
        and text[start:end] == citation.get("quote")
    )


def latency(answer: Answer) -> float:
    """Seconds the answer took end to end, as the answer itself reports."""
    return float((answer.get("timings") or {}).get("total_s", 0.0))


def confidence(answer: Answer) -> float | None:
    """The calibrated answer score, when the decision used one."""
    value = answer.get("confidence")
    return None if value is None else float(value)


def sample(cases: Sequence[T], n: int | None, seed: int) -> list[T]:
    """`n` cases drawn without replacement by a seeded RNG, kept in file order; all of them
    when `n` is None or not smaller than the set. The same seed always draws the same."""
    if n is None or n >= len(cases):
        return list(cases)
    if n < 0:
        raise InputError(f"the sample size must be at least 0, not {n}")
    picked = sorted(random.Random(seed).sample(range(len(cases)), n))
    return [cases[i] for i in picked]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; a bad line is an InputError that names it."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object")
        rows.append(row)
    return rows


def require(row: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    """Raise an InputError naming the line when any of `keys` is missing."""
    missing = [k for k in keys if k not in row]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")


def load_texts(folder: Path) -> dict[str, str]:
    """Every file under the corpus folder, by name relative to it, decoded exactly as the
    citations' offsets count (UTF-8, newlines untouched)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes().decode("utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def share(flags: Sequence[bool | float]) -> float:
    """The mean of the flags or values; 0.0 for an empty group, so a missing kind of
    question can never look perfect."""
    return sum(flags) / len(flags) if flags else 0.0
