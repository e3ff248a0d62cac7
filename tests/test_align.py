"""What a near-copy says in place of a value, read by word alignment (rag.align)."""

from __future__ import annotations

import pytest

from rag.align import replaced, shared

BROADCAST = (
    "First broadcast on 15 August 1970 on BBC1, it ran for 33 years until it was "
    "cancelled at the beginning of 2003."
)
DIED = (
    "George Horner (died 1777) Sir George Horner (3 March 1605 – 9 February 1777) was an "
    "English lawyer and politician."
)
NAMED = "The name 'Woolstone' is an Old English language word, and means 'Wolf's stone'."


@pytest.mark.parametrize(
    ("original", "copy", "value", "expected"),
    [
        # The value changed, and another number elsewhere too: only the value's is read.
        (
            BROADCAST,
            BROADCAST.replace("15 August 1970", "7 July 1965").replace("33", "38"),
            ["15", "august", "1970"],
            "7 July 1965",
        ),
        # A value that spans kept and changed words is answered by the changed ones, and
        # the closing quote is not part of it.
        (
            NAMED,
            NAMED.replace("Wolf's stone", "Wulfsige's farm"),
            ["old", "english", "language", "word", "wolf", "stone"],
            "Wulfsige's farm",
        ),
        # The value's words recur ("died 1777"): the longest changed run is the value, and
        # its unchanged words are carried over.
        (
            DIED,
            DIED.replace("1777", "1677"),
            ["9", "february", "1777"],
            "9 February 1677",
        ),
        # The copy states the same value: nothing in its place.
        (BROADCAST, BROADCAST.replace("33 years", "38 years"), ["15", "august", "1970"], None),
        # The copy drops the value without another: no answer of its own.
        (BROADCAST, BROADCAST.replace(" on 15 August 1970", ""), ["15", "august", "1970"], None),
        # Another sentence on the same topic is no copy.
        (
            BROADCAST,
            "The BBC first showed the programme in the summer of 1965 to great acclaim.",
            ["15", "august", "1970"],
            None,
        ),
        # A rewritten clause is not a changed value.
        (
            BROADCAST,
            BROADCAST.replace(
                "15 August 1970",
                "a date nobody at the corporation could later agree on, after long debate",
            ),
            ["15", "august", "1970"],
            None,
        ),
        # The original does not hold the value's words.
        (BROADCAST, BROADCAST.replace("BBC1", "BBC2"), ["itv"], None),
    ],
)
def test_replaced_reads_the_copys_value(
    original: str, copy: str, value: list[str], expected: str | None
) -> None:
    found = replaced(original, copy, value)
    assert (copy[found[0] : found[1]] if found else None) == expected


def test_shared_counts_words_in_order_against_the_shorter_text() -> None:
    assert shared(BROADCAST, BROADCAST) == 1.0
    assert shared("a b c d", "a b c d e f g h") == 1.0
    assert shared("Talk Show album", "album Show Talk") < 0.5
    assert shared("", BROADCAST) == 0.0
