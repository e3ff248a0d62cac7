"""rag.web without gradio or models: escaping, exact highlights, context windows, rendering
from statements, and the one-at-a-time streaming adapter (fakes through the seams)."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag import web
from rag.errors import InputError
from rag.generate import OnText
from rag.index import OpenIndex
from rag.prompts import REFUSAL, Prompt
from rag.records import ANSWER, Answer, Citation, Completion, Statement
from rag.records import REFUSAL as REFUSED
from rag.settings import Settings
from tests.fakes import HashEmbedder, Script, ScriptedGenerator, find

XSS = "The bridge opened in 1990 <img src=x onerror=alert(1)> and <script>alert(2)</script> ok."


def write(folder: Path, name: str, text: str) -> web.TextOf:
    """Write a document and return a reader of the folder's texts, as the index gives them."""
    (folder / name).write_bytes(text.encode("utf-8"))
    return lambda doc: (folder / doc).read_bytes().decode("utf-8")


def cite(text: str, quote: str, doc: str = "d.txt") -> Citation:
    start = text.index(quote)
    return Citation(doc=doc, start=start, end=start + len(quote), quote=quote)


def marked(section: str) -> tuple[str, str, str]:
    """(before, marked, after) as plain text, from one rendered source's text paragraph."""
    body = re.search(r'<p class="source-text">(.*?)</p>', section, re.S)
    assert body
    before, rest = body.group(1).split("<mark>")
    span, after = rest.split("</mark>")
    return html.unescape(before), html.unescape(span), html.unescape(after)


# --- escaping ----------------------------------------------------------------------------


def test_document_markup_in_a_source_is_shown_as_text(tmp_path: Path) -> None:
    text_of = write(tmp_path, "d.txt", XSS)
    out = web.render_sources((cite(XSS, "opened in 1990 <img src=x onerror=alert(1)>"),), text_of)
    assert "<img" not in out and "<script" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in out
    assert marked(out)[1] == "opened in 1990 <img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    "model_text",
    [
        "<img src=x onerror=alert(1)>",
        "<script>alert(2)</script>",
        '"><a href="javascript:alert(3)">x</a>',
        "![pic](http://example.com/x.png) [link](http://example.com)",
    ],
)
def test_model_text_never_becomes_markup(model_text: str) -> None:
    c = Citation("d.txt", 0, 1, "x")
    answer = Answer(
        question="q", kind=ANSWER, statements=(Statement(model_text, (c,)),), citations=(c,)
    )
    out = web.render_answer(answer)
    tags = re.findall(r"<(\w+)", out)
    assert set(tags) <= {"div", "a"}, tags
    # The only link is the citation marker this module wrote.
    assert re.findall(r"<a [^>]*>", out) == [
        '<a class="cite" href="#source-1" title="Show source 1">'
    ]
    assert html.unescape(re.sub(r"<[^>]+>", "", out)) == f"{model_text} [1]."


def test_user_question_is_escaped_in_the_chat(settings: Settings) -> None:
    asker = web.Asker(make_pipeline(settings, find("1,000")))
    *_, (messages, _) = web.chat_turn(asker, asker_text(asker), "<img src=x onerror=alert(1)>?", [])
    assert messages[0]["content"] == (
        '<div class="question">&lt;img src=x onerror=alert(1)&gt;?</div>'
    )


def test_error_messages_are_escaped() -> None:
    assert "<b>" not in web.render_notice("error", "bad <b>input</b>")


# --- highlights and context --------------------------------------------------------------


def test_highlight_is_exactly_the_cited_span(tmp_path: Path) -> None:
    text = "Alpha sentence one. Kim acknowledged the deaths of nine personnel.\nLast line."
    text_of = write(tmp_path, "d.txt", text)
    c = cite(text, "Kim acknowledged the deaths of nine personnel.")
    out = web.render_sources((c,), text_of)
    before, span, after = marked(out)
    assert span == text[c.start : c.end]
    assert before + span + after == text  # short document: the whole text, no ellipses
    assert 'id="source-1"' in out and f"[{c.start}:{c.end}]" in out and "d.txt" in out


def test_offsets_are_str_indices_into_the_utf8_text(tmp_path: Path) -> None:
    text = "Über “quoted” — emoji 🙂 then Kim’s unit returned home. End."
    text_of = write(tmp_path, "d.txt", text)
    c = cite(text, "Kim’s unit returned home.")
    assert marked(web.render_sources((c,), text_of))[1] == "Kim’s unit returned home."


def test_changed_document_shows_the_quote_and_says_so(tmp_path: Path) -> None:
    text_of = write(tmp_path, "d.txt", "Something else entirely now.")
    out = web.render_sources((Citation("d.txt", 0, 9, "Kim spoke"),), text_of)
    assert "<mark>Kim spoke</mark>" in out and "has changed" in out


