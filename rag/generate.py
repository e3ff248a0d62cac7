"""The generator seam and its llama.cpp implementation."""

from __future__ import annotations

import ctypes
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import ModelError
from rag.prompts import ANSWER_SCHEMA_JSON, EXAMPLES, SYSTEM, render_user
from rag.records import Generation, Passage

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

OnText = Callable[[str], None]
Message = dict[str, str]


class Generator(Protocol):
    """Answers a question from numbered passages with JSON text (see prompts.ANSWER_SCHEMA)."""

    def generate(
        self, passages: list[Passage], question: str, on_text: OnText | None = None
    ) -> Generation: ...


def messages_for(passages: list[Passage], question: str) -> list[Message]:
    """System prompt and worked examples first (fixed, so cacheable), the question last."""
    messages = [{"role": "system", "content": SYSTEM}]
    for asked, replied in EXAMPLES:
        messages += [{"role": "user", "content": asked},
                     {"role": "assistant", "content": replied}]
    messages.append({"role": "user", "content": render_user(passages, question)})
    return messages


class LlamaGenerator:
    """llama-cpp-python at temperature 0, optionally constrained by the JSON-schema grammar.

    The prompt is formatted with the GGUF's own chat template and tokenized here, so the
    fixed prefix (system prompt and examples) is known exactly. Its KV state is saved next
    to the model once and restored on later starts: a cold `ask` then evaluates only the
    passages and the question."""

    def __init__(
        self,
        model_path: Path,
        n_ctx: int,
        max_tokens: int,
        n_threads: int,
        n_batch: int,
        state_dir: Path | None = None,
        grammar: bool = True,
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self.n_threads = n_threads
        self.n_batch = n_batch
        self.state_dir = state_dir
        self.use_grammar = grammar
        self._llm: Llama | None = None
        self._grammar: LlamaGrammar | None = None
        self._format: Callable[[list[Message]], str] | None = None

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
        self._format = _formatter(self._llm)
        self._prime_prefix()

    def tokens(self, messages: list[Message]) -> list[int]:
        assert self._llm is not None and self._format is not None
        prompt = self._format(messages)
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def fit(self, passages: list[Passage], question: str) -> tuple[list[Passage], list[int]]:
        """The passages that fit and the prompt's tokens. Passages come most relevant
        first, so the least relevant are dropped until prompt and answer fit the window."""
        kept = list(passages)
        while True:
            tokens = self.tokens(messages_for(kept, question))
            if len(tokens) + self.max_tokens <= self.n_ctx:
                return kept, tokens
            if not kept:
                raise ModelError("the question alone does not fit the model's context window")
            kept.pop()

    def generate(
        self, passages: list[Passage], question: str, on_text: OnText | None = None
    ) -> Generation:
        self.warm_up()
        assert self._llm is not None
        kept, tokens = self.fit(passages, question)
        started = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        stream = self._llm.create_completion(
            prompt=tokens,
            temperature=0.0,
            max_tokens=self.max_tokens,
            grammar=self._grammar if self.use_grammar else None,
            # Unconstrained, the model may run on after the object; the object is flat,
            # so its first closing brace ends it (restored below).
            stop=None if self.use_grammar else ["}"],
            stream=True,
        )
        for chunk in stream:
            delta = chunk["choices"][0]["text"]  # type: ignore[index]
            if delta:
                if not parts:
                    first = time.perf_counter() - started
                parts.append(delta)
                if on_text:
                    on_text(delta)
        text = "".join(parts)
        if not self.use_grammar and text.lstrip().startswith("{"):
            text += "}"
        return Generation(
            text=text,
            passages_shown=len(kept),
            prompt_tokens=len(tokens),
            completion_tokens=len(parts),
            first_token_s=first,
            generate_s=time.perf_counter() - started,
        )

    def _fixed_prefix(self) -> list[int]:
        """Tokens shared by every prompt: the longest common prefix of two prompts that
        differ only in their passages and question."""
        a = self.tokens(messages_for([], "a"))
        b = self.tokens(messages_for([], "Which b?"))
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return a[:n]

    def _prime_prefix(self) -> None:
        """Put the fixed prefix in the KV cache: restored from disk when saved before."""
        import llama_cpp

        assert self._llm is not None
        llm = self._llm
        prefix = self._fixed_prefix()
        path = self._state_path(prefix)
        if path and path.exists():
            data = path.read_bytes()
            buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            if llama_cpp.llama_state_set_data(llm.ctx, buffer, len(data)) == len(data):
                llm.input_ids[: len(prefix)] = prefix
                llm.n_tokens = len(prefix)
                # The logits in memory are not those of the restored state; the next
                # decode of the question refreshes them before anything is sampled.
                llm._requires_eval = True
                return
        llm.reset()
        llm.eval(prefix)
        if path:
            size = llama_cpp.llama_state_get_size(llm.ctx)
            buffer = (ctypes.c_uint8 * size)()
            used = llama_cpp.llama_state_get_data(llm.ctx, buffer, size)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(bytes(buffer)[:used])
            os.replace(tmp, path)

    def _state_path(self, prefix: list[int]) -> Path | None:
        if self.state_dir is None:
            return None
        st = self.model_path.stat()
        key = hashlib.sha256(
            f"{self.model_path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.n_ctx}|"
            f"{prefix}".encode()
        ).hexdigest()[:20]
        return self.state_dir / f"prefix-{key}.kv"


def _formatter(llm: Llama) -> Callable[[list[Message]], str]:
    """The GGUF's own chat template; a plain layout for base models that ship none."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if template:
        eos = llm._model.token_get_text(llm.token_eos())
        bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
        jinja = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return lambda messages: jinja(messages=messages).prompt

    def plain(messages: list[Message]) -> str:
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(turns) + "\n\nAssistant: "

    return plain
