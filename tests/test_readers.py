"""The readers: each format's text, page ranges and heading offsets, and the errors for
files that cannot be read. Every offset a reader produces is checked by slicing the text.

PDF fixtures are written with fpdf2 (a dev dependency), DOCX with python-docx, HTML as
strings; all inside the tests, so there are no binary fixtures to keep in step.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from rag.errors import CorpusError
from rag.readers import SUFFIXES, extraction_version, read
from rag.readers import docx as docx_reader
from rag.readers.html import decode, extract
from rag.readers.pdf import join_pages, reflow
from rag.readers.text import markdown_headings
from rag.records import Document

LONG = (
    "The harbour authority recorded every vessel that entered the bay during the long "
    "winter of the survey, and its clerks copied each entry into a second ledger kept "
    "at the customs house on the hill above the town."
)
PAGE_TWO = "The lighthouse keeper counted 4,812 ships in 1911."


def check_offsets(doc: Document) -> None:
    """Every page range and heading offset lies inside the text, in order."""
    previous_end = 0
    for number, (start, end, page) in enumerate(doc.pages, start=1):
        assert page == number
        assert previous_end <= start <= end <= len(doc.text)
        previous_end = end
    offsets = [offset for offset, _ in doc.headings]
    assert offsets == sorted(offsets)
    for offset, heading in doc.headings:
        assert 0 <= offset < len(doc.text)
        assert heading == heading.strip() and heading


def page_of(doc: Document, offset: int) -> int | None:
    return next((page for start, end, page in doc.pages if start <= offset < end), None)


def write_pdf(path: Path, pages: list[list[str]], user_password: str | None = None) -> Path:
    """A PDF with one page per list of paragraphs, in a core font (ASCII text only)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 5, paragraph)
            pdf.ln(3)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner", user_password=user_password)
    pdf.output(str(path))
    return path


