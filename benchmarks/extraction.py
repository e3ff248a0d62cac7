"""Measures text extraction for rag.readers: each candidate library's text, compared with
the source text the test file was made from, and its speed.

    .venv/bin/python benchmarks/extraction.py [--data DIR] [--repeats 3]

Wikipedia article texts (the SQuAD 2.0 sample in shared/external, by default) are written
to PDF (fpdf2, justified, DejaVu Sans when present), DOCX (python-docx) and HTML (a page
with navigation, header, footer, aside, script, style and a cookie banner around the
article) in a temporary folder, then read back by every candidate. Per format and
candidate it prints:

- token recall / precision: the share of the source's words found in the extraction, and
  of the extraction's words that are the source's (boilerplate lowers precision);
- sentences intact: the share of source sentences that the chunker's sentence splitter
  finds whole in the extracted text, i.e. how many sentences can be cited as they are;
- ms per file (best of --repeats, mean over files) and the library's import time.

The writers (fpdf2, python-docx) and the candidates are needed only here; a format whose
writer is missing, or a candidate whose library is missing, is skipped with a note
(trafilatura 2.3.1 also needs lxml_html_clean, pypdf 7.1.0 nothing more).

What decided the choice (4 articles, 129,583 characters, 2 cores, best of 5):

    PDF   pypdfium2 5.15.2 + reflow   recall 1.000  intact 0.999   17 ms/file  import 0.04 s
          pypdf 7.1.0 + reflow        recall 1.000  intact 1.000  165 ms/file  import 0.10 s
          either, raw lines           intact 0.145 (every wrapped line ends a "sentence")
    HTML  selectolax 1.0.2 + structure  precision 0.996  intact 1.000   6 ms  import 0.01 s
          trafilatura 2.3.1             precision 0.999  intact 0.750  44 ms  import 0.16 s
          (it drops the cookie banner, but writes "- " before list items)
    DOCX  python-docx 1.2.0   intact 1.000  14 ms;  stdlib zip + XML  intact 1.000  0.5 ms
          (python-docx kept for styles, tables and hyperlinks, which plain XML reading
          would have to re-implement)
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "external" / "squad2" / "a" / "corpus"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
WORD = re.compile(r"\w+")

Extractor = Callable[[Path], str]


def articles(folder: Path) -> list[tuple[str, str]]:
    """(title, text) of each article; the title is made from the file name."""
    return [
        (p.stem.replace("_", " ").title(), p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*.txt"))
    ]


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


# --- writers ------------------------------------------------------------------------------


def write_pdf(title: str, text: str, path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    unicode_font = FONT.exists()
    if unicode_font:
        pdf.add_font("body", fname=str(FONT))
        pdf.set_font("body", size=11)
    else:
        pdf.set_font("helvetica", size=11)

    def clean(s: str) -> str:
        # The core fonts cover Latin-1 only.
        return s if unicode_font else s.encode("latin-1", "replace").decode("latin-1")

    pdf.add_page()
    pdf.set_font_size(16)
    pdf.multi_cell(0, 8, clean(title))
    pdf.ln(4)
    pdf.set_font_size(11)
    for para in paragraphs(text):
        pdf.multi_cell(0, 5, clean(para), align="J")
        pdf.ln(3)
    pdf.output(str(path))


def write_docx(title: str, text: str, path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading(title, level=0)
    for para in paragraphs(text):
        document.add_paragraph(para)
    document.save(str(path))


def _linked(paragraph: str, n: int) -> str:
    """A paragraph as HTML with every seventh word a link and every eleventh bold, as a
    wiki page has them; the words themselves stay as they are."""
    import html

    words = paragraph.split(" ")
    out = []
    for i, word in enumerate(words):
        w = html.escape(word)
        if (i + n) % 7 == 0:
            w = f'<a href="/wiki/{i}">{w}</a>'
        elif (i + n) % 11 == 0:
            w = f"<b>{w}</b>"
        out.append(w)
    return " ".join(out)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Example Encyclopedia</title>
<style>body {{ font-family: sans-serif; }} .cookie {{ position: fixed; }}</style>
<script>window.dataLayer = []; function track() {{ return "page view"; }}</script>
</head><body>
<header class="site"><a href="/">Example Encyclopedia</a>
<form role="search"><input name="q" placeholder="Search"><button>Search</button></form></header>
<nav><ul><li><a href="/">Main page</a></li><li><a href="/random">Random article</a></li>
<li><a href="/help">Help</a></li><li><a href="/donate">Donate</a></li></ul></nav>
<main><article><h1>{title}</h1>
{body}
</article></main>
<aside><h2>Related articles</h2><ul><li><a href="/a">List of universities</a></li>
<li><a href="/b">History of the United States</a></li></ul></aside>
<footer><p>Text is available under the Creative Commons Attribution-ShareAlike License;
additional terms may apply.</p><p><a href="/privacy">Privacy policy</a> ·
<a href="/terms">Terms of use</a></p></footer>
<div class="cookie">We use cookies to improve your experience. <button>Accept</button></div>
</body></html>
"""


def _block(paragraph: str, n: int) -> str:
    """Every fourth paragraph as a bulleted list of its sentences, the rest as <p>."""
    if n % 4 != 3:
        return f"<p>{_linked(paragraph, n)}</p>"
    items = re.split(r"(?<=[.!?]) (?=[A-Z])", paragraph)
    return "<ul>" + "".join(f"<li>{_linked(item, n)}</li>" for item in items) + "</ul>"


def write_html(title: str, text: str, path: Path) -> None:
    body = "\n".join(_block(p, n) for n, p in enumerate(paragraphs(text)))
    path.write_text(PAGE.format(title=title, body=body), encoding="utf-8")


