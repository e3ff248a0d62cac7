"""Sides into statements, and statements into the answer's one rendered sentence: `[n]`
markers that index the answer's citations from 1. Written here once; renderers read
statements, not this text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.conflicts import Side
from rag.records import AMBIGUOUS, CONFLICT, Citation, Passage, Statement

# The web page titles a conflict with it; the sentence leads with it too.
CONFLICT_LEAD = "The sources differ."
DISPUTED = "(disputed)"
_COUNTS = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}


def statements(sides: Sequence[Side], cite: Callable[[Passage], Citation]) -> tuple[Statement, ...]:
    """One answer: one statement per grounded sentence. Several sides: one statement per
    side, with every agreeing source's citations and the documents that give it."""
    if len(sides) == 1:
        [side] = sides
        return tuple(
            Statement(
                g.text,
                tuple(cite(p) for p in g.passages),
                tuple(dict.fromkeys(p.doc for p in g.passages)),
                subject=side.subject,
                confidence=side.confidence,
            )
            for g in side.grounded
        )
    return tuple(
        Statement(
            side.value,
            tuple(dict.fromkeys(cite(p) for g in side.grounded for p in g.passages)),
            side.docs,
            disputed=side.disputed,
            subject=side.subject,
            confidence=side.confidence,
        )
        for side in sides
    )


def citations(stated: tuple[Statement, ...]) -> tuple[Citation, ...]:
    """The distinct citations of the statements, in first-use order."""
    return tuple(dict.fromkeys(c for s in stated for c in s.citations))


def marker(n: int) -> str:
    return f"[{n}]"


def text(stated: tuple[Statement, ...], kind: str) -> str:
    """The answer sentence. One side: each statement followed by its markers. Several:
    "The sources differ: A [1][3]; B (disputed) [2]." or, for subjects sharing a name,
    "Two subjects share this name. X (film): A [1]; X (album): B [2]." """
    numbers = {c: n for n, c in enumerate(citations(stated), 1)}

    def marks(s: Statement) -> str:
        return "".join(marker(numbers[c]) for c in s.citations)

    if kind not in (CONFLICT, AMBIGUOUS):
        return " ".join(f"{s.text.rstrip('.')} {marks(s)}." for s in stated)
    parts = []
    for s in stated:
        label = f"{s.subject}: " if kind == AMBIGUOUS and s.subject else ""
        flag = f" {DISPUTED}" if s.disputed else ""
        parts.append(f"{label}{s.text.rstrip('.')}{flag} {marks(s)}")
    lead = heading(kind, len(stated))
    if kind != AMBIGUOUS:
        lead = lead.rstrip(".") + ":"
    return f"{lead} {'; '.join(parts)}."


def heading(kind: str, sides: int) -> str:
    """What a multi-side answer is: sources that differ, or subjects sharing a name."""
    if kind == AMBIGUOUS:
        return f"{_COUNTS.get(sides, str(sides))} subjects share this name."
    return CONFLICT_LEAD
