"""The on-disk index under hostile conditions: unusable folders, damaged manifests,
overlapping writers and kills mid-save. Every failure is a StoreError that says what to do,
and the folder always holds a whole index, the old one or the new one."""

from __future__ import annotations

import functools
import json
import os
import random
import select
import signal
import sqlite3
import stat
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import manifest, store
from rag.chunking import SENTENCE_RULE
from rag.corpus import sha256_file
from rag.errors import StoreError
from rag.records import Chunk, Document
from rag.store import Store
from tests.fakes import HashEmbedder

CHUNK_CHARS, OVERLAP = 60, 0
TEXT_A = "The ceremony was held at Kigye Airport. Kim welcomed the unit. It began in August."
TEXT_B = "The ceremony was held in Pyongyang. About 1,000 troops were sent. Nine died."


def _build(text: str) -> Store:
    doc = Document(name="a.txt", text=text, sha256="0" * 64, headings=((0, "Opening"),))
    return store.build([doc], {"a.txt": doc.sha256}, HashEmbedder(), CHUNK_CHARS, OVERLAP)


@pytest.fixture(scope="module")
def store_a() -> Store:
    return _build(TEXT_A)


@pytest.fixture(scope="module")
def store_b() -> Store:
    return _build(TEXT_B)


@pytest.fixture
def folder(tmp_path: Path, store_a: Store) -> Path:
    """An index folder that holds store_a."""
    index = tmp_path / "index"
    store.save(store_a, index)
    return index


def _chunks(folder: Path) -> tuple[Chunk, ...]:
    return store.load(folder).chunks


def _leftovers(folder: Path) -> set[str]:
    """Files in the folder other than the manifest, the lock and the files it names."""
    manifest = store.read_manifest(folder)
    assert manifest is not None
    named = {store.MANIFEST, store.LOCK_FILE, *(manifest[key] for key in store.FILE_KEYS)}
    return {p.name for p in folder.iterdir()} - named


