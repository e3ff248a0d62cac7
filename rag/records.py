"""Plain, frozen records. Data flows one way through them:

Document -> Chunk -> Hit -> Passage -> Completion -> Draft -> Grounded -> Statement -> Answer

Renderers (CLI, JSON, web page, evaluator) read `Answer.statements`; none re-parses prose.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One corpus file: `name` is its path relative to the corpus folder, `text` the text
    every offset points into (the file itself for .txt/.md, the extracted text otherwise)."""

    name: str
    text: str
    sha256: str
    # (start, end, page) character ranges of each page, for paged formats (PDF), 1-based.
    pages: tuple[tuple[int, int, int], ...] = ()
    # (offset, heading) in document order, for formats with headings (Markdown, HTML, DOCX).
    headings: tuple[tuple[int, str], ...] = ()


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
class Completion:
    """What the generator returned for one prompt, with the figures the benchmarks and
    the answer/refuse decision need. `logprobs` has one entry per generated token."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float = 0.0
    generate_s: float = 0.0
    # Each generated token's text and log-probability, in order.
    tokens: tuple[str, ...] = ()
    logprobs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Draft:
    """The model's reply, parsed: its answer text and the passage numbers it named."""

    answer: str
    evidence: tuple[int, ...]


@dataclass(frozen=True)
class Grounded:
    """One sentence of a draft answer and the shown passages that prove it."""

    text: str
    passages: tuple[Passage, ...]


@dataclass(frozen=True)
class Citation:
    """An exact source span: `source_text[start:end] == quote`."""

    doc: str
    start: int
    end: int
    quote: str
    # The PDF page the span starts on, and the nearest heading above it, when known.
    page: int | None = None
    heading: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "doc": self.doc,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
        }
        if self.page is not None:
            out["page"] = self.page
        if self.heading is not None:
            out["heading"] = self.heading
        return out


@dataclass(frozen=True)
class Asked:
    """One other source asked the question on its own: what was known of it before the
    call, recorded so that which sources are worth a call can be fitted without the model,
    and what it gave."""

    doc: str
    # rag.answer.source_features: what decide.worth_a_call reads.
    before: dict[str, float]
    value: str
    accepted: bool
    confidence: float | None
    # What the call cost.
    seconds: float = 0.0
    # Asked because the first answer was refused (policy `rescue`), not to find another side.
    rescue: bool = False


@dataclass(frozen=True)
class Statement:
    """One claim of the answer: its text and the spans that prove it. In a conflict each
    side is one statement, and `docs` says which documents give it."""

    text: str
    citations: tuple[Citation, ...]
    docs: tuple[str, ...] = ()
    # Every document giving this value is a near-copy of one giving another value: the
    # signature of a planted claim, so it is never stated on its own (rag.conflicts).
    disputed: bool = False
    # The subject its documents are titled with ("Kevin Lewis (footballer, born 1940)"),
    # when their text opens with a title; tells apart subjects that share a name.
    subject: str = ""
    # The calibrated estimate that the value is right: the best of its sources' (None
    # when the policy has no score).
    confidence: float | None = None


@dataclass(frozen=True)
class Timings:
    retrieve_s: float = 0.0
    generate_s: float = 0.0
    total_s: float = 0.0


# Answer kinds: one answer, a refusal, sources that give different answers, or sources
# that answer for different subjects sharing one name (told apart by their titles).
ANSWER = "answer"
REFUSAL = "refusal"
CONFLICT = "conflict"
AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Answer:
    """The final answer: statements, each with its citations, or a refusal (no statements).

    `text` is the rendered sentence with markers [n] indexing `citations` from 1; it is
    kept for the `ask --json` contract and written only by rag.render."""

    question: str
    kind: str
    statements: tuple[Statement, ...] = ()
    text: str = ""
    citations: tuple[Citation, ...] = ()
    timings: Timings = field(default_factory=Timings)
    # What retrieval returned (top-k chunks) and which sentences the model was shown.
    retrieved: tuple[Chunk, ...] = ()
    passages: tuple[Passage, ...] = ()
    # The calibrated answer score when the decision used one, and the policy's name.
    confidence: float | None = None
    policy: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float = 0.0
    model_calls: int = 0
    # The decision's inputs (rag.signals), recorded so it can be refitted without the model.
    signals: dict[str, float] = field(default_factory=dict)
    # Each other source asked alone, in the order asked.
    asked: tuple[Asked, ...] = ()

    @property
    def abstained(self) -> bool:
        return self.kind == REFUSAL

    @property
    def conflict(self) -> bool:
        """Whether the answer shows more than one side (of either kind)."""
        return self.kind in (CONFLICT, AMBIGUOUS)

    def to_json(self) -> dict[str, object]:
        """The `ask --json` contract; fields are only ever added, never removed."""
        index = {c: n for n, c in enumerate(self.citations)}
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            "timings": {
                "retrieve_s": round(self.timings.retrieve_s, 4),
                "generate_s": round(self.timings.generate_s, 4),
                "total_s": round(self.timings.total_s, 4),
            },
            # What the answer cost: one model call per source asked (rag.conflicts).
            "model_calls": self.model_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "conflict": self.conflict,
            "kind": self.kind,
            # Each statement names its citations by position in "citations" (0-based).
            "statements": [
                {
                    "text": s.text,
                    "citations": [index[c] for c in s.citations],
                    "docs": list(s.docs),
                    "disputed": s.disputed,
                    "subject": s.subject,
                    "confidence": None if s.confidence is None else round(s.confidence, 4),
                }
                for s in self.statements
            ],
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "policy": self.policy,
            "signals": {k: round(v, 5) for k, v in self.signals.items()},
            "asked": [
                {
                    "doc": a.doc,
                    "before": {k: round(v, 5) for k, v in a.before.items()},
                    "value": a.value,
                    "accepted": a.accepted,
                    "confidence": None if a.confidence is None else round(a.confidence, 4),
                    "seconds": round(a.seconds, 4),
                    "rescue": a.rescue,
                }
                for a in self.asked
            ],
        }
