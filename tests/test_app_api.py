"""The app's `ask` API endpoint through gradio_client. With the real models: structured
citations whose offsets hold in the source files, refusals, and input errors. With a
held fake model (fast): questions wait in line up to the cap, and a rejected question is
one line in the server log, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from rag.prompts import REFUSAL
from tests.app_fixtures import REPO, SEEDS, RunningApp, held_app, seeds_app, wait_until

# The fixture is shared with test_app_browser; listing it marks the import as used.
__all__ = ["seeds_app"]


@pytest.fixture(scope="module")
def client(seeds_app: RunningApp) -> Any:
    from gradio_client import Client

    return Client(seeds_app.url, verbose=False)


@pytest.mark.real
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


@pytest.mark.real
def test_off_corpus_question_is_refused(client: Any) -> None:
    result = client.predict("What is the capital of France?", api_name="/ask")
    assert result["abstained"] is True
    assert result["answer"] == REFUSAL and result["citations"] == []


@pytest.mark.real
def test_empty_question_is_an_error_that_says_why(client: Any, seeds_app: RunningApp) -> None:
    with pytest.raises(Exception, match="empty"):
        client.predict("   ", api_name="/ask")
    # The server log says it in one line, without a traceback.
    log = seeds_app.log_tail(20_000)
    assert "question rejected: the question is empty" in log and "Traceback" not in log


# --- the queue, with a held model --------------------------------------------------------


def test_questions_wait_in_line_and_are_answered_in_order() -> None:
    from gradio_client import Client

    with held_app(max_queue=2) as app:
        client = Client(app.url, verbose=False)
        first = client.submit("one?", api_name="/ask")
        wait_until(lambda: app.model.asked == ["one?"])
        waiting = []
        for question in ("two?", "three?"):  # one after the other, so the order is known
            waiting.append(client.submit(question, api_name="/ask"))
            wait_until(lambda: waiting[-1].status().code.name == "IN_QUEUE")
        # Each is told its place in line (0 = next).
        assert [j.status().rank for j in waiting] == [0, 1]
        app.model.release(3)
        results = [job.result(timeout=30) for job in (first, *waiting)]
        assert [r["question"] for r in results] == ["one?", "two?", "three?"]
        assert app.model.asked == ["one?", "two?", "three?"] and app.log == []


def test_past_the_cap_a_question_is_turned_away_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    from gradio_client import Client
    from gradio_client.utils import QueueError

    with held_app(max_queue=1) as app:
        client = Client(app.url, verbose=False)
        running = client.submit("one?", api_name="/ask")
        wait_until(lambda: app.model.asked == ["one?"])
        waiting = client.submit("two?", api_name="/ask")
        wait_until(lambda: waiting.status().code.name == "IN_QUEUE")
        with pytest.raises(QueueError, match="Queue is full"):
            client.submit("three?", api_name="/ask").result(timeout=30)
        app.model.release(2)
        assert running.result(timeout=30)["abstained"] and waiting.result(timeout=30)
        assert app.model.asked == ["one?", "two?"]
    assert "Traceback" not in "".join(capfd.readouterr())


def test_a_rejected_question_is_one_log_line_not_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from gradio_client import Client

    with held_app(max_queue=1) as app:
        client = Client(app.url, verbose=False)
        with pytest.raises(Exception, match="the question is empty"):
            client.predict("   ", api_name="/ask")
        assert app.log == ["question rejected: the question is empty"]
    assert "Traceback" not in "".join(capfd.readouterr())


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_queue_cap_below_one_is_a_usage_error(value: str) -> None:
    """gradio's max_size=0 would turn away every question, even with nobody waiting."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--max-queue", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--max-queue: must be a whole number of at least 1" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