def _fork(child: Callable[[], None]) -> int:
    """Run `child` in a forked process; it exits 0 when `child` returns, 1 when it raises."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


# 1. Unusable index folders ------------------------------------------------------------


def _regular_file(tmp: Path) -> Path:
    (tmp / "file").write_text("not a folder")
    return tmp / "file"


def _under_regular_file(tmp: Path) -> Path:
    return _regular_file(tmp) / "index"


def _read_only(tmp: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    (tmp / "ro").mkdir(mode=0o500)
    return tmp / "ro" / "index"


UNUSABLE: dict[str, Callable[[Path], Path]] = {
    "a regular file": _regular_file,
    "a folder under a regular file": _under_regular_file,
    "under /proc": lambda tmp: Path("/proc/rag-index-probe/index"),
    "under /sys, where writing is not permitted": lambda tmp: Path("/sys/rag-index-probe"),
    "under a read-only folder": _read_only,
}


@pytest.mark.parametrize("where", UNUSABLE)
def test_an_unusable_index_folder_is_one_clear_store_error(
    where: str, tmp_path: Path, store_a: Store
) -> None:
    folder = UNUSABLE[where](tmp_path)
    for attempt in (store.check_writable, lambda f: store.save(store_a, f)):
        with pytest.raises(StoreError) as caught:
            attempt(folder)
        message = str(caught.value)
        assert message.startswith(f"cannot write the index in {folder}: ")
        assert message.endswith("; pass --index DIR")
        assert "\n" not in message


def test_check_writable_creates_the_folder_and_leaves_nothing_in_it(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    store.check_writable(folder)
    assert folder.is_dir()
    assert list(folder.iterdir()) == []


def test_a_write_that_fails_midway_is_a_store_error_and_keeps_the_old_index(
    folder: Path, store_a: Store, store_b: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StoreError, match=r"No space left on device.*pass --index DIR"):
        store.save(store_b, folder)
    monkeypatch.undo()
    assert _chunks(folder) == store_a.chunks
    assert not list(folder.glob(".*.tmp"))


# 2. Damaged manifests -----------------------------------------------------------------


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda m: m.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda m: m.pop(key)


DAMAGE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "no documents": _drop("documents"),
    "no chunks_file": _drop("chunks_file"),
    "no corpus_files": _drop("corpus_files"),
    "no dim": _drop("dim"),
    "no vectors_sha256": _drop("vectors_sha256"),
    "corpus_files is a list": _set("corpus_files", ["a.txt"]),
    "corpus_files maps to numbers": _set("corpus_files", {"a.txt": 1}),
    "documents is a dict": _set("documents", {"a.txt": 1}),
    "documents holds a number": _set("documents", ["a.txt", 3]),
    "dim is a string": _set("dim", "384"),
    "dim is true": _set("dim", True),
    "chunk_count is null": _set("chunk_count", None),
    "chunking is a list": _set("chunking", [60, 0]),
    "chunking lacks overlap": _set("chunking", {"max_chars": 60}),
    "chunks_file is a list": _set("chunks_file", ["chunks.json"]),
    "chunks_file leaves the folder": _set("chunks_file", "../manifest.json"),
    "chunks_file is the folder": _set("chunks_file", "."),
    "delta_sha256 is not hex": _set("delta_sha256", "zz"),
    "document_ids shorter than documents": _set("document_ids", []),
    "document_ids past next_document_id": _set("document_ids", [7]),
    "retired_ids holds a string": _set("retired_ids", ["0"]),
    "no extraction_version": _drop("extraction_version"),
    "no next_id": _drop("next_id"),
    "next_id is negative": _set("next_id", -1),
    "corpus_stats is a list": _set("corpus_stats", [[1, 2]]),
    "corpus_stats holds a string": _set("corpus_stats", {"a.txt": "12"}),
    "corpus_stats holds one number": _set("corpus_stats", {"a.txt": [12]}),
    "skipped maps to a list": _set("skipped", {"b.pdf": ["no text"]}),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_manifest_is_a_store_error(damage: str, folder: Path) -> None:
    path = folder / store.MANIFEST
    manifest = store.read_manifest(folder)
    assert manifest is not None
    DAMAGE[damage](manifest)
    path.write_text(json.dumps(manifest))
    for read in (store.read_manifest, store.load):
        with pytest.raises(StoreError, match=r"is corrupt.*run `rag index`"):
            read(folder)


def test_a_manifest_of_another_format_version_says_so(folder: Path) -> None:
    path = folder / store.MANIFEST
    text, now = path.read_text(), f'"format_version": {store.FORMAT_VERSION}'
    path.write_text(text.replace(now, f'"format_version": {store.FORMAT_VERSION + 1}'))
    with pytest.raises(StoreError, match=r"format version \d+.*run `rag index`") as newer:
        store.read_manifest(folder)
    assert not isinstance(newer.value, manifest.OlderFormat)
    path.write_text(text.replace(now, '"format_version": 1'))
    with pytest.raises(manifest.OlderFormat, match=r"format version 1.*run `rag index`"):
        store.read_manifest(folder)


def test_a_manifest_cut_by_another_sentence_rule_says_so(folder: Path) -> None:
    """Chunks follow the sentence rule: an index cut by an older one is rebuilt (OlderFormat),
    one cut by a newer rag is an error."""
    path = folder / store.MANIFEST
    data = json.loads(path.read_text())
    data["chunking"]["sentence_rule"] = SENTENCE_RULE + 1
    path.write_text(json.dumps(data))
    with pytest.raises(
        StoreError, match=r"cut into sentences by rule \d+.*run `rag index`"
    ) as newer:
        store.read_manifest(folder)
    assert not isinstance(newer.value, manifest.OlderFormat)
    data["chunking"]["sentence_rule"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(manifest.OlderFormat, match=r"by rule 1.*run `rag index`"):
        store.read_manifest(folder)


@pytest.mark.parametrize(
    ("chunking", "message"),
    [
        # Only the rule differs: no setting chooses it, so none is offered.
        ({"max_chars": 400, "overlap_sentences": 1}, r"cut into sentences by rule 1, and this"),
        (
            {"max_chars": 400, "overlap_sentences": 1, "sentence_rule": SENTENCE_RULE + 1},
            r"by rule",
        ),
        # Settings differ too: the settings are named.
        ({"max_chars": 800, "overlap_sentences": 1}, r"built with chunking=.*use those settings"),
    ],
)
def test_a_shared_store_cut_another_way_names_what_differs(
    chunking: dict[str, int], message: str
) -> None:
    from rag.sync import _check_shared

    expected = manifest.expected_settings(400, 1)
    shared = expected | {"chunking": chunking}
    with pytest.raises(StoreError, match=message) as raised:
        _check_shared(shared, expected, "the Milvus store at x")
    assert "drop its collections" in str(raised.value)
    _check_shared(expected, expected, "the Milvus store at x")  # the same: no error


def test_a_saved_store_loads_whole(folder: Path, store_a: Store) -> None:
    """Documents (texts, pages, headings), chunks, ids and vectors survive a save."""
    loaded = store.load(folder)
    assert loaded.chunks == store_a.chunks
    assert loaded.ids == store_a.ids == tuple(range(len(store_a.chunks)))
    assert loaded.documents == store_a.documents
    assert loaded.manifest["next_id"] == len(store_a.chunks)
    for position, c in enumerate(loaded.chunks):
        label = loaded.label(position)
        assert loaded.chunk(label) == c
        assert loaded.documents[c.doc].text[c.start : c.end] == c.text
        assert np.allclose(loaded.vectors.reconstruct(label), store_a.vectors.reconstruct(label))


def _edit_table(folder: Path, sql: str) -> None:
    """Change the SQLite table behind the manifest's back, as a bug (not damage) would."""
    data = store.read_manifest(folder)
    assert data is not None
    db = sqlite3.connect(folder / data["chunks_file"])
    db.execute(sql)
    db.commit()
    db.close()


