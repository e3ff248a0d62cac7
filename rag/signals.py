"""The numbers the answer/refuse decision reads: one row per question, all cheap, all
from what the question path already has (retrieval scores, the model's token
log-probabilities, the grounded citations). Recorded with every answer, so the decision
can be refitted (benchmarks/calibrate.py) without running the model again."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import NamedTuple

from rag.qtypes import fits_question
from rag.records import Completion, Grounded, Passage
from rag.text import STOPWORDS, WORD, terms

# Names in the order the fitted coefficients use; calibrate.py fits over exactly these.
NAMES = (
    "top_similarity",
    "similarity_margin",
    "cited_similarity",
    "cited_rank",
    "question_coverage",
    "answer_logprob_mean",
    "answer_logprob_min",
    "answer_terms",
    "fits_type",
    "verbatim",
    "cited_passages",
)

# Signals that say what the answer's sources lack of the question. They are not inputs to
# the score: the policy may name any of them as a veto (Policy.vetoes), a refusal whenever
# it is non-zero, chosen on data by benchmarks/calibrate.py fit-vetoes. Whether a veto
# holds depends on the corpus: whole articles name what they are about, but web passages
# (RAMDocs) often leave the name out, so names_unseen would refuse right answers there.
LACKS = ("names_unseen", "numbers_unseen", "negation_unmatched", "name_swapped")

_ANSWER_VALUE = re.compile(r'"answer"\s*:\s*"')
# A name or number the question holds: a capitalised word past its first, or a numeral
# with what follows it ("528th", "1,000").
_NAME = re.compile(r"(?<!^)\b(?:[A-Z][\w'’-]+|\d[\w,.]*)")
_NEGATION = re.compile(r"\b(?:not|never|no|without)\b|n't\b", re.I)
# A word is matched on its first letters so that "Russia" is seen in "Russian" and
# "Korea" in "Korean"; a number is matched whole.
_PREFIX = 5


def compute(
    question: str,
    shown: Sequence[Passage],
    answer: str,
    grounded: Sequence[Grounded],
    completion: Completion,
    document: Callable[[str], str],
) -> dict[str, float]:
    """The signal row for one draft answer and its grounding; `document` gives a cited
    document's whole text."""
    cited = [p for g in grounded for p in g.passages]
    top = shown[0].dense if shown else 0.0
    second = shown[1].dense if len(shown) > 1 else 0.0
    logprobs = _answer_logprobs(completion)
    flat = " ".join(answer.split()).lower()
    return {
        "top_similarity": top,
        "similarity_margin": top - second,
        "cited_similarity": max((p.dense for p in cited), default=0.0),
        # 1 when the best shown passage is cited, smaller the further down it sits.
        "cited_rank": 1.0 / min((p.number for p in cited), default=len(shown) + 1),
        # SQuAD-style questions are written from the sentence that answers them, so a
        # cited sentence that shares the question's words is more often the right one.
        "question_coverage": question_coverage(question, cited),
        "answer_logprob_mean": sum(logprobs) / len(logprobs) if logprobs else 0.0,
        "answer_logprob_min": min(logprobs, default=0.0),
        "answer_terms": float(len(terms(answer))),
        "fits_type": float(fits_question(question, answer)),
        "verbatim": float(any(flat in " ".join(p.text.split()).lower() for p in cited)),
        "cited_passages": float(len(cited)),
        **lacks(
            question,
            [p.text for p in cited],
            [document(d) for d in dict.fromkeys(p.doc for p in cited)],
        ),
    }


def lacks(question: str, sentences: Sequence[str], documents: Sequence[str]) -> dict[str, float]:
    """The LACKS signals of an answer citing `sentences` from `documents` (whole texts).

    SQuAD 2.0's adversarial questions are written from a real one by swapping a name or a
    number ("developed in 1995" where the article says 1985) or adding a negation; the
    model then answers from the sentence the original was written from. A document that
    never mentions a name the question holds is not about what it asks."""
    seen = frozenset().union(*(_word_keys(d) for d in documents))
    # Nothing cited: nothing to be unseen in.
    names = {_key(t) for m in _NAME.findall(question) for t in terms(m)} if documents else set()
    unseen = names - seen
    negated = bool(_NEGATION.search(question))
    return {
        "names_unseen": float(len(unseen)),
        # Numbers alone: a passage may leave out the name of what it describes, but a
        # year or count the question holds is one it would state.
        "numbers_unseen": float(sum(t[0].isdigit() for t in unseen)),
        "negation_unmatched": float(negated and not any(_NEGATION.search(s) for s in sentences)),
        "name_swapped": float(name_swapped(question, sentences)),
    }


