"""The generator seam and its llama.cpp implementation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import ModelError
from rag.prompts import ANSWER_SCHEMA_JSON, SYSTEM, render_user
from rag.records import Generation, Passage

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

OnText = Callable[[str], None]


class Generator(Protocol):
    """Answers a question from numbered passages with JSON text (see prompts.ANSWER_SCHEMA)."""

    def generate(
        self, passages: list[Passage], question: str, on_text: OnText | None = None
    ) -> Generation: ...


class LlamaGenerator:
    """llama-cpp-python with temperature 0 and JSON-schema-constrained output."""

    def __init__(
        self, model_path: Path, n_ctx: int, max_tokens: int, n_threads: int, n_batch: int
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self.n_threads = n_threads
        self.n_batch = n_batch
        self._llm: Llama | None = None
        self._grammar: LlamaGrammar | None = None

    def warm_up(self) -> None:
        """Load the model once; later calls reuse it and its KV cache."""
        if self._llm is not None:
            return
        from llama_cpp import Llama, LlamaGrammar

        try:
            self._llm = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=self.n_batch,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load model {self.model_path}: {exc}") from None
        self._grammar = LlamaGrammar.from_json_schema(ANSWER_SCHEMA_JSON, verbose=False)

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        assert self._llm is not None
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def fit(self, passages: list[Passage], question: str) -> list[Passage]:
        """Drop the least relevant passages until the prompt fits the context window."""
        # Chat-template tokens around the two messages; generous for the templates we ship.
        overhead = 48
        budget = self.n_ctx - self.max_tokens - overhead - self.count_tokens(SYSTEM)
        kept = list(passages)
        while kept and self.count_tokens(render_user(kept, question)) > budget:
            kept.pop()
        if self.count_tokens(render_user(kept, question)) > budget:
            raise ModelError("the question alone does not fit the model's context window")
        return kept

    def generate(
        self, passages: list[Passage], question: str, on_text: OnText | None = None
    ) -> Generation:
        self.warm_up()
        assert self._llm is not None
        kept = self.fit(passages, question)
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": render_user(kept, question)},
        ]
        started = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        usage_prompt = self.count_tokens(SYSTEM) + self.count_tokens(messages[1]["content"])
        stream = self._llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            temperature=0.0,
            max_tokens=self.max_tokens,
            grammar=self._grammar,
            stream=True,
        )
        for chunk in stream:
            delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
            if delta:
                if not parts:
                    first = time.perf_counter() - started
                parts.append(delta)
                if on_text:
                    on_text(delta)
        elapsed = time.perf_counter() - started
        text = "".join(parts)
        return Generation(
            text=text,
            passages_shown=len(kept),
            prompt_tokens=usage_prompt,
            completion_tokens=len(parts),
            first_token_s=first,
            generate_s=elapsed,
        )
