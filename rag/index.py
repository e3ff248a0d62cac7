"""The open index: the corpus, its FAISS index and the models, loaded once per process.

The index stores the documents' texts, so citations, `text(doc)` and the chat page's
sources read exactly the text the offsets point into (for a PDF, its extracted text), and
opening it reads no corpus file. Before each question `sync()` checks the corpus cheaply
(sizes and mtimes) and, when it changed, updates the index incrementally (rag.sync).

The CLI never answers from a stale index: `sync()` updates it first. The chat page must
never wait for that: with `background=True`, `sync()` starts the update in a thread and
keeps answering from the current index until the new one is saved and swapped in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag import store
from rag.corpus import changes, digest, file_stats
from rag.embed import DIM, Embedder, MiniLM, SentenceTransformerEmbedder
from rag.errors import CorpusError, StoreError
from rag.manifest import OlderFormat, check_compatible, expected_settings, read_manifest
from rag.place import place
from rag.progress import on_terminal
from rag.readers import extraction_version
from rag.records import Answer, Citation, Document, Passage
from rag.settings import Settings
from rag.sync import Log, Report, Stats, Synced, build, reason_of, stderr, update_index

if TYPE_CHECKING:
    import bm25s

    from rag.generate import Generator, OnText

# Above this many corpus files, questions no longer walk the corpus for changes (a stat of
# every file: 1.7 s at 100,000 files here, load 2.5, on every question); the index is kept current
# by `rag index`, or the chat page's background sync, and questions reopen it when a save
# commits. README "Scaling out" says which rule applies when.
WALK_UP_TO = 10_000

# `build` (`rag index`) and the update record are imported from here by the CLI and tests.
__all__ = ["OpenIndex", "Report", "Synced", "build", "update_index"]


def _digest(path: Path) -> str:
    """SHA-256 of a corpus file, for the per-question change check (tests count calls)."""
    return digest(path)


@dataclass(frozen=True)
class _View:
    """One consistent state to answer from: a store (with its texts), the corpus stats it
    matches, and its BM25 index."""

    store: store.Store
    stats: Stats
    bm25: bm25s.BM25 | None


class OpenIndex:
    """The corpus and its index, opened once. Construction is cheap; `warm_up` loads.

    `background=True` (the chat page) makes `sync()` non-blocking: see `sync`."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        index_embedder: Embedder | None = None,
        generator: Generator | None = None,
        log: Log = stderr,
        background: bool = False,
    ) -> None:
        self.settings = settings
        self.policy = settings.policy
        self.embedder: Embedder = embedder or MiniLM()
        self._index_embedder = index_embedder
        self._generator = generator
        self.log = log
        self.background = background
        # The message of the last background update that failed, until one succeeds.
        self.rebuild_error: str | None = None
        self._view: _View | None = None
        # The view each thread answers from, fixed at its sync, so a swap by a background
        # update midway through a question cannot mix two indexes' offsets and texts.
        self._pinned = threading.local()
        self._mutex = threading.Lock()  # one update at a time in this process
        self._starting = threading.Lock()
        self._worker: threading.Thread | None = None
        self._failed: Stats | None = None
        # Sentence vectors by span and text, kept for the life of the process: a chat
        # session or batch keeps meeting the same sentences, and embedding ~10 of them
        # per question took ~250 ms on one core.
        self._sentence_vectors: dict[tuple[str, int, int, str], np.ndarray] = {}
        self._home = place(settings)
        self._version: str | None = None

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from rag.generate import LlamaGenerator
            from rag.models import resolve
            from rag.prompts import fixed_messages

            s = self.settings
            self._generator = LlamaGenerator(
                resolve(s.model, s.model_cache),
                fixed=fixed_messages(),
                n_ctx=s.n_ctx,
                n_threads=s.n_threads,
                n_batch=s.n_batch,
                state_dir=s.model_cache,
                grammar=s.grammar,
            )
        return self._generator

    @property
    def bm25(self) -> bm25s.BM25 | None:
        return self._current().bm25

    @property
    def rebuilding(self) -> bool:
        """Whether a background update is running (the page can say "updating the index")."""
        worker = self._worker
        return worker is not None and worker.is_alive()

    def warm_up(self) -> None:
        """Load (building if needed) the index and both models, once."""
        self.sync()
        self.embedder.embed(["warm up"])
        self.generator.warm_up()

    def ask(self, question: str, on_text: OnText | None = None) -> Answer:
        """Answer from the corpus alone, with citations, or refuse."""
        from rag.answer import ask

        return ask(self, question, on_text)

    def text(self, doc: str) -> str:
        """The text a document's citations point into, as the index stores it."""
        return self._document(doc).text

    def citation(self, p: Passage) -> Citation:
        """A passage as an exact citation, with its page and nearest heading when known."""
        doc = self._document(p.doc)
        page = next((n for lo, hi, n in doc.pages if lo <= p.start < hi), None)
        heading = None
        for offset, title in doc.headings:
            if offset > p.start:
                break
            heading = title
        return Citation(p.doc, p.start, p.end, p.text, page=page, heading=heading)

    def sync(self, block: bool | None = None) -> store.Store:
        """The index to answer from, checked against the corpus by size and mtime (cheap).

        Blocking (the default, and the CLI's): a changed corpus is indexed before this
        returns, so no answer comes from a stale index. Non-blocking (`background=True`,
        or `block=False`): a change starts the update in a background thread and this
        returns the current index at once; `rebuilding` is true until the new index is
        saved and swapped in. Either way the index returned stays this thread's (for
        `text`, `citation`, `bm25`) until its next sync."""
        blocking = not self.background if block is None else block
        s = self.settings
        view = self._view
        if not self._home.follows_corpus or (view is not None and len(view.stats) > WALK_UP_TO):
            return self._follow_saved()
        try:
            stats = file_stats(s.corpus, s.max_file_bytes)
        except CorpusError as exc:
            if blocking or view is None:
                raise
            # The folder went away (an unmounted disk): keep answering, and say why.
            self.rebuild_error = str(exc)
            self._pinned.view = view
            return view.store
        if view is None and not blocking:
            view = self._open_saved()
        if view is None or (blocking and stats != view.stats):
            view = self._refresh(stats, terminal=on_terminal(self.log, stderr))
        elif stats != view.stats:
            self._start_update(stats)
        else:
            self.rebuild_error = None  # up to date: nothing failed that still matters
        self._pinned.view = view
        return view.store

    def _follow_saved(self) -> store.Store:
        """The saved index, reopened when a save committed since (one stat, or one small
        query to Milvus); the corpus is not looked at: `rag index` keeps the index current."""
        home, s = self._home, self.settings
        with self._mutex:
            view = self._view
            version = home.version()
            if version is None:
                raise StoreError(f"no index in {home.name}; run `rag index`")
            if view is None or version != self._version:
                opened = home.load()
                check_compatible(
                    opened.manifest,
                    expected_settings(s.chunk_chars, s.overlap_sentences),
                    home.name,
                )
                stats = view.stats if view is not None else {}
                recorded = opened.manifest.get("corpus_stats", {})
                view = self._adopt(opened, stats or {k: (v[0], v[1]) for k, v in recorded.items()})
                self._version = version
        self._pinned.view = view
        return view.store

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background update to end; whether none is running now."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return not self.rebuilding

    def sentence_vectors(self, spans: list[tuple[str, int, int, str]]) -> np.ndarray:
        """Vectors of sentence spans, embedded once per process."""
        cache = self._sentence_vectors
        missing = [sp for sp in spans if sp not in cache]
        if missing:
            vectors = self.embedder.embed([sp[3] for sp in missing])
            for span, vector in zip(missing, vectors, strict=True):
                cache[span] = vector
        return np.stack([cache[sp] for sp in spans]) if spans else np.empty((0, DIM))

    def _current(self) -> _View:
        view: _View | None = getattr(self._pinned, "view", None) or self._view
        if view is None:
            self.sync()
            view = self._pinned.view
        assert view is not None
        return view

    def _document(self, name: str) -> Document:
        try:
            return self._current().store.documents[name]
        except KeyError:
            raise CorpusError(f"no document {name!r} in the index") from None

    def _refresh(self, stats: Stats, terminal: bool = False) -> _View:
        """Bring the index up to date now (an error when it was built with other settings)."""
        s = self.settings
        with self._mutex:
            current = self._view
            if current is not None and current.stats == stats:
                return current  # another thread updated it meanwhile
            why = f"no index in {s.index}; building it now"
            try:
                manifest = read_manifest(s.index)
            except OlderFormat as exc:
                manifest, why = None, f"{reason_of(exc)}; rebuilding it"
            if manifest is not None:
                expected = expected_settings(s.chunk_chars, s.overlap_sentences)
                check_compatible(manifest, expected, s.index)
                recorded = manifest["corpus_files"], manifest["corpus_stats"]
                diff = changes(s.corpus, stats, *recorded, _digest)
                if not diff and manifest["extraction_version"] == extraction_version():
                    if current is not None and current.store.manifest == manifest:
                        return self._adopt(current.store, stats)
                    return self._adopt(store.load(s.index), stats)
                what = f" ({diff})" if diff else " (text extraction changed)"
                why = f"corpus changed since the index was built{what}; updating the index"
            self.log(why)
            synced = update_index(
                s,
                current.store if current is not None else None,
                self._builder(),
                self.log,
                strict=True,
                terminal=terminal,
            )
            return self._adopt(synced.store, synced.stats)

    def _open_saved(self) -> _View | None:
        """The saved index as it is, to answer from while a background update runs; None
        when there is none that these settings can use."""
        s = self.settings
        try:
            manifest = read_manifest(s.index)
            if manifest is None:
                return None
            check_compatible(
                manifest, expected_settings(s.chunk_chars, s.overlap_sentences), s.index
            )
            opened = store.load(s.index)
        except StoreError:
            return None  # the blocking path says what is wrong
        recorded = {name: (st[0], st[1]) for name, st in opened.manifest["corpus_stats"].items()}
        return self._adopt(opened, recorded)

    def _start_update(self, stats: Stats) -> None:
        with self._starting:
            if self.rebuilding or stats == self._failed:
                return
            self.log("the corpus changed; updating the index in the background")
            self._worker = threading.Thread(
                target=self._update_in_background, args=(stats,), name="rag-index", daemon=True
            )
            self._worker.start()

    def _update_in_background(self, stats: Stats) -> None:
        try:
            self._refresh(stats)
        except Exception as exc:
            # The current index keeps answering; the same corpus is not retried until it
            # changes again, and the page can show why.
            self._failed, self.rebuild_error = stats, str(exc) or type(exc).__name__
            self.log(
                f"could not update the index ({self.rebuild_error}); answering from the last one"
            )
        else:
            self._failed, self.rebuild_error = None, None

    def _builder(self) -> Embedder:
        if self._index_embedder is None:
            self._index_embedder = SentenceTransformerEmbedder()
        return self._index_embedder

    def _adopt(self, opened: store.Store, stats: Stats) -> _View:
        from rag.retrieve import build_bm25

        hybrid = self.settings.retrieval == "hybrid"
        view = _View(opened, stats, build_bm25(opened.chunks) if hybrid else None)
        # A fresh cache rather than clear(): a question still under way keeps the one it
        # holds. Keys hold the sentence text, so old vectors could never be wrong, only
        # kept for texts the new index may no longer have.
        self._sentence_vectors = {}
        self._view = view
        return view
