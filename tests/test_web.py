"""rag.web without gradio or models: escaping, exact highlights, context windows, rendering
from statements, and the one-at-a-time streaming adapter (fakes through the seams)."""

from __future__ import annotations

import html
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag import web
from rag.errors import InputError
from rag.generate import OnText
from rag.index import OpenIndex
from rag.prompts import REFUSAL, Prompt
from rag.records import AMBIGUOUS, ANSWER, CONFLICT, Answer, Citation, Completion, Statement
from rag.records import REFUSAL as REFUSED
from rag.settings import Settings
from tests.fakes import HashEmbedder, Script, ScriptedGenerator, find

XSS = "The bridge opened in 1990 <img src=x onerror=alert(1)> and <script>alert(2)</script> ok."


def no_text(doc: str) -> str:
    """The documents, for renderings that never read them (single answers, refusals)."""
    return ""


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
    out = web.render_answer(answer, no_text)
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
    out = web.render_answer(one("9 and [3]", Citation("d.txt", 0, 1, "x")), no_text)
    assert '<a class="cite" href="#source-1" title="Show source 1">[1]</a>' in out
    assert "[3]" in out and 'href="#source-3"' not in out


def test_refusal_is_a_distinct_notice() -> None:
    out = web.render_answer(Answer(question="q", kind=REFUSED, text=REFUSAL), no_text)
    assert 'class="notice refusal"' in out and REFUSAL in out


@dataclass(frozen=True)
class Side:
    """What one column of a multi-side answer shows, as plain text."""

    line: str  # value, disputed mark and markers
    docs: str
    mark: str
    # The document whose text the mark sits in; None: the quote alone (the file changed).
    context: str | None
    subject: str | None = None
    disputed: bool = False
    links: tuple[int, ...] = ()


@dataclass(frozen=True)
class Shown:
    """An answer, the documents it cites, and what its chat message must show."""

    answer: Answer
    texts: dict[str, str]
    title: str | None
    sides: tuple[Side, ...] = ()
    exact: str | None = None  # the whole message, where it must not change


FLIGHT_A = "Earlier words. The flight left from Kigye Airport <b>north</b> of the city. Later."
FLIGHT_C = "A copy: the flight left from Kigye Airport. End of the copy."
FLIGHT_B = "# Notes\nThe flight left from Pyongyang Sunan. Tail words."
QUOTE_A = "The flight left from Kigye Airport <b>north</b> of the city."
QUOTE_B = "The flight left from Pyongyang Sunan."
KEVIN_1 = "Kevin Lewis (footballer, born 1940)\nKevin Lewis was born in 1940 in Ellesmere Port."
KEVIN_2 = "Kevin Lewis (actor)\nKevin Lewis was born in 1970 <script>alert(2)</script> in LA."
QUOTE_K1 = "Kevin Lewis was born in 1940 in Ellesmere Port."
QUOTE_K2 = "Kevin Lewis was born in 1970 <script>alert(2)</script> in LA."
QUOTE_K3 = "Kevin Lewis was born in 1964."
A, C, B = (
    cite(FLIGHT_A, QUOTE_A, "a.txt"),
    cite(FLIGHT_C, "the flight left from Kigye Airport.", "c <b>.txt"),
    cite(FLIGHT_B, QUOTE_B, "b.md"),
)
K1, K2 = cite(KEVIN_1, QUOTE_K1, "k1.txt"), cite(KEVIN_2, QUOTE_K2, "k2.txt")
K3 = Citation("k3.txt", 20, 20 + len(QUOTE_K3), QUOTE_K3)  # its document changed since
ONE = Citation("d.txt", 0, 1, "x")

