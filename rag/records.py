"""Plain, frozen records. Data flows one way through them:
Document -> Chunk -> Hit -> Passage -> Generation -> Answer(text, citations)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One corpus file: `name` is its path relative to the corpus folder."""

    name: str
    text: str
    sha256: str


@dataclass(frozen=True)
class Chunk:
    """A span of a document; always `document.text[start:end] == text`."""

    doc: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores. `dense` is the cosine similarity to the question."""

    chunk: Chunk
    score: float
    dense: float
    rank: int


@dataclass(frozen=True)
class Passage:
    """A sentence-sized span shown to the model under a number; the unit of citation."""

    number: int
    doc: str
    start: int
    end: int
    text: str
    dense: float


@dataclass(frozen=True)
class Generation:
    """What the generator returned, with the figures the benchmarks need."""

    text: str
    passages_shown: int
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float
    generate_s: float


@dataclass(frozen=True)
class Citation:
    """An exact source span: `source_text[start:end] == quote`."""

    doc: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Timings:
    retrieve_s: float = 0.0
    generate_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class Answer:
    """The final answer. `text` carries markers [n] that index `citations` from 1."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    timings: Timings = field(default_factory=Timings)
    # What retrieval returned (top-k chunks) and which sentences the model was shown.
    retrieved: tuple[Chunk, ...] = ()
    passages: tuple[Passage, ...] = ()
    conflict: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        """The `ask --json` contract."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [
                {"doc": c.doc, "start": c.start, "end": c.end, "quote": c.quote}
                for c in self.citations
            ],
            "timings": {
                "retrieve_s": round(self.timings.retrieve_s, 4),
                "generate_s": round(self.timings.generate_s, 4),
                "total_s": round(self.timings.total_s, 4),
            },
            "conflict": self.conflict,
        }
