"""app.py in headless Chromium over a folder holding a PDF, with the real models: the
answer cites the PDF by page, and the sources panel marks the span inside the text the
index extracted. Writes artifacts/app-pdf-citation.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_fixtures import ARTIFACTS, RunningApp, chromium, start_app
from tests.test_readers import write_pdf

__all__ = ["chromium"]

pytestmark = pytest.mark.browser

FINAL = "#chat .answer:not(.pending):not(.streaming), #chat .notice"
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
    assert Path(ARTIFACTS / "app-pdf-citation.png").stat().st_size > 0
