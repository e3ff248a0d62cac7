"""Synthetic unit vectors shaped like MiniLM chunk embeddings, for the scale benchmark.

Real chunk embeddings are not uniform on the sphere, and ANN recall depends on that: they
share a common direction (any two English chunks have cosine ~0.1), they gather by topic
and, tighter, by document, and their spread is concentrated in a few dozen directions.
This generator has each of those layers, with weights chosen so that the cosine between
random pairs, between chunks of one document, and to the nearest neighbour fall where
all-MiniLM-L6-v2 puts them on the SQuAD articles (`cosine_profile` computes the three,
for real vectors and for these alike). Generation is deterministic and streamed in blocks, so a
million vectors never need more than the output array.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

DIM = 384
SEED = 20_261_124
# A document's chunks, as the update target counts them ("one document's 100 chunks").
DOC_CHUNKS = 100
# One topic per this many chunks: a million chunks span 1,000 topics of 10 documents each.
TOPIC_CHUNKS = 1_000
# Layer weights (before normalising): shared direction, topic, document, chunk noise.
COMMON, TOPIC, DOC, NOISE = 0.2, 0.3, 0.45, 1.0
# Neighbouring chunks of a document overlap by a sentence (rag.chunking), so each chunk's
# noise carries this share of the previous chunk's: it is what puts a chunk's nearest
# neighbour near cosine 0.77, as in real text.
CARRY = 0.7
# How far a question leans towards the chunk that answers it (see Clustered.queries).
QUERY_LEAN = 0.33
# Noise spectrum: variance along the j-th direction falls as (1 + j) ** -DECAY, so most of
# a chunk's own variation lies in a few dozen directions, as in real embeddings.
DECAY = 0.9


class Clustered:
    """A deterministic family of clustered unit vectors; row i belongs to document
    i // DOC_CHUNKS, and document d to topic d // (TOPIC_CHUNKS // DOC_CHUNKS)."""

    def __init__(self, n: int, dim: int = DIM, seed: int = SEED) -> None:
        self.n, self.dim, self.seed = n, dim, seed
        rng = np.random.default_rng(seed)
        self.common = _unit(rng.normal(size=(1, dim)))[0]
        topics = max(1, -(-n // TOPIC_CHUNKS))
        self.topics = _unit(rng.normal(size=(topics, dim)))
        # A random rotation, so the noise's strong directions are not the coordinate axes.
        q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        scale = (1.0 + np.arange(dim)) ** (-DECAY / 2)
        self.noise_basis = (q * (scale / np.linalg.norm(scale))).T.astype(np.float32)

    def doc_centres(self, docs: np.ndarray) -> np.ndarray:
        """The centre of each document in `docs` (a function of its number alone)."""
        out = np.empty((len(docs), self.dim), dtype=np.float32)
        for i, d in enumerate(docs):
            rng = np.random.default_rng((self.seed, 1, int(d)))
            out[i] = _unit(rng.normal(size=(1, self.dim)))[0]
        return out

    def rows(self, lo: int, hi: int, salt: int = 0) -> np.ndarray:
        """Rows lo..hi; another `salt` draws other chunks of the same documents (queries)."""
        rng = np.random.default_rng((self.seed, 2 + salt, lo))
        idx = np.arange(lo, hi)
        docs = idx // DOC_CHUNKS
        unique, inverse = np.unique(docs, return_inverse=True)
        centres = self.doc_centres(unique)[inverse]
        topics = self.topics[(docs * DOC_CHUNKS // TOPIC_CHUNKS) % len(self.topics)]
        noise = rng.normal(size=(hi - lo, self.dim)).astype(np.float32) @ self.noise_basis
        if salt == 0:
            # Each chunk after a document's first carries part of the one before it.
            position = idx % DOC_CHUNKS
            fresh = np.sqrt(1.0 - CARRY**2)
            for p in range(1, DOC_CHUNKS):
                rows = np.flatnonzero((position == p) & (idx > lo))
                noise[rows] = CARRY * noise[rows - 1] + fresh * noise[rows]
        raw = COMMON * self.common + TOPIC * topics + DOC * centres + NOISE * noise
        return _unit(raw.astype(np.float32))

    def blocks(self, block: int = 100_000) -> Iterator[tuple[int, np.ndarray]]:
        for lo in range(0, self.n, block):
            yield lo, self.rows(lo, min(self.n, lo + block))

    def all(self) -> np.ndarray:
        out = np.empty((self.n, self.dim), dtype=np.float32)
        for lo, rows in self.blocks():
            out[lo : lo + len(rows)] = rows
        return out

    def queries(self, count: int, vectors: np.ndarray, seed: int = 7) -> np.ndarray:
        """Question-like vectors: each leans towards one indexed chunk (the one holding its
        answer) and is otherwise a new chunk of that chunk's document. QUERY_LEAN puts the
        best match and the tenth where MiniLM puts them for SQuAD questions over their
        articles (cosine ~0.62 and ~0.44)."""
        rng = np.random.default_rng((self.seed, 3, seed))
        rows = np.sort(rng.choice(self.n, size=count, replace=False))
        fresh = np.vstack([self.rows(int(r), int(r) + 1, salt=1 + seed) for r in rows])
        return _unit(QUERY_LEAN * np.asarray(vectors[rows]) + (1 - QUERY_LEAN) * fresh)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def cosine_profile(vectors: np.ndarray, docs: np.ndarray, sample: int = 500) -> dict[str, float]:
    """Mean cosine of random pairs, of pairs within one document, and to the nearest other
    vector: the three numbers the generator is tuned to match."""
    rng = np.random.default_rng(0)
    n = len(vectors)
    pick = rng.choice(n, size=min(sample, n), replace=False)
    sims = vectors[pick] @ vectors.T
    sims[np.arange(len(pick)), pick] = -np.inf
    same = docs[pick][:, None] == docs[None, :]
    same[np.arange(len(pick)), pick] = False
    finite = np.where(np.isfinite(sims), sims, np.nan)
    return {
        "random_pair": float(np.nanmean(np.where(~same, finite, np.nan))),
        "same_document": float(np.nanmean(np.where(same, finite, np.nan))),
        "nearest": float(np.mean(sims.max(axis=1))),
    }
