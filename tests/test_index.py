"""Incremental indexing and the open index: adding, changing or deleting a file re-reads
and re-embeds only that file, and leaves exactly what a full rebuild gives (the same
chunks, documents and search results); texts are served from the index, not the files;
a background update keeps answering from the current index and swaps the new one in."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF

from rag import index as index_module
from rag import manifest, store
from rag import sync as sync_module
from rag import vectors as vectors_module
from rag.corpus import file_stats, try_read
from rag.embed import Embedder
from rag.errors import CorpusError, InputError, StoreError
from rag.index import OpenIndex, build
from rag.progress import Progress
from rag.records import Document
from rag.retrieve import build_bm25, retrieve
from rag.settings import Settings, load_settings
from tests.fakes import HashEmbedder, Script, ScriptedGenerator, find

QUERIES = [
    "Where was the ceremony held?",
    "How many engineer troops were sent?",
    "harbour survey lighthouse ships",
    "When did the mission begin?",
]
EXTRA = "The harbour survey began in 1911. The lighthouse keeper counted 4,812 ships.\n"


class CountingEmbedder(HashEmbedder):
    """The fake embedder, keeping every text it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return super().embed(texts)


def quiet(message: str) -> None:
    pass


def record_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the corpus files the update reads from now on."""
    read: list[str] = []

    def reading(folder: Path, name: str) -> Document | str:
        read.append(name)
        return try_read(folder, name)

    monkeypatch.setattr(sync_module, "try_read", reading)
    return read


def full_rebuild(settings: Settings, tmp_path: Path) -> store.Store:
    """The same corpus indexed from nothing, in a folder of its own."""
    return build(replace(settings, index=tmp_path / "full"), HashEmbedder(), quiet)


def search(built: store.Store, hybrid: bool = False) -> list[list[tuple[str, int, int, float]]]:
    """Every query's hits as (doc, start, end, dense score), dense or fused with BM25."""
    bm25 = build_bm25(built.chunks) if hybrid else None
    out = []
    for q in QUERIES:
        qvec = HashEmbedder().embed([q])[0]
        hits = retrieve(q, qvec, built, 4, bm25)
        out.append([(h.chunk.doc, h.chunk.start, h.chunk.end, round(h.dense, 5)) for h in hits])
    return out


def assert_same_as_full(updated: store.Store, settings: Settings, tmp_path: Path) -> None:
    full = full_rebuild(settings, tmp_path)
    assert updated.chunks == full.chunks
    assert dict(updated.documents) == dict(full.documents)
    for hybrid in (False, True):
        assert search(updated, hybrid) == search(full, hybrid)
    reloaded = store.load(settings.index)
    assert reloaded.chunks == full.chunks
    assert search(reloaded) == search(full)
    for key in ("corpus_files", "corpus_stats", "documents", "chunk_count", "skipped"):
        assert reloaded.manifest[key] == full.manifest[key], key


def add(corpus: Path) -> None:
    (corpus / "c.txt").write_text(EXTRA, encoding="utf-8")


def change(corpus: Path) -> None:
    text = (corpus / "b.md").read_text(encoding="utf-8")
    (corpus / "b.md").write_text(text.replace("1,000", "2,000") + "A new line.\n")


def delete(corpus: Path) -> None:
    (corpus / "a.txt").unlink()


def all_three(corpus: Path) -> None:
    add(corpus)
    change(corpus)
    delete(corpus)


EDITS: dict[str, tuple[Callable[[Path], None], str, set[str]]] = {
    # edit, the report it gives, the documents whose chunks are embedded again
    "add": (add, "indexed: 1 added, 0 updated, 0 removed, 2 unchanged", {"c.txt"}),
    "change": (change, "indexed: 0 added, 1 updated, 0 removed, 1 unchanged", {"b.md"}),
    "delete": (delete, "indexed: 0 added, 0 updated, 1 removed, 1 unchanged", set()),
    "all three": (all_three, "indexed: 1 added, 1 updated, 1 removed, 0 unchanged",
                  {"c.txt", "b.md"}),
}  # fmt: skip