def test_window_at_the_start_of_a_document_has_no_leading_ellipsis() -> None:
    text = "First words here. " + "filler word " * 100
    before, after = web.context_window(text, 0, 17)
    assert before == "" and after.endswith("…")
    assert len(after) <= web.CONTEXT_CHARS + 1


def test_window_at_the_end_of_a_document_has_no_trailing_ellipsis() -> None:
    text = "filler word " * 100 + "Final sentence."
    start = text.index("Final")
    before, after = web.context_window(text, start, len(text))
    assert after == "" and before.startswith("…")
    assert text.endswith(before[1:] + "Final sentence.")


def test_window_in_the_middle_is_cut_at_whitespace_on_both_sides() -> None:
    text = "abcdefgh " * 200
    before, after = web.context_window(text, 900, 909)
    assert before.startswith("…") and after.endswith("…")
    assert before[1] != " " and not before[1:].startswith("bcdefgh")  # no half word
    assert after[-2] in "abcdefgh"


@given(st.text(min_size=1, max_size=900), st.data())
def test_context_is_contiguous_around_the_span(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    before, after = web.context_window(text, start, end)
    core_before = before.removeprefix("…") if start > web.CONTEXT_CHARS else before
    core_after = after.removesuffix("…") if len(text) - end > web.CONTEXT_CHARS else after
    assert text[start - len(core_before) : start] == core_before
    assert text[end : end + len(core_after)] == core_after
    assert len(core_before) <= web.CONTEXT_CHARS and len(core_after) <= web.CONTEXT_CHARS


# --- chat rendering ----------------------------------------------------------------------


def one(text: str, *citations: Citation) -> Answer:
    return Answer(
        question="q", kind=ANSWER, statements=(Statement(text, citations),), citations=citations
    )


def test_markers_link_to_their_sources_and_brackets_in_text_stay_text() -> None:
    """Links come from the statement's citations; a "[3]" the model wrote is not one."""
    out = web.render_answer(one("9 and [3]", Citation("d.txt", 0, 1, "x")))
    assert '<a class="cite" href="#source-1" title="Show source 1">[1]</a>' in out
    assert "[3]" in out and 'href="#source-3"' not in out


def test_refusal_is_a_distinct_notice() -> None:
    out = web.render_answer(Answer(question="q", kind=REFUSED, text=REFUSAL))
    assert 'class="notice refusal"' in out and REFUSAL in out


def test_conflict_lists_each_version_with_its_markers() -> None:
    a, b = Citation("a.txt", 0, 1, "x"), Citation("b.md", 0, 1, "y")
    answer = Answer(
        question="q",
        kind="conflict",
        citations=(a, b),
        statements=(
            Statement("Kigye Airport", (a,), ("a.txt",)),
            Statement("Pyongyang", (b,), ("b.md",)),
        ),
    )
    out = web.render_answer(answer)
    assert 'class="notice conflict"' in out and "The sources differ." in out
    items = re.findall(r"<li>(.*?)</li>", out)
    assert len(items) == 2
    plain = [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in items]
    assert plain == ["a.txt: Kigye Airport [1]", "b.md: Pyongyang [2]"]
    assert 'href="#source-1"' in items[0] and 'href="#source-2"' in items[1]


def test_earlier_answers_lose_their_links_when_a_new_question_comes() -> None:
    old = web.render_answer(one("9", Citation("d.txt", 0, 1, "x")))
    assert web.delink(old) == '<div class="answer">9 <span class="cite">[1]</span>.</div>'


# --- streaming ---------------------------------------------------------------------------


class CharByChar(ScriptedGenerator):
    """Streams its JSON one character at a time, like a model emitting tokens."""

    def complete(
        self, prompt: Prompt, *, max_tokens: int, on_text: OnText | None = None
    ) -> Completion:
        done = super().complete(prompt, max_tokens=max_tokens)
        for ch in done.text:
            if on_text:
                on_text(ch)
        return done


def make_pipeline(settings: Settings, script: Script) -> OpenIndex:
    emb = HashEmbedder()
    return OpenIndex(
        settings, embedder=emb, index_embedder=emb, generator=CharByChar(script), log=lambda _: None
    )


def asker_text(asker: web.Asker) -> web.TextOf:
    opened = asker.pipeline
    assert isinstance(opened, OpenIndex)
    return opened.text


def test_stream_yields_growing_partials_then_the_answer(settings: Settings) -> None:
    events = list(
        web.Asker(make_pipeline(settings, find("1,000"))).stream(
            "How many engineer troops were sent?"
        )
    )
    *partials, final = events
    assert partials == ["1", "1,", "1,0", "1,00", "1,000"]
    assert isinstance(final, Answer) and final.text.startswith("1,000 [1]")


def test_chat_turn_ends_with_linked_answer_and_its_sources(settings: Settings) -> None:
    asker = web.Asker(make_pipeline(settings, find("1,000")))
    turns = list(web.chat_turn(asker, asker_text(asker), "How many engineer troops were sent?", []))
    assert turns[0][1] == web.SEARCHING and "pending" in turns[0][0][-1]["content"]
    assert any("streaming" in msgs[-1]["content"] for msgs, _ in turns)
    messages, sources = turns[-1]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert 'href="#source-1"' in messages[-1]["content"]
    assert 'id="source-1"' in sources
    assert "<mark>About 1,000 engineer troops were sent.</mark>" in sources


def test_bad_question_becomes_an_error_notice(settings: Settings) -> None:
    asker = web.Asker(make_pipeline(settings, find("x")))
    with pytest.raises(InputError):
        list(asker.stream("   "))
    *_, (messages, sources) = web.chat_turn(asker, asker_text(asker), "x" * 5000, [])
    assert 'class="notice error"' in messages[-1]["content"] and sources == web.NO_SOURCES


class Blocking:
    """A pipeline that holds the model until released, streaming a token every few
    milliseconds the way llama.cpp does; it stops when its `on_text` raises, as
    LlamaGenerator.complete does, and records that it was stopped."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.asked: list[str] = []

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> Answer:
        self.asked.append(question)
        self.started.set()
        try:
            if on_text:
                on_text('{"answer": "wait')
            while not self.release.wait(0.005):
                if on_text:
                    on_text("")
        except BaseException:
            self.stopped.set()
            raise
        return Answer(question=question, kind=REFUSED, text=REFUSAL)


def in_thread(run: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `run` in a thread; its result (or exception) lands in the returned list."""
    out: list[object] = []

    def target() -> None:
        try:
            out.append(run())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_a_second_question_waits_for_the_first_instead_of_failing() -> None:
    """Questions queue (gradio shows their place in line); none is turned away while the
    model is merely busy."""
    pipeline = Blocking()
    asker = web.Asker(pipeline)
    first = asker.stream("one")
    assert next(first) == "wait"
    second, out = in_thread(lambda: asker.ask("two"))
    second.join(0.3)
    assert second.is_alive() and out == [] and pipeline.asked == ["one"]
    pipeline.release.set()
    assert isinstance(list(first)[-1], Answer)
    second.join(5)
    assert pipeline.asked == ["one", "two"]
    assert isinstance(out[0], Answer) and out[0].question == "two"


def test_busy_only_when_the_wait_runs_out() -> None:
    pipeline = Blocking()
    asker = web.Asker(pipeline, wait_s=0.1)
    first = asker.stream("one")
    next(first)
    with pytest.raises(web.BusyError, match="busy"):
        next(asker.stream("two"))
    logged: list[str] = []
    *_, (messages, _) = web.chat_turn(asker, lambda doc: "", "three", [], log=logged.append)
    assert 'class="notice busy"' in messages[-1]["content"]
    assert logged == [f"question rejected: {web.BUSY}"]
    pipeline.release.set()
    assert isinstance(list(first)[-1], Answer)
    assert asker.ask("four").abstained


def test_a_client_that_leaves_stops_the_model_and_frees_it() -> None:
    """gradio closes the generator when the browser tab goes away: the model stops at its
    next token and the next question in line runs, without waiting for a full answer."""
    pipeline = Blocking()
    asker = web.Asker(pipeline)
    first = asker.stream("one")
    next(first)
    first.close()
    assert pipeline.stopped.wait(2), "the model kept generating for nobody"
    assert not pipeline.release.is_set()
    second, out = in_thread(lambda: asker.ask("two"))
    assert pipeline.started.wait(2)
    pipeline.release.set()
    second.join(5)
    assert isinstance(out[0], Answer) and out[0].question == "two"


def test_a_rejected_question_is_one_log_line(settings: Settings) -> None:
    asker = web.Asker(make_pipeline(settings, find("x")))
    logged: list[str] = []
    *_, (messages, _) = web.chat_turn(asker, asker_text(asker), "   ", [], log=logged.append)
    assert 'class="notice error"' in messages[-1]["content"]
    assert logged == ["question rejected: the question is empty"]


def test_an_index_update_notice_is_its_own_escaped_notice() -> None:
    out = web.render_notice("updating", "The documents changed <b>now</b>.")
    assert 'class="notice updating"' in out and "Updating the index" in out
    assert "<b>" not in out
