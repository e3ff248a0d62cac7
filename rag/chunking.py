"""Sentence-aware chunking that keeps exact character offsets.

Every span produced here satisfies `text[start:end] == span_text`, for any Unicode
input: we only ever compute offsets and slice, never rebuild or normalise text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.records import Chunk

# Which rule cut the sentences, recorded in the index's manifest: chunks, and the spans
# citations are read from, follow it. 2: no cut after an initial or an abbreviation.
# 3: no cut before a lower-case word after ! ? or an ellipsis either.
# Raise it whenever the cuts change, so an index cut by another rule is rebuilt.
SENTENCE_RULE = 3

# A sentence ends at . ! ? or an ellipsis, plus any closing quotes or brackets, when
# whitespace follows. A line break always ends a sentence: headlines and paragraphs in
# news copy often lack final punctuation.
_BOUNDARY = re.compile(r"""[.!?…]+["'’”)\]]*(?=\s)|\n""")
# A lone full stop after an initial ("John M. Stahl", "U.S. Army", "p. 10") or after an
# abbreviation that stands before a name or number ("St. Louis", "No. 5") is no sentence
# end, and neither is one followed by a lower-case word ("e.g. the", "Inc. or its"). Cut
# there, a name is split across two spans, and a value read from the first is cut short.
# The cost, a sentence that really ends in "World War I." joined to the next, is the
# lesser harm: a longer span still holds its sentence whole. The same holds for ! ? and
# an ellipsis before a lower-case word: a title that ends in one ("What's My Name? is the
# ninth extended play by T-ara", "Yahoo! is"), a quoted question ("'Why?' he asked") or
# a trailing-off clause goes on, and cut there the source was asked about its title
# without the words that answer (RAMDocs a).
_ABBREVIATED = re.compile(
    r"""(?:(?<![\w.'’-])(?:[A-Za-z]\.)*[A-Za-z]
    |(?<![\w'’-])(?:Mr|Mrs|Ms|Dr|St|Mt|Ft|Jr|Sr|Prof|Gen|Lt|Col|Capt|Sgt|Rev|Hon|Gov|Sen
    |Rep|No|Nos|Vol|vs|Inc|Co|Corp|Ltd|Bros|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov
    |Dec|approx|ca|e\.g|i\.e|cf|al|fig|Fig))$""",
    re.VERBOSE,
)
_LOWER_NEXT = re.compile(r"\s*[a-z]")


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """A boundary match is a sentence end unless a lower-case word follows it, or it is a
    lone full stop that abbreviates. A line break always is."""
    if match.group() == "\n":
        return True
    if _LOWER_NEXT.match(text, match.end()):
        return False
    if match.group() != ".":
        return True
    return not _ABBREVIATED.search(text, max(0, match.start() - 12), match.start())


def sentence_spans(text: str, base: int = 0, max_chars: int = 400) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence in `text`, trimmed of surrounding whitespace.

    Sentences longer than `max_chars` are cut into pieces at whitespace (or hard, when a
    piece has none) so no span can outgrow a chunk.
    """
    pos = 0
    cuts = [m.end() for m in _BOUNDARY.finditer(text) if _ends_sentence(text, m)]
    cuts.append(len(text))
    for cut in cuts:
        start, end = _trim(text, pos, cut)
        pos = cut
        while end - start > max_chars:
            piece_end = _soft_cut(text, start, start + max_chars)
            s, e = _trim(text, start, piece_end)
            if e > s:
                yield base + s, base + e
            start, end = _trim(text, piece_end, end)
        if end > start:
            yield base + start, base + end


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _soft_cut(text: str, start: int, limit: int) -> int:
    """The last whitespace position in (start, limit], or `limit` when there is none."""
    for i in range(limit, start, -1):
        if text[i - 1].isspace():
            return i
    return limit


def chunk_text(doc: str, text: str, max_chars: int = 400, overlap: int = 1) -> list[Chunk]:
    """Pack whole sentences into chunks of at most `max_chars`; consecutive chunks share
    `overlap` sentences, so a fact that straddles a boundary is whole in one chunk."""
    spans = list(sentence_spans(text, max_chars=max_chars))
    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j = i + 1
        while j < len(spans) and spans[j][1] - spans[i][0] <= max_chars:
            j += 1
        start, end = spans[i][0], spans[j - 1][1]
        chunks.append(Chunk(doc=doc, start=start, end=end, text=text[start:end]))
        if j >= len(spans):
            break
        # Step back by `overlap` sentences, but always move forward by at least one.
        i = max(j - overlap, i + 1)
    return chunks
