"""The query path, as a few plain calls: embed, retrieve, rank sentences, generate,
ground, and (when another document also speaks to the question) compare sources."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from rag import cite, store
from rag.corpus import file_hashes, load_corpus
from rag.embed import DIM, Embedder, MiniLM, SentenceTransformerEmbedder
from rag.errors import InputError, StoreError
from rag.generate import Generator, LlamaGenerator, OnText
from rag.models import model_cache, resolve
from rag.prompts import REFUSAL
from rag.records import Answer, Citation, Generation, Passage, Timings
from rag.retrieve import build_bm25, passages, rank_passages, retrieve
from rag.settings import Settings

if TYPE_CHECKING:
    import bm25s

MAX_QUESTION_CHARS = 2000
# A contradicting passage must be at least this relevant, relative to the first answer's.
CONFLICT_RELEVANCE = 0.8
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check_question(question: str) -> str:
    """The question, stripped; empty or over-long questions are an InputError."""
    q = " ".join(question.split())
    if not q:
        raise InputError("the question is empty")
    if len(q) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(q)} characters; the limit is {MAX_QUESTION_CHARS}")
    return q


def index_corpus(
    settings: Settings, embedder: Embedder | None = None, log: Log = _stderr
) -> store.Store:
    """Build the index from the corpus and save it; always a full, fresh build."""
    docs, warnings = load_corpus(settings.corpus)
    for w in warnings:
        log(f"warning: {w}")
    hashes = file_hashes(settings.corpus)

    def progress(done: int, total: int) -> None:
        log(f"embedding chunks: {done}/{total}")

    built = store.build(
        docs, hashes, embedder or SentenceTransformerEmbedder(),
        settings.chunk_chars, settings.overlap_sentences, progress=progress,
    )
    store.save(built, settings.index)
    log(f"indexed {len(docs)} documents, {len(built.chunks)} chunks into {settings.index}")
    return built


class Pipeline:
    """Holds the loaded index and models for one process; construction is cheap."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        index_embedder: Embedder | None = None,
        log: Log = _stderr,
    ) -> None:
        self.settings = settings
        self.embedder: Embedder = embedder or MiniLM()
        self._generator = generator
        self._index_embedder = index_embedder
        self.log = log
        self._store: store.Store | None = None
        self._texts: dict[str, str] = {}
        self._bm25: bm25s.BM25 | None = None
        # Sentence vectors by span, kept for the life of the process: a chat session or
        # batch keeps meeting the same sentences, and embedding ~10 of them per question
        # took ~250 ms on one core.
        self._sentence_vectors: dict[tuple[str, int, int], np.ndarray] = {}

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            s = self.settings
            self._generator = LlamaGenerator(
                resolve(s.model), s.n_ctx, s.max_tokens, s.n_threads, s.n_batch,
                state_dir=model_cache(), grammar=s.grammar,
            )
        return self._generator

    def warm_up(self) -> None:
        """Load (building if needed) the index and both models, once."""
        self.ensure_index()
        self.embedder.embed(["warm up"])
        gen = self.generator
        if isinstance(gen, LlamaGenerator):
            gen.warm_up()

    def ensure_index(self) -> store.Store:
        """The current index; built when missing, rebuilt (and said so) when the corpus
        changed, an error when it is corrupt or was built with other settings."""
        s = self.settings
        hashes = file_hashes(s.corpus)
        manifest = store.read_manifest(s.index)
        if self._store is not None and manifest and manifest.get("corpus_files") == hashes:
            return self._store
        if manifest is None:
            self.log(f"no index in {s.index}; building it now")
            self._store = index_corpus(s, self._index_embedder, self.log)
        elif manifest.get("corpus_files") != hashes:
            changes = _diff(manifest, hashes)
            self.log(f"corpus changed since the index was built ({changes}); rebuilding")
            self._store = index_corpus(s, self._index_embedder, self.log)
        else:
            store.check_compatible(
                manifest, store.expected_settings(s.chunk_chars, s.overlap_sentences), s.index
            )
            self._store = store.load(s.index)
        docs, _ = load_corpus(s.corpus)
        self._texts = {d.name: d.text for d in docs}
        self._sentence_vectors.clear()
        missing = set(self._store.manifest["documents"]) - set(self._texts)
        if missing:
            raise StoreError(
                f"index names documents the corpus lacks ({sorted(missing)}); run `rag index`"
            )
        self._bm25 = build_bm25(self._store.chunks) if s.retrieval == "hybrid" else None
        return self._store

    def ask(self, question: str, on_text: OnText | None = None) -> Answer:
        """Answer from the corpus alone, with citations, or refuse."""
        started = time.perf_counter()
        q = check_question(question)
        index = self.ensure_index()
        qvec = self.embedder.embed([q])[0]
        hits = retrieve(q, qvec, index, self.settings.k, self._bm25)
        spans = passages(hits, self._texts)
        shown = rank_passages(
            spans, self._embed_sentences(spans), qvec, self.settings.max_passages
        )
        retrieved = time.perf_counter()
        base = Answer(question=q, text=REFUSAL, abstained=True,
                      retrieved=tuple(h.chunk for h in hits), passages=tuple(shown))
        if not shown or shown[0].dense < self.settings.min_similarity:
            return _finish(base, started, retrieved, [])

        gen = self.generator.generate(shown, q, on_text)
        gens = [gen]
        text, evidence = cite.parse(gen.text)
        statements = cite.ground(text, evidence, shown[: gen.passages_shown], q)
        if not statements:
            return _finish(base, started, retrieved, gens)

        cited_docs = {p.doc for st in statements for p in st.passages}
        other = self._other_document(shown, cited_docs)
        conflict = False
        if other:
            gen2, second = self._ask_document(shown, other, q)
            gens.append(gen2)
            if second:
                statements, conflict = _compare(q, text, statements, second)
        body, citations = _render(statements, conflict)
        answer = replace(base, text=body, abstained=False, citations=citations, conflict=conflict)
        return _finish(answer, started, retrieved, gens)

    def _embed_sentences(self, spans: list[tuple[str, int, int, str]]) -> np.ndarray:
        cache = self._sentence_vectors
        missing = [s for s in spans if s[:3] not in cache]
        if missing:
            for span, vector in zip(
                missing, self.embedder.embed([s[3] for s in missing]), strict=True
            ):
                cache[span[:3]] = vector
        return np.stack([cache[s[:3]] for s in spans]) if spans else np.empty((0, DIM))

    def _other_document(self, shown: list[Passage], cited_docs: set[str]) -> str | None:
        """A document the answer did not cite that has one of the top three passages, and
        one nearly as relevant as the best: it may confirm the answer or contradict it.
        Both articles cover one event, so "in the top three" alone held for almost every
        question and doubled the model calls (benchmarks: 2.0 calls per answer)."""
        best = shown[0].dense
        for p in shown[:3]:
            if p.doc not in cited_docs and p.dense >= self.settings.conflict_ratio * best:
                return p.doc
        return None

    def _ask_document(
        self, shown: list[Passage], doc: str, q: str
    ) -> tuple[Generation, list[cite.Statement]]:
        own = [replace(p, number=n + 1) for n, p in enumerate(x for x in shown if x.doc == doc)]
        gen = self.generator.generate(own, q)
        text, evidence = cite.parse(gen.text)
        return gen, cite.ground(text, evidence, own[: gen.passages_shown], q)


