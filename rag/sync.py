"""Bringing the index up to date with the corpus, in one way for `rag index` and for an
open index: the size and mtime of every corpus file first, a SHA-256 only of the files
that look changed, then only new and changed files are read, chunked and embedded
(rag.store.update); every other document keeps its chunks, ids and vectors. The whole
update runs under the index folder's lock and ends in one atomic save.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag import store
from rag.corpus import changes, file_stats, no_usable_documents, try_read
from rag.embed import Embedder, SentenceTransformerEmbedder
from rag.errors import StoreError
from rag.manifest import OlderFormat, check_compatible, expected_settings, sentence_rule
from rag.place import Place, place
from rag.progress import Progress, on_terminal
from rag.readers import extraction_version
from rag.records import Document
from rag.rows import text_sha256
from rag.settings import Settings

Log = Callable[[str], None]
Stats = dict[str, tuple[int, int]]


def stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class Report:
    """What one update did, counted in documents, and the chunks it embedded."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    embedded: int = 0

    def __str__(self) -> str:
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        return (
            f"indexed: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged{skipped}; {self.embedded} chunk"
            f"{'' if self.embedded == 1 else 's'} embedded"
        )


@dataclass(frozen=True)
class Synced:
    """An up-to-date store, the corpus stats it matches, and what the update did."""

    store: store.Store
    stats: Stats
    report: Report


def build(
    settings: Settings, embedder: Embedder | None = None, log: Log = stderr, *, full: bool = False
) -> store.Store:
    """`rag index`: bring the index up to date with the corpus, embedding only new and
    changed documents. `full`, or an index that cannot be updated (corrupt, of another
    format, built with other settings), rebuilds it from scratch."""
    synced = update_index(
        settings,
        None,
        embedder or SentenceTransformerEmbedder(),
        log,
        full=full,
        terminal=on_terminal(log, stderr),
    )
    return synced.store


def update_index(
    s: Settings,
    current: store.Store | None,
    embedder: Embedder,
    log: Log,
    *,
    full: bool = False,
    strict: bool = False,
    terminal: bool = False,
) -> Synced:
    """Bring the index in `s.index` up to date with `s.corpus`, under the folder's lock.

    `current` is the store the caller has open, reused when it is still the one on disk.
    An index that cannot be updated is rebuilt, or with `strict` (an answering process,
    which must not silently replace an index built with other settings) an error."""
    warnings: list[str] = []
    file_stats(s.corpus, s.max_file_bytes)  # a missing corpus is the first thing to say
    home = place(s)
    home.check_writable()
    with home.lock():
        base = None if full else _base(s, home, current, strict, log)
        stats = file_stats(s.corpus, s.max_file_bytes, warn=warnings.append)
        recorded: dict[str, Any] = base.manifest if base is not None else {}
        version = extraction_version()
        reread = base is not None and recorded["extraction_version"] != version
        if reread:
            log(f"text extraction changed ({recorded['extraction_version']} -> {version})")
        docs, corpus = _documents(s, stats, base, reread)
        # Files the walk left out (too big, links out of the corpus) come first, then the
        # files that could not be read, in corpus order.
        warnings += [f"skipped {name}: {why}" for name, why in corpus["skipped"].items()]
        for warning in warnings:
            log(f"warning: {warning}")
        if not docs:
            raise no_usable_documents(s.corpus, warnings)
        before = base.rows.text_sha256() if base is not None else {}
        report = _report(before, docs, len(corpus["skipped"]))
        if base is not None and not reread and all(recorded[k] == v for k, v in corpus.items()):
            log(f"{report} ({_size(base)} in {home.name})")
            return Synced(base, stats, report)
        bar = _Bar(log, terminal)
        try:
            built, embedded = store.update(
                base, docs, embedder, s.chunk_chars, s.overlap_sentences, progress=bar.update
            )
        finally:
            bar.close()
        saved = home.save(replace(built, manifest=built.manifest | corpus))
    report = replace(report, embedded=embedded)
    log(f"{report} ({_size(saved)} in {home.name})")
    return Synced(saved, stats, report)


