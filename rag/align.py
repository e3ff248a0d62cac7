"""Word alignment of a sentence with its near-copy: what the copy says in place of a value.

A planted copy of a document repeats the original's sentences and changes the answer
("First broadcast on 15 August 1970 on BBC1" against "First broadcast on 7 July 1965 on
BBC1"). Aligned word by word, the two sentences agree around the value and differ at it,
and the words the copy has there are its answer: found by code, with its exact span,
where a small model asked the copy alone often copies the wrong words."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

from rag.text import WORD, terms

# The aligned sentences must share at least this share of the shorter one's words, in
# order: a copy with its value changed keeps nearly all of them, two sentences that only
# talk about the same thing keep few.
MIN_SHARED = 0.6
# A replacement longer than this many words is a rewritten clause, not a changed value.
MAX_VALUE_WORDS = 12


def _words(text: str) -> list[tuple[str, int, int]]:
    """Each word's comparable form and its span; punctuation is not a word here."""
    return [(m.group().lower(), m.start(), m.end()) for m in WORD.finditer(text)]


def _matcher(
    wa: list[tuple[str, int, int]], wb: list[tuple[str, int, int]]
) -> SequenceMatcher[str]:
    return SequenceMatcher(None, [w for w, _, _ in wa], [w for w, _, _ in wb], autojunk=False)


def _share(matcher: SequenceMatcher[str], na: int, nb: int) -> float:
    """The share of the shorter side's words the matcher found in common, in order."""
    if not na or not nb:
        return 0.0
    return sum(block.size for block in matcher.get_matching_blocks()) / min(na, nb)


def shared(a: str, b: str) -> float:
    """The share of the shorter text's words that the two have in common, in order."""
    wa, wb = _words(a), _words(b)
    return _share(_matcher(wa, wb), len(wa), len(wb))


def replaced(original: str, copy: str, value_terms: Sequence[str]) -> tuple[int, int] | None:
    """The (start, end) in `copy` of what stands where `original` states the value (the
    words whose terms are `value_terms`), when the copy changed it.

    The value is the longest run of consecutive value words that the copy changed ("9
    February 1777" rather than the "1777" of "died 1777" earlier in the sentence); its
    words are carried over to the copy, the changed ones as the copy has them ("9
    February 1677"). None when the sentences do not align (fewer than MIN_SHARED of the
    words in common), when the copy changed none of the value's words, or when the result
    is longer than MAX_VALUE_WORDS."""
    wa, wb = _words(original), _words(copy)
    wanted = set(value_terms)
    at = [i for i, (_, s, e) in enumerate(wa) if set(terms(original[s:e])) & wanted]
    if not at:
        return None
    matcher = _matcher(wa, wb)
    if _share(matcher, len(wa), len(wb)) < MIN_SHARED:
        return None
    codes = matcher.get_opcodes()
    # (words of the value in the run, first and last word of the copy's value)
    best: tuple[int, int, int] | None = None
    for run in _runs(at):
        mapped, changed = [], False
        for tag, i1, i2, j1, j2 in codes:
            inside = [i for i in run if i1 <= i < i2]
            if not inside:
                continue
            if tag == "equal":
                mapped += [j1 + i - i1 for i in inside]
            elif tag == "replace":
                mapped += list(range(j1, j2))
                changed = True
        # Only words put in place of the value's count: where the copy keeps them all it
        # states the same value, and where it drops them it states none.
        if changed and mapped and (best is None or len(run) > best[0]):
            best = (len(run), min(mapped), max(mapped))
    if best is None or best[2] - best[1] >= MAX_VALUE_WORDS:
        return None
    start, end = wb[best[1]][1], wb[best[2]][2]
    # A word may carry a closing quote or hyphen ("farm'" of "means 'Wulfsige's farm'").
    while end > start and copy[end - 1] in _TRAILING:
        end -= 1
    return (start, end) if end > start else None


def _runs(positions: list[int]) -> list[list[int]]:
    """Sorted word positions split where they stop being consecutive."""
    out: list[list[int]] = []
    for i in positions:
        if out and i == out[-1][-1] + 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


_TRAILING = "'’-"