def name_swapped(question: str, sentences: Sequence[str]) -> bool:
    """A name of the question stands in no cited sentence, and a word beside it in the
    question stands beside another name there: "What did Toyota rebrand its Forte as?"
    against "Mitsubishi rebranded its Forte as the Dodge D-50", "the Canadian Union"
    against "the European Union". The question was written from that sentence with the
    name swapped, so the sentence does not answer it. A sentence that refers back with a
    pronoun ("It was founded in 1867") has no other name beside the word, and passes; so
    does one that writes the name out in more words ("Robert Asa Bloomer" for "Senator
    Bloomer")."""
    asked = _spaced_words(question)
    keys = {w.key for w in asked}
    cited = [_spaced_words(s) for s in sentences]
    have = {w.key for words in cited for w in words}
    for i, word in enumerate(asked[1:], start=1):
        if not word.name or word.key in have:
            continue
        for step in (1, -1):
            j = i + step
            # The word beside it: a content word, with nothing but a space between.
            if not 0 < j < len(asked) or asked[j].stop or not asked[min(i, j)].spaced:
                continue
            for words in cited:
                for k, w in enumerate(words):
                    at = k - step
                    if w.key != asked[j].key or not 0 <= at < len(words):
                        continue
                    other = words[at]
                    if not (words[min(k, at)].spaced and other.name) or other.key in keys:
                        continue
                    # One name for one name: "Robert Asa Bloomer" for "Senator Bloomer" is
                    # the name written out, not another one.
                    if _names_in_a_row(words, at, -step) == _names_in_a_row(asked, i, -step):
                        return True
    return False


class _Word(NamedTuple):
    """A word as name_swapped compares it."""

    text: str
    key: str  # lower case, on its first letters (_key)
    stop: bool  # a stopword
    name: bool  # capitalised and no stopword
    spaced: bool  # only a space stands between it and the next word


def _spaced_words(text: str) -> list[_Word]:
    """The text's words, accents folded, a hyphenated one split ("Jong-un" is "Jong" and
    "un") and a possessive dropped ("Hill's" is "Hill")."""
    out: list[_Word] = []
    # Accents folded: a question typed "Temur" names the "Temür" of its source.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    matches = list(WORD.finditer(text))
    for n, m in enumerate(matches):
        parts = [p for p in re.sub(r"['’]s$", "", m.group()).split("-") if p]
        after = text[m.end() : matches[n + 1].start()] if n + 1 < len(matches) else "."
        for x, part in enumerate(parts):
            low = part.lower()
            stop = low in STOPWORDS
            spaced = x < len(parts) - 1 or (after.isspace() and bool(after))
            out.append(_Word(part, _key(low), stop, part[0].isupper() and not stop, spaced))
    return out


def _names_in_a_row(words: list[_Word], start: int, step: int) -> int:
    """How many names in a row, space-joined, from `start` on in the `step` direction."""
    n, at = 0, start
    while 0 <= at < len(words) and words[at].name:
        n += 1
        nxt = at + step
        if not 0 <= nxt < len(words) or not words[min(at, nxt)].spaced:
            break
        at = nxt
    return n


@functools.lru_cache(maxsize=64)
def _word_keys(text: str) -> frozenset[str]:
    # A question path reads the same few documents again and again (every source asked).
    return frozenset(_key(t) for t in terms(text))


def _key(term: str) -> str:
    return term if term[0].isdigit() else term[:_PREFIX]


def question_coverage(question: str, passages: Sequence[Passage]) -> float:
    """The share of the question's content terms that the passages hold (0 without any)."""
    asked = set(terms(question))
    have = {t for p in passages for t in terms(p.text)}
    return len(asked & have) / len(asked) if asked else 0.0


def _answer_logprobs(completion: Completion) -> list[float]:
    """Log-probabilities of the tokens inside the reply's "answer" string.

    The reply is JSON; the tokens of its scaffolding ("evidence", brackets) say nothing
    about the answer. Tokens are located by their text, rebuilt piece by piece."""
    pieces = completion.tokens
    if not pieces or len(pieces) != len(completion.logprobs):
        return list(completion.logprobs)
    text = "".join(pieces)
    m = _ANSWER_VALUE.search(text)
    if not m:
        return list(completion.logprobs)
    end = text.find('"', m.end())
    end = len(text) if end < 0 else end
    out, pos = [], 0
    for piece, logprob in zip(pieces, completion.logprobs, strict=True):
        if pos + len(piece) > m.end() and pos < end:
            out.append(logprob)
        pos += len(piece)
    return out or list(completion.logprobs)