TABLE_DAMAGE: dict[str, str] = {
    "a chunk past its text": 'UPDATE chunks SET "end" = 10000 WHERE id = 0',
    "an empty chunk": 'UPDATE chunks SET "end" = start WHERE id = 0',
    "a chunk of an unknown document": "UPDATE chunks SET doc = 99 WHERE id = 0",
    "an id the vectors lack": "UPDATE chunks SET id = 99 WHERE id = 0",
    "a missing chunk": "DELETE FROM chunks WHERE id = 1",
    "a missing document": "DELETE FROM documents",
    "pages that are not ranges": "UPDATE documents SET pages = '[1]'",
}


@pytest.mark.parametrize("damage", TABLE_DAMAGE)
def test_a_chunk_table_that_does_not_fit_its_texts_is_a_store_error(
    damage: str, folder: Path
) -> None:
    _edit_table(folder, TABLE_DAMAGE[damage])
    with pytest.raises(StoreError, match=r"corrupt|inconsistent"):
        store.load(folder)


def _assert_usable(manifest: dict[str, Any], loaded: Store | None) -> None:
    """What the pipeline and retrieval rely on, as they use it."""
    assert {str(k): str(v) for k, v in manifest["corpus_files"].items()} == manifest["corpus_files"]
    assert all(isinstance(d, str) for d in manifest["documents"])
    assert isinstance(manifest["dim"], int) and not isinstance(manifest["dim"], bool)
    if loaded is not None:
        assert loaded.vectors.ntotal == len(loaded.chunks) == manifest["chunk_count"]
        assert loaded.vectors.d == manifest["dim"]
        assert {c.doc for c in loaded.chunks} <= set(manifest["documents"])
        assert all(len(c.text) == c.end - c.start for c in loaded.chunks)
        assert all(loaded.chunk(loaded.label(p)) == c for p, c in enumerate(loaded.chunks))


def _corruptions(original: bytes) -> list[tuple[int, int]]:
    """(position, new byte) pairs: at every byte its neighbour (a letter or digit off by
    one), its other case, and a JSON delimiter; at six spread-out bytes, all 256 values."""
    delimiters = b'"0[{-'
    cases = [(pos, byte ^ flip) for pos, byte in enumerate(original) for flip in (0x01, 0x20)]
    cases += [(pos, delimiters[pos % len(delimiters)]) for pos in range(len(original))]
    step = len(original) // 6
    cases += [(pos, value) for pos in range(7, len(original), step) for value in range(256)]
    return cases


def test_every_single_byte_corruption_of_the_manifest_is_a_store_error_or_usable(
    folder: Path,
) -> None:
    path = folder / store.MANIFEST
    original = path.read_bytes()
    expected = store.expected_settings(CHUNK_CHARS, OVERLAP)
    outcomes = {"usable": 0, "StoreError": 0}
    cases = _corruptions(original)
    assert 2_000 < len(cases) < 6_000
    # One byte rewritten in place: ext4 flushes a file that is truncated and rewritten,
    # ~2 ms each, which would make this test take seconds.
    fd = os.open(path, os.O_WRONLY)
    try:
        for pos, new in cases:
            os.pwrite(fd, bytes([new]), pos)
            try:
                manifest = store.read_manifest(folder)
                assert manifest is not None
                _assert_usable(manifest, None)
                store.check_compatible(manifest, expected, folder)
                _assert_usable(manifest, store.load(folder))
                outcomes["usable"] += 1
            except StoreError:
                outcomes["StoreError"] += 1
            except Exception as exc:
                pytest.fail(f"byte {pos} {original[pos]:#x} -> {new:#x}: {exc!r}")
            os.pwrite(fd, original[pos : pos + 1], pos)
    finally:
        os.close(fd)
    assert outcomes["usable"] and outcomes["StoreError"]


