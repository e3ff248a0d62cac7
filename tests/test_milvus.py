"""The Milvus backend against real engines: embedded Milvus Lite (a .db file) and a
`milvus-lite server` on a free loopback port, started and stopped here. The same
retrieval, citation and incremental-sync checks run on FAISS and on both, and each must
give what FAISS gives."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag import milvus as milvus_module
from rag.errors import StoreError
from rag.index import OpenIndex
from rag.place import MilvusPlace, place
from rag.retrieve import retrieve
from rag.settings import Settings
from rag.sync import copy_index, update_index
from tests.fakes import HashEmbedder, ScriptedGenerator, find

# Real engines: part of the full suite (`-m ""`), not of the fast tier.
pytestmark = pytest.mark.milvus

MILVUS_LITE = Path(sys.executable).with_name("milvus-lite")
QUERIES = ["Where was the ceremony held?", "How many troops were sent?", "Kursk ordnance"]
EXTRA = "Kursk was cleared of mines by 4,812 engineers. The work ended in December.\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `milvus-lite server` on loopback, with its data in one folder."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [str(MILVUS_LITE), "server", "--data-dir", str(self.data)]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._serving():
                return
            time.sleep(0.2)
        raise RuntimeError("milvus-lite server did not start in 30 s")

    def _serving(self) -> bool:
        """True once the server answers a call. An open port is not enough: a restarted
        server accepts connections before it serves, and a test's first call then fails."""
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        from pymilvus import MilvusClient

        try:
            client = MilvusClient(self.url, timeout=5)
            client.list_collections()
            client.close()
        except Exception:  # pymilvus raises its own and grpc's errors while the server starts
            _forget_connections()
            return False
        return True

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("milvus-server"))
    running.start()
    yield running
    running.stop()


def _drop_all(uri: str) -> None:
    """A clean deployment for each test (the server is shared by the module)."""
    client = MilvusPlace(uri, "").milvus.client
    for name in client.list_collections():
        client.drop_collection(name)


@pytest.fixture(params=["faiss", "milvus-lite", "milvus-server"])
def backend(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings with each store in turn."""
    if request.param == "faiss":
        return settings
    if request.param == "milvus-lite":
        return replace(settings, store=str(tmp_path / "milvus" / "rag.db"))
    url = request.getfixturevalue("server").url
    _drop_all(url)
    return replace(settings, store=url)


def _hits(s: Settings) -> list[list[tuple[str, int, int, float]]]:
    loaded = place(s).load()
    out = []
    for q in QUERIES:
        qvec = HashEmbedder().embed([q])[0]
        hits = retrieve(q, qvec, loaded, 3)
        found = [(h.chunk.doc, h.chunk.start, h.chunk.end, round(h.dense, 5)) for h in hits]
        # Engines order exact ties differently; the hash embedder makes many.
        out.append(sorted(found, key=lambda hit: (-hit[3], hit)))
    return out


def _faiss_truth(s: Settings, tmp_path: Path) -> list[list[tuple[str, int, int, float]]]:
    full = replace(s, store="faiss", index=tmp_path / "faiss-truth")
    update_index(full, None, HashEmbedder(), lambda m: None, full=True)
    return _hits(full)


def _assert_whole(s: Settings) -> None:
    """No duplicate and no orphan chunk: every chunk row is a live document's, once."""
    loaded = place(s).load()
    ids = list(loaded.ids)
    assert len(ids) == len(set(ids)) == loaded.manifest["chunk_count"]
    if s.store != "faiss":
        assert MilvusPlace(s.store, "").milvus.count() == len(ids)


def test_each_store_retrieves_what_exact_faiss_retrieves_and_follows_the_corpus(
    backend: Settings, corpus: Path, tmp_path: Path
) -> None:
    log: list[str] = []
    update_index(backend, None, HashEmbedder(), log.append)
    assert _hits(backend) == _faiss_truth(backend, tmp_path)
    # Incremental: one file added, one changed, one removed, one untouched.
    (corpus / "c.txt").write_text(EXTRA, encoding="utf-8")
    (corpus / "b.md").write_text("The ceremony moved to Wonsan. Nine died.\n", encoding="utf-8")
    embedder = HashEmbedder()
    update_index(backend, None, embedder, log.append)
    assert log[-1].startswith("indexed: 1 added, 1 updated, 0 removed, 1 unchanged")
    assert _hits(backend) == _faiss_truth(backend, tmp_path / "2")
    (corpus / "c.txt").unlink()
    update_index(backend, None, HashEmbedder(), log.append)
    assert log[-1].startswith("indexed: 0 added, 0 updated, 1 removed, 2 unchanged; 0 chunks")
    assert _hits(backend) == _faiss_truth(backend, tmp_path / "3")
    _assert_whole(backend)


def test_answers_cite_the_same_spans_from_every_store_and_need_no_corpus(
    backend: Settings, corpus: Path, tmp_path: Path
) -> None:
    (corpus / "c.txt").write_text(EXTRA, encoding="utf-8")
    update_index(backend, None, HashEmbedder(), lambda m: None)
    asking = backend
    if backend.store != "faiss":
        # Another machine: no corpus, no index folder; the store holds everything.
        asking = replace(backend, corpus=tmp_path / "absent", index=tmp_path / "absent-index")
    opened = OpenIndex(
        asking, embedder=HashEmbedder(), generator=ScriptedGenerator(find("4,812")), log=print
    )
    answer = opened.ask("How many engineers cleared Kursk?")
    assert not answer.abstained
    cited = [(c.doc, c.start, c.end, c.quote) for c in answer.citations]
    assert cited and all(opened.text(doc)[s:e] == quote for doc, s, e, quote in cited)
    assert cited[0][0] == "c.txt" and "4,812" in cited[0][3]
    assert opened.text("a.txt") == (corpus / "a.txt").read_text(encoding="utf-8")


def test_a_faiss_index_is_copied_into_milvus_without_embedding(
    settings: Settings, corpus: Path, tmp_path: Path
) -> None:
    update_index(settings, None, HashEmbedder(), lambda m: None)
    target = replace(settings, store=str(tmp_path / "copy.db"))
    copy_index(target, settings.index, log=lambda m: None)
    assert _hits(target) == _hits(settings)
    # The copy keeps the corpus record, so the next sync there is incremental.
    (corpus / "c.txt").write_text(EXTRA, encoding="utf-8")
    log: list[str] = []
    update_index(target, None, HashEmbedder(), log.append)
    assert log[-1].startswith("indexed: 1 added, 0 updated, 0 removed, 2 unchanged")
    _assert_whole(target)


def test_an_unreachable_server_is_one_line_and_exit_2_within_10_s(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    (tmp_path / "a.txt").write_text("Some text.\n")
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "rag", "index", "--store", f"http://127.0.0.1:{port}",
         "--corpus", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=os.environ | {"RAG_STORE": ""},
    )  # fmt: skip
    took = time.monotonic() - started
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Milvus store" in lines[0], run.stderr
    assert took < 10


def test_a_store_of_other_vectors_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    from pymilvus import DataType

    uri = str(tmp_path / "other.db")
    client = MilvusPlace(uri, "").milvus.client
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=768)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection("rag_chunks", schema=schema, index_params=params)
    with pytest.raises(StoreError, match=r"768-dimensional vectors.*384"):
        update_index(replace(settings, store=uri), None, HashEmbedder(), lambda m: None)


