"""One frozen settings object: where files are, which model runs, how much to retrieve.
Flags override `RAG_*` environment variables, which override the defaults here. This is
the only module that reads `RAG_*` variables. Thresholds live in rag.policy.

In a source checkout (`seeds/` beside the package) the corpus, index and model cache
default to `seeds/`, `index/` and `models/` in it. Installed anywhere else, there is no
default corpus (`--corpus` or RAG_CORPUS is required), and the index (one per corpus
folder) and the model cache go to the user's cache directory (platformdirs)."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rag.corpus import MAX_FILE_BYTES
from rag.errors import InputError
from rag.policy import DEFAULT, Policy, for_model

REPO = Path(__file__).resolve().parent.parent
CHECKOUT = (REPO / "seeds").is_dir()
_MB = 1024 * 1024


def user_cache() -> Path:
    """The per-user folder for the index and the assembled model, outside a checkout."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("rag", appauthor=False))


def user_index(corpus: Path) -> Path:
    """The index folder of one corpus outside a checkout: one per corpus folder, so two
    corpora never overwrite each other's index."""
    real = corpus.expanduser().resolve()
    tag = hashlib.sha256(str(real).encode()).hexdigest()[:12]
    return user_cache() / "indexes" / f"{real.name or 'root'}-{tag}"


@dataclass(frozen=True)
class Settings:
    # Outside a checkout load_settings requires a corpus and keys the index by it.
    corpus: Path = REPO / "seeds"
    index: Path = REPO / "index" if CHECKOUT else user_cache() / "index"
    # None means the default packaged GGUF (see rag.models); else a path or an alias.
    model: Path | None = None
    # Where the default GGUF is assembled and its prefix KV state saved.
    model_cache: Path = REPO / "models" if CHECKOUT else user_cache() / "models"
    # Corpus files larger than this are skipped with a warning: a 30 MB text file makes
    # ~160,000 chunks, about 20 minutes of embedding here.
    max_file_mb: float = MAX_FILE_BYTES / _MB
    # Dense retrieval of 4 chunks, sentences ranked by cosine alone. Hybrid (dense + BM25),
    # k=8 and a rerank by the question's words (alpha 0.5) raised passage recall on SQuAD
    # c from 0.854 to 0.919 (benchmarks/retrieval.py), but end to end on the seed suite
    # the 0.5B model answered worse from the larger, noisier pool (accuracy 0.72 -> 0.67,
    # citation recall 0.65 -> 0.58, false conflicts 0.03 -> 0.05), so they stay options.
    k: int = 4
    retrieval: str = "dense"
    rerank_alpha: float = 1.0
    # Chunking: sentence-aware windows of at most `chunk_chars`, overlapping by whole sentences.
    chunk_chars: int = 400
    overlap_sentences: int = 1
    # Passages (sentences) shown to the model, and the model's context window in tokens.
    max_passages: int = 6
    n_ctx: int = 2048
    # Constrain decoding to prompts.ANSWER_SCHEMA with a llama.cpp grammar. Off by
    # default: the worked examples already give the JSON shape, the parser tolerates
    # slips, grounding checks the content, and the grammar cost 0.6 s per answer
    # (p50 2.7 s with it, 2.1 s without, same or better quality; README "Quality").
    grammar: bool = False
    n_threads: int = os.cpu_count() or 2
    n_batch: int = 512
    # Where the index lives: "faiss" (the folder `index`), a path ending in .db (embedded
    # Milvus Lite), or http(s)://HOST:PORT (a Milvus server); README "Scaling out".
    store: str = "faiss"
    milvus_token: str = ""
    # The chat page's address.
    host: str = "127.0.0.1"
    port: int = 7860
    policy: Policy = DEFAULT

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * _MB)


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_ENV = {
    "corpus": ("RAG_CORPUS", Path),
    "index": ("RAG_INDEX", Path),
    "model": ("RAG_MODEL", Path),
    "model_cache": ("RAG_MODEL_CACHE", Path),
    "k": ("RAG_K", int),
    "retrieval": ("RAG_RETRIEVAL", str),
    "rerank_alpha": ("RAG_RERANK_ALPHA", float),
    "max_passages": ("RAG_MAX_PASSAGES", int),
    "n_ctx": ("RAG_N_CTX", int),
    "n_threads": ("RAG_THREADS", int),
    "n_batch": ("RAG_N_BATCH", int),
    "grammar": ("RAG_GRAMMAR", _flag),
    "store": ("RAG_STORE", str),
    "milvus_token": ("RAG_MILVUS_TOKEN", str),
    "host": ("RAG_HOST", str),
    "port": ("RAG_PORT", int),
    "max_file_mb": ("RAG_MAX_FILE_MB", float),
}
# Policy fields a user may override from the environment, for experiments.
_POLICY_ENV = {
    "min_similarity": ("RAG_MIN_SIMILARITY", float),
    # A stricter (or looser) operating point of the calibrated score, read off the
    # risk-coverage table in the README.
    "min_confidence": ("RAG_MIN_CONFIDENCE", float),
    # Skip other sources whose fitted chance of giving a right side is under this (0: ask
    # every one that could give a side). calibration.json's ask_fit.fitted_threshold is
    # the point fitted to the latency budget: faster, with fewer sides (README).
    "ask_confidence": ("RAG_ASK_CONFIDENCE", float),
}