def test_a_data_file_that_does_not_match_its_manifest_is_a_store_error(folder: Path) -> None:
    manifest = store.read_manifest(folder)
    assert manifest is not None
    # The vector files are checked against their SHA-256 (the SQLite table, changed in
    # place by updates, has SQLite's own page checks instead).
    delta = folder / manifest["delta_file"]
    delta.write_bytes(delta.read_bytes()[:-1] + b"x")
    with pytest.raises(StoreError, match=r"does not match its manifest.*rag index"):
        store.load(folder)


# 3. Overlapping writers ---------------------------------------------------------------

SAVES_EACH = 12


def _save_many(one: Store, folder: Path) -> None:
    for _ in range(SAVES_EACH):
        store.save(one, folder)


def test_overlapping_saves_in_threads_leave_a_whole_index(
    folder: Path, store_a: Store, store_b: Store
) -> None:
    errors: list[BaseException] = []

    def run(one: Store) -> None:
        try:
            _save_many(one, folder)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (store_a, store_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _chunks(folder) in (store_a.chunks, store_b.chunks)
    assert _leftovers(folder) == set()


def test_overlapping_saves_in_processes_leave_a_whole_index(
    folder: Path, store_a: Store, store_b: Store
) -> None:
    pids = [_fork(functools.partial(_save_many, s, folder)) for s in (store_a, store_b)]
    assert [_exit_code(pid) for pid in pids] == [0, 0]
    assert _chunks(folder) in (store_a.chunks, store_b.chunks)
    assert _leftovers(folder) == set()


def test_a_save_inside_a_held_lock_does_not_wait_for_itself(folder: Path, store_b: Store) -> None:
    with store.lock(folder, timeout=2):
        store.save(store_b, folder)
    assert _chunks(folder) == store_b.chunks


def test_a_lock_held_by_another_thread_times_out_with_a_clear_error(folder: Path) -> None:
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock(folder):
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"writing the index in .* try again"):
            with store.lock(folder, timeout=0.2):
                pass
        assert 0.2 <= time.monotonic() - started < 2
    finally:
        done.set()
        holder.join()


def test_a_save_waits_for_a_lock_held_by_another_process(folder: Path, store_b: Store) -> None:
    read_end, write_end = os.pipe()

    def hold() -> None:
        with store.lock(folder):
            os.write(write_end, b"held")
            time.sleep(0.5)

    pid = _fork(hold)
    os.close(write_end)
    assert os.read(read_end, 4) == b"held"
    started = time.monotonic()
    store.save(store_b, folder)
    assert time.monotonic() - started > 0.3
    assert _exit_code(pid) == 0
    assert _chunks(folder) == store_b.chunks


