"""The Milvus backend (pymilvus): an index held entirely by a Milvus engine, so several app
instances on several machines answer from one index, and `ask --store URL` needs no corpus
and no local files at all.

`--store x.db` is embedded Milvus Lite (one process at a time); `--store http://HOST:PORT`
is a Milvus server, standalone or distributed (`RAG_MILVUS_TOKEN` for auth). Three
collections, named by `PREFIX`:

- `rag_chunks`: a chunk's id, document row, span, and its vector (FLAT index, inner
  product: exact search, so it returns what FAISS's exact search returns);
- `rag_documents`: each document row (name, hashes, extracted text, pages, headings) as
  JSON split into parts that fit a VARCHAR;
- `rag_meta`: the manifest, also in parts, under a generation number, and one `head` row
  naming the live generation.

Milvus has no transactions, so an update writes new rows under fresh ids first and
switches `head` last: a crash before that leaves rows no manifest names, which searches
skip (hits are kept only for live documents) and the next `rag index` deletes. The rows of
replaced documents are deleted once the new head is in; their texts stay one update
longer, for answers under way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.embed import DIM, MODEL_NAME
from rag.errors import StoreError
from rag.manifest import FORMAT_VERSION
from rag.records import Chunk, Document

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from rag.store import Store

PREFIX = "rag"
# A VARCHAR holds at most 65,535 bytes; this many characters fit even at 4 bytes each.
PART_CHARS = 16_000
# An unreachable server must fail fast (one line, exit 2, within 10 s): a plain TCP connect
# says so first. Calls to a server that answers get longer: a flush or a large insert on a
# busy machine took over 5 s in the tests.
PROBE_TIMEOUT_S = 3.0
CALL_TIMEOUT_S = 120.0
# Milvus needs a vector field in every collection; the document and meta collections
# carry this constant one.
_PLACEHOLDER = [1.0, 0.0]
# Rows per insert call, well under gRPC's 64 MB message limit at 384 dimensions.
_BATCH = 2_000
# Ids per query window: Milvus returns at most 16,384 rows a query.
_WINDOW = 16_384
# Extra hits fetched so that hits skipped (rows of a crashed update) still leave k.
_SPARE = 16


def is_milvus(store: str) -> bool:
    return store.endswith(".db") or store.startswith(("http://", "https://"))


class Milvus:
    """One Milvus deployment holding one index (the collections under PREFIX)."""

    def __init__(self, uri: str, token: str = "") -> None:
        self.uri, self.token = uri, token
        self._client: MilvusClient | None = None

    def __str__(self) -> str:
        return self.uri

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            self._client = self._connect()
            self._load(self._client)
        return self._client

    def _load(self, client: MilvusClient) -> None:
        """A restarted server holds collections released: load ours before any query."""
        mine = set(self._names())
        for name in self._call("list collections", client.list_collections):
            if name in mine:
                state = str(self._call("read", lambda name=name: client.get_load_state(name)))
                if "NotLoad" in state:
                    self._call("load", lambda name=name: client.load_collection(name))

    def _connect(self) -> MilvusClient:
        if not self.uri.endswith(".db"):
            self._probe()  # before importing pymilvus, which takes seconds on a busy disk
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise StoreError("pymilvus is not installed; run ./run.sh setup") from None
        import logging

        # pymilvus logs a warning per query iterator that Milvus Lite serves; not ours to show.
        logging.getLogger("pymilvus").setLevel(logging.ERROR)
        if self.uri.endswith(".db"):
            Path(self.uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            return MilvusClient(self.uri, token=self.token, timeout=CALL_TIMEOUT_S)
        except Exception as exc:  # pymilvus raises MilvusException, or grpc's own errors
            raise StoreError(
                f"cannot reach the Milvus store at {self.uri}: {_reason(exc)}"
            ) from None

    def _probe(self) -> None:
        """A plain TCP connect first: pymilvus retries an unreachable server for ~20 s."""
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(self.uri)
        port = parts.port or (443 if parts.scheme == "https" else 19530)
        try:
            socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT_S).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StoreError(
                f"cannot reach the Milvus store at {self.uri}: {reason}; is the server running?"
            ) from None

    def _call(self, what: str, run: Any) -> Any:
        try:
            return run()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"the Milvus store at {self.uri} failed to {what}: {_reason(exc)}"
            ) from None

    # Layout ----------------------------------------------------------------------------

    def _names(self) -> tuple[str, str, str]:
        return f"{PREFIX}_chunks", f"{PREFIX}_documents", f"{PREFIX}_meta"

    def ensure(self) -> None:
        """Create the collections when missing; refuse ones built for other vectors."""
        chunks, documents, meta = self._names()
        c = self.client  # connects first, so an unreachable server is said before any import
        from pymilvus import DataType

        existing = set(self._call("list collections", c.list_collections))
        if chunks in existing:
            self.check_dimension()
        else:
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("doc", DataType.INT64)
            schema.add_field("start", DataType.INT64)
            schema.add_field("end", DataType.INT64)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
            self._create(chunks, schema, "vector", "FLAT", "IP")
        for name, key in ((documents, "key"), (meta, "key")):
            if name in existing:
                continue
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(key, DataType.VARCHAR, is_primary=True, max_length=128)
            schema.add_field("doc", DataType.INT64)
            schema.add_field("part", DataType.INT64)
            schema.add_field("value", DataType.VARCHAR, max_length=65_535)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=len(_PLACEHOLDER))
            self._create(name, schema, "v", "FLAT", "L2")

    def _create(self, name: str, schema: Any, field: str, kind: str, metric: str) -> None:
        params = self.client.prepare_index_params()
        params.add_index(field_name=field, index_type=kind, metric_type=metric)
        self._call(
            f"create {name}",
            # Strong: a reader sees the head a writer has just switched (several instances).
            lambda: self.client.create_collection(
                name, schema=schema, index_params=params, consistency_level="Strong"
            ),
        )

    def check_dimension(self) -> None:
        """A collection of other vectors is an error that says what to do, not garbage."""
        chunks = self._names()[0]
        info = self._call("describe", lambda: self.client.describe_collection(chunks))
        dims = [f.get("params", {}).get("dim") for f in info["fields"] if f["name"] == "vector"]
        if dims and int(dims[0]) != DIM:
            raise StoreError(
                f"the Milvus collection {chunks} at {self.uri} holds {dims[0]}-dimensional "
                f"vectors, but {MODEL_NAME} makes {DIM}; point --store elsewhere, or drop "
                "the collection and run `rag index`"
            )

    # Manifest --------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        """The live manifest, or None when this deployment holds no index."""
        _, _, meta = self._names()
        if meta not in self._call("list collections", self.client.list_collections):
            return None
        self.check_dimension()
        head = self._get(meta, ["head"])
        if not head:
            return None
        generation = int(json.loads(head[0]["value"])["generation"])
        manifest = json.loads(self._parts(meta, f"manifest:{generation}"))
        if not isinstance(manifest, dict):
            raise StoreError(f"the manifest in the Milvus store at {self.uri} is corrupt")
        manifest["generation"] = generation
        return manifest

    def generation(self) -> int | None:
        """The live generation: one small query, for instances to notice an update."""
        meta = self._names()[2]
        if meta not in self._call("list collections", self.client.list_collections):
            return None
        head = self._get(meta, ["head"])
        return int(json.loads(head[0]["value"])["generation"]) if head else None

    def _get(self, collection: str, keys: list[str]) -> list[dict[str, Any]]:
        quoted = ", ".join(json.dumps(k) for k in keys)
        rows: list[dict[str, Any]] = self._call(
            "read",
            lambda: self.client.query(
                collection, filter=f"key in [{quoted}]", output_fields=["key", "value"]
            ),
        )
        return rows

    def _parts(self, collection: str, prefix: str) -> str:
        rows = self._call(
            "read",
            lambda: self.client.query(
                collection,
                filter=f'key like "{prefix}:%"',
                output_fields=["key", "part", "value"],
                limit=16_384,
            ),
        )
        if not rows:
            raise StoreError(f"{prefix} is missing from the Milvus store at {self.uri}")
        return "".join(r["value"] for r in sorted(rows, key=lambda r: r["part"]))

    def _write_parts(self, collection: str, prefix: str, doc: int, text: str) -> None:
        rows = [
            {"key": f"{prefix}:{n}", "doc": doc, "part": n, "value": text[lo : lo + PART_CHARS],
             "v": _PLACEHOLDER}
            for n, lo in enumerate(range(0, max(1, len(text)), PART_CHARS))
        ]  # fmt: skip
        for lo in range(0, len(rows), _BATCH):
            part = rows[lo : lo + _BATCH]
            self._call("write", lambda part=part: self.client.upsert(collection, part))

    # Documents and chunks --------------------------------------------------------------

    def document(self, doc_id: int) -> Document:
        # The text fingerprint (64 hex characters) leads, then the document as JSON.
        body = json.loads(self._parts(self._names()[1], f"doc:{doc_id}")[64:])
        return Document(
            name=body["name"],
            text=body["text"],
            sha256=body["sha256"],
            pages=tuple((int(s), int(e), int(n)) for s, e, n in body["pages"]),
            headings=tuple((int(o), str(h)) for o, h in body["headings"]),
        )

    def text_sha256(self, doc_ids: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for lo in range(0, len(doc_ids), 1_000):
            part = doc_ids[lo : lo + 1_000]
            rows = self._call(
                "read",
                lambda part=part: self.client.query(
                    self._names()[1],
                    filter=f"doc in {part} and part == 0",
                    output_fields=["doc", "value"],
                    limit=16_384,
                ),
            )
            for r in rows:
                out[int(r["doc"])] = str(r["value"][:64])
        return out

    def chunk_rows(self, expression: str, upto: int) -> list[dict[str, Any]]:
        """Chunk rows matching `expression`, read in windows of ids below `upto` (a query
        returns at most 16,384 rows, and Milvus Lite serves no query iterator)."""
        rows: list[dict[str, Any]] = []
        for lo in range(0, max(upto, 1), _WINDOW):
            window = f"({expression}) and id >= {lo} and id < {lo + _WINDOW}"
            rows += self._call(
                "read",
                lambda window=window: self.client.query(
                    self._names()[0],
                    filter=window,
                    output_fields=["id", "doc", "start", "end"],
                    limit=_WINDOW,
                ),
            )
        return rows

    def search(self, queries: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        hits: list[list[dict[str, Any]]] = self._call(
            "search",
            lambda: self.client.search(
                self._names()[0],
                data=[q.tolist() for q in np.asarray(queries, dtype=np.float32)],
                limit=k,
                output_fields=["doc", "start", "end"],
                search_params={"metric_type": "IP"},
            ),
        )
        return hits

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        rows = self._call(
            "read",
            lambda: self.client.query(
                self._names()[0], filter=f"id in {ids}", output_fields=["id", "vector"]
            ),
        )
        return {int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def count(self) -> int:
        rows = self._call(
            "count",
            lambda: self.client.query(self._names()[0], filter="", output_fields=["count(*)"]),
        )
        return int(rows[0]["count(*)"])

    # Writing ---------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Embedded Milvus Lite: a file lock beside the .db. A server takes one writer at a
        time by convention (run `rag index` from one place); see README "Scaling out"."""
        if not self.uri.endswith(".db"):
            yield
            return
        from rag.manifest import lock

        folder = Path(self.uri).expanduser().resolve().parent
        with lock(folder):
            yield

    def save(self, store: Store) -> dict[str, Any]:
        """Write an updated or new store: new rows, then the manifest, then the head."""
        with self.lock():
            self.ensure()
            before = self.read_manifest()
            live_before = list(before["document_ids"]) if before else []
            keep = set(live_before) | set(before["retired_ids"] if before else [])
            self._collect(keep, before)
            next_doc = int(before["next_document_id"]) if before else 0
            base = store.extra.get("base")
            incremental = (
                before is not None and base is not None and isinstance(base.rows, MilvusRows)
                and base.rows.generation == before["generation"]
            )  # fmt: skip
            if incremental:
                assert before is not None
                doc_ids = dict(zip(before["documents"], before["document_ids"], strict=True))
                fresh = [(d, list(chunks)) for d, chunks in store.fresh]
                added_ids, added_vectors = store.added or (np.empty(0, np.int64), None)
                vectors_of = dict(zip(added_ids.tolist(), range(len(added_ids)), strict=True))
                offset = 0
                lookup = added_vectors
            else:
                # A full write: every chunk under ids past any this deployment used, so no
                # row of the index it replaces can be taken for one of the new index.
                doc_ids = {}
                offset = int(before["next_id"]) if before else 0
                by_doc: dict[str, list[tuple[int, Chunk]]] = {}
                for i, c in store.rows.all_chunks():
                    by_doc.setdefault(c.doc, []).append((i, c))
                fresh = [(store.rows.document(n), by_doc.get(n, [])) for n in store.rows.order]
                ids = [i for _, chunks in fresh for i, _ in chunks]
                if base is None and store.added is not None and len(store.added[0]) == len(ids):
                    lookup = store.added[1]  # a fresh build: its vectors are all at hand
                    vectors_of = {int(i): n for n, i in enumerate(store.added[0])}
                else:
                    lookup = _all_vectors(store.vectors, ids)
                    vectors_of = {i: n for n, i in enumerate(ids)}
            from rag.rows import text_sha256

            for d, chunks in fresh:
                body = text_sha256(d) + json.dumps(
                    {"name": d.name, "sha256": d.sha256, "text": d.text, "pages": d.pages,
                     "headings": d.headings}, ensure_ascii=False)  # fmt: skip
                self._write_parts(self._names()[1], f"doc:{next_doc}", next_doc, body)
                rows = [
                    {"id": i + offset, "doc": next_doc, "start": c.start, "end": c.end,
                     "vector": lookup[vectors_of[i]].tolist()}  # type: ignore[index]
                    for i, c in chunks
                ]  # fmt: skip
                for lo in range(0, len(rows), _BATCH):
                    part = rows[lo : lo + _BATCH]
                    self._call(
                        "write", lambda part=part: self.client.upsert(self._names()[0], part)
                    )
                doc_ids[d.name] = next_doc
                next_doc += 1
            live = [doc_ids[n] for n in store.manifest["documents"]]
            generation = (int(before["generation"]) + 1) if before else 1
            manifest = store.manifest | {
                "format_version": FORMAT_VERSION,
                "store": "milvus",
                "index_type": "milvus-flat",
                "document_ids": live,
                "retired_ids": sorted(set(live_before) - set(live)),
                "next_document_id": next_doc,
                "next_id": int(store.manifest["next_id"]) + offset,
            }
            manifest.pop("generation", None)
            meta = self._names()[2]
            self._write_parts(meta, f"manifest:{generation}", -1, json.dumps(manifest))
            head = {"key": "head", "doc": -1, "part": 0, "v": _PLACEHOLDER,
                    "value": json.dumps({"generation": generation})}  # fmt: skip
            self._call("commit", lambda: self.client.upsert(meta, [head]))
            # The vectors of replaced documents go now; their texts one update later.
            gone = sorted(set(live_before) - set(live))
            for lo in range(0, len(gone), 1_000):
                part = gone[lo : lo + 1_000]
                self._call(
                    "delete",
                    lambda part=part: self.client.delete(self._names()[0], filter=f"doc in {part}"),
                )
            self._call("flush", lambda: self.client.flush(self._names()[0]))
            return manifest | {"generation": generation}

    def _collect(self, keep: set[int], before: dict[str, Any] | None) -> None:
        """Delete rows no manifest names (a crashed update's), and old manifests."""
        chunks, documents, meta = self._names()
        listed = sorted(keep)
        for collection in (chunks, documents):
            self._call(
                "clean up",
                lambda collection=collection: self.client.delete(
                    collection, filter=f"not (doc in {listed})" if listed else "doc >= 0"
                ),
            )
        if before is not None:
            current = f"manifest:{before['generation']}:"
            self._call(
                "clean up",
                lambda: self.client.delete(
                    meta, filter=f'key like "manifest:%" and not (key like "{current}%")'
                ),
            )


