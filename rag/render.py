"""Statements into the answer's one rendered sentence: `[n]` markers that index the
answer's citations from 1. Written here once; renderers read statements, not this text."""

from __future__ import annotations

from collections.abc import Callable

from rag.records import Citation, Grounded, Passage, Statement

CONFLICT_LEAD = "The sources differ."


def statements(
    sides: list[list[Grounded]], cite: Callable[[Passage], Citation]
) -> tuple[Statement, ...]:
    """One statement per grounded sentence, each with its citations and documents."""
    out = []
    for side in sides:
        for g in side:
            docs = tuple(dict.fromkeys(p.doc for p in g.passages))
            out.append(Statement(g.text, tuple(cite(p) for p in g.passages), docs))
    return tuple(out)


def citations(stated: tuple[Statement, ...]) -> tuple[Citation, ...]:
    """The distinct citations of the statements, in first-use order."""
    return tuple(dict.fromkeys(c for s in stated for c in s.citations))


def marker(n: int) -> str:
    return f"[{n}]"


def text(stated: tuple[Statement, ...], conflict: bool) -> str:
    """The answer sentence: each statement followed by its markers; in a conflict each
    side is introduced by the document that says it."""
    numbers = {c: n for n, c in enumerate(citations(stated), 1)}
    parts = []
    for s in stated:
        marks = "".join(marker(numbers[c]) for c in s.citations)
        sentence = s.text.rstrip(".")
        if conflict:
            sentence = f"{s.docs[0]}: {sentence}"
        parts.append(f"{sentence} {marks}.")
    body = " ".join(parts)
    return f"{CONFLICT_LEAD} {body}" if conflict else body
