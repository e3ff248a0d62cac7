"""From a draft answer to grounded sentences, each with the shown passages that prove it.

The model only points at passage numbers. Code decides what is cited: numbers that name
no shown passage are dropped, and a sentence whose key content (numbers, names, other
content words) is not in its cited passages is re-cited from the shown passages or
dropped. Tiny models answer from their own memory, so nothing here trusts them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rag.policy import Policy
from rag.records import Grounded, Passage
from rag.text import answer_sentences, terms
from rag.values import fuller, trimmed, whole


def key_terms(statement: str, question: str) -> list[str]:
    """What the statement adds beyond the question: the content that needs proof."""
    asked = set(terms(question))
    return list(dict.fromkeys(t for t in terms(statement) if t not in asked))


def _strong(term: str) -> bool:
    # A wrong number is a wrong answer, so numbers must all be found; words may vary.
    return term[0].isdigit()


def supported(needed: Sequence[str], passages: Sequence[Passage], policy: Policy) -> bool:
    """Every number is in the passages, and so is `policy.support_share` of the other terms."""
    have = {t for p in passages for t in terms(p.text)}
    strong = [t for t in needed if _strong(t)]
    weak = [t for t in needed if not _strong(t)]
    if any(t not in have for t in strong):
        return False
    # Rounded first so a share like 0.3 of 10 terms asks for 3, not ceil(3.0000000000000004).
    return sum(t in have for t in weak) >= math.ceil(round(len(weak) * policy.support_share, 9))


def ground(
    answer: str,
    evidence: Sequence[int],
    shown: Sequence[Passage],
    question: str,
    policy: Policy,
) -> list[Grounded]:
    """Sentences of the answer that the shown passages support, each with tight citations.
    Whether the answer fits the question is not asked here: rag.decide weighs it."""
    by_number = {p.number: p for p in shown}
    # Invented numbers (not shown to the model) are dropped here.
    chosen = [by_number[n] for n in evidence if n in by_number]
    grounded = []
    for sentence in answer_sentences(answer):
        needed = key_terms(sentence, question)
        if not needed:
            # It only restates the question: there is nothing to prove, so nothing to say.
            continue
        cited = _cite(needed, chosen, shown, policy)
        if cited:
            text = fuller(trimmed(sentence, question), cited, question)
            text = whole(text, cited, policy.phrase_words)
            grounded.append(Grounded(text=text, passages=tuple(cited)))
    return grounded


def _cite(
    needed: list[str], chosen: list[Passage], shown: Sequence[Passage], policy: Policy
) -> list[Passage]:
    """The model's picks that touch the statement, topped up greedily from the other
    shown passages, then pruned to a minimal supporting set."""

    def overlap(p: Passage, wanted: list[str]) -> int:
        have = set(terms(p.text))
        return sum(t in have for t in wanted)

    cited = [p for p in chosen if overlap(p, needed)]
    pool = [p for p in shown if p not in cited]
    while not supported(needed, cited, policy):
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
        if rest and supported(needed, rest, policy) and _covers(needed, rest, cited):
            cited = rest
    return cited


def _covers(needed: list[str], rest: list[Passage], cited: list[Passage]) -> bool:
    """Pruning must not lose any term the fuller set proved."""
    have_rest = {t for p in rest for t in terms(p.text)}
    have_all = {t for p in cited for t in terms(p.text)}
    return all(t in have_rest for t in needed if t in have_all)
