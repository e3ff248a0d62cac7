"""Deterministic fakes for the two seams, so fast tests need no model files."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

import numpy as np

from rag.embed import DIM
from rag.generate import OnText
from rag.prompts import Prompt
from rag.records import Completion


class HashEmbedder:
    """Bag of words hashed into DIM buckets: texts sharing words are similar."""

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


# A passage as the fake model sees it in the prompt: (number, text).
Shown = list[tuple[int, str]]
Script = Callable[[Shown, str], tuple[str, list[int]]]
_PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.M)


def shown_in(prompt: Prompt) -> tuple[Shown, str]:
    """The numbered passages and the question of the prompt's last message."""
    user = prompt.messages[-1]["content"]
    body, _, question = user.rpartition("\n\nQuestion: ")
    return [(int(n), text) for n, text in _PASSAGE.findall(body)], question


def find(word: str) -> Script:
    """A fake model that answers with `word` and cites the first passage containing it."""

    def script(shown: Shown, question: str) -> tuple[str, list[int]]:
        for number, text in shown:
            if word.lower() in text.lower():
                return word, [number]
        return word, [1]

    return script


class ScriptedGenerator:
    """Replies with JSON built by a script from the prompt it is given, and keeps every
    prompt, so tests can assert on exactly what the model was shown."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.prompts: list[Prompt] = []

    def warm_up(self) -> None:
        pass

    def complete(
        self, prompt: Prompt, *, max_tokens: int, on_text: OnText | None = None
    ) -> Completion:
        self.prompts.append(prompt)
        shown, question = shown_in(prompt)
        answer, evidence = self.script(shown, question)
        text = json.dumps({"evidence": evidence, "answer": answer})
        if on_text:
            on_text(text)
        return Completion(
            text=text,
            prompt_tokens=10,
            completion_tokens=5,
            first_token_s=0.01,
            generate_s=0.02,
            logprobs=(-0.1,) * 5,
        )
