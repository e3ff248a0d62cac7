"""Deterministic synthetic corpora for the growth benchmark: seed sentences recombined by a
seeded RNG into documents, and (when embedding them all would take too long) real vectors
perturbed by seeded noise."""

from __future__ import annotations

import hashlib
import random

import numpy as np

from rag.chunking import chunk_text, sentence_spans
from rag.records import Document

SEED = 20_240_601


def seed_sentences(docs: list[Document]) -> list[str]:
    """The distinct sentences of the documents, in corpus order."""
    seen: dict[str, None] = {}
    for d in docs:
        for start, end in sentence_spans(d.text):
            seen.setdefault(d.text[start:end], None)
    return list(seen)


def synthetic_documents(
    sentences: list[str], target_chunks: int, seed: int, chunk_chars: int, overlap: int
) -> list[Document]:
    """Documents of randomly drawn sentences, in paragraphs, until chunking them with
    `chunk_chars`/`overlap` yields at least `target_chunks` chunks."""
    if not sentences:
        raise ValueError("no sentences to recombine")
    rng = random.Random(seed)
    docs: list[Document] = []
    total = 0
    while total < target_chunks:
        paragraphs = [
            " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 6)))
            for _ in range(rng.randint(3, 8))
        ]
        text = "\n\n".join(paragraphs) + "\n"
        name = f"synthetic/{len(docs):06d}.txt"
        total += len(chunk_text(name, text, chunk_chars, overlap))
        docs.append(Document(name=name, text=text, sha256=_sha256(text)))
    return docs


def noisy_vectors(real: np.ndarray, n: int, seed: int, sigma: float = 0.02) -> np.ndarray:
    """`n` unit vectors: the real ones first, then copies of them with Gaussian noise,
    renormalised. sigma 0.02 in 384 dimensions keeps each copy at cosine ≈ 0.93 to its
    source, so copies cluster the way paraphrases do but are never exact duplicates."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    m = min(n, len(real))
    out[:m] = real[:m]
    for lo in range(m, n, len(real)):
        hi = min(n, lo + len(real))
        block = real[: hi - lo] + rng.normal(0.0, sigma, (hi - lo, real.shape[1]))
        out[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
