"""Reading the corpus folder: every supported file under it, as Documents.

The walk is deterministic (sorted by path) and iterative, so a folder nested thousands of
levels deep cannot raise RecursionError. What it reads, and what it skips:

- **Only what is inside the folder.** A symbolic link whose target (`Path.resolve()`) lies
  outside the folder's real path is never read; it is skipped with a warning.
- **Links inside are not walked twice.** Directory links are never descended: their target
  is inside the folder, so the walk reaches it under its real name anyway, and a link loop
  cannot hang it. A file link is read, under the link's name, only when its target is not
  itself a file the walk reads; so every file is read once.
- **Bad files are warnings, not failures.** A file over the size limit, one that cannot be
  listed, stat-ed or read (PermissionError, EIO), and one its reader rejects (empty, not
  UTF-8, encrypted or scanned PDF, ...) is skipped with one warning naming it and why.
  Only a corpus with no usable document at all is a CorpusError.
- **Change checks see every candidate.** `file_stats` and `file_hashes` list the files the
  walk keeps (inside the folder, within the size limit) without parsing them, so a change
  to a file its reader rejects is still a change; `file_hashes` skips, with a warning, a
  file it cannot read. `changes` compares them with what an index recorded, hashing only
  the files whose size or mtime differ.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError
from rag.readers import SUFFIXES, read
from rag.records import Document

# Files larger than this are skipped (20 MiB); the setting RAG_MAX_FILE_MB overrides it.
MAX_FILE_BYTES = 20 * 1024 * 1024
# How many skip reasons a "no usable documents" error spells out before "and N more".
_REASONS_SHOWN = 5

Warn = Callable[[str], None]


@dataclass(frozen=True)
class _Candidate:
    name: str  # path relative to the corpus folder, with "/" separators
    path: Path
    size: int
    mtime_ns: int


@dataclass
class _Scan:
    files: list[_Candidate] = field(default_factory=list)
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (name, why skipped)

    def skip(self, name: str, reason: str) -> None:
        self.reasons.append((name, reason))

    def warnings(self) -> list[str]:
        """One warning per skipped file, in path order."""
        ordered = sorted(self.reasons, key=lambda item: _order(item[0]))
        return [f"skipped {name}: {reason}" for name, reason in ordered]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def _scan(folder: Path, max_bytes: int) -> _Scan:
    """Every candidate file under `folder` with its size and mtime, plus one warning per
    file or folder left out. Reads no file contents."""
    if not folder.exists():
        raise CorpusError(f"corpus folder {folder} does not exist; pass --corpus DIR")
    if not folder.is_dir():
        raise CorpusError(f"corpus path {folder} is not a folder; pass --corpus DIR")
    root = folder.resolve()
    scan = _Scan()
    regular: list[tuple[str, Path]] = []
    links: list[tuple[str, Path, str]] = []  # (name, path, target's name inside the folder)
    pending = [""]  # folders still to list, relative to `folder`
    while pending:
        rel = pending.pop()
        try:
            with os.scandir(folder / rel) as entries:
                listed = [
                    (e.name, e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in entries
                ]
        except OSError as exc:
            scan.skip(f"{rel or '.'}/", f"cannot list the folder ({_reason(exc)})")
            continue
        for entry, is_link, is_dir in listed:
            name = f"{rel}/{entry}" if rel else entry
            path = folder / name
            if is_dir:
                pending.append(name)
            elif is_link:
                _link(scan, root, name, path, links)
            elif path.suffix.lower() in SUFFIXES:
                regular.append((name, path))
    # A link is read only when the walk does not read its target under its own name.
    taken = {name for name, _ in regular}
    for name, path, target in sorted(links, key=lambda link: _order(link[0])):
        if target not in taken:
            taken.add(target)
            regular.append((name, path))
    for name, path in sorted(regular, key=lambda item: _order(item[0])):
        _add(scan, name, path, max_bytes)
    return scan


def _link(
    scan: _Scan, root: Path, name: str, path: Path, links: list[tuple[str, Path, str]]
) -> None:
    """Sort out one symbolic link: outside the folder, broken, a folder, or a file."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop, before Python 3.13
        scan.skip(name, f"broken link ({exc})")
        return
    wanted = path.suffix.lower() in SUFFIXES or target.is_dir()
    if not target.is_relative_to(root):
        if wanted:
            scan.skip(name, f"links outside the corpus ({target})")
    elif target.is_dir():
        pass  # walked under its own name
    elif not target.exists():
        if wanted:
            scan.skip(name, f"broken link (to {target})")
    elif wanted:
        links.append((name, path, target.relative_to(root).as_posix()))


