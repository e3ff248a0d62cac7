"""Plain text and Markdown: the file itself, decoded as UTF-8 and never normalised.

Offsets are str indices into exactly this text, so there is no newline translation, no
BOM stripping and no Unicode normalisation. Markdown also yields its ATX headings (`# …`),
each at the offset where its line starts.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from rag.errors import CorpusError
from rag.records import Document

# An ATX heading: up to three spaces, 1-6 '#', then a space or the end of the line.
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*\r?$")
# A fenced code block opens and closes with ``` or ~~~; a '#' inside it is code, not a heading.
_FENCE = re.compile(r" {0,3}(```|~~~)")


def decode(data: bytes, name: str) -> str:
    """The bytes of a text file as str, or CorpusError saying why they are not text."""
    if not data.strip():
        raise CorpusError(f"{name}: file is empty")
    if b"\x00" in data:
        raise CorpusError(f"{name}: file looks binary (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{name}: not valid UTF-8 (byte {exc.start})") from None


def markdown_headings(text: str) -> tuple[tuple[int, str], ...]:
    """(offset of the line, heading text) of every ATX heading outside fenced code."""
    headings: list[tuple[int, str]] = []
    fence: str | None = None
    offset = 0
    # Split on "\n" only: Markdown lines end there, and offsets must add up exactly.
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if opened and (fence is None or opened.group(1) == fence):
            fence = opened.group(1) if fence is None else None
        elif fence is None and (match := _HEADING.match(line)):
            title = (match.group(2) or "").strip()
            if title:
                headings.append((offset, title))
        offset += len(line) + 1
    return tuple(headings)


def read_text(path: Path, name: str) -> Document:
    """A .txt or .md file as a Document whose text is the file itself."""
    data = path.read_bytes()
    text = decode(data, name)
    headings = markdown_headings(text) if path.suffix.lower() == ".md" else ()
    return Document(name, text, hashlib.sha256(data).hexdigest(), headings=headings)