SHOWN = [
    pytest.param(
        Shown(
            Answer(
                question="q",
                kind=CONFLICT,
                citations=(A, C, B),
                statements=(
                    # A conflict's sides share a subject; the column does not repeat it.
                    Statement(
                        "Kigye Airport <img src=x onerror=alert(1)>",
                        (A, C),
                        ("a.txt", "c <b>.txt"),
                        subject="Flight 1",
                    ),
                    Statement("Pyongyang Sunan.", (B,), ("b.md",), disputed=True),
                ),
            ),
            {"a.txt": FLIGHT_A, "c <b>.txt": FLIGHT_C, "b.md": FLIGHT_B},
            title="The sources differ.",
            sides=(
                Side(
                    "Kigye Airport <img src=x onerror=alert(1)> [1][2]",
                    "a.txt, c <b>.txt",
                    QUOTE_A,
                    context="a.txt",
                    links=(1, 2),
                ),
                Side(
                    "Pyongyang Sunan disputed [3]",
                    "b.md",
                    QUOTE_B,
                    context="b.md",
                    disputed=True,
                    links=(3,),
                ),
            ),
        ),
        id="two-side conflict, one disputed",
    ),
    pytest.param(
        Shown(
            Answer(
                question="q",
                kind=AMBIGUOUS,
                citations=(K1, K2, K3),
                statements=(
                    Statement(
                        "1940", (K1,), ("k1.txt",), subject="Kevin Lewis (footballer, born 1940)"
                    ),
                    Statement("1970", (K2,), ("k2.txt",), subject="Kevin Lewis (actor)"),
                    Statement("1964", (K3,), ("k3.txt",), subject="Kevin Lewis <i>(singer)</i>"),
                ),
            ),
            {"k1.txt": KEVIN_1, "k2.txt": KEVIN_2, "k3.txt": "Rewritten since the answer."},
            title="Three subjects share this name.",
            sides=(
                Side(
                    "1940 [1]",
                    "k1.txt",
                    QUOTE_K1,
                    context="k1.txt",
                    subject="Kevin Lewis (footballer, born 1940)",
                    links=(1,),
                ),
                Side(
                    "1970 [2]",
                    "k2.txt",
                    QUOTE_K2,
                    context="k2.txt",
                    subject="Kevin Lewis (actor)",
                    links=(2,),
                ),
                Side(
                    "1964 [3]",
                    "k3.txt",
                    QUOTE_K3,
                    context=None,
                    subject="Kevin Lewis <i>(singer)</i>",
                    links=(3,),
                ),
            ),
        ),
        id="three-way ambiguous with subjects, one document changed",
    ),
    pytest.param(
        Shown(
            Answer(
                question="q",
                kind=ANSWER,
                citations=(ONE,),
                statements=(Statement("9 <b>", (ONE,), ("d.txt",)),),
            ),
            {"d.txt": "x"},
            title=None,
            exact=(
                '<div class="answer">9 &lt;b&gt; '
                '<a class="cite" href="#source-1" title="Show source 1">[1]</a>.</div>'
            ),
        ),
        id="single answer, unchanged",
    ),
]


def plain(el: ET.Element | None) -> str | None:
    return None if el is None else "".join(el.itertext())


@pytest.mark.parametrize("case", SHOWN)
def test_each_side_is_a_column_with_its_own_marked_source(case: Shown) -> None:
    out = web.render_answer(case.answer, lambda doc: case.texts[doc])
    # Every text came escaped: the only tags are this module's, and they nest properly.
    assert set(re.findall(r"<(\w+)", out)) <= {"div", "span", "a", "p", "mark"}
    root = ET.fromstring(out)
    assert all(a.get("href", "").startswith("#source-") for a in root.iter("a"))
    if case.exact is not None:
        assert out == case.exact
    assert plain(root.find("div[@class='notice-title']")) == case.title
    columns = root.findall("div[@class='sides']/div")
    assert len(columns) == len(case.sides)
    for column, side in zip(columns, case.sides, strict=True):
        assert column.get("class") == ("side disputed" if side.disputed else "side")
        value = column.find("div[@class='side-value']")
        assert value is not None and plain(value) == side.line
        assert (value.find("span[@class='side-disputed']") is not None) == side.disputed
        assert [a.get("href") for a in value.iter("a")] == [f"#source-{n}" for n in side.links]
        assert plain(column.find("div[@class='side-subject']")) == side.subject
        assert plain(column.find("div[@class='side-docs']")) == side.docs
        source = column.find("p[@class='side-source']")
        assert source is not None
        [mark] = source.iter("mark")
        before, after = source.text or "", mark.tail or ""
        assert mark.text == side.mark
        if side.context:
            assert before + side.mark + after in case.texts[side.context] and (before or after)
        else:
            assert before == after == ""


class Fixed:
    """A pipeline that gives one prepared answer."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> Answer:
        return self.answer


def test_chat_turn_marks_each_side_in_the_documents_it_reads() -> None:
    [case] = SHOWN[0].values
    assert isinstance(case, Shown)
    turn = web.chat_turn(web.Asker(Fixed(case.answer)), case.texts.__getitem__, "q", [])
    *_, (messages, sources) = turn
    marks = [m.text for m in ET.fromstring(messages[-1]["content"]).iter("mark")]
    assert marks == [QUOTE_A, QUOTE_B]
    assert 'id="source-3"' in sources


def test_earlier_answers_lose_their_links_when_a_new_question_comes() -> None:
    old = web.render_answer(one("9", Citation("d.txt", 0, 1, "x")), no_text)
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
