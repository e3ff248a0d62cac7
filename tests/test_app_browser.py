"""app.py in headless Chromium. With the real models: a cited answer with its span marked
in the sources panel, a refusal, and document markup shown as text. With a held fake model
(so the order of events is the test's, not a race with the model's speed): a question
waits in line showing its place, only past the cap is one told busy, and closing a tab
drops its waiting question and stops its running one. Over a folder holding a PDF, a
citation shows its page (artifacts/app-pdf-citation.png)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rag.prompts import REFUSAL
from tests.app_fixtures import (
    ARTIFACTS,
    RunningApp,
    chromium,
    held_app,
    seeds_app,
    start_app,
    wait_until,
)
from tests.test_readers import write_pdf

# Fixtures shared with test_app_api; listing them marks the imports as used.
__all__ = ["chromium", "seeds_app"]

pytestmark = pytest.mark.browser

ANSWER_WAIT_MS = 240_000
FINAL = "#chat .answer:not(.pending):not(.streaming), #chat .notice"
WATCH_STREAMING = """() => {
  window.sawStreaming = false;
  new MutationObserver(() => {
    if (document.querySelector('#chat .answer.streaming')) window.sawStreaming = true;
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
BRIDGE = (
    "The Harbor Bridge in Eastport was opened in 1990 <img src=x onerror=alert(1)> after "
    "six years of construction.\n"
    "Engineers tested it for months ${alert(4)} {{alert 5}}. <script>alert(2)</script> "
    "The bridge is 1,200 metres "
    "long and carries four lanes of traffic across the Eastport river.\n"
    "A toll was charged until 2005, when the city bought out the operator.\n"
)


@pytest.fixture
def dialogs() -> list[str]:
    """Messages of every alert/confirm the page opened; injected script would add one."""
    return []


@pytest.fixture
def page(chromium: Any, dialogs: list[str]) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    yield page
    context.close()


def ask(page: Any, question: str) -> Any:
    """Type a question, send it, and return the locator of its final assistant message."""
    done = page.locator(FINAL).count()
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n",
        arg=[FINAL, done],
        timeout=ANSWER_WAIT_MS,
    )
    return page.locator(FINAL).nth(done)


def open_app(page: Any, app: RunningApp) -> None:
    page.goto(app.url)
    page.wait_for_selector("#question textarea")
    page.evaluate(WATCH_STREAMING)


def test_answer_cites_the_marked_sentence_then_refuses(
    page: Any, seeds_app: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    open_app(page, seeds_app)
    answer = ask(page, "How many personnel died during the operations?")
    seeds_app.answered("browser")
    text = answer.inner_text()
    assert re.search(r"\b(nine|9)\b", text, re.I), text
    assert page.evaluate("window.sawStreaming"), "no partial answer was streamed"

    marks = page.locator("#sources mark").all_inner_texts()
    deaths = [m for m in marks if "acknowledging the deaths of nine personnel" in m]
    assert deaths, marks
    # The marker of that source brings it into view.
    section = page.locator("#sources section.source", has_text=deaths[0])
    source_id = section.get_attribute("id")
    assert source_id and re.fullmatch(r"source-\d+", source_id)
    assert re.search(r"\[\d+:\d+\]", section.locator(".source-range").inner_text())
    answer.locator(f'a.cite[href="#{source_id}"]').click()
    page.wait_for_function("id => location.hash === '#' + id", arg=source_id)
    assert section.evaluate(
        "el => { const r = el.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0 }"
    )
    page.screenshot(path=str(ARTIFACTS / "app-answer.png"))

    refusal = ask(page, "What is the capital of France?")
    assert "refusal" in (refusal.get_attribute("class") or "")
    assert REFUSAL in refusal.inner_text()
    assert page.locator("#sources mark").count() == 0
    page.screenshot(path=str(ARTIFACTS / "app-refusal.png"))
    with capsys.disabled():
        print(
            f"\napp.py served the page {seeds_app.ready_s:.1f} s after start; first answer "
            f"({seeds_app.first_answer_by}) {seeds_app.first_answer_s:.1f} s after start"
        )


def test_sides_stand_in_columns_each_with_its_marked_source(
    page: Any, seeds_app: RunningApp
) -> None:
    """The seed articles disagree on where the ceremony was held (a regression case of
    kind conflict): the answer shows each side in its own column, side by side, each with
    the span that gives it marked inside its own document's text."""
    ARTIFACTS.mkdir(exist_ok=True)
    open_app(page, seeds_app)
    answer = ask(page, "Where was the ceremony held?")
    seeds_app.answered("browser")
    assert "The sources differ" in answer.locator(".notice-title").inner_text()
    sides = answer.locator(".side")
    assert sides.count() >= 2, answer.inner_html()
    boxes = [sides.nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and boxes[1]
    # Next to each other: the same row, the second to the right of the first.
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 5 and boxes[1]["x"] > boxes[0]["x"], boxes
    values = [sides.nth(i).locator(".side-value").inner_text() for i in range(sides.count())]
    assert any("Pyongyang" in v for v in values) and any("Kigye" in v for v in values), values
    for i in range(sides.count()):
        assert sides.nth(i).locator("mark").count() == 1, sides.nth(i).inner_html()
    page.screenshot(path=str(ARTIFACTS / "app-sides.png"))


QUEUE_STATUS = '#chat [data-testid="status-tracker"] .progress-text'
BUSY_TOAST = "currently busy. Please try again"


@pytest.fixture
def new_tab(chromium: Any) -> Iterator[Callable[[str], Any]]:
    """Opens a page in its own browser context: its own gradio session, like another
    user. Every context still open is closed at the end."""
    contexts: list[Any] = []

    def open_tab(url: str) -> Any:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.wait_for_selector("#question textarea")
        return page

    yield open_tab
    for context in contexts:
        context.close()  # a no-op for the ones a test closed itself


def send(page: Any, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#ask")


def queue_status(page: Any, text: str) -> None:
    """Wait until the chat's status line shows `text` (gradio's "queue: 2/3 | 4.1s")."""
    page.locator(QUEUE_STATUS, has_text=text).wait_for(timeout=30_000)


def test_a_second_question_waits_in_line_and_only_past_the_cap_is_busy(
    new_tab: Callable[[str], Any],
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with held_app(max_queue=1) as app:
        first, second, third = (new_tab(app.url) for _ in range(3))
        send(first, "one?")
        wait_until(lambda: app.model.asked == ["one?"])
        first.locator("#chat .answer.streaming").wait_for(timeout=30_000)

        send(second, "two?")
        queue_status(second, "queue: 1/1")
        second.screenshot(path=str(ARTIFACTS / "app-queued.png"))
        # Past the cap (one waiting), and only then, a question is told busy.
        send(third, "three?")
        third.get_by_text(BUSY_TOAST).wait_for(timeout=30_000)
        assert third.input_value("#question textarea") == "three?"  # kept for the retry
        time.sleep(0.5)  # the toast slides in
        third.screenshot(path=str(ARTIFACTS / "app-busy.png"))
        assert second.get_by_text(BUSY_TOAST).count() == 0

        app.model.release()
        first.locator("#chat .notice.refusal").wait_for(timeout=30_000)
        wait_until(lambda: app.model.asked == ["one?", "two?"])
        second.locator("#chat .answer.streaming").wait_for(timeout=30_000)
        app.model.release()
        second.locator("#chat .notice.refusal").wait_for(timeout=30_000)
        assert app.model.asked == ["one?", "two?"] and app.model.stopped == []


def test_closing_a_tab_drops_its_waiting_question_and_stops_its_running_one(
    new_tab: Callable[[str], Any],
) -> None:
    with held_app(max_queue=2) as app:
        running, waiting, last = (new_tab(app.url) for _ in range(3))
        send(running, "one?")
        wait_until(lambda: app.model.asked == ["one?"])
        send(waiting, "two?")
        queue_status(waiting, "queue: 1/1")
        send(last, "three?")
        queue_status(last, "queue: 2/2")

        waiting.context.close()
        queue_status(last, "queue: 1/1")  # moved up: the closed tab's question is gone
        running.context.close()
        # The model stops mid-answer and the next question in line gets it.
        wait_until(lambda: app.model.stopped == ["one?"])
        wait_until(lambda: app.model.asked == ["one?", "three?"])
        app.model.release()
        last.locator("#chat .notice.refusal").wait_for(timeout=30_000)
        assert app.model.asked == ["one?", "three?"]


@pytest.fixture(scope="module")
def bridge_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """A second app.py whose only document carries HTML that must stay text."""
    tmp = tmp_path_factory.mktemp("bridge-app")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    app = start_app(corpus, tmp / "index", tmp / "app.log")
    yield app
    app.stop()


def test_document_markup_is_shown_as_text(
    page: Any, dialogs: list[str], bridge_app: RunningApp
) -> None:
    open_app(page, bridge_app)
    answer = ask(page, "When was the Harbor Bridge opened?")
    assert "1990" in answer.inner_text()
    sources = page.locator("#sources").inner_text()
    assert "<img src=x onerror=alert(1)>" in sources
    assert "<script>alert(2)</script>" in sources
    # Nor do gradio's HTML templates evaluate document text (JS `${}` or Handlebars).
    assert "${alert(4)} {{alert 5}}" in sources
    # The user's own markup is text too.
    ask(page, "<img src=x onerror=alert(3)> what does the bridge carry?")
    assert page.locator("#chat").get_by_text("<img src=x onerror=alert(3)>").count() == 1
    time.sleep(1.0)  # give any injected handler time to fire
    page.screenshot(path=str(ARTIFACTS / "app-markup-as-text.png"))
    assert dialogs == []
    assert page.locator('img[src="x"], [onerror]').count() == 0
    assert not page.evaluate("[...document.scripts].some(s => s.textContent.includes('alert('))")


# --- a PDF citation ------------------------------------------------------------------------

SENTENCE = "The Eastport lighthouse was built in 1872 by the harbour board."


@pytest.fixture(scope="module")
def pdf_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("pdf-app")
    corpus = tmp / "reports"
    corpus.mkdir()
    write_pdf(
        corpus / "harbour-report.pdf",
        [
            ["Annual report of the Eastport harbour board.", "Shipping grew in every month."],
            [SENTENCE, "It stands forty metres above the water."],
        ],
    )
    (corpus / "notes.md").write_text("# Notes\n\nThe ferry runs every hour.\n", encoding="utf-8")
    app = start_app(corpus, tmp / "index", tmp / "app.log")
    yield app
    app.stop()


def test_a_pdf_citation_shows_its_page_and_the_marked_span(
    chromium: Any, pdf_app: RunningApp
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(pdf_app.url, wait_until="load")
    page.wait_for_selector("#question textarea")
    page.fill("#question textarea", "When was the Eastport lighthouse built?")
    page.click("#ask")
    page.wait_for_selector(FINAL, timeout=240_000)
    answer = page.locator(FINAL).first.inner_text()
    assert "1872" in answer, answer
    section = page.locator("#sources section.source").first
    assert "harbour-report.pdf" in section.inner_text()
    assert "p. 2" in section.locator(".source-page").inner_text()
    assert SENTENCE in section.locator("mark").inner_text()
    page.screenshot(path=str(ARTIFACTS / "app-pdf-citation.png"))
    assert (ARTIFACTS / "app-pdf-citation.png").stat().st_size > 0