def _documents(
    s: Settings, stats: Stats, base: store.Store | None, reread: bool
) -> tuple[list[Document | str], dict[str, Any]]:
    """The corpus's documents in order, reading only the files that are new or changed
    (every file, when `reread`), and the manifest's record of the corpus: every file's
    hash, size and mtime, and why each unusable one was skipped."""
    recorded: dict[str, Any] = base.manifest if base is not None else {}
    diff = changes(
        s.corpus, stats, recorded.get("corpus_files", {}), recorded.get("corpus_stats", {})
    )
    before = set(base.rows.order) if base is not None else set()
    skipped: dict[str, str] = dict(recorded.get("skipped", {}))
    fresh = set(diff.added) | set(diff.changed)
    # A document that did not change is passed by name: its text stays unread in the index.
    docs: list[Document | str] = []
    hashes = dict(diff.hashes)
    for name in stats:
        known = name not in fresh and not reread
        if known and name in before:
            docs.append(name)
        elif not (known and name in skipped):  # a file skipped before is not read again
            got = try_read(s.corpus, name)
            if isinstance(got, str):
                skipped[name] = got
            else:
                skipped.pop(name, None)
                docs.append(got)
                hashes[name] = got.sha256  # the bytes that were read
    return docs, {
        "corpus_files": hashes,
        "corpus_stats": {name: list(st) for name, st in stats.items()},
        "skipped": {name: skipped[name] for name in stats if name in skipped},
    }


def _base(
    s: Settings, home: Place, current: store.Store | None, strict: bool, log: Log
) -> store.Store | None:
    """The saved store to update, or None to build from scratch."""
    # A shared store is never rebuilt over what it holds: any doubt is an error.
    strict = strict or not home.follows_corpus
    try:
        manifest = home.read_manifest()
        if manifest is None:
            return None
        expected = expected_settings(s.chunk_chars, s.overlap_sentences)
        if not home.follows_corpus:
            _check_shared(manifest, expected, home.name)
        check_compatible(manifest, expected, home.name)
        if current is not None and current.manifest == manifest:
            return current
        return home.load()
    except OlderFormat as exc:
        log(f"{reason_of(exc)}; rebuilding it")
        return None
    except StoreError as exc:
        if strict:
            raise
        log(f"{reason_of(exc)}; rebuilding it from scratch")
        return None


def copy_index(s: Settings, source: Path, log: Log = stderr) -> store.Store:
    """`rag index --store URL --from-index DIR`: copy a saved FAISS index into the store
    the settings name, vectors and all, without embedding anything."""
    copied = store.load(source)
    check_compatible(copied.manifest, expected_settings(s.chunk_chars, s.overlap_sentences), source)
    home = place(s)
    home.check_writable()
    with home.lock():
        saved = home.save(replace(copied, extra={}))
    log(f"copied {_size(saved)} from {source} to {home.name}")
    return saved


def _check_shared(manifest: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """A shared store built with another model, dimension or chunking is never replaced
    by a rebuild from here: other instances answer from it."""
    for key, want in expected.items():
        have = manifest.get(key)
        if key == "chunking" and isinstance(have, dict) and have != want:
            rule = sentence_rule(have)
            if {**have, "sentence_rule": want["sentence_rule"]} == want:
                # No setting chooses the rule: this code cuts by its own.
                raise StoreError(
                    f"the index in {where} was cut into sentences by rule {rule}, and this "
                    f"rag cuts by rule {want['sentence_rule']}; point --store elsewhere, or "
                    "drop its collections (rag_*) to rebuild it"
                )
        if key != "format_version" and have != want:
            raise StoreError(
                f"the index in {where} was built with {key}={have!r}, but "
                f"{want!r} is configured; use those settings, point --store elsewhere, or "
                "drop its collections (rag_*) to rebuild it"
            )


def reason_of(exc: StoreError) -> str:
    """A store error's reason without its advice to run `rag index`, which is running."""
    return str(exc).split("; run `rag index`")[0].split("; the index is corrupt")[0]


def _report(before: Mapping[str, str], docs: list[Document | str], skipped: int) -> Report:
    """Counts by document; `before` holds each indexed document's text fingerprint."""
    names = {d if isinstance(d, str) else d.name for d in docs}
    fresh = [d for d in docs if not isinstance(d, str)]
    added = sum(d.name not in before for d in fresh)
    updated = sum(d.name in before and before[d.name] != text_sha256(d) for d in fresh)
    removed = sum(name not in names for name in before)
    return Report(added, updated, removed, len(docs) - added - updated, skipped)


def _size(s: store.Store) -> str:
    return f"{len(s.documents):,} documents, {s.size:,} chunks"


class _Bar:
    """store.update's progress callback, drawn once the number of chunks is known."""

    def __init__(self, log: Log, terminal: bool) -> None:
        self.log, self.terminal = log, terminal
        self.bar: Progress | None = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress("embedding chunks", total, self.log, terminal=self.terminal)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
