"""The FAISS vector backend: every vector labelled by its chunk's id, behind
`add(ids, vectors)`, `remove(ids)` and `search(vectors, k)`.

At a million chunks the vectors alone are 1.5 GB, so an update must not rewrite or even
copy them. The index is therefore a large, immutable base file, opened memory-mapped, plus
a small delta: the vectors added since (an exact flat index) and the ids removed from the
base since (skipped at search time by a FAISS ID selector). An update writes only the
delta; once the delta passes a share of the base (`COMPACT_SHARE`), the next save folds it
into a new base. A `FaissVectors` is never changed in place while answers may be searching
it: `copy()` shares the base and duplicates only the delta.

The base is exact (flat) up to `APPROXIMATE_ABOVE` chunks and HNSW over 8-bit scalar
quantised vectors above it; README "Scaling out" has the comparison of index types that
chose them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss

# Exact (flat) search up to here, HNSW over 8-bit scalar-quantised vectors above. Flat
# search costs ~0.1 ms per 1,000 chunks on one thread (105 ms at 10^6, clustered synthetic
# set, benchmarks/scale.py), so it stays within the 5 ms query target up to ~50,000 chunks;
# HNSW-SQ8 at 50,000 kept recall@10 0.99 against exact at 0.3 ms. README "Scaling out".
APPROXIMATE_ABOVE = 50_000
# HNSW graph degree, build breadth and search breadth, chosen at 10^6 chunks (clustered
# synthetic set; README "Scaling out"). At degree 32 greedy search stalls before it
# reaches the question's document on a fifth of questions: recall@10 0.72 at efSearch 512,
# and 0.81 at 1024 even over full floats. Degree 48 reaches 0.93 at efSearch 384 (p50
# 3.5 ms) and keeps the open index under 1 GB (64: 0.96, but ~1 GB resident).
HNSW_M = 48
EF_CONSTRUCTION = 80
EF_SEARCH = 384
# A document's chunks hold consecutive ids in reading order (rag.store), and a question's
# exact nearest chunks are mostly its best chunk's neighbours in one document (0.94 of the
# exact top 10 at 10^6). After the graph search, the ids within NEIGHBOUR_SPAN of the
# best NEIGHBOUR_HITS hits are scored too, from the same 8-bit codes: ~0.1 ms, and recall
# 0.93 -> 0.97 at degree 48, efSearch 384.
NEIGHBOUR_HITS = 3
NEIGHBOUR_SPAN = 20
# Fold the delta into a new base once it holds this share of the base's vectors (added
# plus removed): the delta is searched exactly, so at 10^6 chunks 1% costs ~1 ms a query.
COMPACT_SHARE = 0.01
# ...but always fold while the base is small: rewriting it costs well under a second.
COMPACT_BELOW = 50_000
# The 8-bit quantiser's ranges are trained on at most this many vectors.
TRAIN_SAMPLE = 100_000


class FaissVectors:
    """A base index, the vectors added since it was written, and the ids removed from it."""

    def __init__(
        self,
        base: faiss.Index,
        delta: faiss.Index | None = None,
        removed: np.ndarray | None = None,
        source: Path | None = None,
    ) -> None:
        import faiss

        self.base = base
        # The file the base was mapped from, if any.
        self.source = source
        self.delta = delta if delta is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(base.d))
        self.removed = removed if removed is not None else np.empty(0, dtype=np.int64)
        self._removed_set = set(self.removed.tolist())
        self._base_kind = kind(base)
        self._held_ids: np.ndarray | None = None

    @property
    def d(self) -> int:
        return int(self.base.d)

    @property
    def ntotal(self) -> int:
        """How many vectors are live."""
        return int(self.base.ntotal) - len(self.removed) + int(self.delta.ntotal)

    @property
    def kind(self) -> str:
        return self._base_kind

    def copy(self) -> FaissVectors:
        """A copy to change, sharing the (immutable) base."""
        import faiss

        copied = FaissVectors(
            self.base, faiss.clone_index(self.delta), self.removed.copy(), self.source
        )
        copied._held_ids = self._held_ids
        return copied

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.delta.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: np.ndarray | list[int]) -> None:
        """Remove vectors by id, wherever they are."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        # FAISS's Python layer takes an id array here; its stubs name only IDSelector.
        self.delta.remove_ids(ids)  # type: ignore[arg-type]
        in_base = ids[self._in_base(ids)]
        fresh = [int(i) for i in in_base if int(i) not in self._removed_set]
        if fresh:
            self.removed = np.concatenate([self.removed, np.array(fresh, dtype=np.int64)])
            self._removed_set.update(fresh)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product scores and ids of the k nearest live vectors, best first; -1 pads."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        params = _search_parameters(self.base)
        if len(self.removed):
            # IDSelectorBatch copies the ids; keep it referenced for the search's length.
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(self.removed))
            params.sel = selector
        scores, ids = self.base.search(queries, k, params=params)
        if self._base_kind == "hnsw":
            scores, ids = self._with_neighbours(queries, scores, ids, k)
        if self.delta.ntotal:
            more_scores, more_ids = self.delta.search(queries, k)
            scores = np.hstack([scores, more_scores])
            ids = np.hstack([ids, more_ids])
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            scores = np.take_along_axis(scores, order, axis=1)
            ids = np.take_along_axis(ids, order, axis=1)
        return scores, ids

    def _with_neighbours(
        self, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each query's hits merged with the live base ids next to its best hits, all
        scored against the same stored codes the graph search compares."""
        out_scores, out_ids = scores.copy(), ids.copy()
        for row, query in enumerate(queries):
            best = ids[row, :NEIGHBOUR_HITS]
            best = best[best >= 0]
            if not len(best):
                continue
            near = np.unique(
                np.concatenate(
                    [np.arange(b - NEIGHBOUR_SPAN, b + NEIGHBOUR_SPAN + 1) for b in best]
                )
            )
            # Only ids the base holds and has not since removed: gaps in the numbering
            # are documents that changed or left.
            near = near[self._in_base(near)]
            if len(self.removed):
                near = near[~np.isin(near, self.removed)]
            live = ids[row] >= 0
            found = ids[row][live]
            near = near[~np.isin(near, found)]
            if not len(near):
                continue
            near_scores = np.asarray(self.base.reconstruct_batch(near)) @ query
            both_scores = np.concatenate([scores[row][live], near_scores])
            both_ids = np.concatenate([found, near])
            order = np.argsort(-both_scores, kind="stable")[:k]
            out_scores[row, : len(order)] = both_scores[order]
            out_ids[row, : len(order)] = both_ids[order]
        return out_scores, out_ids

    def _held(self) -> np.ndarray:
        """The base's ids, sorted; read once (8 MB at 10^6), as the base never changes."""
        if self._held_ids is None:
            self._held_ids = np.sort(_base_ids(self.base))
        return self._held_ids

    def reconstruct(self, label: int) -> np.ndarray:
        """The stored vector of one id (exact for flat, decoded from 8 bits for HNSW)."""
        if self.delta.ntotal and self._in_delta(label):
            return np.asarray(self.delta.reconstruct(label))
        return np.asarray(self.base.reconstruct(label))

    def labels(self) -> np.ndarray:
        """Every live id, sorted."""
        base = _base_ids(self.base)
        live = base[~np.isin(base, self.removed)] if len(self.removed) else base
        delta = _base_ids(self.delta) if self.delta.ntotal else np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate([live, delta]))

    def needs_compaction(self) -> bool:
        changed = len(self.removed) + int(self.delta.ntotal)
        return changed > 0 and (
            self.base.ntotal < COMPACT_BELOW or changed > COMPACT_SHARE * self.base.ntotal
        )

    def compacted(self) -> FaissVectors:
        """One base holding exactly the live vectors, of the type their number calls for.
        HNSW cannot remove vectors, so it is rebuilt from the vectors it stores (decoded
        from 8 bits: no embedding, at the cost of one more rounding of old vectors)."""
        held = _base_ids(self.base)
        kept = held[~np.isin(held, self.removed)] if len(self.removed) else held
        added = _base_ids(self.delta) if self.delta.ntotal else np.empty(0, dtype=np.int64)
        vectors: list[np.ndarray] = []
        if len(kept):
            vectors.append(np.asarray(self.base.reconstruct_batch(kept)))
        if len(added):
            vectors.append(np.asarray(self.delta.reconstruct_batch(added)))
        ids = np.concatenate([kept, added])
        stacked = np.vstack(vectors) if vectors else np.empty((0, self.d), np.float32)
        return FaissVectors(build_base(stacked, ids))

    def _in_base(self, ids: np.ndarray) -> np.ndarray:
        held = self._held()
        if not len(held):
            return np.zeros(len(ids), dtype=bool)
        at = np.minimum(np.searchsorted(held, ids), len(held) - 1)
        return np.asarray(held[at] == ids)

    def _in_delta(self, label: int) -> bool:
        return bool(np.isin(label, _base_ids(self.delta)))


