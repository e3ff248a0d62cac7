"""Reading a corpus folder: every format, in a fixed order, with each bad file skipped with
exactly one warning that names it while the rest is indexed; links that leave the folder,
unreadable and oversized files, FIFOs and very deep folders."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from rag.corpus import (
    MAX_FILE_BYTES,
    UNREADABLE,
    changes,
    corpus_files,
    digest,
    file_hashes,
    file_stats,
    load_corpus,
    read_document,
    try_read,
)
from rag.errors import CorpusError

GOOD = "The harbour survey began in 1911.\n"


def pdf(path: Path, text: str | None = "A page of text.", password: str | None = None) -> None:
    writer = FPDF()
    writer.set_font("helvetica", size=11)
    writer.add_page()
    if text:
        writer.multi_cell(0, 5, text)
    if password is not None:
        writer.set_encryption(owner_password="owner", user_password=password)
    writer.output(str(path))


def word(path: Path, text: str) -> None:
    document = docx.Document()
    document.add_paragraph(text)
    document.save(str(path))


def names(folder: Path) -> list[str]:
    docs, _ = load_corpus(folder)
    return [d.name for d in docs]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A corpus with one good text file; tests add what they need beside it."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.txt").write_text(GOOD, encoding="utf-8")
    return root


# --- what is read --------------------------------------------------------------------------


def test_every_format_in_path_order(folder: Path) -> None:
    (folder / "b").mkdir()
    (folder / "b" / "notes.md").write_text("# Notes\nSome notes.\n", encoding="utf-8")
    (folder / "b c").mkdir()
    (folder / "b c" / "page.htm").write_text("<p>A page.</p>", encoding="utf-8")
    pdf(folder / "a.pdf")
    word(folder / "a.docx", "A Word document.")
    (folder / "a.html").write_text("<title>T</title><p>HTML text.</p>", encoding="utf-8")
    (folder / "ignored.rtf").write_text("not a supported type", encoding="utf-8")
    docs, warnings = load_corpus(folder)
    assert warnings == []
    # Sorted by path component, as Path objects sort: "b/..." before "b c/...".
    assert [d.name for d in docs] == [
        "a.docx",
        "a.html",
        "a.pdf",
        "b/notes.md",
        "b c/page.htm",
        "good.txt",
    ]
    texts = {d.name: d.text for d in docs}
    assert texts["a.pdf"] == "A page of text."
    assert texts["a.docx"] == "A Word document."
    assert texts["a.html"] == "T\nHTML text."
    assert texts["good.txt"] == GOOD
    for d in docs:
        assert d.sha256 == hashlib.sha256((folder / d.name).read_bytes()).hexdigest()
    assert load_corpus(folder) == (docs, warnings)  # deterministic


def test_text_files_are_read_exactly(folder: Path) -> None:
    data = "\ufeffCRLF\r\nemoji \U0001f600\u00a0and\ttabs  \n".encode()
    (folder / "raw.txt").write_bytes(data)
    doc = read_document(folder / "raw.txt", folder)
    assert doc.name == "raw.txt" and doc.text == data.decode("utf-8")


def test_seed_corpus_is_read_byte_for_byte() -> None:
    """The regression cases' offsets point into these texts; they must not move."""
    seeds = Path(__file__).resolve().parent.parent / "seeds"
    docs, warnings = load_corpus(seeds)
    assert warnings == []
    for d in docs:
        assert d.text == (seeds / d.name).read_bytes().decode("utf-8")


# --- bad files: one warning each, the rest indexed -----------------------------------------