# --- text and Markdown ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"plain line\n",
        "caf\u00e9 \U0001f600 na\u00efve\r\nsecond line\r\n".encode(),
        b"\xef\xbb\xbfstarts with a byte-order mark\n",
        "a\u2028b\u00a0c  \t trailing  \n\n\n".encode(),
    ],
)
def test_text_file_is_the_file_itself(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(data)
    doc = read(path, "a.txt")
    assert doc.text == data.decode("utf-8")
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.pages == () and doc.headings == ()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "file is empty"),
        (b" \n\t\n", "file is empty"),
        (b"text\x00more", "file looks binary (it contains NUL bytes)"),
        (b"caf\xe9\n", "not valid UTF-8 (byte 3)"),
    ],
)
def test_unusable_text_files(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.md"
    path.write_bytes(data)
    with pytest.raises(CorpusError) as info:
        read(path, "sub/bad.md")
    assert str(info.value) == f"sub/bad.md: {reason}"


MARKDOWN = (
    "# Title\n"
    "Intro text.\r\n"
    "## Section two ##\r\n"
    "#hashtag is not a heading\n"
    "```\n"
    "# a comment in code\n"
    "```\n"
    "   ### Indented three\n"
    "    # four spaces is code\n"
    "######\n"
    "####### seven is text\n"
    "~~~python\n"
    "# still code\n"
    "~~~\n"
    "Last\n"
    "# End"
)


def test_markdown_headings_point_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(MARKDOWN.encode())
    doc = read(path, "notes.md")
    assert doc.text == MARKDOWN
    assert [h for _, h in doc.headings] == ["Title", "Section two", "Indented three", "End"]
    for offset, heading in doc.headings:
        line = doc.text[offset:].split("\n", 1)[0]
        assert line.lstrip(" #").startswith(heading)
        assert offset == 0 or doc.text[offset - 1] == "\n"
    check_offsets(doc)


def test_txt_files_have_no_headings(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("# Not markdown\ntext\n", encoding="utf-8")
    assert read(path, "notes.txt").headings == ()


def test_markdown_headings_of_text_without_any() -> None:
    assert markdown_headings("no headings\nat all\n") == ()


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_pages_text_and_ranges(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "report.pdf",
        [["Page one opens the report.", LONG], [PAGE_TWO], ["Page three closes it."]],
    )
    doc = read(path, "report.pdf")
    check_offsets(doc)
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [page for _, _, page in doc.pages] == [1, 2, 3]
    texts = [doc.text[start:end] for start, end, _ in doc.pages]
    assert texts == ["Page one opens the report.\n" + LONG, PAGE_TWO, "Page three closes it."]
    # Each page ends a paragraph, so pages are joined by a blank line.
    assert doc.text == "\n\n".join(texts)
    where = doc.text.index(PAGE_TWO)
    assert page_of(doc, where) == 2
    assert page_of(doc, where + len(PAGE_TWO) - 1) == 2


def test_pdf_wrapped_lines_are_one_sentence(tmp_path: Path) -> None:
    """LONG wraps over several lines in the PDF; the chunker must see it whole."""
    doc = read(write_pdf(tmp_path / "a.pdf", [[LONG]]), "a.pdf")
    assert doc.text == LONG


def test_pdf_is_deterministic(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "a.pdf", [[LONG], [PAGE_TWO]])
    assert read(path, "a.pdf") == read(path, "a.pdf")


def test_pdf_empty_page_keeps_its_range(tmp_path: Path) -> None:
    doc = read(write_pdf(tmp_path / "a.pdf", [["First."], [], ["Third."]]), "a.pdf")
    check_offsets(doc)
    assert [doc.text[s:e] for s, e, _ in doc.pages] == ["First.", "", "Third."]


@pytest.mark.parametrize(
    ("raw", "text", "ends_paragraph"),
    [
        ("", "", True),
        ("One line.", "One line.", True),
        # Wrapped lines of similar length are joined; CRLF and stray spaces go.
        (
            "the first wrapped line of text\r\nthe second wrapped line here\r\nend.",
            "the first wrapped line of text the second wrapped line here end.",
            True,
        ),
        # A sentence end or a short line keeps its break (a heading, a paragraph's end).
        (
            "Heading\nthe first wrapped line of text\nthe second wrapped line of it.\nNext",
            "Heading\nthe first wrapped line of text the second wrapped line of it.\nNext",
            True,
        ),
        # PDFium's mark for a hyphen at a line break is dropped; the word reads whole.
        ("an infor\ufffemation line", "an information line", False),
        # A page whose last full line runs on.
        (
            "a full line of running text\nanother full line of text and",
            "a full line of running text another full line of text and",
            False,
        ),
    ],
)
def test_reflow(raw: str, text: str, ends_paragraph: bool) -> None:
    assert reflow(raw) == (text, ends_paragraph)


@pytest.mark.parametrize(
    ("pages", "text"),
    [
        ([("A.", True), ("B.", True)], "A.\n\nB."),
        # A sentence that runs on to the next page stays one sentence.
        ([("runs on", False), ("to here.", True)], "runs on to here."),
        ([("A.", True), ("", True), ("C.", True)], "A.\n\n\n\nC."),
        ([("runs on", False), ("", True), ("C.", True)], "runs on\n\n\n\nC."),
    ],
)
def test_join_pages(pages: list[tuple[str, bool]], text: str) -> None:
    joined, ranges = join_pages(pages)
    assert joined == text
    assert [joined[s:e] for s, e, _ in ranges] == [t for t, _ in pages]
    assert [n for _, _, n in ranges] == list(range(1, len(pages) + 1))


def test_sentence_running_on_to_the_next_page(tmp_path: Path) -> None:
    """A paragraph that fills page 1 and goes on to page 2 is cited on the page it starts."""
    paragraph = " ".join([LONG] * 30)
    doc = read(write_pdf(tmp_path / "long.pdf", [[paragraph]]), "long.pdf")
    assert len(doc.pages) == 2
    assert doc.text == paragraph
    (_, end_1, _), (start_2, _, _) = doc.pages
    assert end_1 + 1 == start_2 and doc.text[end_1] == " "


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: write_pdf(p, [["Secret."]], user_password="pw"), "encrypted"),
        (lambda p: p.write_bytes(b"%PDF-1.7\nnot really a pdf"), "not a readable PDF"),
        (lambda p: p.write_bytes(b""), "not a readable PDF"),
        (lambda p: write_pdf(p, [[]]), "no extractable text"),
    ],
    ids=["encrypted", "corrupt", "empty", "no-text-layer"],
)
def test_unusable_pdfs(tmp_path: Path, make: Callable[[Path], object], reason: str) -> None:
    path = tmp_path / "bad.pdf"
    make(path)
    with pytest.raises(CorpusError, match=reason) as info:
        read(path, "bad.pdf")
    assert str(info.value).startswith("bad.pdf: ")


