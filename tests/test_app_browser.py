"""app.py in headless Chromium with the real models: a cited answer with its span marked
in the sources panel, a refusal, the busy message, and document markup shown as text."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rag.prompts import REFUSAL
from tests.app_fixtures import ARTIFACTS, RunningApp, chromium, seeds_app, start_app

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
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
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


def test_a_full_queue_says_busy_instead_of_hanging(page: Any, seeds_app: RunningApp) -> None:
    from gradio_client import Client

    open_app(page, seeds_app)
    client = Client(seeds_app.url, verbose=False)
    # One slow question holds the model while quick refusals fill the queue (max_size=8).
    slow = client.submit(
        "How many engineer troops did North Korea send to Russia?", api_name="/ask"
    )
    wait_until(lambda: slow.status().code.name == "PROCESSING")
    quick = [client.submit("What is the capital of France?", api_name="/ask") for _ in range(8)]
    wait_until(lambda: all(job.status().code.name == "IN_QUEUE" for job in quick))
    page.fill("#question textarea", "What is the capital of France?")
    page.click("#ask")
    page.get_by_text("currently busy. Please try again").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app-busy.png"))
    # The question stays in the box for the retry, and the queued work all completes.
    assert page.input_value("#question textarea") == "What is the capital of France?"
    assert not slow.result(timeout=ANSWER_WAIT_MS / 1000)["abstained"]
    assert all(job.result(timeout=60)["abstained"] for job in quick)


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


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