def _compare(
    question: str, first_text: str, first: list[cite.Statement], second: list[cite.Statement]
) -> tuple[list[cite.Statement], bool]:
    """Agreeing sources add citations. A disagreeing one makes a conflict only when it
    answers alike (same kind of value) and both sources' evidence speaks to the same part
    of the question; otherwise it is a passage on a neighbouring topic and is left out.

    "Same part" means the question terms one source's evidence contains are a subset of
    the other's: "established in May" and "deployed in early August" share "regiment" but
    only one says "established", so they answer different questions."""
    second_text = " ".join(s.text for s in second)
    a, b = set(cite.terms(first_text)), set(cite.terms(second_text))
    if a <= b or b <= a:
        extra = tuple(p for s in second for p in s.passages)
        return [replace(first[0], passages=first[0].passages + extra), *first[1:]], False
    first_passages = [p for s in first for p in s.passages]
    second_passages = [p for s in second for p in s.passages]
    if (
        cite.answer_kind(first_text) == cite.answer_kind(second_text)
        and _comparable(_coverage(question, first_passages), _coverage(question, second_passages))
        and max(p.dense for p in second_passages)
        >= CONFLICT_RELEVANCE * max(p.dense for p in first_passages)
    ):
        return first + second, True
    return first, False


def _coverage(question: str, cited: list[Passage]) -> set[str]:
    """The question's content terms that the cited passages contain."""
    have = {t for p in cited for t in cite.terms(p.text)}
    return {t for t in cite.terms(question) if t in have}


def _comparable(a: set[str], b: set[str]) -> bool:
    return a <= b or b <= a


def _render(statements: list[cite.Statement], conflict: bool) -> tuple[str, tuple[Citation, ...]]:
    """Answer text with [n] markers, and the citations they index (from 1)."""
    numbers: dict[tuple[str, int, int], int] = {}
    citations: list[Citation] = []
    parts = []
    for st in statements:
        marks = []
        for p in st.passages:
            key = (p.doc, p.start, p.end)
            if key not in numbers:
                numbers[key] = len(citations) + 1
                citations.append(Citation(doc=p.doc, start=p.start, end=p.end, quote=p.text))
            marks.append(f"[{numbers[key]}]")
        sentence = st.text.rstrip(".")
        if conflict:
            sentence = f"{st.passages[0].doc}: {sentence}"
        parts.append(f"{sentence} {''.join(marks)}.")
    body = " ".join(parts)
    if conflict:
        body = "The sources differ. " + body
    return body, tuple(citations)


def _finish(answer: Answer, started: float, retrieved: float, gens: list[Generation]) -> Answer:
    total = time.perf_counter() - started
    return replace(
        answer,
        timings=Timings(retrieve_s=retrieved - started,
                        generate_s=sum(g.generate_s for g in gens), total_s=total),
        prompt_tokens=sum(g.prompt_tokens for g in gens),
        completion_tokens=sum(g.completion_tokens for g in gens),
        first_token_s=gens[0].first_token_s if gens else 0.0,
    )


def _diff(manifest: dict[str, object], hashes: dict[str, str]) -> str:
    old = manifest.get("corpus_files") or {}
    assert isinstance(old, dict)
    added = sorted(set(hashes) - set(old))
    removed = sorted(set(old) - set(hashes))
    changed = sorted(n for n in set(old) & set(hashes) if old[n] != hashes[n])
    bits = [f"{label}: {', '.join(names)}" for label, names in
            (("added", added), ("removed", removed), ("changed", changed)) if names]
    return "; ".join(bits) or "settings changed"