def _add(scan: _Scan, name: str, path: Path, max_bytes: int) -> None:
    """Stat one file and keep it when it is a regular file within the size limit."""
    try:
        info = path.stat()
    except OSError as exc:
        scan.skip(name, f"cannot read it ({_reason(exc)})")
        return
    if not stat.S_ISREG(info.st_mode):
        scan.skip(name, "not a regular file")  # a FIFO would block the reader forever
    elif info.st_size > max_bytes:
        scan.skip(name, f"{_size(info.st_size)} is over the {_size(max_bytes)} limit")
    else:
        scan.files.append(_Candidate(name, path, info.st_size, info.st_mtime_ns))


def _order(name: str) -> list[str]:
    # The order Path objects sort in (by component), as the corpus has always been read.
    return name.split("/")


def corpus_files(folder: Path, max_bytes: int = MAX_FILE_BYTES) -> list[Path]:
    """The candidate files, sorted so builds are deterministic."""
    return [c.path for c in _scan(folder, max_bytes).files]


def read_document(path: Path, folder: Path) -> Document:
    """One file as a Document; raises CorpusError naming the file when it is unusable."""
    return read(path, path.relative_to(folder).as_posix())


def try_read(folder: Path, name: str) -> Document | str:
    """The candidate file `name` as a Document, or the reason it is skipped."""
    try:
        return read(folder / name, name)
    except CorpusError as exc:
        # Readers name the file first; the warning gives the reason after it.
        return str(exc).removeprefix(f"{name}: ")
    except OSError as exc:
        return f"cannot read it ({_reason(exc)})"


def load_corpus(folder: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[list[Document], list[str]]:
    """All usable documents plus one warning per skipped file."""
    scan = _scan(folder, max_bytes)
    docs: list[Document] = []
    for c in scan.files:
        got = try_read(folder, c.name)
        if isinstance(got, str):
            scan.skip(c.name, got)
        else:
            docs.append(got)
    warnings = scan.warnings()
    if not docs:
        raise no_usable_documents(folder, warnings)
    return docs, warnings


def no_usable_documents(folder: Path, warnings: list[str]) -> CorpusError:
    """The error for a corpus with nothing to index, with the first reasons why."""
    return CorpusError(f"no usable documents in {folder} ({_brief(warnings)})")


def _brief(warnings: list[str]) -> str:
    if not warnings:
        return "no " + ", ".join(SUFFIXES) + " files"
    shown = "; ".join(w.removeprefix("skipped ") for w in warnings[:_REASONS_SHOWN])
    more = len(warnings) - _REASONS_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def file_stats(
    folder: Path, max_bytes: int = MAX_FILE_BYTES, warn: Warn | None = None
) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every candidate file, without reading any; a cheap change check."""
    scan = _scan(folder, max_bytes)
    if warn:
        for message in scan.warnings():
            warn(message)
    return {c.name: (c.size, c.mtime_ns) for c in scan.files}


def file_hashes(
    folder: Path, max_bytes: int = MAX_FILE_BYTES, warn: Warn | None = None
) -> dict[str, str]:
    """sha256 of every readable candidate file, to tell whether the corpus changed."""
    scan = _scan(folder, max_bytes)
    hashes: dict[str, str] = {}
    for c in scan.files:
        try:
            hashes[c.name] = sha256_file(c.path)
        except OSError as exc:
            scan.skip(c.name, f"cannot read it ({_reason(exc)})")
    if warn:
        for message in scan.warnings():
            warn(message)
    return hashes


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (corpus files and index data files alike)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The hash recorded for a file that could not be read: it is hashed again at every check,
# so it is indexed once it can be read, and it is not a change while it cannot.
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Changes:
    """How the candidate files differ from what an index recorded, by name."""

    hashes: dict[str, str]  # every candidate's sha256 (or UNREADABLE), as of this check
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def __str__(self) -> str:
        bits = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        return "; ".join(bits)


def changes(
    folder: Path,
    stats: dict[str, tuple[int, int]],
    known_hashes: dict[str, str],
    known_stats: dict[str, list[int]],
    hash_file: Callable[[Path], str] | None = None,
) -> Changes:
    """Compare the files in `stats` with an index's record. Files whose size and mtime
    match the record are trusted without reading them; the others are hashed (with
    `hash_file`, by default `digest`)."""
    hash_file = hash_file or digest
    hashes: dict[str, str] = {}
    changed: list[str] = []
    for name, stat_now in stats.items():
        known = known_hashes.get(name)
        if known is not None and known != UNREADABLE and list(stat_now) == known_stats.get(name):
            hashes[name] = known
            continue
        hashes[name] = hash_file(folder / name)
        if known is not None and hashes[name] != known:
            changed.append(name)
    return Changes(
        hashes,
        added=tuple(n for n in stats if n not in known_hashes),
        changed=tuple(changed),
        removed=tuple(sorted((n for n in known_hashes if n not in stats), key=_order)),
    )


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or UNREADABLE when it cannot be read."""
    try:
        return sha256_file(path)
    except OSError:
        return UNREADABLE
