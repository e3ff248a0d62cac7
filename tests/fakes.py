"""Deterministic fakes for the two seams, so fast tests need no model files."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

import numpy as np

from rag.embed import DIM
from rag.records import Generation, Passage


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


Script = Callable[[list[Passage], str], tuple[str, list[int]]]


def find(word: str) -> Script:
    """A fake model that answers with `word` and cites the first passage containing it."""

    def script(passages: list[Passage], question: str) -> tuple[str, list[int]]:
        for p in passages:
            if word.lower() in p.text.lower():
                return word, [p.number]
        return word, [1]

    return script


class ScriptedGenerator:
    """Replies with JSON built by a script from the passages it is shown."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[list[Passage]] = []

    def generate(self, passages, question, on_text=None) -> Generation:  # type: ignore[no-untyped-def]
        self.calls.append(list(passages))
        answer, evidence = self.script(passages, question)
        text = json.dumps({"answer": answer, "evidence": evidence})
        if on_text:
            on_text(text)
        return Generation(text=text, passages_shown=len(passages), prompt_tokens=10,
                          completion_tokens=5, first_token_s=0.01, generate_s=0.02)
