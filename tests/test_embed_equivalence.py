"""The NumPy MiniLM that embeds questions and the sentence-transformers reference that built
the index give the same vectors, so query and index live in one space. Covers the inputs
that break tokenisers and poolings: blanks, typographic punctuation, emoji, CJK, texts past
the 256-token limit, and batches whose padding differs from text to text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from rag.chunking import sentence_spans
from rag.corpus import load_corpus
from rag.embed import DIM, MiniLM, SentenceTransformerEmbedder, model_dir

pytestmark = pytest.mark.real

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
# The README claims the NumPy encoder matches sentence-transformers to 1e-6 (measured 2.3e-7).
MAX_ABS = 1e-6
MIN_COS = 0.999999

ODD = [
    "",
    " ",
    "\n\t ",
    "“Curly quotes” and ‘single ones’ aren’t straight.",
    "An em dash—like this—and an en dash – too…",
    "Emoji: 🚀🔥👍🏽 and a flag 🇰🇷.",
    "朝鲜工兵部队从俄罗斯库尔斯克州返回。",
    "조선인민군 공병부대가 귀환했다.",
    "Mixed: Kim Jong-un (김정은) praised the 528th regiment — 'mass heroism' 🎖️.",
    "a",
    "?",
]


@pytest.fixture(scope="module")
def models() -> tuple[MiniLM, SentenceTransformerEmbedder]:
    return MiniLM(), SentenceTransformerEmbedder()


def seed_sentences(limit: int = 24) -> list[str]:
    docs, _ = load_corpus(SEEDS)
    return [d.text[s:e] for d in docs for s, e in sentence_spans(d.text)][:limit]


def long_text() -> str:
    """Over 2,000 characters of seed prose: far beyond 256 tokens."""
    docs, _ = load_corpus(SEEDS)
    text = " ".join(" ".join(d.text.split()) for d in docs)
    return text[:2000]


def assert_same(a: np.ndarray, b: np.ndarray, texts: list[str]) -> None:
    assert a.shape == b.shape == (len(texts), DIM)
    assert a.dtype == b.dtype == np.float32
    diff = np.abs(a - b).max(axis=1)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    worst = int(np.argmax(diff))
    assert diff.max() < MAX_ABS, f"max abs diff {diff.max():.2e} for {texts[worst]!r}"
    assert cos.min() > MIN_COS, f"cosine {cos.min():.7f} for {texts[int(np.argmin(cos))]!r}"


@pytest.mark.parametrize("text", [*ODD, long_text()], ids=lambda t: repr(t[:24]))
def test_one_text_at_a_time(models: tuple[MiniLM, SentenceTransformerEmbedder], text: str) -> None:
    mini, reference = models
    assert_same(mini.embed([text]), reference.embed([text]), [text])


def test_seed_sentences_in_one_batch(models: tuple[MiniLM, SentenceTransformerEmbedder]) -> None:
    mini, reference = models
    texts = seed_sentences()
    assert_same(mini.embed(texts), reference.embed(texts), texts)


def test_vectors_are_unit_length(models: tuple[MiniLM, SentenceTransformerEmbedder]) -> None:
    mini, _ = models
    vectors = mini.embed([*seed_sentences(8), "朝鲜", "🚀"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_truncation_at_256_tokens_matches(
    models: tuple[MiniLM, SentenceTransformerEmbedder],
) -> None:
    mini, reference = models
    text = long_text()
    # Prove the text really is past the limit, so both had to truncate ...
    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(text) == 2000 and len(tokenizer.encode(text).ids) > 256
    # ... and that anything past the limit is ignored by both.
    longer = text + " Entirely different trailing words about the capital of France."
    assert_same(mini.embed([text, longer]), reference.embed([text, longer]), [text, longer])
    assert np.abs(mini.embed([text]) - mini.embed([longer])).max() < MAX_ABS


def test_padding_in_a_mixed_batch_changes_nothing(
    models: tuple[MiniLM, SentenceTransformerEmbedder],
) -> None:
    mini, reference = models
    texts = [*ODD, long_text(), *seed_sentences(4), "Short.", "A somewhat longer sentence " * 6]
    together_mini = mini.embed(texts)
    together_ref = reference.embed(texts)
    alone_mini = np.vstack([mini.embed([t]) for t in texts])
    assert_same(together_mini, alone_mini, texts)
    assert_same(together_mini, together_ref, texts)


def test_more_texts_than_one_encoder_batch(
    models: tuple[MiniLM, SentenceTransformerEmbedder],
) -> None:
    """MiniLM packs up to 64 texts into one pass; past that each text still gets its own
    vector, in order, and none is dropped or swapped at a batch's edge."""
    mini, reference = models
    texts = [*seed_sentences(60), *ODD, long_text(), *seed_sentences(10)][:75]
    assert len(texts) > 64
    assert_same(mini.embed(texts), reference.embed(texts), texts)
    assert mini.embed([]).shape == (0, DIM)
