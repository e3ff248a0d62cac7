"""The FAISS vector backend: every vector labelled by its chunk's id, behind
`add(ids, vectors)`, `remove(ids)` and `search(vectors, k)`.

At a million chunks the vectors alone are 1.5 GB, so an update must not rewrite or even
copy them. The index is therefore a large, immutable base file, opened memory-mapped, plus
a small delta: the vectors added since (an exact flat index) and the ids removed from the
base since (skipped at search time by a FAISS ID selector). An update writes only the
delta; once the delta passes a share of the base (`COMPACT_SHARE`), the next save folds it
into a new base. A `FaissVectors` is never changed in place while answers may be searching
it: `copy()` shares the base and duplicates only the delta.

The base is exact (flat) up to `APPROXIMATE_ABOVE` chunks and IVF with 8-bit scalar quantisation
above it; README "Scaling out" has the comparison of index types that chose them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss

# Exact search up to here. Measured on the clustered synthetic set (benchmarks/scale.py,
# README "Scaling out"): flat search at 10^5 chunks is ~7 ms a query on one thread and
# exact; IVF-SQ8 at 10^6 holds recall@10 >= 0.95 at a few ms where flat takes ~70 ms.
APPROXIMATE_ABOVE = 200_000
# IVF search breadth: lists probed per query. Chosen at 10^6 chunks for recall@10 >= 0.95.
NPROBE = 64
# Fold the delta into a new base once it holds this share of the base's vectors (added
# plus removed): below it, searching two indexes and skipping ids costs little.
COMPACT_SHARE = 0.05
# ...but always fold while the base is small: rewriting it costs less than a second.
COMPACT_BELOW = 50_000
# k-means for the IVF lists is trained on at most this many vectors per list.
TRAIN_PER_LIST = 64


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
        # The file the base was mapped from, if any: changing an IVF base means reading it.
        self.source = source
        self.delta = delta if delta is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(base.d))
        self.removed = removed if removed is not None else np.empty(0, dtype=np.int64)
        self._removed_set = set(self.removed.tolist())
        self._base_kind = kind(base)

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

        return FaissVectors(
            self.base, faiss.clone_index(self.delta), self.removed.copy(), self.source
        )

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
        if self.delta.ntotal:
            more_scores, more_ids = self.delta.search(queries, k)
            scores = np.hstack([scores, more_scores])
            ids = np.hstack([ids, more_ids])
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            scores = np.take_along_axis(scores, order, axis=1)
            ids = np.take_along_axis(ids, order, axis=1)
        return scores, ids

    def reconstruct(self, label: int) -> np.ndarray:
        """The stored vector of one id (exact for flat, decoded for IVF-SQ8)."""
        if self.delta.ntotal and self._in_delta(label):
            return np.asarray(self.delta.reconstruct(label))
        if self._base_kind == "ivf":
            ivf = _ivf(self.base)
            if ivf.direct_map.type == 0:  # NoMap: built on first need (hybrid retrieval)
                ivf.make_direct_map()
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
        """One base holding exactly the live vectors, of the type their number calls for."""
        import faiss

        n = self.ntotal
        want = "ivf" if n > APPROXIMATE_ABOVE else "flat"
        if want == self._base_kind == "ivf":
            # Keep the trained lists: remove and add in a writable copy of the base.
            if self.source is not None:
                base: Any = read(self.source, mmap=False)
            else:
                base = faiss.deserialize_index(faiss.serialize_index(self.base))
            if len(self.removed):
                base.remove_ids(self.removed)
            if self.delta.ntotal:
                ids = _base_ids(self.delta)
                base.add_with_ids(self.delta.reconstruct_batch(ids), ids)
            return FaissVectors(base)
        if self._base_kind == "ivf":
            ivf = _ivf(self.base)
            if ivf.direct_map.type == 0:
                ivf.make_direct_map()
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
        return np.isin(ids, _base_ids(self.base))

    def _in_delta(self, label: int) -> bool:
        return bool(np.isin(label, _base_ids(self.delta)))


def build_base(vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """A base index over `vectors` labelled `ids`: exact below APPROXIMATE_ABOVE, IVF-SQ8 above."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    ids = np.asarray(ids, dtype=np.int64)
    if len(vectors) <= APPROXIMATE_ABOVE:
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if len(ids):
            flat.add_with_ids(vectors, ids)
        return flat
    lists = ivf_lists(len(vectors))
    quantizer: Any = faiss.IndexFlatIP(dim)
    index: Any = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.own_fields = True
    quantizer.this.disown()
    index.cp.max_points_per_centroid = TRAIN_PER_LIST
    rng = np.random.default_rng(0)
    sample = rng.choice(len(vectors), size=min(len(vectors), TRAIN_PER_LIST * lists), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add_with_ids(vectors, ids)
    index.nprobe = NPROBE
    return index


def ivf_lists(n: int) -> int:
    """FAISS's rule of thumb, about 4·sqrt(n) lists, as a power of two; and no more than
    one list per 39 vectors, the fewest k-means trains on without warning."""
    return int(max(1, min(1 << round(np.log2(4 * np.sqrt(n))), n // 39)))


def write(index: faiss.Index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read(path: Path, mmap: bool) -> faiss.Index:
    """Read an index file; `mmap` maps a base's vectors instead of reading them, so opening
    a million-chunk index neither reads 400 MB nor holds it resident until searched."""
    import faiss

    flags = 0
    if mmap:
        with open(path, "rb") as fh:
            id_map = fh.read(4) == b"IxM2"
        # FAISS maps a flat index's codes with MMAP_IFC, and an IVF's lists with MMAP
        # (as read-only on-disk lists); each fails on the other's file.
        flags = faiss.IO_FLAG_MMAP_IFC if id_map else faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
    index = faiss.read_index(str(path), flags)
    if isinstance(_ivf_or_none(index), faiss.IndexIVF):
        _ivf(index).nprobe = NPROBE
    return index


def kind(index: faiss.Index) -> str:
    """ "ivf" or "flat" (the base types), looking through the id map."""
    return "ivf" if _ivf_or_none(index) is not None else "flat"


def _ivf_or_none(index: faiss.Index) -> faiss.IndexIVF | None:
    import faiss

    return faiss.try_extract_index_ivf(index)


def _ivf(index: faiss.Index) -> faiss.IndexIVF:
    ivf = _ivf_or_none(index)
    assert ivf is not None
    return ivf


def _search_parameters(index: faiss.Index) -> faiss.SearchParameters:
    import faiss

    if kind(index) == "ivf":
        params: Any = faiss.SearchParametersIVF()
        params.nprobe = _ivf(index).nprobe
        return params
    return faiss.SearchParameters()


def _base_ids(index: faiss.Index) -> np.ndarray:
    """Every id an index holds: the id map's, or an IVF's inverted lists'."""
    import faiss

    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = _ivf(index)
    lists: Any = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(ivf.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