@pytest.mark.parametrize("edit", EDITS)
def test_an_edit_is_indexed_incrementally_and_matches_a_full_rebuild(
    edit: str, settings: Settings, corpus: Path, tmp_path: Path
) -> None:
    apply, report, embedded_docs = EDITS[edit]
    first = build(settings, HashEmbedder(), quiet)
    apply(corpus)
    embedder, log = CountingEmbedder(), list[str]()
    updated = build(settings, embedder, log.append)
    assert_same_as_full(updated, settings, tmp_path)
    # Only the edited documents' chunks were embedded again.
    expected = [c.text for c in updated.chunks if c.doc in embedded_docs]
    assert sorted(embedder.texts) == sorted(expected)
    assert log[-1].startswith(f"{report}; {len(expected)} chunk")
    # Chunks that were kept keep their ids; new chunks get ids never used before.
    old_ids = dict(zip(first.chunks, first.ids, strict=True))
    for c, i in zip(updated.chunks, updated.ids, strict=True):
        if c.doc in embedded_docs:
            assert i >= len(first.ids)
        else:
            assert old_ids[c] == i


def test_only_new_and_changed_files_are_read(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings, HashEmbedder(), quiet)
    add(corpus)
    change(corpus)
    os.utime(corpus / "a.txt", ns=(1, 1))  # touched, same bytes: hashed, not read
    read = record_reads(monkeypatch)
    log: list[str] = []
    build(settings, HashEmbedder(), log.append)
    assert sorted(read) == ["b.md", "c.txt"]
    assert log[-1].startswith("indexed: 1 added, 1 updated, 0 removed, 1 unchanged")


def test_an_unchanged_corpus_is_not_written_again(settings: Settings) -> None:
    build(settings, HashEmbedder(), quiet)
    before = (settings.index / manifest.MANIFEST).read_bytes()
    embedder, log = CountingEmbedder(), list[str]()
    build(settings, embedder, log.append)
    assert (settings.index / manifest.MANIFEST).read_bytes() == before
    assert embedder.texts == []
    assert log[-1].startswith("indexed: 0 added, 0 updated, 0 removed, 2 unchanged; 0 chunks")


def test_a_full_build_can_be_forced(settings: Settings) -> None:
    build(settings, HashEmbedder(), quiet)
    embedder = CountingEmbedder()
    rebuilt = build(settings, embedder, quiet, full=True)
    assert len(embedder.texts) == len(rebuilt.chunks)
    assert rebuilt.ids == tuple(range(len(rebuilt.chunks)))


