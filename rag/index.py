"""The open index: the corpus, its FAISS index and the models, loaded once per process.

`open_index(settings)` validates (or builds) the index and holds the documents' texts.
Before each question `sync()` checks the corpus cheaply: the size and mtime of every file
first, then a SHA-256 only of files that look changed. It never answers from a stale index.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag import store
from rag.corpus import file_stats, load_corpus
from rag.embed import DIM, Embedder, MiniLM, SentenceTransformerEmbedder
from rag.errors import CorpusError, StoreError
from rag.records import Answer, Citation, Document, Passage
from rag.settings import Settings

if TYPE_CHECKING:
    import bm25s

    from rag.generate import Generator, OnText

Log = Callable[[str], None]
Stats = dict[str, tuple[int, int]]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def build(settings: Settings, embedder: Embedder | None = None, log: Log = _stderr) -> store.Store:
    """Chunk, embed and save the whole corpus; always a full, fresh build."""
    s = settings
    store.check_writable(s.index)
    docs, warnings = load_corpus(s.corpus)
    for w in warnings:
        log(f"warning: {w}")
    stats = file_stats(s.corpus)

    def progress(done: int, total: int) -> None:
        log(f"embedding chunks: {done}/{total}")

    with store.lock(s.index):
        built = store.build(
            docs,
            {name: _digest(s.corpus / name) for name in stats},
            embedder or SentenceTransformerEmbedder(),
            s.chunk_chars,
            s.overlap_sentences,
            progress=progress,
        )
        built = replace(built, manifest=built.manifest | {"corpus_stats": stats})
        store.save(built, s.index)
    log(f"indexed {len(docs)} documents, {len(built.chunks)} chunks into {s.index}")
    return built


class OpenIndex:
    """The corpus and its index, opened once. Construction is cheap; `warm_up` loads."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        index_embedder: Embedder | None = None,
        generator: Generator | None = None,
        log: Log = _stderr,
    ) -> None:
        self.settings = settings
        self.policy = settings.policy
        self.embedder: Embedder = embedder or MiniLM()
        self._index_embedder = index_embedder
        self._generator = generator
        self.log = log
        self._store: store.Store | None = None
        self._docs: dict[str, Document] = {}
        self._stats: Stats = {}
        self.bm25: bm25s.BM25 | None = None
        # Sentence vectors by span, kept for the life of the process: a chat session or
        # batch keeps meeting the same sentences, and embedding ~10 of them per question
        # took ~250 ms on one core.
        self._sentence_vectors: dict[tuple[str, int, int], np.ndarray] = {}

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
        """The text a document's citations point into."""
        self.sync()
        try:
            return self._docs[doc].text
        except KeyError:
            raise CorpusError(f"no document {doc!r} in the index") from None

    def citation(self, p: Passage) -> Citation:
        """A passage as an exact citation, with its page and nearest heading when known."""
        doc = self._docs[p.doc]
        page = next((n for lo, hi, n in doc.pages if lo <= p.start < hi), None)
        heading = None
        for offset, title in doc.headings:
            if offset > p.start:
                break
            heading = title
        return Citation(p.doc, p.start, p.end, p.text, page=page, heading=heading)

    def sync(self) -> store.Store:
        """The current index: opened once, rebuilt (and said so) when the corpus changed,
        an error when it is corrupt or was built with other settings."""
        s = self.settings
        stats = file_stats(s.corpus)
        if self._store is not None and stats == self._stats:
            return self._store
        manifest = store.read_manifest(s.index)
        if manifest is None:
            self.log(f"no index in {s.index}; building it now")
            return self._adopt(build(s, self._index_embedder, self.log), stats)
        store.check_compatible(
            manifest, store.expected_settings(s.chunk_chars, s.overlap_sentences), s.index
        )
        changes = _changes(manifest, stats, s)
        if changes:
            self.log(f"corpus changed since the index was built ({changes}); rebuilding")
            return self._adopt(build(s, self._index_embedder, self.log), stats)
        if self._store is not None and self._store.manifest == manifest:
            self._stats = stats
            return self._store
        return self._adopt(store.load(s.index), stats)

    def _adopt(self, opened: store.Store, stats: Stats) -> store.Store:
        from rag.retrieve import build_bm25

        docs, _ = load_corpus(self.settings.corpus)
        self._docs = {d.name: d for d in docs}
        missing = set(opened.manifest["documents"]) - set(self._docs)
        if missing:
            raise StoreError(
                f"index names documents the corpus lacks ({sorted(missing)}); run `rag index`"
            )
        self._store, self._stats = opened, stats
        self._sentence_vectors.clear()
        self.bm25 = build_bm25(opened.chunks) if self.settings.retrieval == "hybrid" else None
        return opened

    def sentence_vectors(self, spans: list[tuple[str, int, int, str]]) -> np.ndarray:
        """Vectors of sentence spans, embedded once per process."""
        cache = self._sentence_vectors
        missing = [sp for sp in spans if sp[:3] not in cache]
        if missing:
            vectors = self.embedder.embed([sp[3] for sp in missing])
            for span, vector in zip(missing, vectors, strict=True):
                cache[span[:3]] = vector
        return np.stack([cache[sp[:3]] for sp in spans]) if spans else np.empty((0, DIM))


def _digest(path: Path) -> str:
    """SHA-256 of a corpus file's bytes; a file that cannot be read has a fixed marker, so
    it is not taken for a change at every question."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "unreadable"
    return digest.hexdigest()


def _changes(manifest: dict[str, object], stats: Stats, settings: Settings) -> str:
    """What changed in the corpus since the manifest was written; empty when nothing did.
    Files whose size and mtime match the manifest are trusted; the others are hashed."""
    old_hashes = manifest.get("corpus_files")
    old_stats = manifest.get("corpus_stats")
    hashes: dict[str, str] = old_hashes if isinstance(old_hashes, dict) else {}
    known: dict[str, list[int]] = old_stats if isinstance(old_stats, dict) else {}
    added = sorted(set(stats) - set(hashes))
    removed = sorted(set(hashes) - set(stats))
    changed = []
    for name in sorted(set(stats) & set(hashes)):
        if list(stats[name]) == known.get(name):
            continue
        if _digest(settings.corpus / name) != hashes[name]:
            changed.append(name)
    bits = [
        f"{label}: {', '.join(names)}"
        for label, names in (("added", added), ("removed", removed), ("changed", changed))
        if names
    ]
    return "; ".join(bits)
