"""The app's `ask` API endpoint through gradio_client, with the real models: structured
citations whose offsets hold in the source files, refusals, and input errors."""

from __future__ import annotations

from typing import Any

import pytest

from rag.prompts import REFUSAL
from tests.app_fixtures import SEEDS, RunningApp, seeds_app

# The fixture is shared with test_app_browser; listing it marks the import as used.
__all__ = ["seeds_app"]

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def client(seeds_app: RunningApp) -> Any:
    from gradio_client import Client

    return Client(seeds_app.url, verbose=False)


def test_answer_comes_back_with_exact_structured_citations(
    client: Any, seeds_app: RunningApp
) -> None:
    result = client.predict("How many personnel died during the operations?", api_name="/ask")
    seeds_app.answered("api")
    assert {"answer", "abstained", "conflict", "citations"} <= set(result)
    assert result["abstained"] is False and result["conflict"] is False
    assert result["citations"], result
    for n, c in enumerate(result["citations"], 1):
        assert set(c) == {"doc", "start", "end", "quote"}
        assert isinstance(c["start"], int) and isinstance(c["end"], int)
        text = (SEEDS / c["doc"]).read_bytes().decode("utf-8")
        assert text[c["start"] : c["end"]] == c["quote"]
        assert f"[{n}]" in result["answer"]
    assert any("deaths of nine personnel" in c["quote"] for c in result["citations"])
    cited = {n for statement in result["statements"] for n in statement["citations"]}
    assert cited == set(range(len(result["citations"])))


def test_off_corpus_question_is_refused(client: Any) -> None:
    result = client.predict("What is the capital of France?", api_name="/ask")
    assert result["abstained"] is True
    assert result["answer"] == REFUSAL and result["citations"] == []


def test_empty_question_is_an_error_that_says_why(client: Any) -> None:
    with pytest.raises(Exception, match="empty"):
        client.predict("   ", api_name="/ask")
