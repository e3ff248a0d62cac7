"""The FAISS backend's HNSW search with its neighbour re-scoring (rag.vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from rag import vectors as vectors_module
from rag.vectors import FaissVectors, build_base

DIM = 32
CHUNKS = 30


def documents(count: int, first_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """`count` documents of CHUNKS chunks each, numbered from `first_ids`: every chunk
    carries most of the one before it, as overlapping chunks of real text do."""
    rng = np.random.default_rng(3)
    rows, ids = [], []
    for d in range(count):
        centre = rng.normal(size=DIM)
        noise = rng.normal(size=DIM)
        for c in range(CHUNKS):
            noise = 0.8 * noise + 0.6 * rng.normal(size=DIM)
            rows.append(centre + noise)
            ids.append(first_ids[d] + c)
    vectors = np.asarray(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.asarray(ids, dtype=np.int64)


def exact(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in ids[np.argsort(-(vectors @ query), kind="stable")[:k]]]


@pytest.fixture
def hnsw(monkeypatch: pytest.MonkeyPatch) -> None:
    # HNSW at any size, searched as narrowly as FAISS allows (efSearch below k means k),
    # so what the neighbour step adds is visible on a small index.
    monkeypatch.setattr(vectors_module, "APPROXIMATE_ABOVE", 0)
    monkeypatch.setattr(vectors_module, "EF_SEARCH", 1)
    monkeypatch.setattr(vectors_module, "HNSW_M", 4)


@pytest.mark.parametrize(
    ("first_ids", "query_row"),
    [
        ([0, 30, 60, 90], 45),  # consecutive documents
        ([0, 100, 250, 400], 44),  # gaps where changed documents were
        ([0, 100, 250, 400], 89),  # the last chunk of a document, before a gap
    ],
)
def test_neighbour_rescoring_returns_the_exact_nearest_chunks_of_the_best_document(
    hnsw: None, first_ids: list[int], query_row: int
) -> None:
    vectors, ids = documents(4, first_ids)
    index = FaissVectors(build_base(vectors, ids))
    assert index.kind == "hnsw"
    query = vectors[query_row] + 0.05 * vectors[query_row - 1]
    query /= np.linalg.norm(query)
    truth = exact(vectors, ids, query, 5)
    # The exact five are chunks of the query's own document: the case the step is for.
    document = int(ids[query_row]) - (query_row % CHUNKS)
    assert all(document <= t < document + CHUNKS for t in truth)
    scores, found = index.search(query[None, :], 5)
    assert found[0].tolist() == truth
    assert np.all(np.diff(scores[0]) <= 1e-6)


def test_neighbour_rescoring_never_returns_a_removed_chunk(hnsw: None) -> None:
    vectors, ids = documents(4, [0, 30, 60, 90])
    index = FaissVectors(build_base(vectors, ids))
    query = vectors[45]
    removed = [int(i) for i in exact(vectors, ids, query, 6)]
    index.remove(removed)
    _, found = index.search(query[None, :], 5)
    assert not set(found[0].tolist()) & set(removed)
    live = ~np.isin(ids, removed)
    assert found[0].tolist() == exact(vectors[live], ids[live], query, 5)