def test_a_store_built_with_another_model_is_a_clear_error(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = replace(settings, store=str(tmp_path / "shared.db"))
    update_index(shared, None, HashEmbedder(), lambda m: None)
    monkeypatch.setattr("rag.manifest.MODEL_NAME", "intfloat/e5-small-v2")
    for attempt in (
        lambda: update_index(shared, None, HashEmbedder(), lambda m: None),
        lambda: OpenIndex(shared, embedder=HashEmbedder()).text("a.txt"),
    ):
        with pytest.raises(StoreError, match=r"embedding_model='sentence-transformers/all-"):
            attempt()


def test_a_server_killed_mid_sync_is_repaired_by_the_next_sync(
    settings: Settings, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Server(tmp_path / "data")
    own.start()
    try:
        s = replace(settings, store=own.url)
        update_index(s, None, HashEmbedder(), lambda m: None)
        (corpus / "c.txt").write_text(EXTRA, encoding="utf-8")
        (corpus / "b.md").write_text("The ceremony moved to Wonsan. Nine died.\n")
        real = milvus_module.Milvus._write_parts

        def die_before_the_manifest(self: milvus_module.Milvus, *args: object) -> None:
            if str(args[1]).startswith("manifest:"):
                own.kill()  # the new rows are in; the manifest naming them never arrives
            real(self, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(milvus_module.Milvus, "_write_parts", die_before_the_manifest)
        with pytest.raises(StoreError, match="Milvus store"):
            update_index(s, None, HashEmbedder(), lambda m: None)
        monkeypatch.setattr(milvus_module.Milvus, "_write_parts", real)
        own.start()
        _forget_connections()  # as the next `rag index`, a new process, would start
        log: list[str] = []
        update_index(s, None, HashEmbedder(), log.append)
        assert log[-1].startswith("indexed: 1 added, 1 updated, 0 removed, 1 unchanged")
        _assert_whole(s)
        assert _hits(s) == _faiss_truth(s, tmp_path)
    finally:
        own.stop()


def _forget_connections() -> None:
    """Drop pymilvus's cached channels, which keep backing off from the killed server."""
    from pymilvus.client.connection_manager import ConnectionManager

    ConnectionManager.get_instance().close_all()


@pytest.mark.real
def test_seed_retrieval_is_identical_on_every_store(tmp_path: Path, server: Server) -> None:
    """The seed corpus with the real embedder: exact search in FAISS, Milvus Lite and a
    Milvus server returns the same chunks, in the same order, for every seed question."""
    from rag.cases import load_cases
    from rag.embed import MiniLM, SentenceTransformerEmbedder
    from rag.settings import REPO, load_settings

    faiss_s = load_settings(corpus=REPO / "seeds", index=tmp_path / "faiss")
    update_index(faiss_s, None, SentenceTransformerEmbedder(), lambda m: None)
    _drop_all(server.url)
    stores = [replace(faiss_s, store=str(tmp_path / "lite.db")), replace(faiss_s, store=server.url)]
    for s in stores:
        copy_index(s, faiss_s.index, log=lambda m: None)
    cases = load_cases(REPO / "tests" / "regression" / "cases.jsonl", REPO / "seeds")
    questions = [c.question for c in cases]
    embedder = MiniLM()
    loaded = [place(s).load() for s in (faiss_s, *stores)]
    for q in questions:
        qvec = embedder.embed([q])[0]
        got = [
            [(h.chunk.doc, h.chunk.start, h.chunk.end) for h in retrieve(q, qvec, one, 8)]
            for one in loaded
        ]
        assert got[0] == got[1] == got[2], q
        scores = [[h.dense for h in retrieve(q, qvec, one, 8)] for one in loaded]
        assert np.allclose(scores[0], scores[1], atol=1e-5)
