"""Offsets are exact for any Unicode text: chunks and sentences slice back to themselves."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_text, sentence_spans

# Text built from pieces news copy really contains, plus arbitrary Unicode.
PIECES = st.sampled_from(
    [
        "Kim said.",
        " ",
        "\n",
        "\r\n",
        "\n\n",
        "‘quoted.’",
        "“Hi!” ",
        "—",
        "…",
        "🎉",
        "é",
        "e\u0301",
        "1,000",
        "Dr. No",
        "?",
        "\t",
        "word",
        "Ünïcödé",
        "\u2028",
    ]
)
TEXT = st.one_of(st.text(), st.lists(st.one_of(PIECES, st.text(max_size=5))).map("".join))


@given(TEXT, st.integers(min_value=5, max_value=300), st.integers(min_value=0, max_value=3))
@settings(max_examples=300, deadline=None)
def test_chunks_slice_back_to_their_text(text: str, max_chars: int, overlap: int) -> None:
    chunks = chunk_text("d.txt", text, max_chars, overlap)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert 0 < len(c.text) <= max_chars
        assert c.text == c.text.strip()
    # Chunks move forward, and together they cover every non-space character.
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_sentences_tile_the_text(text: str) -> None:
    spans = list(sentence_spans(text, base=7, max_chars=50))
    for (s, e), nxt in zip(spans, [*spans[1:], None], strict=False):
        assert text[s - 7 : e - 7].strip() == text[s - 7 : e - 7] != ""
        assert e - s <= 50
        if nxt:
            assert e <= nxt[0]


def test_sentences_split_on_punctuation_quotes_and_lines() -> None:
    text = "He said ‘go.’ They went! Did they?\nHeadline without stop\nLast one."
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == ["He said ‘go.’", "They went!", "Did they?", "Headline without stop", "Last one."]


def test_overlap_repeats_one_sentence_between_chunks() -> None:
    text = "One is here. Two is here. Three is here. Four is here."
    chunks = chunk_text("d", text, max_chars=28, overlap=1)
    assert [c.text for c in chunks] == [
        "One is here. Two is here.",
        "Two is here. Three is here.",
        "Three is here. Four is here.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # An initial or a run of initials is no sentence end.
        (
            "The first was directed by John M. Stahl in 1934. It won.",
            ["The first was directed by John M. Stahl in 1934.", "It won."],
        ),
        ("He joined the U.S. Army. He left.", ["He joined the U.S. Army.", "He left."]),
        ("See p. 10. Then stop.", ["See p. 10.", "Then stop."]),
        # Nor is an abbreviation that stands before a name or a number.
        (
            "Mr. Smith met Dr. Jones in St. Louis on Sept. 5. They talked.",
            ["Mr. Smith met Dr. Jones in St. Louis on Sept. 5.", "They talked."],
        ),
        ("It is No. 5 on the list. Next.", ["It is No. 5 on the list.", "Next."]),
        # Nor a full stop before a lower-case word.
        ("Troops, e.g. engineers, went. Home.", ["Troops, e.g. engineers, went.", "Home."]),
        ("Main St. in Greenville. Next.", ["Main St. in Greenville.", "Next."]),
        # Other words still end sentences.
        (
            "It is in Greenville, Ky. He lived there.",
            ["It is in Greenville, Ky.", "He lived there."],
        ),
        # Nor ! ? or an ellipsis before a lower-case word: a title, a quoted question.
        (
            "What's My Name? What's My Name? is the ninth EP by T-ara. It sold.",
            ["What's My Name?", "What's My Name? is the ninth EP by T-ara.", "It sold."],
        ),
        (
            "\u201cWhy?\u201d he asked. Yahoo! is a site.",
            ["\u201cWhy?\u201d he asked.", "Yahoo! is a site."],
        ),
        ("A vast zone\u2026 was made safe. Then.", ["A vast zone\u2026 was made safe.", "Then."]),
        # They end one before anything else, and a line break always ends one.
        ("Who went? They did! Fine.", ["Who went?", "They did!", "Fine."]),
        ("Who went?\nthey did.", ["Who went?", "they did."]),
        # The cost, measured and accepted: a sentence that ends in an initial runs on.
        ("He fought in World War I. Then he wrote.", ["He fought in World War I. Then he wrote."]),
    ],
)
def test_sentences_do_not_end_at_initials_or_abbreviations(text: str, expected: list[str]) -> None:
    assert [text[s:e] for s, e in sentence_spans(text)] == expected