BAD_FILES: dict[str, tuple[str, Callable[[Path], object]]] = {
    "empty.txt": ("file is empty", lambda p: p.write_bytes(b"")),
    "binary.md": ("file looks binary", lambda p: p.write_bytes(b"a\x00b")),
    "latin1.txt": ("not valid UTF-8", lambda p: p.write_bytes(b"caf\xe9")),
    "locked.pdf": ("encrypted", lambda p: pdf(p, password="secret")),
    "corrupt.pdf": ("not a readable PDF", lambda p: p.write_bytes(b"%PDF-1.4 garbage")),
    "scanned.pdf": ("no extractable text", lambda p: pdf(p, text=None)),
    "empty.html": ("no visible text", lambda p: p.write_text("<nav>Menu</nav>")),
    "empty.docx": ("has no text", lambda p: word(p, " ")),
    "corrupt.docx": ("not a readable Word file", lambda p: p.write_bytes(b"PK\x03\x04junk")),
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_bad_file_is_one_warning(folder: Path, bad: str) -> None:
    reason, make = BAD_FILES[bad]
    (folder / "sub").mkdir()
    make(folder / "sub" / bad)
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"skipped sub/{bad}: ")
    assert reason in warnings[0]


def test_all_bad_files_together(folder: Path) -> None:
    for bad, (_, make) in BAD_FILES.items():
        make(folder / bad)
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert sorted(w.split(":")[0] for w in warnings) == sorted(f"skipped {b}" for b in BAD_FILES)


def test_nothing_usable_is_a_corpus_error(tmp_path: Path) -> None:
    for bad, (_, make) in BAD_FILES.items():
        make(tmp_path / bad)
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path)
    message = str(info.value)
    assert message.startswith(f"no usable documents in {tmp_path} (")
    # The first five reasons, briefly, then a count of the rest.
    assert "binary.md: file looks binary" in message
    assert message.endswith(f"; and {len(BAD_FILES) - 5} more)")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no .txt, .md, .pdf, .html, .htm, .docx files"),
        (lambda p: (p / "a.rtf").write_text("x"), "no .txt, .md, .pdf, .html, .htm, .docx files"),
        (lambda p: (p / "a.txt").write_bytes(b""), "a.txt: file is empty"),
    ],
)
def test_empty_corpus_says_why(
    tmp_path: Path, setup: Callable[[Path], object], message: str
) -> None:
    setup(tmp_path)
    with pytest.raises(CorpusError, match="no usable documents") as info:
        load_corpus(tmp_path)
    assert str(info.value).endswith(f"({message})")


def test_missing_or_file_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "file.txt").write_text(GOOD)
    with pytest.raises(CorpusError, match="is not a folder"):
        file_stats(tmp_path / "file.txt")


# --- symbolic links ------------------------------------------------------------------------


def test_link_out_of_the_corpus_is_skipped(folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the corpus\n")
    (folder / "leak.txt").symlink_to(secret)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "more.txt").write_text("also outside\n")
    (folder / "linked_dir").symlink_to(tmp_path / "elsewhere")
    (folder / "passwd.md").symlink_to("/etc/passwd")
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert warnings == [
        f"skipped leak.txt: links outside the corpus ({secret})",
        f"skipped linked_dir: links outside the corpus ({tmp_path / 'elsewhere'})",
        "skipped passwd.md: links outside the corpus (/etc/passwd)",
    ]
    assert list(file_stats(folder)) == ["good.txt"]
    assert list(file_hashes(folder)) == ["good.txt"]


