"""One frozen settings object. Flags override `RAG_*` environment variables, which
override the defaults here."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rag.errors import InputError

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    corpus: Path = REPO / "seeds"
    index: Path = REPO / "index"
    # None means the default packaged GGUF (see rag.models).
    model: Path | None = None
    k: int = 4
    # Dense beat dense+BM25 fusion on the regression suite (README "Quality").
    retrieval: str = "dense"
    # Chunking: sentence-aware windows of at most `chunk_chars`, overlapping by whole sentences.
    chunk_chars: int = 400
    overlap_sentences: int = 1
    # Passages (sentences) shown to the model, and the prompt budget in tokens.
    max_passages: int = 6
    n_ctx: int = 2048
    max_tokens: int = 64
    # Constrain decoding to prompts.ANSWER_SCHEMA with a llama.cpp grammar. Off by
    # default: the worked examples already give the JSON shape, the parser tolerates
    # slips, grounding checks the content, and the grammar cost 0.6 s per answer
    # (p50 2.7 s with it, 2.1 s without, same or better quality; README "Quality").
    grammar: bool = False
    n_threads: int = os.cpu_count() or 2
    n_batch: int = 512
    # Below this cosine similarity for the best passage, the corpus is taken not to
    # address the question at all and the model is not asked.
    min_similarity: float = 0.25
    # A second document is asked separately (to surface conflicts) only when its best
    # passage scores at least this share of the best passage overall.
    conflict_ratio: float = 0.8


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
    "k": ("RAG_K", int),
    "retrieval": ("RAG_RETRIEVAL", str),
    "max_passages": ("RAG_MAX_PASSAGES", int),
    "n_ctx": ("RAG_N_CTX", int),
    "n_threads": ("RAG_THREADS", int),
    "n_batch": ("RAG_N_BATCH", int),
    "min_similarity": ("RAG_MIN_SIMILARITY", float),
    "grammar": ("RAG_GRAMMAR", _flag),
}


def load_settings(**flags: Any) -> Settings:
    """Defaults, then RAG_* env vars, then the flags that are not None."""
    values: dict[str, Any] = {}
    for name, (var, kind) in _ENV.items():
        raw = os.environ.get(var)
        if raw:
            try:
                values[name] = kind(raw)
            except ValueError:
                raise InputError(f"{var}={raw!r} is not a valid value") from None
    known = {f.name for f in fields(Settings)}
    for name, value in flags.items():
        if name not in known:
            raise TypeError(f"unknown setting {name}")
        if value is not None:
            values[name] = value
    settings = replace(Settings(), **values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.k < 1 or s.k > 50:
        raise InputError(f"-k must be between 1 and 50, not {s.k}")
    if s.retrieval not in ("hybrid", "dense"):
        raise InputError(f"retrieval must be 'hybrid' or 'dense', not {s.retrieval!r}")
    if s.max_passages < 1:
        raise InputError("max_passages must be at least 1")
    if s.n_threads < 1:
        raise InputError("RAG_THREADS must be at least 1")
