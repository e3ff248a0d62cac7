"""Word (.docx): the body's paragraphs in order, one line each, read with python-docx.

Table rows become one line with cells joined by " | ", so a value stays beside its label.
Paragraphs styled "Title" or "Heading N" are headings. Headers, footers and comments are
left out: they repeat on every page or are not part of the text.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.table import Table
from docx.text.paragraph import Paragraph

from rag.errors import CorpusError
from rag.records import Document

# A .docx is a zip; a small file that unpacks to gigabytes would exhaust memory.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024


def _heading_styles(document: DocxDocument) -> frozenset[str]:
    """The ids of the styles named "Title" or "Heading N"."""
    return frozenset(
        style.style_id
        for style in document.styles
        if style.name and (style.name == "Title" or style.name.startswith("Heading"))
    )


def _row_lines(table: Table) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            if text := " ".join(cell.text.split()):
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


def extract(data: bytes) -> tuple[str, tuple[tuple[int, str], ...]]:
    """The body text of a .docx and its headings as (offset, heading)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
            raise ValueError(f"it unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB")
    lines: list[str] = []
    headings: list[tuple[int, str]] = []
    offset = 0
    document = docx.Document(io.BytesIO(data))
    heading_styles = _heading_styles(document)
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = block.text
            if not text.strip():
                continue
            new = [text]
            # The style id straight from the XML: `Paragraph.style` resolves the default
            # style by scanning every style, once per paragraph (most of the read time).
            if block._p.style in heading_styles:
                headings.append((offset, " ".join(text.split())))
        else:
            new = _row_lines(block)
        for line in new:
            lines.append(line)
            offset += len(line) + 1
    return "\n".join(lines), tuple(headings)


def read_docx(path: Path, name: str) -> Document:
    """A .docx as a Document: paragraphs joined by newlines, Heading styles as headings."""
    data = path.read_bytes()
    text, headings = extract(data)
    if not text.strip():
        raise CorpusError(f"{name}: Word document has no text")
    return Document(name, text, hashlib.sha256(data).hexdigest(), headings=headings)
