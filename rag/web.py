"""What app.py shows, without gradio: HTML for the chat and the sources panel, and the
adapter that streams one answer at a time out of the (not thread-safe) pipeline.

Everything from a document, the model or the user is passed through `html.escape` here;
the only markup on the page is the markup this module writes."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any, Protocol

from rag.errors import RagError
from rag.records import Answer, Citation

CONTEXT_CHARS = 300
BUSY = "The assistant is busy answering another question. Please try again in a moment."
NO_SOURCES = (
    '<p class="sources-empty">The sources of the latest answer appear here: each cited '
    "sentence, marked inside its article. Click a marker like [1] to jump to it.</p>"
)
SEARCHING = '<p class="sources-empty">Searching the sources…</p>'
# pipeline._render starts a conflict answer with this and ends every statement with "[n]."
CONFLICT_PREFIX = "The sources differ."
_STATEMENT_END = re.compile(r"(?<=\]\.)\s+")
_MARKER = re.compile(r"\[(\d+)\]")
_LINK = re.compile(r'<a class="cite" href="#source-\d+"[^>]*>(\[\d+\])</a>')

Message = dict[str, str]


class BusyError(RagError):
    """Another question is being answered; the pipeline takes one at a time."""


class Asks(Protocol):
    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> Answer: ...


# --- streaming ---------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_answer(raw: str) -> str:
    """The value of "answer" as far as the model's unfinished JSON spells it out."""
    m = re.search(r'"answer"\s*:\s*"', raw)
    if not m:
        return ""
    out: list[str] = []
    i = m.end()
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        # An escape may be cut off mid-way; stop before it and pick it up next delta.
        if i + 1 >= len(raw):
            break
        code = raw[i + 1]
        if code != "u":
            out.append(_ESCAPES.get(code, code))
            i += 2
            continue
        digits = raw[i + 2 : i + 6]
        if len(digits) < 4 or not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
            break
        point = int(digits, 16)
        i += 6
        if 0xD800 <= point < 0xDC00:  # a surrogate pair needs its low half too
            low = raw[i : i + 6]
            if not re.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", low):
                break
            point = 0x10000 + ((point - 0xD800) << 10) + (int(low[2:], 16) - 0xDC00)
            i += 6
        out.append(chr(point))
    return "".join(out)


class Asker:
    """Runs one question at a time through the pipeline and streams the partial answer."""

    def __init__(self, pipeline: Asks) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()

    def stream(self, question: str) -> Iterator[str | Answer]:
        """Partial answer strings as they grow, then the final Answer; BusyError at once
        when another question is running."""
        if not self._lock.acquire(blocking=False):
            raise BusyError(BUSY)
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        def work() -> None:
            outcome: tuple[str, Any]
            try:
                answer = self.pipeline.ask(question, on_text=lambda d: events.put(("text", d)))
                outcome = ("done", answer)
            except BaseException as exc:
                outcome = ("error", exc)
            finally:
                # Released by the worker, not the reader, so a client that goes away cannot
                # let the next question in while this one still holds the model; and before
                # the answer is handed over, so the next queued question never finds it busy.
                self._lock.release()
            events.put(outcome)

        threading.Thread(target=work, name="rag-ask", daemon=True).start()
        raw, shown = "", ""
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


def read_source(corpus: Path, doc: str) -> str:
    """A document's text exactly as the index saw it: the file's bytes decoded as UTF-8."""
    return (corpus / doc).read_bytes().decode("utf-8")


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


def render_source(n: int, citation: Citation, corpus: Path) -> str:
    """One citation: doc name, char range, and the span marked inside its context."""
    c = citation
    head = (
        f'<div class="source-head"><span class="source-n">[{n}]</span> '
        f'<span class="source-doc">{escape(c.doc)}</span> '
        f'<span class="source-range">[{c.start}:{c.end}]</span></div>'
    )
    try:
        text = read_source(corpus, c.doc)
    except (OSError, UnicodeDecodeError):
        text = ""
    if text[c.start : c.end] == c.quote:
        before, after = context_window(text, c.start, c.end)
        body = f"{escape(before)}<mark>{escape(c.quote)}</mark>{escape(after)}"
        note = ""
    else:
        # The file changed (or vanished) since the answer was made: show the quote alone.
        body = f"<mark>{escape(c.quote)}</mark>"
        note = '<p class="source-note">The document has changed since this answer.</p>'
    return (
        f'<section class="source" id="source-{n}">{head}'
        f'<p class="source-text">{body}</p>{note}</section>'
    )


def render_sources(citations: tuple[Citation, ...], corpus: Path) -> str:
    """The whole sources panel for one answer."""
    if not citations:
        return '<p class="sources-empty">No sources: the answer was refused.</p>'
    return "".join(render_source(n, c, corpus) for n, c in enumerate(citations, 1))


# --- chat messages -----------------------------------------------------------------------


def _linked(text: str, count: int) -> str:
    """Escaped text whose markers [n] (1 <= n <= count) link to #source-n."""

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= count:
            return m.group(0)
        return f'<a class="cite" href="#source-{n}" title="Show source {n}">[{n}]</a>'

    return _MARKER.sub(link, escape(text))


def render_answer(answer: Answer) -> str:
    """The final answer: markers linked, refusals and conflicts visibly set apart."""
    if answer.abstained:
        return (
            '<div class="notice refusal"><div class="notice-title">No answer in the sources'
            f'</div><p>{escape(answer.text)}</p></div>'
        )
    count = len(answer.citations)
    if answer.conflict:
        rest = answer.text.removeprefix(CONFLICT_PREFIX).strip()
        items = "".join(f"<li>{_linked(s, count)}</li>" for s in _STATEMENT_END.split(rest))
        return (
            f'<div class="notice conflict"><div class="notice-title">{CONFLICT_PREFIX}</div>'
            f"<ul>{items}</ul></div>"
        )
    return f'<div class="answer">{_linked(answer.text, count)}</div>'


def render_partial(text: str) -> str:
    """An answer still being written."""
    if not text:
        return '<div class="answer pending">Searching the sources…</div>'
    return f'<div class="answer streaming">{escape(text)}</div>'


def render_notice(kind: str, message: str) -> str:
    """A busy or error notice in the chat."""
    title = {"busy": "Busy", "error": "Cannot answer"}[kind]
    return (
        f'<div class="notice {kind}"><div class="notice-title">{title}</div>'
        f"<p>{escape(message)}</p></div>"
    )


def delink(content: str) -> str:
    """An earlier answer's markers as plain text: the panel now shows newer sources."""
    return _LINK.sub(r'<span class="cite">\1</span>', content)


def chat_turn(
    asker: Asker, corpus: Path, question: str, history: list[Message]
) -> Iterator[tuple[list[Message], str]]:
    """One question in the chat: (messages, sources panel) after each streamed change."""
    done = [{"role": m["role"], "content": delink(m["content"])} for m in history]
    done.append({"role": "user", "content": f'<div class="question">{escape(question)}</div>'})

    def say(html: str) -> list[Message]:
        return [*done, {"role": "assistant", "content": html}]

    yield say(render_partial("")), SEARCHING
    try:
        for event in asker.stream(question):
            if isinstance(event, Answer):
                yield say(render_answer(event)), render_sources(event.citations, corpus)
            else:
                yield say(render_partial(event)), SEARCHING
    except BusyError as exc:
        yield say(render_notice("busy", str(exc))), NO_SOURCES
    except RagError as exc:
        yield say(render_notice("error", str(exc))), NO_SOURCES
