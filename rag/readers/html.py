"""HTML: the visible text of the page, one line per block, read with selectolax (Lexbor).

Page furniture is dropped by structure, not by guesswork: script, style, nav, aside, forms'
controls, hidden elements, ARIA navigation/banner/contentinfo/complementary regions, and a
header or footer that belongs to the page rather than to an article or section. The title
and h1-h6 become headings at the offset of their line. Whitespace is collapsed, <pre> too
(its hard-wrapped lines then read as sentences). Lexbor parses any HTML the way a
browser does, so malformed markup yields text, never an error.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from rag.errors import CorpusError
from rag.records import Document

_DROP = frozenset(
    "head title script style noscript template nav aside iframe object svg canvas button select "
    "option datalist".split()
)
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary"})
# A header or footer inside one of these is part of that content (an article's title).
_SECTIONING = frozenset({"article", "main", "section"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = _HEADINGS | frozenset(
    "address article blockquote body br caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form header hr html legend li main ol p pre section summary "
    "table tbody tfoot thead tr ul".split()
)
_CELLS = frozenset({"td", "th"})
_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes) -> str:
    """HTML bytes as str: a byte-order mark, else a <meta charset>, else UTF-8."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    declared = _CHARSET.search(data[:4096])
    encoding = "utf-8"
    if declared:
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            pass
    # A page that lies about its encoding still yields text; the same bytes, the same text.
    return data.decode(encoding, errors="replace")


class _Lines:
    """Text collected line by line, with the headings among those lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.headings: list[tuple[int, str]] = []  # (line index, heading)
        # Raw text of the line so far: inline elements join without a space ("H<sub>2</sub>O").
        self._parts: list[str] = []

    def add(self, text: str) -> None:
        self._parts.append(text)

    def cell(self) -> None:
        if "".join(self._parts).strip():
            self._parts.append(" | ")

    def end_line(self) -> None:
        line = " ".join("".join(self._parts).split())
        if line:
            self.lines.append(line)
        self._parts = []


def _dropped(node: LexborNode, in_section: bool) -> bool:
    attrs = node.attributes
    return (
        node.tag in _DROP
        or "hidden" in attrs
        or attrs.get("aria-hidden") == "true"
        or attrs.get("role") in _DROP_ROLES
        or (node.tag in ("header", "footer") and not in_section)
    )


def extract(html: str) -> tuple[str, tuple[tuple[int, str], ...]]:
    """The visible text of a page and its headings as (offset, heading)."""
    tree = LexborHTMLParser(html)
    out = _Lines()
    title_node = tree.css_first("head > title")
    title = " ".join(title_node.text().split()) if title_node else ""
    if title:
        out.add(title)
        out.end_line()
        out.headings.append((0, title))
    # An explicit stack, not recursion: a page nested thousands of elements deep must not
    # raise RecursionError. An item is an element to open, with whether it lies inside a
    # sectioning element and inside a heading, or an int that closes a block: the index of
    # a heading's line, or -1.
    stack: list[tuple[LexborNode, bool, bool] | int] = []
    if tree.root is not None:
        stack.append((tree.root, False, False))
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            out.end_line()
            if item >= 0 and len(out.lines) > item:
                out.headings.append((item, out.lines[item]))
            continue
        node, in_section, in_heading = item
        tag = node.tag
        if tag == "-text":
            out.add(node.text_content or "")
            continue
        if tag is None or tag.startswith(("_", "!")) or _dropped(node, in_section):
            continue  # comments, doctype, page furniture
        if tag in _CELLS:
            out.cell()
        elif tag in _BLOCKS and not in_heading:  # a heading stays one line
            out.end_line()
            stack.append(len(out.lines) if tag in _HEADINGS else -1)
        in_section = in_section or tag in _SECTIONING
        in_heading = in_heading or tag in _HEADINGS
        children = reversed(list(node.iter(include_text=True)))
        stack.extend((child, in_section, in_heading) for child in children)
    out.end_line()
    return _join(out, title)


def _join(out: _Lines, title: str) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Lines joined by newlines; headings as offsets. A title repeated by the page's first
    line (its h1, usually) is kept once."""
    lines, headings = out.lines, out.headings
    if title and len(lines) > 1 and lines[1] == title:
        lines = lines[1:]
        headings = [(i - 1, h) for i, h in headings[1:]]
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    return "\n".join(lines), tuple((starts[i], h) for i, h in sorted(headings))


def read_html(path: Path, name: str) -> Document:
    """An HTML page as a Document: its visible text, with title and h1-h6 as headings."""
    data = path.read_bytes()
    text, headings = extract(decode(data))
    if not text.strip():
        raise CorpusError(f"{name}: HTML page has no visible text")
    return Document(name, text, hashlib.sha256(data).hexdigest(), headings=headings)