def test_relative_link_that_climbs_out_is_skipped(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("outside\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "up.txt").symlink_to("../../out.txt")
    _, warnings = load_corpus(folder)
    assert warnings == [f"skipped sub/up.txt: links outside the corpus ({tmp_path / 'out.txt'})"]


def test_links_inside_are_read_once(folder: Path) -> None:
    (folder / "alias.txt").symlink_to("good.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.md").write_text("# Deep\n")
    (folder / "also_sub").symlink_to("sub")
    (folder / "loop").symlink_to(".")  # a directory loop must not hang the walk
    (folder / "sub" / "back").symlink_to("..")
    # A link with a supported name to a file the walk does not read is read, once.
    (folder / "notes.markdown").write_text("Notes kept under another suffix.\n")
    (folder / "notes.md").symlink_to("notes.markdown")
    (folder / "notes-2.md").symlink_to("notes.markdown")
    docs, warnings = load_corpus(folder)
    assert warnings == []
    assert [d.name for d in docs] == ["good.txt", "notes-2.md", "sub/deep.md"]


def test_broken_links(folder: Path) -> None:
    (folder / "gone.txt").symlink_to("missing.txt")
    (folder / "self.txt").symlink_to("self.txt")
    (folder / "other").symlink_to("missing-folder")  # not a supported name: ignored
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert len(warnings) == 2
    assert warnings[0].startswith("skipped gone.txt: broken link")
    assert warnings[1].startswith("skipped self.txt: broken link")


def test_corpus_folder_given_through_a_link(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "via").symlink_to(folder)
    (folder / "alias.txt").symlink_to(folder / "good.txt")
    docs, warnings = load_corpus(tmp_path / "via")
    assert warnings == [] and [d.name for d in docs] == ["good.txt"]


# --- deep folders, unreadable files, size limit, FIFOs -------------------------------------


def test_folders_nested_1200_deep(folder: Path) -> None:
    path = folder
    for _ in range(1200):  # os.makedirs would itself recurse too deep
        path = path / "d"
        path.mkdir()
    (path / "bottom.txt").write_text("At the bottom.\n")
    name = "d/" * 1200 + "bottom.txt"
    try:
        docs, warnings = load_corpus(folder)
        assert warnings == []
        assert [d.name for d in docs] == [name, "good.txt"]
        assert list(file_stats(folder)) == [name, "good.txt"]
        assert list(file_hashes(folder)) == [name, "good.txt"]
    finally:
        # pytest's own clean-up of old temporary folders recurses, so leave none this deep.
        (path / "bottom.txt").unlink()
        while path != folder:
            path.rmdir()
            path = path.parent


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path, int], None]]:
    """Makes a file unreadable: chmod 000 when that blocks reads (not as root), else every
    open of that path raises the OSError, as the kernel would."""
    locked: list[Path] = []
    real_open = Path.open

    def make(path: Path, code: int) -> None:
        if code == errno.EACCES:
            path.chmod(0)
            locked.append(path)
            if not os.access(path, os.R_OK):
                return
        blocked = path.absolute()

        def guarded(self: Path, *args: object, **kwargs: object) -> object:
            if self.absolute() == blocked:
                raise OSError(code, os.strerror(code), str(self))
            return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(Path, "open", guarded)

    yield make
    for path in locked:
        path.chmod(0o644)


@pytest.mark.parametrize(
    ("name", "code", "reason"),
    [
        ("secret.txt", errno.EACCES, "Permission denied"),
        ("secret.pdf", errno.EACCES, "Permission denied"),
        ("failing.docx", errno.EIO, "Input/output error"),
    ],
)
def test_unreadable_file_is_skipped(
    folder: Path, unreadable: Callable[[Path, int], None], name: str, code: int, reason: str
) -> None:
    path = folder / name
    if name.endswith(".pdf"):
        pdf(path)
    elif name.endswith(".docx"):
        word(path, "Text.")
    else:
        path.write_text("Text.\n")
    unreadable(path, code)
    warning = f"skipped {name}: cannot read it ({reason})"
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert warnings == [warning]
    seen: list[str] = []
    assert list(file_hashes(folder, warn=seen.append)) == ["good.txt"]
    assert seen == [warning]
    # Its size and mtime are known without reading it, so file_stats lists it.
    assert sorted(file_stats(folder)) == sorted(["good.txt", name])


def test_unlistable_folder_is_skipped(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "private").mkdir()
    (folder / "private" / "a.txt").write_text("hidden\n")
    real_scandir = os.scandir
    blocked = folder / "private"

    def scandir(path: Path) -> object:
        if Path(path) == blocked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert warnings == ["skipped private/: cannot list the folder (Permission denied)"]


def test_size_limit(folder: Path) -> None:
    (folder / "big.txt").write_text("x" * 2000)
    (folder / "huge.pdf").write_bytes(b"%PDF" + b"0" * 3 * 1024 * 1024)
    docs, warnings = load_corpus(folder, max_bytes=1024)
    assert [d.name for d in docs] == ["good.txt"]
    assert warnings == [
        "skipped big.txt: 2.0 KB is over the 1.0 KB limit",
        "skipped huge.pdf: 3.0 MB is over the 1.0 KB limit",
    ]
    seen: list[str] = []
    assert list(file_stats(folder, max_bytes=1024, warn=seen.append)) == ["good.txt"]
    assert seen == warnings
    assert list(file_hashes(folder, max_bytes=1024)) == ["good.txt"]
    assert corpus_files(folder, max_bytes=1024) == [folder / "good.txt"]
    assert MAX_FILE_BYTES == 20 * 1024 * 1024
    # Under the default limit both are candidates (and huge.pdf is then a corrupt PDF).
    assert sorted(file_stats(folder)) == ["big.txt", "good.txt", "huge.pdf"]