def _read(var: str, kind: Any) -> Any:
    raw = os.environ.get(var)
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise InputError(f"{var}={raw!r} is not a valid value") from None


def load_settings(**flags: Any) -> Settings:
    """Defaults, then RAG_* env vars, then the flags that are not None. Policy fields
    (e.g. `min_similarity=0.3`) may be given as flags too."""
    values: dict[str, Any] = {}
    for name, (var, kind) in _ENV.items():
        value = _read(var, kind)
        if value is not None:
            values[name] = value
    overrides: dict[str, Any] = {}
    for name, (var, kind) in _POLICY_ENV.items():
        value = _read(var, kind)
        if value is not None:
            overrides[name] = value
    known = {f.name for f in fields(Settings)}
    policy_fields = {f.name for f in fields(Policy)}
    for name, value in flags.items():
        if value is None:
            continue
        if name in known:
            values[name] = value
        elif name in policy_fields:
            overrides[name] = value
        else:
            raise TypeError(f"unknown setting {name}")
    remote = values.get("store", "faiss") != "faiss"
    if "corpus" not in values and not CHECKOUT and remote:
        # A Milvus store holds everything an answer needs; only `rag index` reads a corpus,
        # and it says so when the corpus it was given is missing.
        values["corpus"] = Path.cwd()
    if "corpus" not in values and not CHECKOUT:
        raise InputError(
            "no corpus folder given, and this install has no seeds/ to default to: "
            "pass --corpus DIR or set RAG_CORPUS"
        )
    if "index" not in values and not CHECKOUT:
        values["index"] = user_index(values["corpus"])
    settings = replace(Settings(), **values)
    if "model" in values:
        settings = replace(settings, policy=for_model(values["model"]))
    if overrides:
        settings = replace(settings, policy=replace(settings.policy, **overrides))
    _validate(settings)
    return settings


_SERVER = ("http://", "https://")


def _validate(s: Settings) -> None:
    if not 1 <= s.k <= 50:
        raise InputError(f"-k must be between 1 and 50, not {s.k}")
    if s.retrieval not in ("hybrid", "dense"):
        raise InputError(f"retrieval must be 'hybrid' or 'dense', not {s.retrieval!r}")
    if not (math.isfinite(s.rerank_alpha) and 0.0 <= s.rerank_alpha <= 1.0):
        raise InputError(f"RAG_RERANK_ALPHA must be from 0 to 1, not {s.rerank_alpha}")
    if not (s.store == "faiss" or s.store.endswith(".db") or s.store.startswith(_SERVER)):
        raise InputError(
            f"--store must be faiss, a path ending in .db (Milvus Lite) or http://HOST:PORT "
            f"(a Milvus server), not {s.store!r}"
        )
    if s.max_passages < 1:
        raise InputError("RAG_MAX_PASSAGES must be at least 1")
    if not 512 <= s.n_ctx <= 32768:
        raise InputError(f"RAG_N_CTX must be between 512 and 32768 tokens, not {s.n_ctx}")
    if s.n_threads < 1:
        raise InputError("RAG_THREADS must be at least 1")
    if s.n_batch < 1:
        raise InputError("RAG_N_BATCH must be at least 1")
    if not (math.isfinite(s.max_file_mb) and s.max_file_mb > 0):
        raise InputError(f"RAG_MAX_FILE_MB must be a positive number, not {s.max_file_mb}")
    if not 0 < s.port < 65536:
        raise InputError(f"RAG_PORT must be a port number (1-65535), not {s.port}")
    if not (math.isfinite(s.policy.min_confidence) and 0.0 <= s.policy.min_confidence <= 1.0):
        raise InputError(f"RAG_MIN_CONFIDENCE must be from 0 to 1, not {s.policy.min_confidence}")
    if not (math.isfinite(s.policy.ask_confidence) and 0.0 <= s.policy.ask_confidence <= 1.0):
        raise InputError(f"RAG_ASK_CONFIDENCE must be from 0 to 1, not {s.policy.ask_confidence}")
    similarity = s.policy.min_similarity
    if not (math.isfinite(similarity) and -1.0 <= similarity <= 1.0):
        raise InputError(f"RAG_MIN_SIMILARITY must be a number from -1 to 1, not {similarity}")
