"""The generator seam, `Generator.complete(prompt) -> Completion`, and its llama.cpp
implementation. The generator sees a finished prompt, never passages: building and
fitting prompts is rag.prompts' job, reading replies is rag.reply's."""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.errors import ModelError
from rag.prompts import Message, Prompt
from rag.records import Completion

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

OnText = Callable[[str], None]
# Stands in for message contents while the chat template is rendered, so the template's
# own markers can be told apart from untrusted text (see LlamaGenerator.tokens).
_SLOT = "\ue000{}\ue001"


class Generator(Protocol):
    """Completes a prompt. One method, plus an explicit `warm_up` for the heavy load."""

    def complete(
        self, prompt: Prompt, *, max_tokens: int, on_text: OnText | None = None
    ) -> Completion: ...

    def warm_up(self) -> None: ...


class LlamaGenerator:
    """llama-cpp-python at temperature 0, optionally constrained by a JSON-schema grammar.

    The prompt is formatted with the GGUF's own chat template and tokenized here. Only the
    template's markers are tokenized as special tokens; message contents (documents and
    questions) are plain text, so `<|im_end|>` inside a document stays characters. The
    prompt prefix every question shares (`fixed`: system prompt and worked examples) has
    its KV state saved next to the model once and restored on later starts, so a cold
    `ask` evaluates only the passages and the question."""

    def __init__(
        self,
        model_path: Path,
        *,
        fixed: tuple[Message, ...],
        n_ctx: int,
        n_threads: int,
        n_batch: int,
        state_dir: Path | None = None,
        grammar: bool = False,
    ) -> None:
        self.model_path = model_path
        self.fixed = fixed
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_batch = n_batch
        self.state_dir = state_dir
        self.use_grammar = grammar
        self._llm: Llama | None = None
        self._grammars: dict[str, LlamaGrammar] = {}
        self._format: Callable[[list[Message]], str] | None = None

    def warm_up(self) -> None:
        """Load the model once; later calls reuse it and its KV cache."""
        if self._llm is not None:
            return
        from llama_cpp import Llama

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
        self._format = _formatter(self._llm)
        self._prime_prefix()

    def tokens(self, messages: list[Message]) -> list[int]:
        """The prompt's tokens: template markers special, message contents plain text."""
        assert self._llm is not None and self._format is not None
        llm = self._llm
        slotted = [{"role": m["role"], "content": _SLOT.format(n)} for n, m in enumerate(messages)]
        rendered = self._format(slotted)
        out: list[int] = []
        pos = 0
        for n, message in enumerate(messages):
            slot = _SLOT.format(n)
            at = rendered.index(slot, pos)
            out += llm.tokenize(rendered[pos:at].encode("utf-8"), add_bos=False, special=True)
            out += llm.tokenize(message["content"].encode("utf-8"), add_bos=False, special=False)
            pos = at + len(slot)
        out += llm.tokenize(rendered[pos:].encode("utf-8"), add_bos=False, special=True)
        return out

    def complete(
        self, prompt: Prompt, *, max_tokens: int, on_text: OnText | None = None
    ) -> Completion:
        self.warm_up()
        assert self._llm is not None
        llm = self._llm
        grammar = self.use_grammar and bool(prompt.schema)
        # The reply's given opening (prompts.REPLY_START) follows the assistant's marker.
        start = "" if grammar else prompt.reply_start
        tokens = self.tokens(list(prompt.messages))
        if start:
            tokens += llm.tokenize(start.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) + max_tokens > self.n_ctx:
            raise ModelError(
                f"the prompt needs {len(tokens)} tokens plus {max_tokens} for the answer, "
                f"more than the context window of {self.n_ctx}; raise RAG_N_CTX"
            )
        logprobs: list[float] = []
        picked: list[int] = []

        def record(_ids: Any, scores: np.ndarray) -> np.ndarray:
            # The greedy token and its log-probability: the answer/refuse decision reads
            # how sure the model was. Recording changes nothing about what is sampled.
            best = int(scores.argmax())
            top = float(scores[best])
            picked.append(best)
            logprobs.append(-math.log(float(np.exp(scores - top).sum())))
            return scores

        from llama_cpp import LogitsProcessorList

        started = time.perf_counter()
        first = 0.0
        parts: list[str] = []
        if start and on_text:
            on_text(start)
        stream = llm.create_completion(
            prompt=tokens,
            temperature=0.0,
            max_tokens=max_tokens,
            grammar=self._grammar(prompt.schema) if grammar else None,
            stop=list(prompt.stop) or None,
            logits_processor=LogitsProcessorList([record]),
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
        return Completion(
            # The whole reply, its given opening included; tokens and logprobs are the
            # generated ones only (rag.signals finds the answer's among them by text).
            text=start + "".join(parts),
            prompt_tokens=len(tokens),
            completion_tokens=len(logprobs),
            first_token_s=first,
            generate_s=time.perf_counter() - started,
            tokens=tuple(llm.detokenize([t]).decode("utf-8", errors="replace") for t in picked),
            logprobs=tuple(logprobs),
        )

    def _grammar(self, schema: str) -> LlamaGrammar:
        from llama_cpp.llama_grammar import LlamaGrammar

        if schema not in self._grammars:
            self._grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
        return self._grammars[schema]

    def _fixed_prefix(self) -> list[int]:
        """Tokens shared by every prompt: the longest common prefix of two prompts that
        differ only in their last message."""
        a = self.tokens([*self.fixed, {"role": "user", "content": "a"}])
        b = self.tokens([*self.fixed, {"role": "user", "content": "Which b?"}])
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
        llm.reset()  # type: ignore[no-untyped-call]
        llm.eval(prefix)
        if path:
            size = llama_cpp.llama_state_get_size(llm.ctx)
            buffer = (ctypes.c_uint8 * size)()
            used = llama_cpp.llama_state_get_data(llm.ctx, buffer, size)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(bytes(buffer)[:used])
                os.replace(tmp, path)
            except OSError:
                pass  # only a start-up speed-up; a read-only cache folder costs nothing else

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
        return lambda messages: jinja(messages=messages).prompt  # type: ignore[arg-type]

    def plain(messages: list[Message]) -> str:
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(turns) + "\n\nAssistant: "

    return plain