def test_truncated_pdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "whole.pdf", [[LONG], [PAGE_TWO]])
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorpusError, match=r"^cut\.pdf: "):
        read(cut, "cut.pdf")


def test_pdf_with_an_empty_user_password_is_read(tmp_path: Path) -> None:
    """Encrypted only against editing: it opens without a password, so it is readable."""
    doc = read(write_pdf(tmp_path / "a.pdf", [[PAGE_TWO]], user_password=""), "a.pdf")
    assert doc.text == PAGE_TWO


# --- HTML ----------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Harbour  Survey</title>
<style>p { color: red }</style><script>var tracking = "script text";</script></head>
<body>
<header><a href="/">Site name</a> <nav><a href="/a">Menu link</a></nav></header>
<div role="navigation">Breadcrumbs</div>
<main><article>
  <header><h1>Harbour Survey</h1></header>
  <p>The survey began in <b>1911</b> and   ended
     in 1913.<br>A second line.</p>
  <h2>Ships &amp; <i>boats</i></h2>
  <ul><li>First item.</li><li>Second item.</li></ul>
  <table><tr><th>Year</th><th>Ships</th></tr><tr><td>1911</td><td>4,812</td></tr></table>
  <p hidden>Hidden text.</p><p aria-hidden="true">Also hidden.</p>
  <h3></h3>
  <footer>Filed under history</footer>
