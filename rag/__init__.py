"""Offline question answering over your documents, with exact-span citations.

    from rag import open_index

    docs = open_index("~/reports")            # builds the index on first use
    answer = docs.ask("Who signed the treaty?")
    for statement in answer.statements:
        print(statement.text, [(c.doc, c.start, c.end) for c in statement.citations])

Importing this package is cheap on purpose: torch, llama.cpp and gradio load only when a
command actually needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.index import OpenIndex

__version__ = "0.2.0"
__all__ = ["open_index"]


def open_index(
    corpus: str | Path | None = None, index: str | Path | None = None, **settings: Any
) -> OpenIndex:
    """The corpus folder and its index, ready for `.ask(question)`; other keyword
    arguments are settings (`k=6`, `model="path.gguf"`) or policy fields."""
    from rag.index import OpenIndex
    from rag.settings import load_settings

    return OpenIndex(
        load_settings(
            corpus=Path(corpus).expanduser() if corpus is not None else None,
            index=Path(index).expanduser() if index is not None else None,
            **settings,
        )
    )
