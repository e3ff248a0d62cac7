"""What app.py shows, without gradio: HTML for the chat and the sources panel, and the
adapter that streams one answer at a time out of the (not thread-safe) pipeline.

Everything from a document, the model or the user is passed through `html.escape` here;
the only markup on the page is the markup this module writes."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Generator, Iterator
from html import escape
from typing import Any, Protocol

from rag.errors import RagError
from rag.records import AMBIGUOUS, Answer, Citation, Statement
from rag.render import heading
from rag.reply import partial_answer

CONTEXT_CHARS = 300
# A side's column in the chat shows its source in a few lines, so the sides stay readable
# next to each other; the sources panel has room for the fuller CONTEXT_CHARS.
SIDE_CONTEXT_CHARS = 80
BUSY = "The assistant is busy answering another question. Please try again in a moment."
# How long a question waits for the model before it is told BUSY. Gradio's queue already
# runs one question at a time, so the only wait here is for a run whose browser tab went
# away to reach its next token (or, in its second-source call, its end): seconds, not
# minutes. Longer than this means the model is stuck, and saying so beats hanging.
WAIT_S = 120.0
NO_SOURCES = (
    '<p class="sources-empty">The sources of the latest answer appear here: each cited '
    "sentence, marked inside its document. Click a marker like [1] to jump to it.</p>"
)
SEARCHING = '<p class="sources-empty">Searching the sources…</p>'
_LINK = re.compile(r'<a class="cite" href="#source-\d+"[^>]*>(\[\d+\])</a>')

Message = dict[str, str]
Log = Callable[[str], None]


class BusyError(RagError):
    """The model stayed taken for longer than a question waits; the pipeline takes one
    question at a time."""


class _Abandoned(Exception):
    """Raised inside the model's streaming callback once nobody reads the answer, so
    llama.cpp stops at the next token. Never leaves Asker."""


class Asks(Protocol):
    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> Answer: ...


# --- streaming ---------------------------------------------------------------------------


class Asker:
    """Runs one question at a time through the pipeline and streams the partial answer."""

    def __init__(self, pipeline: Asks, wait_s: float = WAIT_S) -> None:
        self.pipeline = pipeline
        self.wait_s = wait_s
        self._lock = threading.Lock()

    def stream(self, question: str) -> Generator[str | Answer, None, None]:
        """Partial answer strings as they grow, then the final Answer. Waits while another
        question holds the model; BusyError only when that lasts longer than `wait_s`.

        Closing the generator (gradio does when the browser tab goes away) stops the
        model at its next token; the model is free again once the run has stopped."""
        if not self._lock.acquire(timeout=self.wait_s):
            raise BusyError(BUSY)
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        abandoned = threading.Event()

        def on_text(delta: str) -> None:
            if abandoned.is_set():
                raise _Abandoned
            events.put(("text", delta))

        def work() -> None:
            outcome: tuple[str, Any]
            try:
                outcome = ("done", self.pipeline.ask(question, on_text=on_text))
            except BaseException as exc:
                outcome = ("error", exc)
            finally:
                # Released by the worker, not the reader, so a client that goes away cannot
                # let the next question in while this one still holds the model; and before
                # the answer is handed over, so the next queued question never waits on it.
                self._lock.release()
            events.put(outcome)

        threading.Thread(target=work, name="rag-ask", daemon=True).start()
        raw, shown = "", ""
        try:
            while True:
                kind, item = events.get()
                if kind == "text":
                    raw += item
                    text = partial_answer(raw)
                    if text != shown:
                        shown = text
                        yield text
                elif kind == "done":
                    yield item
                    return
                else:
                    raise item
        finally:
            # Reached early only when the reader closed the stream; after the answer it
            # changes nothing, since the worker is done.
            abandoned.set()

    def ask(self, question: str) -> Answer:
        """The final answer, without streaming."""
        for event in self.stream(question):
            if isinstance(event, Answer):
                return event
        raise AssertionError("the stream ended without an answer")


def api_result(answer: Answer) -> dict[str, Any]:
    """The structured reply of the `ask` API endpoint (the `ask --json` contract)."""
    return answer.to_json()


# --- sources panel -----------------------------------------------------------------------


TextOf = Callable[[str], str]


def context_window(text: str, start: int, end: int, width: int = CONTEXT_CHARS) -> tuple[str, str]:
    """About `width` characters before and after text[start:end], cut at whitespace and
    marked with "…" where the document goes on."""
    lo, hi = max(0, start - width), min(len(text), end + width)
    before, after = text[lo:start], text[end:hi]
    if lo > 0:
        cut = re.search(r"\s", before)
        before = "…" + (before[cut.end() :] if cut else before)
    if hi < len(text):
        cut = re.search(r"\s\S*$", after)
        after = (after[: cut.start()] if cut else after) + "…"
    return before, after


def highlight(citation: Citation, text_of: TextOf, width: int) -> str | None:
    """The cited span, escaped and marked inside its context; None when the document no
    longer holds the quote at the citation's offsets."""
    c = citation
    try:
        text = text_of(c.doc)
    except RagError:
        text = ""
    if text[c.start : c.end] != c.quote:
        return None
    before, after = context_window(text, c.start, c.end, width)
    return f"{escape(before)}<mark>{escape(c.quote)}</mark>{escape(after)}"


