"""When another source answers the same question differently.

The first answer cites some documents. If a document it did not cite holds one of the
best passages, that document alone is asked the question. Its answer either agrees (its
citations join the first answer's) or, when it answers alike about the same thing with
comparably relevant evidence, stands beside the first as the other side of a conflict."""

from __future__ import annotations

from dataclasses import replace

from rag.policy import Policy
from rag.qtypes import answer_kind
from rag.records import Grounded, Passage
from rag.text import terms


def other_document(shown: list[Passage], cited: set[str], policy: Policy) -> str | None:
    """A document the answer did not cite that has one of the top passages, and one nearly
    as relevant as the best: it may confirm the answer or contradict it.

    Both seed articles cover one event, so "among the top passages" alone held for almost
    every question and doubled the model calls (benchmarks: 2.0 calls per answer)."""
    if not shown:
        return None
    best = shown[0].dense
    for p in shown[: policy.conflict_top]:
        if p.doc not in cited and p.dense >= policy.conflict_relevance * best:
            return p.doc
    return None


def own_passages(shown: list[Passage], doc: str) -> list[Passage]:
    """The shown passages of one document, renumbered from 1 for a prompt of its own."""
    return [replace(p, number=n + 1) for n, p in enumerate(x for x in shown if x.doc == doc)]


def compare(
    question: str,
    first_text: str,
    first: list[Grounded],
    second_text: str,
    second: list[Grounded],
    policy: Policy,
) -> tuple[list[list[Grounded]], bool]:
    """The sides to show and whether they conflict.

    Agreeing sources add citations to one side. A disagreeing one makes a conflict only
    when it answers alike (same kind of value) and both sources' evidence speaks to the
    same part of the question; otherwise it is a passage on a neighbouring topic and is
    left out. "Same part" means the question terms one source's evidence contains are a
    subset of the other's: "established in May" and "deployed in early August" share
    "regiment" but only one says "established", so they answer different questions."""
    a, b = set(terms(first_text)), set(terms(second_text))
    if a <= b or b <= a:
        extra = tuple(p for g in second for p in g.passages)
        merged = [replace(first[0], passages=first[0].passages + extra), *first[1:]]
        return [merged], False
    first_passages = [p for g in first for p in g.passages]
    second_passages = [p for g in second for p in g.passages]
    if (
        answer_kind(first_text) == answer_kind(second_text)
        and _comparable(_coverage(question, first_passages), _coverage(question, second_passages))
        and max(p.dense for p in second_passages)
        >= policy.conflict_relevance * max(p.dense for p in first_passages)
    ):
        return [first, second], True
    return [first], False


def _coverage(question: str, cited: list[Passage]) -> set[str]:
    """The question's content terms that the cited passages contain."""
    have = {t for p in cited for t in terms(p.text)}
    return {t for t in terms(question) if t in have}


def _comparable(a: set[str], b: set[str]) -> bool:
    return a <= b or b <= a