def test_a_load_that_meets_a_save_midway_reads_the_new_index(
    folder: Path, store_b: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The save runs after load read the manifest and before it opened the files named there.
    real, saved = sha256_file, [False]

    def save_first(path: Path) -> str:
        if not saved[0]:
            saved[0] = True
            store.save(store_b, folder)
        return real(path)

    monkeypatch.setattr(store, "_sha256", save_first)
    assert store.load(folder).chunks == store_b.chunks


# 4. Stale temporary files, and 5. durability --------------------------------------------


def test_a_save_removes_what_interrupted_writes_left(folder: Path, store_b: Store) -> None:
    for name in (".manifest.json.999.tmp", ".chunks-dead.json.1-ab.tmp", "vectors-dead.faiss"):
        (folder / name).write_bytes(b"half")
    store.save(store_b, folder)
    assert _leftovers(folder) == set()


def test_the_manifest_swap_is_synced_to_disk(
    tmp_path: Path, store_a: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("sync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "sync file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(f"replace {Path(dst).name.split('-')[0]}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.save(store_a, tmp_path / "index")
    # The chunk table is SQLite's, which syncs its own commit (synchronous=FULL); the base
    # vectors have a fresh name, so they are synced in place and need no rename.
    assert events == [
        "sync file",
        "sync file", "replace delta",
        "sync file", "replace removed",
        "sync folder",
        "sync file", f"replace {store.MANIFEST}",
        "sync folder",
    ]  # fmt: skip


# Kills mid-save -----------------------------------------------------------------------


def _at_vectors(op: str, target: str) -> bool:
    return op == "fsync" and target.startswith("vectors-")


def _at_manifest_tmp(op: str, target: str) -> bool:
    return op == "fsync" and target.startswith(f".{store.MANIFEST}.")


def _after_manifest_swap(op: str, target: str) -> bool:
    return op == "replaced" and target == store.MANIFEST


# Where the child stops, and which index the folder must hold after it is killed there.
KILL_POINTS: dict[str, tuple[Callable[[str, str], bool], str]] = {
    "after the chunk table, while the vectors are written": (_at_vectors, "old"),
    "after the data files, before the manifest": (_at_manifest_tmp, "old"),
    "after the manifest swap, before the cleanup": (_after_manifest_swap, "new"),
}


def _stop_at(point: Callable[[str, str], bool], signal_fd: int) -> None:
    """In the child: tell the parent, then wait to be killed, when `point` is reached."""
    real_fsync, real_replace = os.fsync, os.replace

    def stop(op: str, target: str) -> None:
        if point(op, target):
            os.write(signal_fd, b"!")
            time.sleep(30)

    def fsync(fd: int) -> None:
        stop("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        stop("replaced", Path(dst).name)

    os.fsync, os.replace = fsync, replace  # type: ignore[assignment]


def _kill_at(point: Callable[[str, str], bool], write: Callable[[], object]) -> None:
    """Run `write` in a child process and SIGKILL it when it reaches `point`."""
    read_end, write_end = os.pipe()

    def child() -> None:
        _stop_at(point, write_end)
        write()

    pid = _fork(child)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 10)
    assert ready and os.read(read_end, 1) == b"!", "the child never reached the kill point"
    os.kill(pid, signal.SIGKILL)
    assert _exit_code(pid) == -signal.SIGKILL


@pytest.mark.parametrize("where", KILL_POINTS)
def test_a_kill_midway_through_a_save_leaves_the_old_index_or_the_new(
    where: str, folder: Path, store_a: Store, store_b: Store
) -> None:
    point, survivor = KILL_POINTS[where]
    _kill_at(point, lambda: store.save(store_b, folder))
    expected = {"old": store_a, "new": store_b}[survivor]
    assert _chunks(folder) == expected.chunks
    store.save(store_a, folder)
    assert _leftovers(folder) == set()


def test_a_kill_midway_through_an_update_in_place_leaves_the_old_index(
    tmp_path: Path, store_a: Store
) -> None:
    """An update writes new rows into the live SQLite table and a new vector delta; killed
    before the manifest swap, the folder still opens as the old index, and the next save
    deletes the rows the dead update left."""
    folder = tmp_path / "index"
    store.save(store_a, folder)
    other = Document(name="b.txt", text=TEXT_B, sha256="1" * 64)

    def update() -> None:
        built, _ = store.update(
            store.load(folder), ["a.txt", other], HashEmbedder(), CHUNK_CHARS, OVERLAP
        )
        store.save(built, folder)

    _kill_at(_at_manifest_tmp, update)
    old = store.load(folder)
    assert old.chunks == store_a.chunks and list(old.documents) == ["a.txt"]
    built, _ = store.update(old, ["a.txt", other], HashEmbedder(), CHUNK_CHARS, OVERLAP)
    new = store.save(built, folder)
    assert list(new.documents) == ["a.txt", "b.txt"] and _leftovers(folder) == set()
    db = sqlite3.connect(folder / new.manifest["chunks_file"])
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone() == (2,)
    assert db.execute("SELECT COUNT(*) FROM chunks").fetchone() == (len(new.chunks),)


def test_kills_at_random_times_during_saves_leave_a_whole_index(
    folder: Path, store_a: Store, store_b: Store
) -> None:
    def child() -> None:
        while True:
            store.save(store_b, folder)
            store.save(store_a, folder)

    rng = random.Random(7)
    for _ in range(10):
        pid = _fork(child)
        time.sleep(rng.uniform(0, 0.06))
        os.kill(pid, signal.SIGKILL)
        assert _exit_code(pid) == -signal.SIGKILL
        assert _chunks(folder) in (store_a.chunks, store_b.chunks)
    store.save(store_a, folder)
    assert _leftovers(folder) == set()