WRITERS: dict[str, tuple[str, Callable[[str, str, Path], None], str]] = {
    "PDF": ("fpdf", write_pdf, ".pdf"),
    "DOCX": ("docx", write_docx, ".docx"),
    "HTML": ("", write_html, ".html"),
}


# --- candidates ---------------------------------------------------------------------------


def pdfium_raw(path: Path) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path.read_bytes())
    try:
        return "\n\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()


def pypdf_raw(path: Path) -> str:
    import pypdf

    return "\n\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def pypdf_reflow(path: Path) -> str:
    import pypdf

    from rag.readers.pdf import join_pages, reflow

    pages = pypdf.PdfReader(path).pages
    return join_pages([reflow(page.extract_text()) for page in pages])[0]


def trafilatura_default(path: Path) -> str:
    import trafilatura

    return trafilatura.extract(path.read_bytes()) or ""


def trafilatura_recall(path: Path) -> str:
    import trafilatura

    return trafilatura.extract(path.read_bytes(), favor_recall=True) or ""


def selectolax_all(path: Path) -> str:
    """The whole body's text, only script and style removed: the cost of no boilerplate
    removal."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(path.read_bytes().decode("utf-8"))
    for node in tree.css("script, style"):
        node.decompose()
    return tree.body.text(separator="\n") if tree.body else ""


def docx_stdlib(path: Path) -> str:
    """The w:t runs of each w:p, with the standard library only."""
    import xml.etree.ElementTree as ET
    import zipfile

    ns = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("word/document.xml"))
    lines = ("".join(t.text or "" for t in p.iter(f"{ns}t")) for p in root.iter(f"{ns}p"))
    return "\n".join(line for line in lines if line.strip())


def reader(path: Path) -> str:
    from rag.readers import read

    return read(path, path.name).text


# format -> (candidate, module its import time is measured for, extractor)
CANDIDATES: dict[str, list[tuple[str, str, Extractor]]] = {
    "PDF": [
        ("pypdfium2, raw lines", "pypdfium2", pdfium_raw),
        ("pypdfium2 + reflow (rag.readers.pdf)", "pypdfium2", reader),
        ("pypdf, raw lines", "pypdf", pypdf_raw),
        ("pypdf + reflow", "pypdf", pypdf_reflow),
    ],
    "HTML": [
        ("trafilatura", "trafilatura", trafilatura_default),
        ("trafilatura favor_recall", "trafilatura", trafilatura_recall),
        ("selectolax, whole body", "selectolax.lexbor", selectolax_all),
        ("selectolax + structure (rag.readers.html)", "selectolax.lexbor", reader),
    ],
    "DOCX": [
        ("stdlib zipfile + ElementTree", "xml.etree.ElementTree", docx_stdlib),
        ("python-docx (rag.readers.docx)", "docx", reader),
    ],
}


# --- measures -----------------------------------------------------------------------------


def tokens(text: str) -> Counter[str]:
    return Counter(w.lower() for w in WORD.findall(text))


def sentences(text: str) -> set[str]:
    from rag.chunking import sentence_spans

    return {" ".join(text[s:e].split()) for s, e in sentence_spans(text, max_chars=10**6)}


def score(source: str, extracted: str) -> tuple[float, float, float]:
    """(token recall, token precision, share of source sentences intact)."""
    src, out = tokens(source), tokens(extracted)
    overlap = sum((src & out).values())
    wanted = sentences(source)
    found = sentences(extracted)
    return (
        overlap / max(1, sum(src.values())),
        overlap / max(1, sum(out.values())),
        len(wanted & found) / max(1, len(wanted)),
    )


def import_seconds(module: str) -> float:
    """Time to import `module` in a fresh interpreter (what a CLI start pays)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else float("nan")


def available(module: str) -> bool:
    return not module or importlib.util.find_spec(module.split(".")[0]) is not None


def measure(docs: list[tuple[str, str]], repeats: int) -> list[str]:
    rows = [
        "| format | candidate | token recall | token precision | sentences intact "
        "| ms per file | import s |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, (writer_module, write, suffix) in WRITERS.items():
            if not available(writer_module):
                rows.append(f"| {fmt} | skipped: writer `{writer_module}` not installed |||||")
                continue
            files = []
            for i, (title, text) in enumerate(docs):
                path = Path(tmp) / f"{i}{suffix}"
                write(title, text, path)
                files.append((path, text))
            for name, module, extract in CANDIDATES[fmt]:
                if not available(module):
                    rows.append(f"| {fmt} | {name}: skipped, `{module}` not installed |||||")
                    continue
                scores, times = [], []
                for path, text in files:
                    best = float("inf")
                    for _ in range(repeats):
                        start = time.perf_counter()
                        out = extract(path)
                        best = min(best, time.perf_counter() - start)
                    times.append(best)
                    scores.append(score(text, out))
                recall, precision, intact = (statistics.mean(s) for s in zip(*scores, strict=True))
                rows.append(
                    f"| {fmt} | {name} | {recall:.3f} | {precision:.3f} | {intact:.3f} "
                    f"| {1000 * statistics.mean(times):.1f} | {import_seconds(module):.2f} |"
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of .txt articles")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    docs = articles(args.data) if args.data.is_dir() else []
    if not docs:
        print(f"skipped: no .txt articles in {args.data}")
        return 0
    chars = sum(len(text) for _, text in docs)
    print(f"{len(docs)} articles, {chars:,} characters, from {args.data}\n")
    print("\n".join(measure(docs, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
