"""The documents and chunks of an index folder, in SQLite (standard library): names,
extracted texts, pages, headings, and each chunk's id and span. A million chunks' texts
do not fit comfortably in memory, so an open index reads rows when an answer needs them.

Rows are only ever added under fresh ids, never changed. The manifest says which
documents (by row id) are live; rows it does not name are either a newer update that
never committed (a crash before the manifest swap) or an older version still readable by
an answer under way. The next writer deletes them (`collect`), so readers one update
behind still find their rows, and a reader further behind gets a StoreError that says to
ask again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.errors import StoreError
from rag.records import Chunk, Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    text TEXT NOT NULL,
    pages TEXT NOT NULL,
    headings TEXT NOT NULL,
    text_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc);
"""


def connect(path: Path, write: bool = False) -> sqlite3.Connection:
    """A connection; readers open the file read-only, so a damaged folder is never changed
    by answering from it."""
    if not write and not path.is_file():
        raise StoreError(f"index table {path} is missing; run `rag index`")
    uri = f"file:{path}?mode={'rwc' if write else 'ro'}"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    # An update's commit takes the write lock for milliseconds; a reader waits that out.
    db.execute("PRAGMA busy_timeout = 10000")
    if write:
        # FULL makes a commit durable before the manifest that relies on it is swapped in.
        # The default rollback journal (not WAL) leaves no side files next to the table.
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(SCHEMA)
    return db


class Table:
    """Read access to one index's documents and chunks: those the manifest names live."""

    def __init__(self, path: Path, doc_ids: Mapping[str, int], order: Sequence[str]) -> None:
        self.path = path
        self.doc_ids = dict(doc_ids)
        self.order = list(order)
        self._names = {i: name for name, i in self.doc_ids.items()}
        self._db = connect(path)
        self._lock = threading.Lock()
        self._documents: dict[str, Document] = {}
        self._all: list[tuple[int, Chunk]] | None = None

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(
                f"index table {self.path} is unreadable ({exc}); run `rag index`"
            ) from None

    def document(self, name: str) -> Document:
        cached = self._documents.get(name)
        if cached is not None:
            return cached
        if name not in self.doc_ids:
            raise KeyError(name)
        rows = self._rows(
            "SELECT name, sha256, text, pages, headings FROM documents WHERE id = ?",
            (self.doc_ids[name],),
        )
        if not rows:
            raise _gone()
        doc = _document(rows[0])
        if len(self._documents) > 256:  # a small cache: answers reread the same few
            self._documents.clear()
        self._documents[name] = doc
        return doc

    def chunk(self, label: int) -> Chunk:
        rows = self._rows('SELECT doc, start, "end" FROM chunks WHERE id = ?', (label,))
        if not rows or rows[0][0] not in self._names:
            raise _gone()
        doc_id, start, end = rows[0]
        name = self._names[int(doc_id)]
        text = self.document(name).text
        return Chunk(doc=name, start=int(start), end=int(end), text=text[start:end])

    def text_sha256(self) -> dict[str, str]:
        """Each live document's text fingerprint, to tell unchanged documents cheaply."""
        rows = self._rows("SELECT id, text_sha256 FROM documents", ())
        return {self._names[int(i)]: str(h) for i, h in rows if i in self._names}

    def chunk_ids(self, name: str) -> list[int]:
        rows = self._rows(
            "SELECT id FROM chunks WHERE doc = ? ORDER BY start", (self.doc_ids[name],)
        )
        return [int(r[0]) for r in rows]

    def count(self) -> int:
        """Chunks of live documents (a consistency check against the manifest)."""
        live = list(self.doc_ids.values())
        total = 0
        for lo in range(0, len(live), 500):
            part = live[lo : lo + 500]
            marks = ",".join("?" * len(part))
            total += int(
                self._rows(f"SELECT COUNT(*) FROM chunks WHERE doc IN ({marks})", tuple(part))[0][0]
            )
        return total

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        """Every live chunk with its id, documents in manifest order (BM25 and tests)."""
        if self._all is None:
            out: list[tuple[int, Chunk]] = []
            for name in self.order:
                text = self.document(name).text
                rows = self._rows(
                    'SELECT id, start, "end" FROM chunks WHERE doc = ? ORDER BY start, id',
                    (self.doc_ids[name],),
                )
                for i, start, end in rows:
                    s, e = int(start), int(end)
                    if not 0 <= s < e <= len(text):
                        raise StoreError(f"chunk {i} lies outside {name}; run `rag index`")
                    out.append((int(i), Chunk(name, s, e, text[s:e])))
            self._all = out
        return self._all


def write(
    db: sqlite3.Connection,
    fresh: Sequence[tuple[int, Document, str, Sequence[tuple[int, Chunk]]]],
) -> None:
    """Insert new documents (row id, document, text fingerprint) and their chunks (id,
    chunk) in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for doc_id, d, text_sha, chunks in fresh:
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, d.name, d.sha256, d.text, json.dumps(d.pages), json.dumps(d.headings),
                 text_sha),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?)",
                [(i, doc_id, c.start, c.end) for i, c in chunks],
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def collect(db: sqlite3.Connection, live: Sequence[int]) -> None:
    """Delete the rows of documents the manifest does not name (see the module docstring)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TEMP TABLE IF NOT EXISTS live (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM live")
        db.executemany("INSERT INTO live VALUES (?)", [(i,) for i in live])
        db.execute("DELETE FROM chunks WHERE doc NOT IN (SELECT id FROM live)")
        db.execute("DELETE FROM documents WHERE id NOT IN (SELECT id FROM live)")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _document(row: tuple[object, ...]) -> Document:
    name, sha, text, pages, headings = row
    try:
        return Document(
            name=str(name),
            text=str(text),
            sha256=str(sha),
            pages=tuple((int(s), int(e), int(n)) for s, e, n in json.loads(str(pages))),
            headings=tuple((int(o), str(h)) for o, h in json.loads(str(headings))),
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(
            f"document {name} in the index is corrupt ({exc}); run `rag index`"
        ) from None


def _gone() -> StoreError:
    return StoreError("the index changed while this answer was read; ask again")
