"""Reading the corpus folder: every .txt and .md file under it, as UTF-8."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rag.errors import CorpusError
from rag.records import Document

SUFFIXES = (".txt", ".md")


def corpus_files(folder: Path) -> list[Path]:
    """The candidate files, sorted so builds are deterministic."""
    if not folder.exists():
        raise CorpusError(f"corpus folder {folder} does not exist; pass --corpus DIR")
    if not folder.is_dir():
        raise CorpusError(f"corpus path {folder} is not a folder; pass --corpus DIR")
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
    )


def read_document(path: Path, folder: Path) -> Document:
    """One file as a Document; raises CorpusError naming the file when it is unusable."""
    name = path.relative_to(folder).as_posix()
    data = path.read_bytes()
    if not data.strip():
        raise CorpusError(f"{name}: file is empty")
    if b"\x00" in data:
        raise CorpusError(f"{name}: file looks binary (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{name}: not valid UTF-8 (byte {exc.start})") from None
    # Offsets are str indices into exactly this text, so it is never normalised:
    # no newline translation, no BOM stripping, no Unicode normalisation.
    return Document(name=name, text=text, sha256=hashlib.sha256(data).hexdigest())


def load_corpus(folder: Path) -> tuple[list[Document], list[str]]:
    """All usable documents plus one warning per skipped file."""
    docs: list[Document] = []
    warnings: list[str] = []
    for path in corpus_files(folder):
        try:
            docs.append(read_document(path, folder))
        except CorpusError as exc:
            warnings.append(f"skipped {exc}")
    if not docs:
        detail = "; ".join(warnings) if warnings else "no .txt or .md files"
        raise CorpusError(f"no usable documents in {folder} ({detail})")
    return docs, warnings


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every candidate file, usable or not, to tell whether the corpus changed."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in corpus_files(folder)
    }