def build_base(vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """A base index over `vectors` labelled `ids`: exact up to APPROXIMATE_ABOVE, HNSW
    over 8-bit scalar-quantised vectors above."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    ids = np.asarray(ids, dtype=np.int64)
    if len(vectors) <= APPROXIMATE_ABOVE:
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if len(ids):
            flat.add_with_ids(vectors, ids)
        return flat
    index: Any = faiss.index_factory(dim, f"IDMap2,HNSW{HNSW_M},SQ8", faiss.METRIC_INNER_PRODUCT)
    hnsw: Any = faiss.downcast_index(index.index)
    hnsw.hnsw.efConstruction = EF_CONSTRUCTION
    hnsw.hnsw.efSearch = EF_SEARCH
    rng = np.random.default_rng(0)
    sample = rng.choice(len(vectors), size=min(len(vectors), TRAIN_SAMPLE), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add_with_ids(vectors, ids)
    return index


def write(index: faiss.Index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read(path: Path, mmap: bool) -> faiss.Index:
    """Read a base file; `mmap` maps its vectors (FAISS's IO_FLAG_MMAP_IFC) instead of
    reading them, so opening a million-chunk index reads little and holds only the pages
    that searches touch."""
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)


def kind(index: faiss.Index) -> str:
    """ "hnsw" or "flat", looking through the id map."""
    import faiss

    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def _search_parameters(index: faiss.Index) -> faiss.SearchParameters:
    import faiss

    if kind(index) == "hnsw":
        params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = EF_SEARCH
        return params
    return faiss.SearchParameters()


def _base_ids(index: faiss.Index) -> np.ndarray:
    """Every id an id-mapped index holds."""
    import faiss

    mapped: Any = index
    return faiss.vector_to_array(mapped.id_map).astype(np.int64)