def _all_vectors(vectors: Any, ids: list[int]) -> np.ndarray:
    out = np.empty((len(ids), DIM), dtype=np.float32)
    for n, i in enumerate(ids):
        out[n] = vectors.reconstruct(i)
    return out


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


class MilvusRows:
    """The documents and chunks of one generation, read from Milvus on demand."""

    def __init__(self, milvus: Milvus, manifest: dict[str, Any]) -> None:
        self.milvus = milvus
        self.generation = int(manifest["generation"])
        self.order: list[str] = list(manifest["documents"])
        self.next_id = int(manifest["next_id"])
        self.doc_ids = dict(zip(self.order, manifest["document_ids"], strict=True))
        self.names = {i: n for n, i in self.doc_ids.items()}
        self._documents: dict[str, Document] = {}
        # Spans of recent search hits, so an answer does not ask again for each one.
        self.spans: dict[int, tuple[int, int, int]] = {}
        self._all: list[tuple[int, Chunk]] | None = None

    def document(self, name: str) -> Document:
        if name not in self.doc_ids:
            raise KeyError(name)
        cached = self._documents.get(name)
        if cached is None:
            cached = self.milvus.document(self.doc_ids[name])
            if len(self._documents) > 256:
                self._documents.clear()
            self._documents[name] = cached
        return cached

    def chunk(self, label: int) -> Chunk:
        span = self.spans.get(label)
        if span is None:
            rows = self.milvus.chunk_rows(f"id == {label}", label + 1)
            if not rows:
                raise StoreError("the index changed while this answer was read; ask again")
            span = (int(rows[0]["doc"]), int(rows[0]["start"]), int(rows[0]["end"]))
        doc, start, end = span
        name = self.names[doc]
        return Chunk(name, start, end, self.document(name).text[start:end])

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        if self._all is None:
            by_doc: dict[int, list[tuple[int, int, int]]] = {}
            for r in self.milvus.chunk_rows("id >= 0", self.next_id):
                if int(r["doc"]) in self.names:
                    by_doc.setdefault(int(r["doc"]), []).append((r["start"], r["id"], r["end"]))
            out = []
            for name in self.order:
                text = self.document(name).text
                for start, i, end in sorted(by_doc.get(self.doc_ids[name], [])):
                    out.append((int(i), Chunk(name, int(start), int(end), text[start:end])))
            self._all = out
        return self._all

    def text_sha256(self) -> dict[str, str]:
        got = self.milvus.text_sha256(list(self.doc_ids.values()))
        return {self.names[i]: f for i, f in got.items() if i in self.names}

    def chunk_ids(self, name: str) -> list[int]:
        rows = self.milvus.chunk_rows(f"doc == {self.doc_ids[name]}", self.next_id)
        return [int(r["id"]) for r in sorted(rows, key=lambda r: r["start"])]


