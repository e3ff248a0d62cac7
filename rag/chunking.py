"""Sentence-aware chunking that keeps exact character offsets.

Every span produced here satisfies `text[start:end] == span_text`, for any Unicode
input: we only ever compute offsets and slice, never rebuild or normalise text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.records import Chunk

# A sentence ends at . ! ? or an ellipsis, plus any closing quotes or brackets, when
# whitespace follows. A line break always ends a sentence: headlines and paragraphs in
# news copy often lack final punctuation.
_BOUNDARY = re.compile(r"""[.!?…]+["'’”)\]]*(?=\s)|\n""")


def sentence_spans(text: str, base: int = 0, max_chars: int = 400) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence in `text`, trimmed of surrounding whitespace.

    Sentences longer than `max_chars` are cut into pieces at whitespace (or hard, when a
    piece has none) so no span can outgrow a chunk.
    """
    pos = 0
    cuts = [m.end() for m in _BOUNDARY.finditer(text)] + [len(text)]
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
