"""PDF: the text layer of each page, read with PDFium (pypdfium2), with the exact character
range of every page.

PDFium breaks text at every visual line, but the chunker ends a sentence at every line
break, so the wrapped lines of a paragraph are joined with a space (`reflow`). A break is
kept where a line ends a sentence or is clearly shorter than the page's full lines (a
heading, the last line of a paragraph, a list item). Pages are joined by the same rule: a
blank line, or a space when a page ends in mid-sentence, so a sentence that runs on to the
next page stays whole (it is cited on the page where it starts).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from rag.errors import CorpusError
from rag.records import Document

PAGE_BREAK = "\n\n"
RUN_ON = " "
# A line that ends a sentence: final punctuation, then any closing quotes or brackets.
_ENDS_SENTENCE = re.compile(r"""[.!?…]["'’”)\]]*$""")
# Lines shorter than this share of the page's typical full line are not wrapped lines.
_SHORT_LINE = 0.6
# PDFium marks a hyphen it took for a word break at a line end with U+FFFE and drops the
# break; the word reads whole without it. Other control characters are layout residue.
_NOISE = re.compile(r"[\ufffe\x00-\x08\x0b-\x1f\x7f]")


def reflow(page: str) -> tuple[str, bool]:
    """One page's text with wrapped lines joined, and whether its last line ends a
    paragraph (so the next page starts a new one)."""
    lines = [line.strip() for line in _NOISE.sub("", page.replace("\r\n", "\n")).split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return "", True
    lengths = sorted(len(line) for line in lines)
    full = lengths[(len(lengths) * 3) // 4]

    def ends_paragraph(line: str) -> bool:
        return bool(_ENDS_SENTENCE.search(line)) or len(line) < _SHORT_LINE * full

    out = [lines[0]]
    for prev, line in itertools.pairwise(lines):
        out.append("\n" if ends_paragraph(prev) else " ")
        out.append(line)
    return "".join(out), ends_paragraph(lines[-1])


def _page_text(pdf: pdfium.PdfDocument, index: int) -> str:
    """The raw text layer of one page, its native handles freed at once."""
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        return str(textpage.get_text_range())
    finally:
        textpage.close()
        page.close()


def read_pdf(path: Path, name: str) -> Document:
    """A PDF as a Document: the pages' text in order, `pages` their exact ranges."""
    data = path.read_bytes()
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise CorpusError(f"{name}: PDF is encrypted (it needs a password)") from None
        raise CorpusError(f"{name}: not a readable PDF ({exc})") from None
    try:
        reflowed = [reflow(_page_text(pdf, i)) for i in range(len(pdf))]
    finally:
        pdf.close()
    if not any(text for text, _ in reflowed):
        raise CorpusError(f"{name}: PDF has no extractable text (scanned pages need OCR)")
    text, pages = join_pages(reflowed)
    return Document(name, text, hashlib.sha256(data).hexdigest(), pages=pages)


def join_pages(reflowed: list[tuple[str, bool]]) -> tuple[str, tuple[tuple[int, int, int], ...]]:
    """Reflowed pages as one text, and the (start, end, page) range of each page in it."""
    parts: list[str] = []
    pages: list[tuple[int, int, int]] = []
    start = 0
    for number, (text, ends) in enumerate(reflowed, start=1):
        pages.append((start, start + len(text), number))
        parts.append(text)
        start += len(text)
        if number < len(reflowed):
            following = reflowed[number][0]
            separator = RUN_ON if text and following and not ends else PAGE_BREAK
            parts.append(separator)
            start += len(separator)
    return "".join(parts), tuple(pages)