</article></main>
<aside>Related articles</aside>
<footer>Copyright notice</footer>
<noscript>Enable scripts</noscript><template>Template text</template>
</body></html>
"""


def test_html_visible_text_without_page_furniture(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(PAGE, encoding="utf-8")
    doc = read(path, "page.html")
    assert doc.text == (
        "Harbour Survey\n"
        "The survey began in 1911 and ended in 1913.\n"
        "A second line.\n"
        "Ships & boats\n"
        "First item.\n"
        "Second item.\n"
        "Year | Ships\n"
        "1911 | 4,812\n"
        "Filed under history"
    )
    # The title equals the h1, so the page's first line is both, kept once.
    assert doc.headings == ((0, "Harbour Survey"), (doc.text.index("Ships &"), "Ships & boats"))
    for offset, heading in doc.headings:
        assert doc.text[offset : offset + len(heading)] == heading
    check_offsets(doc)


def test_html_inline_elements_add_no_spaces() -> None:
    text, _ = extract("<p>H<sub>2</sub>O is <a href='#'>water</a>, <i>not</i>&nbsp;ice.</p>")
    assert text == "H2O is water, not ice."


def test_html_title_is_the_first_heading(tmp_path: Path) -> None:
    text, headings = extract(
        "<title>Site - Page</title><h1>Page</h1><p>Body.</p><h2>Part</h2><p>More.</p>"
    )
    assert text == "Site - Page\nPage\nBody.\nPart\nMore."
    assert headings == ((0, "Site - Page"), (12, "Page"), (23, "Part"))
    assert all(text[o : o + len(h)] == h for o, h in headings)


@pytest.mark.parametrize(
    "html",
    [
        "<p>unclosed <b>bold <div>block</p></i></table>>>< <<",
        "<html><body><p>text</p><!-- unclosed comment",
        "<table><td>cell without row<td>another</table><p>after</p>",
        "<h2>heading <div>with a block inside</div> end</h2><p>body</p>",
        "\x00\x01 binary-ish <p>text</p> \ufffd",
        "<div>" * 5000 + "deep" + "</div>" * 10,
        "<svg><title>icon</title></svg><p>text</p>",
    ],
)
def test_malformed_html_yields_text_not_errors(html: str) -> None:
    text, headings = extract(html)
    assert text.strip()
    assert all(text[o : o + len(h)] == h for o, h in headings)


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><head><script>only()</script></head><body></body></html>",
        "<nav>Menu</nav><footer>Copyright</footer>",
    ],
)
def test_html_without_visible_text(tmp_path: Path, html: str) -> None:
    path = tmp_path / "empty.htm"
    path.write_text(html, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"^empty\.htm: HTML page has no visible text$"):
        read(path, "empty.htm")


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"<p>caf\xc3\xa9</p>", "<p>caf\u00e9</p>"),
        (
            b'<meta charset="iso-8859-1"><p>caf\xe9</p>',
            '<meta charset="iso-8859-1"><p>caf\u00e9</p>',
        ),
        (b"\xef\xbb\xbf<p>bom</p>", "<p>bom</p>"),
        ("<p>wide</p>".encode("utf-16"), "<p>wide</p>"),
        (
            b"<meta charset='no-such-codec'><p>x\xff</p>",
            "<meta charset='no-such-codec'><p>x\ufffd</p>",
        ),
    ],
)
def test_html_decoding(data: bytes, text: str) -> None:
    assert decode(data) == text


# --- DOCX ----------------------------------------------------------------------------------


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Harbour Survey", level=0)  # the "Title" style
    document.add_paragraph("The survey began in 1911.")
    document.add_paragraph("   ")
    document.add_heading("Ships", level=1)
    document.add_paragraph(PAGE_TWO)
    table = document.add_table(rows=2, cols=3)
    rows = [("Year", "Ships", "Notes"), ("1911", "4,812", "")]
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    table.cell(0, 1).merge(table.cell(0, 2))
    document.add_heading("Sub  section", level=2)
    document.add_paragraph("Closing words.")
    document.save(str(path))
    return path


def test_docx_paragraphs_tables_and_headings(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "survey.docx")
    doc = read(path, "survey.docx")
    assert doc.text == (
        "Harbour Survey\n"
        "The survey began in 1911.\n"
        "Ships\n"
        f"{PAGE_TWO}\n"
        "Year | Ships Notes\n"
        "1911 | 4,812\n"
        "Sub  section\n"
        "Closing words."
    )
    assert [h for _, h in doc.headings] == ["Harbour Survey", "Ships", "Sub section"]
    for offset, heading in doc.headings:
        assert " ".join(doc.text[offset:].split("\n", 1)[0].split()) == heading
    check_offsets(doc)
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_empty_docx(tmp_path: Path) -> None:
    path = tmp_path / "empty.docx"
    document = docx.Document()
    document.add_paragraph("  ")
    document.save(str(path))
    with pytest.raises(CorpusError, match=r"^empty\.docx: Word document has no text$"):
        read(path, "empty.docx")


def _zip(path: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(b"not a zip at all"),
        lambda p: p.write_bytes(b""),
        lambda p: _zip(p, {"hello.txt": "a zip, but not a Word document"}),
        lambda p: _zip(
            p,
            {
                "[Content_Types].xml": "<Types/>",
                "_rels/.rels": "<Relationships><broken",
            },
        ),
    ],
    ids=["not-zip", "empty", "other-zip", "broken-xml"],
)
def test_corrupt_docx(tmp_path: Path, make: Callable[[Path], object]) -> None:
    path = tmp_path / "bad.docx"
    make(path)
    with pytest.raises(CorpusError, match=r"^bad\.docx: not a readable Word file \("):
        read(path, "bad.docx")


def test_docx_that_unpacks_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_docx(tmp_path / "bomb.docx")
    monkeypatch.setattr(docx_reader, "MAX_UNPACKED_BYTES", 1024)
    with pytest.raises(CorpusError, match="unpacks to more than"):
        read(path, "bomb.docx")


# --- dispatch ------------------------------------------------------------------------------


def test_suffixes() -> None:
    assert set(SUFFIXES) == {".txt", ".md", ".pdf", ".html", ".htm", ".docx"}


def test_suffix_case_does_not_matter(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "REPORT.PDF", [[PAGE_TWO]])
    assert read(path, "REPORT.PDF").pages == ((0, len(PAGE_TWO), 1),)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "a.rtf"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"^a\.rtf: unsupported file type '\.rtf'$"):
        read(path, "a.rtf")


def test_unreadable_file_raises_oserror(tmp_path: Path) -> None:
    """The caller reports OSError (it knows which file); readers do not swallow it."""
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "missing.pdf", "missing.pdf")


def test_extraction_version_names_the_libraries() -> None:
    version = extraction_version()
    assert version.startswith("readers ")
    for library in ("pypdfium2 ", "selectolax ", "python-docx "):
        assert library in version