def render_source(n: int, citation: Citation, text_of: TextOf) -> str:
    """One citation: doc name, page and heading, char range, and the span marked inside
    its context (the text the index holds, which for a PDF is its extracted text)."""
    c = citation
    where = [f'<span class="source-doc">{escape(c.doc)}</span>']
    if c.page is not None:
        where.append(f'<span class="source-page">p. {c.page}</span>')
    if c.heading:
        where.append(f'<span class="source-heading">§ {escape(c.heading)}</span>')
    head = (
        f'<div class="source-head"><span class="source-n">[{n}]</span> '
        f"{' '.join(where)} "
        f'<span class="source-range">[{c.start}:{c.end}]</span></div>'
    )
    body = highlight(c, text_of, CONTEXT_CHARS)
    note = ""
    if body is None:
        # The file changed (or vanished) since the answer was made: show the quote alone.
        body = f"<mark>{escape(c.quote)}</mark>"
        note = '<p class="source-note">The document has changed since this answer.</p>'
    return (
        f'<section class="source" id="source-{n}">{head}'
        f'<p class="source-text">{body}</p>{note}</section>'
    )


def render_sources(citations: tuple[Citation, ...], text_of: TextOf) -> str:
    """The whole sources panel for one answer."""
    if not citations:
        return '<p class="sources-empty">No sources: the answer was refused.</p>'
    return "".join(render_source(n, c, text_of) for n, c in enumerate(citations, 1))


# --- chat messages -----------------------------------------------------------------------


def _links(s: Statement, numbers: dict[Citation, int]) -> str:
    """The statement's markers, each a link to its source in the panel."""
    return "".join(
        f'<a class="cite" href="#source-{numbers[c]}" title="Show source {numbers[c]}">'
        f"[{numbers[c]}]</a>"
        for c in s.citations
    )


def _side(s: Statement, numbers: dict[Citation, int], kind: str, text_of: TextOf) -> str:
    """One side as a column: its subject (subjects sharing a name), value, disputed mark,
    documents, markers, and its first source marked in a short context."""
    parts = []
    if kind == AMBIGUOUS and s.subject:
        parts.append(f'<div class="side-subject">{escape(s.subject)}</div>')
    # Why it is disputed, on hover: the mark alone could read as the assistant's opinion.
    flag = (
        ' <span class="side-disputed" title="Every document giving this is a near-copy of '
        'one giving another answer">disputed</span>'
        if s.disputed
        else ""
    )
    parts.append(
        f'<div class="side-value">{escape(s.text.rstrip("."))}{flag} {_links(s, numbers)}</div>'
    )
    if s.docs:
        docs = ", ".join(f'<span class="side-doc">{escape(d)}</span>' for d in s.docs)
        parts.append(f'<div class="side-docs">{docs}</div>')
    if s.citations:
        first = s.citations[0]
        body = highlight(first, text_of, SIDE_CONTEXT_CHARS)
        # A changed document still shows what was cited; the panel says it changed.
        shown = body if body is not None else f"<mark>{escape(first.quote)}</mark>"
        parts.append(f'<p class="side-source">{shown}</p>')
    mark = " disputed" if s.disputed else ""
    return f'<div class="side{mark}">{"".join(parts)}</div>'


def render_answer(answer: Answer, text_of: TextOf) -> str:
    """The final answer: statements with linked markers; refusals and multi-side answers
    visibly set apart, the sides in columns next to each other, each with its documents
    and its own source marked (read through `text_of`)."""
    if answer.abstained:
        return (
            '<div class="notice refusal"><div class="notice-title">No answer in the sources'
            f"</div><p>{escape(answer.text)}</p></div>"
        )
    numbers = {c: n for n, c in enumerate(answer.citations, 1)}
    if answer.conflict:
        sides = "".join(_side(s, numbers, answer.kind, text_of) for s in answer.statements)
        title = heading(answer.kind, len(answer.statements))
        return (
            f'<div class="notice conflict"><div class="notice-title">{escape(title)}</div>'
            f'<div class="sides">{sides}</div></div>'
        )
    body = " ".join(
        f"{escape(s.text.rstrip('.'))} {_links(s, numbers)}." for s in answer.statements
    )
    return f'<div class="answer">{body}</div>'


def render_partial(text: str) -> str:
    """An answer still being written."""
    if not text:
        return '<div class="answer pending">Searching the sources…</div>'
    return f'<div class="answer streaming">{escape(text)}</div>'


def render_notice(kind: str, message: str) -> str:
    """A busy, error or index-update notice in the chat."""
    title = {"busy": "Busy", "error": "Cannot answer", "updating": "Updating the index"}[kind]
    return (
        f'<div class="notice {kind}"><div class="notice-title">{title}</div>'
        f"<p>{escape(message)}</p></div>"
    )


def delink(content: str) -> str:
    """An earlier answer's markers as plain text: the panel now shows newer sources."""
    return _LINK.sub(r'<span class="cite">\1</span>', content)


def chat_turn(
    asker: Asker,
    text_of: TextOf,
    question: str,
    history: list[Message],
    log: Log | None = None,
) -> Iterator[tuple[list[Message], str]]:
    """One question in the chat: (messages, sources panel) after each streamed change.
    A rejected question becomes a notice in the chat and one line in `log`."""
    done = [{"role": m["role"], "content": delink(m["content"])} for m in history]
    done.append({"role": "user", "content": f'<div class="question">{escape(question)}</div>'})

    def say(html: str) -> list[Message]:
        return [*done, {"role": "assistant", "content": html}]

    yield say(render_partial("")), SEARCHING
    try:
        for event in asker.stream(question):
            if isinstance(event, Answer):
                yield say(render_answer(event, text_of)), render_sources(event.citations, text_of)
            else:
                yield say(render_partial(event)), SEARCHING
    except RagError as exc:
        if log:
            log(f"question rejected: {exc}")
        kind = "busy" if isinstance(exc, BusyError) else "error"
        yield say(render_notice(kind, str(exc))), NO_SOURCES