def test_incremental_updates_over_hnsw_keep_every_chunk_and_find_the_same_ones(
    settings: Settings, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HNSW base takes removals and additions through its delta, without embedding
    anything but the new chunks; it finds what a full rebuild finds (its 8-bit codes
    round scores differently, so neither scores nor the order of near-ties are compared)."""
    monkeypatch.setattr(vectors_module, "APPROXIMATE_ABOVE", 0)
    build(settings, HashEmbedder(), quiet)
    all_three(corpus)
    updated = build(settings, HashEmbedder(), quiet)
    assert updated.manifest["index_type"] == "hnsw"
    full = full_rebuild(settings, tmp_path)
    assert updated.chunks == full.chunks
    spans = [sorted(hit[:3] for hit in hits) for hits in search(updated)]
    assert spans == [sorted(hit[:3] for hit in hits) for hits in search(full)]


def test_crossing_the_hnsw_threshold_changes_the_index_type(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(settings, HashEmbedder(), quiet)
    assert first.manifest["index_type"] == "flat"
    monkeypatch.setattr(vectors_module, "APPROXIMATE_ABOVE", len(first.chunks))
    add(corpus)
    assert build(settings, HashEmbedder(), quiet).manifest["index_type"] == "hnsw"


# Bad files, the extraction version, and indexes that cannot be updated ---------------------


def test_a_skipped_file_is_warned_about_every_time_but_read_only_when_it_changes(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus / "bad.txt").write_bytes(b"caf\xe9")
    log: list[str] = []
    build(settings, HashEmbedder(), log.append)
    assert "warning: skipped bad.txt: not valid UTF-8 (byte 3)" in log
    read = record_reads(monkeypatch)
    log.clear()
    build(settings, HashEmbedder(), log.append)
    assert read == []
    assert "warning: skipped bad.txt: not valid UTF-8 (byte 3)" in log
    assert log[-1].startswith("indexed: 0 added, 0 updated, 0 removed, 2 unchanged, 1 skipped")
    (corpus / "bad.txt").write_text("Now it is fine text.\n")
    fixed = build(settings, HashEmbedder(), quiet)
    assert read == ["bad.txt"]
    assert "bad.txt" in fixed.documents and fixed.manifest["skipped"] == {}


def test_a_corpus_with_nothing_usable_left_is_an_error_and_keeps_the_index(
    settings: Settings, corpus: Path
) -> None:
    built = build(settings, HashEmbedder(), quiet)
    for name in ("a.txt", "b.md"):
        (corpus / name).write_bytes(b"\x00\x01")
    with pytest.raises(CorpusError, match=r"no usable documents .*a\.txt: file looks binary"):
        build(settings, HashEmbedder(), quiet)
    assert store.load(settings.index).chunks == built.chunks


def test_files_over_the_size_limit_are_skipped(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus / "big.txt").write_text("Big. " * 1000)
    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.001")
    small = load_settings(corpus=corpus, index=settings.index)
    assert small.max_file_bytes == 1048
    log: list[str] = []
    built = build(small, HashEmbedder(), log.append)
    assert "big.txt" not in built.documents
    assert "warning: skipped big.txt: 4.9 KB is over the 1.0 KB limit" in log
    assert "big.txt" in build(settings, HashEmbedder(), quiet).documents  # default 20 MB


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "lots"])
def test_a_bad_size_limit_is_an_input_error(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MAX_FILE_MB", raw)
    with pytest.raises(InputError, match="RAG_MAX_FILE_MB"):
        load_settings()


def test_new_extraction_reads_every_document_again_and_embeds_only_changed_text(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings, HashEmbedder(), quiet)
    for module in (index_module, sync_module, store):
        monkeypatch.setattr(module, "extraction_version", lambda: "readers 2")
    embedder, log = CountingEmbedder(), list[str]()
    updated = build(settings, embedder, log.append)
    assert any("text extraction changed" in m and "readers 2" in m for m in log)
    assert embedder.texts == []  # the texts came out the same
    assert updated.manifest["extraction_version"] == "readers 2"
    assert store.load(settings.index).manifest["extraction_version"] == "readers 2"


def test_an_open_index_updates_itself_when_extraction_changed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings, HashEmbedder(), quiet)
    for module in (index_module, sync_module, store):
        monkeypatch.setattr(module, "extraction_version", lambda: "readers 2")
    log: list[str] = []
    opened = make(settings, log)
    opened.sync()
    assert any("text extraction changed" in m for m in log)
    assert store.load(settings.index).manifest["extraction_version"] == "readers 2"


def _older_format(settings: Settings) -> None:
    path = settings.index / manifest.MANIFEST
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"format_version": 1}))


def _older_sentences(settings: Settings) -> None:
    """A manifest from before the sentence rule was recorded: cut by rule 1."""
    path = settings.index / manifest.MANIFEST
    data = json.loads(path.read_text())
    del data["chunking"]["sentence_rule"]
    path.write_text(json.dumps(data))


def _corrupt_vectors(settings: Settings) -> None:
    data = json.loads((settings.index / manifest.MANIFEST).read_text())
    (settings.index / data["vectors_file"]).write_bytes(b"garbage")


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_older_format, "has format version 1, this rag reads version 3; rebuilding it"),
        (_older_sentences, "by rule 1, this rag cuts by rule 3; rebuilding it"),
        (_corrupt_vectors, "does not match its manifest; rebuilding it from scratch"),
    ],
)
def test_rag_index_rebuilds_an_index_it_cannot_update(
    damage: Callable[[Settings], None], said: str, settings: Settings
) -> None:
    build(settings, HashEmbedder(), quiet)
    damage(settings)
    embedder, log = CountingEmbedder(), list[str]()
    rebuilt = build(settings, embedder, log.append)
    assert any(m.endswith(said) for m in log)
    assert len(embedder.texts) == len(rebuilt.chunks)
    assert store.load(settings.index).chunks == rebuilt.chunks


def test_ask_rebuilds_an_index_of_an_older_format_but_not_a_corrupt_one(
    settings: Settings,
) -> None:
    build(settings, HashEmbedder(), quiet)
    _older_format(settings)
    log: list[str] = []
    make(settings, log).sync()
    assert any("format version 1" in m and "rebuilding it" in m for m in log)
    _older_sentences(settings)
    make(settings, log).sync()
    assert any("by rule 1" in m and "rebuilding it" in m for m in log)
    _corrupt_vectors(settings)
    with pytest.raises(StoreError, match="run `rag index`"):
        make(settings).sync()


# Texts come from the index ---------------------------------------------------------------


def write_pdf(path: Path, pages: list[str]) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 5, text)
    pdf.output(str(path))


def make(
    settings: Settings,
    log: list[str] | None = None,
    *,
    index_embedder: Embedder | None = None,
    script: Script | None = None,
    background: bool = False,
) -> OpenIndex:
    """An open index with the fakes: the hash embedder and a scripted model."""
    emb = HashEmbedder()
    return OpenIndex(
        settings,
        embedder=emb,
        index_embedder=index_embedder or emb,
        generator=ScriptedGenerator(script or find("4,812")),
        log=(log if log is not None else []).append,
        background=background,
    )


def test_texts_and_citations_come_from_the_index_not_the_files(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pdf(corpus / "survey.pdf", ["The harbour survey began in 1911.", EXTRA])
    build(settings, HashEmbedder(), quiet)
    extracted = store.load(settings.index).documents["survey.pdf"].text

    def no_reading(*args: object) -> None:
        raise AssertionError("a corpus file was read")

    monkeypatch.setattr(sync_module, "try_read", no_reading)
    opened = make(settings)
    answer = opened.ask("How many ships did the lighthouse keeper count?")
    assert opened.text("survey.pdf") == extracted
    [cited] = answer.citations
    assert (cited.doc, cited.page) == ("survey.pdf", 2)
    assert extracted[cited.start : cited.end] == cited.quote
    with pytest.raises(CorpusError, match=r"no document 'nope\.txt' in the index"):
        opened.text("nope.txt")


def test_rag_text_prints_the_stored_text(
    settings: Settings,
    corpus: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag import cli

    monkeypatch.setattr(index_module, "SentenceTransformerEmbedder", HashEmbedder)
    write_pdf(corpus / "survey.pdf", ["Page one.", "Page two."])
    built = build(settings, HashEmbedder(), quiet)
    (corpus / "survey.pdf").write_bytes(b"%PDF- not any more")
    os.utime(corpus / "survey.pdf", ns=(1, 1))
    args = ["text", "survey.pdf", "--corpus", str(corpus), "--index", str(settings.index)]
    # The file changed, so `rag text` updates the index first; it no longer has the
    # document, and says so.
    assert cli.main(args) == 2
    assert "no document 'survey.pdf' in the index" in capsys.readouterr().err
    write_pdf(corpus / "survey.pdf", ["Page one.", "Page two."])
    assert cli.main([*args, "--raw"]) == 0
    assert capsys.readouterr().out == built.documents["survey.pdf"].text == "Page one.\n\nPage two."


def test_a_question_sees_one_index_even_when_another_thread_updates_it(
    settings: Settings, corpus: Path
) -> None:
    """A view is pinned per thread at sync: texts stay those of the index it searched."""
    opened = make(settings)
    opened.sync()
    before = opened.text("b.md")
    change(corpus)
    other = threading.Thread(target=opened.sync)
    other.start()
    other.join()
    assert opened.text("b.md") == before  # this thread has not synced since
    opened.sync()
    assert opened.text("b.md") == (corpus / "b.md").read_text()


# Background updates (the chat page) ------------------------------------------------------


class GatedEmbedder(HashEmbedder):
    """Blocks in embed until released, so a test can look at an update midway."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.fail = False

    def embed(self, texts: list[str]) -> np.ndarray:
        self.entered.set()
        assert self.release.wait(10), "the test never released the embedder"
        if self.fail:
            raise RuntimeError("embedding failed")
        return super().embed(texts)


def test_a_background_update_keeps_answering_from_the_current_index(
    settings: Settings, corpus: Path
) -> None:
    gate = GatedEmbedder()
    gate.release.set()
    log: list[str] = []
    opened = make(settings, log, index_embedder=gate, background=True, script=find("nine"))
    first = opened.sync()  # there is no index yet: the first one is built before answering
    assert not opened.rebuilding
    gate.release.clear()
    gate.entered.clear()
    (corpus / "b.md").write_text("Kim acknowledged the deaths of ten personnel.\n")
    assert opened.sync() is first  # returns at once, from the current index
    assert gate.entered.wait(10) and opened.rebuilding
    answer = opened.ask("How many personnel deaths?")
    assert (
        answer.citations[0].quote
        == "Kim acknowledged the deaths of nine personnel during operations."
    )
    assert opened.text("b.md") == first.documents["b.md"].text
    gate.release.set()
    assert opened.wait(10) and not opened.rebuilding
    assert opened.sync() is not first
    assert opened.text("b.md") == "Kim acknowledged the deaths of ten personnel.\n"
    assert any("updating the index in the background" in m for m in log)


def test_a_failed_background_update_is_reported_and_not_retried_until_the_corpus_changes(
    settings: Settings, corpus: Path
) -> None:
    gate = GatedEmbedder()
    gate.release.set()
    log: list[str] = []
    opened = make(settings, log, index_embedder=gate, background=True)
    first = opened.sync()
    gate.fail = True
    add(corpus)
    opened.sync()
    assert opened.wait(10)
    assert opened.rebuild_error == "embedding failed"
    assert any("could not update the index (embedding failed)" in m for m in log)
    assert opened.sync() is first and not opened.rebuilding  # not retried
    assert store.load(settings.index).chunks == first.chunks
    gate.fail = False
    change(corpus)
    opened.sync()
    assert opened.wait(10) and opened.rebuild_error is None
    assert "c.txt" in opened.sync().documents


def test_a_background_index_opens_a_stale_index_at_once_and_updates_it(
    settings: Settings, corpus: Path
) -> None:
    built = build(settings, HashEmbedder(), quiet)
    add(corpus)
    gate = GatedEmbedder()
    opened = make(settings, index_embedder=gate, background=True)
    assert opened.sync().chunks == built.chunks
    assert gate.entered.wait(10) and opened.rebuilding
    gate.release.set()
    assert opened.wait(10)
    assert "c.txt" in opened.sync().documents


def test_a_blocking_sync_waits_for_a_running_background_update(
    settings: Settings, corpus: Path
) -> None:
    gate = GatedEmbedder()
    gate.release.set()
    opened = make(settings, index_embedder=gate, background=True)
    opened.sync()
    gate.release.clear()
    gate.entered.clear()
    add(corpus)
    opened.sync()
    assert gate.entered.wait(10)
    threading.Timer(0.2, gate.release.set).start()
    assert "c.txt" in opened.sync(block=True).documents


# Progress --------------------------------------------------------------------------------


def test_progress_is_a_plain_line_every_few_seconds_with_rate_and_time_left() -> None:
    now = [0.0]
    lines: list[str] = []
    bar = Progress("embedding chunks", 1000, lines.append, clock=lambda: now[0])
    for done, at in ((100, 1.0), (200, 5.5), (300, 6.0), (1000, 20.0)):
        now[0] = at
        bar.update(done)
    assert lines == [
        "embedding chunks: 200/1,000 (20%, 36/s, about 22 s left)",
        "embedding chunks: 1,000/1,000 (100%)",
    ]


def test_building_logs_embedding_progress(settings: Settings) -> None:
    log: list[str] = []
    built = build(settings, HashEmbedder(), log.append)
    n = len(built.chunks)
    assert f"embedding chunks: {n}/{n} (100%)" in log


def test_a_background_index_keeps_answering_when_the_corpus_folder_goes_away(
    settings: Settings, corpus: Path, tmp_path: Path
) -> None:
    opened = make(settings, background=True)
    first = opened.sync()
    corpus.rename(tmp_path / "elsewhere")
    assert opened.sync() is first
    assert opened.rebuild_error is not None and "does not exist" in opened.rebuild_error
    with pytest.raises(CorpusError, match="does not exist"):
        opened.sync(block=True)
    (tmp_path / "elsewhere").rename(corpus)
    assert opened.sync() is first and opened.rebuild_error is None


def test_the_incremental_benchmark_runs_and_counts_what_it_did(tmp_path: Path) -> None:
    from benchmarks.incremental import run

    figures = run(tmp_path, 30, HashEmbedder(), quiet)
    assert figures["files"] == 30
    assert str(figures["change_one_report"]).startswith(
        "indexed: 0 added, 1 updated, 0 removed, 29 unchanged"
    )
    assert str(figures["delete_one_report"]).startswith(
        "indexed: 0 added, 0 updated, 1 removed, 30 unchanged; 0 chunks embedded"
    )
    assert float(figures["per_question_check_ms"]) > 0  # type: ignore[arg-type]


def test_above_the_walk_limit_questions_follow_rag_index_not_the_corpus(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WALK_UP_TO files a question does not stat the corpus (that cost grows with
    it); it reopens the index when `rag index` has saved a new one."""
    monkeypatch.setattr(index_module, "WALK_UP_TO", 1)
    build(settings, HashEmbedder(), quiet)
    opened = make(settings)
    opened.sync()  # the first open still reads the corpus record
    walks: list[Path] = []
    real = file_stats

    def counting(folder: Path, *args: object, **kwargs: object) -> object:
        walks.append(folder)
        return real(folder, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module, "file_stats", counting)
    add(corpus)
    assert "c.txt" not in opened.sync().documents
    build(settings, HashEmbedder(), quiet)  # `rag index`
    assert "c.txt" in opened.sync().documents
    assert walks == []