class MilvusVectors:
    """Vectors in the chunks collection, behind add/remove/search like FaissVectors.
    Changes are not applied here: `Milvus.save` writes them with the rows."""

    kind = "milvus-flat"

    def __init__(self, milvus: Milvus, rows: MilvusRows, ntotal: int) -> None:
        self.milvus, self.rows, self.ntotal, self.d = milvus, rows, ntotal, DIM

    def copy(self) -> MilvusVectors:
        return MilvusVectors(self.milvus, self.rows, self.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ntotal += len(ids)

    def remove(self, ids: np.ndarray) -> None:
        self.ntotal -= len(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        results = self.milvus.search(queries, k + _SPARE)
        scores = np.full((len(results), k), -np.inf, dtype=np.float32)
        ids = np.full((len(results), k), -1, dtype=np.int64)
        for row, hits in enumerate(results):
            live = [h for h in hits if int(h["entity"]["doc"]) in self.rows.names][:k]
            for col, h in enumerate(live):
                e = h["entity"]
                label = int(h["id"])
                self.rows.spans[label] = (int(e["doc"]), int(e["start"]), int(e["end"]))
                scores[row, col], ids[row, col] = float(h["distance"]), label
        if len(self.rows.spans) > 100_000:
            self.rows.spans.clear()
        return scores, ids

    def reconstruct(self, label: int) -> np.ndarray:
        got = self.milvus.vectors([label])
        if label not in got:
            raise StoreError("the index changed while this answer was read; ask again")
        return got[label]

    def labels(self) -> np.ndarray:
        return np.array(sorted(i for i, _ in self.rows.all_chunks()), dtype=np.int64)


def load(milvus: Milvus) -> Store:
    """The live index in a Milvus deployment."""
    from rag.store import Store

    started = time.perf_counter()
    manifest = milvus.read_manifest()
    if manifest is None:
        raise StoreError(f"no index in the Milvus store at {milvus}; run `rag index --store ...`")
    rows = MilvusRows(milvus, manifest)
    vectors = MilvusVectors(milvus, rows, int(manifest["chunk_count"]))
    return Store(manifest, rows, vectors, extra={"open_s": time.perf_counter() - started})