def test_fifo_is_skipped_not_waited_on(folder: Path) -> None:
    os.mkfifo(folder / "pipe.txt")
    docs, warnings = load_corpus(folder)
    assert [d.name for d in docs] == ["good.txt"]
    assert warnings == ["skipped pipe.txt: not a regular file"]


# --- change detection ----------------------------------------------------------------------


def test_file_stats_reads_no_contents(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pdf(folder / "a.pdf")

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("file_stats opened a file")

    monkeypatch.setattr(Path, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    stats = file_stats(folder)
    for name in ("a.pdf", "good.txt"):
        info = (folder / name).stat()
        assert stats[name] == (info.st_size, info.st_mtime_ns)
    assert list(stats) == ["a.pdf", "good.txt"]


def test_file_hashes(folder: Path) -> None:
    (folder / "empty.txt").write_bytes(b"")  # unusable, but its change still counts
    assert file_hashes(folder) == {
        "empty.txt": hashlib.sha256(b"").hexdigest(),
        "good.txt": hashlib.sha256(GOOD.encode()).hexdigest(),
    }


def test_file_stats_see_a_change(folder: Path) -> None:
    before = file_stats(folder)
    (folder / "good.txt").write_text(GOOD + "More.\n")
    assert file_stats(folder)["good.txt"] != before["good.txt"]


def _record(folder: Path) -> tuple[dict[str, str], dict[str, list[int]]]:
    """What an index records: every candidate's hash, and its size and mtime."""
    stats = file_stats(folder)
    return file_hashes(folder), {name: list(st) for name, st in stats.items()}


def test_changes_hash_only_files_whose_size_or_mtime_changed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "same.txt").write_text("Unchanged.\n")
    (folder / "gone.txt").write_text("Deleted soon.\n")
    (folder / "touched.txt").write_text("Touched only.\n")
    hashes, stats = _record(folder)
    (folder / "good.txt").write_text(GOOD + "More.\n")
    (folder / "gone.txt").unlink()
    (folder / "new.txt").write_text("New.\n")
    os.utime(folder / "touched.txt", ns=(1, 1))
    hashed: list[str] = []

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return digest(path)

    found = changes(folder, file_stats(folder), hashes, stats, counting)
    assert sorted(hashed) == ["good.txt", "new.txt", "touched.txt"]
    assert (found.added, found.changed, found.removed) == (
        ("new.txt",),
        ("good.txt",),
        ("gone.txt",),
    )
    assert str(found) == "added: new.txt; changed: good.txt; removed: gone.txt"
    assert found.hashes == file_hashes(folder)
    assert not changes(folder, file_stats(folder), found.hashes, _record(folder)[1])


def test_a_file_that_could_not_be_hashed_is_tried_again_and_is_no_change_until_readable(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, stats = _record(folder)
    hashes = {"good.txt": UNREADABLE}
    assert digest(folder / "missing.txt") == UNREADABLE
    blocked = changes(folder, file_stats(folder), hashes, stats, lambda p: UNREADABLE)
    assert not blocked and blocked.hashes == hashes
    readable = changes(folder, file_stats(folder), hashes, stats)
    assert readable.changed == ("good.txt",)


def test_try_read_gives_a_document_or_the_reason(folder: Path) -> None:
    (folder / "latin.md").write_bytes(b"caf\xe9")
    good = try_read(folder, "good.txt")
    assert not isinstance(good, str) and good.text == GOOD
    assert try_read(folder, "latin.md") == "not valid UTF-8 (byte 3)"
    assert str(try_read(folder, "gone.txt")).startswith("cannot read it (")
