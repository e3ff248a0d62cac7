"""One reader per file format, each turning a file into a `Document` whose `text` every
offset points into: the file itself for .txt/.md, the extracted text otherwise.

Extraction is deterministic for pinned library versions; `extraction_version()` names
them, so an index can tell when the same bytes would now give a different text.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from rag.errors import CorpusError
from rag.records import Document

# Bump when a reader's own logic changes what text a file yields.
READERS_VERSION = 1
LIBRARIES = ("pypdfium2", "selectolax", "python-docx")

# suffix -> (format named in messages, module under rag.readers, function)
_FORMATS: dict[str, tuple[str, str, str]] = {
    ".txt": ("text", "text", "read_text"),
    ".md": ("Markdown", "text", "read_text"),
    ".pdf": ("PDF", "pdf", "read_pdf"),
    ".html": ("HTML", "html", "read_html"),
    ".htm": ("HTML", "html", "read_html"),
    ".docx": ("Word", "docx", "read_docx"),
}
SUFFIXES = tuple(_FORMATS)


def _reader(module: str, function: str) -> Callable[[Path, str], Document]:
    # Imported on first use: reading only text files never loads PDFium or lxml.
    from importlib import import_module

    reader: Callable[[Path, str], Document] = getattr(
        import_module(f"rag.readers.{module}"), function
    )
    return reader


def read(path: Path, name: str) -> Document:
    """The file at `path` as a Document named `name`; CorpusError naming the file when it
    is unusable. OSError (unreadable file) passes through for the caller to report."""
    try:
        kind, module, function = _FORMATS[path.suffix.lower()]
    except KeyError:
        raise CorpusError(f"{name}: unsupported file type {path.suffix!r}") from None
    reader = _reader(module, function)
    try:
        return reader(path, name)
    except (CorpusError, OSError, MemoryError, RecursionError):
        raise
    except Exception as exc:
        # Parsers meet hostile and broken files (bad zips, XML, streams) and signal it
        # with exceptions of their own; each one means "this file cannot be read".
        reason = str(exc) or type(exc).__name__
        raise CorpusError(f"{name}: not a readable {kind} file ({reason})") from exc


def extraction_version() -> str:
    """The readers' version and the installed extraction libraries', e.g. for a manifest."""
    parts = [f"readers {READERS_VERSION}"]
    for library in LIBRARIES:
        try:
            parts.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{library} absent")
    return ", ".join(parts)
