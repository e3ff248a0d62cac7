"""The questions the product must get right, with the real embedder and the real GGUF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.index import OpenIndex
from rag.prompts import REFUSAL
from tests.conftest import REPO, SEEDS

pytestmark = pytest.mark.real


def source(doc: str) -> str:
    return (SEEDS / doc).read_bytes().decode("utf-8")


@pytest.mark.parametrize(
    ("question", "expected", "sentence"),
    [
        (
            "How many engineer troops did North Korea send to Russia?",
            ("1,000",),
            "North Korea reportedly dispatched approximately 1,000 engineer troops",
        ),
        # The source says "nine"; a digit is a faithful answer too, and says so here.
        (
            "How many personnel died during the operations?",
            ("nine", "9"),
            "acknowledging the deaths of nine personnel during operations",
        ),
        (
            "What award was given to the regiment?",
            ("Order of Freedom and Independence",),
            "he awarded the Order of Freedom and Independence to the regiment",
        ),
    ],
)
def test_required_answers_cite_their_sentence(
    real_pipeline: OpenIndex,
    question: str,
    expected: tuple[str, ...],
    sentence: str,
) -> None:
    answer = real_pipeline.ask(question)
    assert not answer.abstained, answer.text
    stated = [s.text.lower() for s in answer.statements]
    assert any(e.lower() in s for e in expected for s in stated), answer.text
    assert any(sentence in c.quote for c in answer.citations), answer.citations
    for c in answer.citations:
        assert source(c.doc)[c.start : c.end] == c.quote
        assert len(c.quote) <= 300


def test_out_of_corpus_question_is_refused(real_pipeline) -> None:  # type: ignore[no-untyped-def]
    answer = real_pipeline.ask("What is the capital of France?")
    assert answer.abstained
    assert answer.text == REFUSAL
    assert answer.citations == ()


def test_conflicting_sources_are_both_shown(real_pipeline) -> None:  # type: ignore[no-untyped-def]
    answer = real_pipeline.ask("Where was the ceremony held?")
    assert answer.conflict, answer.text
    sides = " | ".join(s.text for s in answer.statements)
    assert "Kigye" in sides and "Pyongyang" in sides
    assert {c.doc for c in answer.citations} == {p.name for p in SEEDS.iterdir()}


def run_ask(*args: str, stdin: str | None = None, index: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"RAG_INDEX": str(index), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ask"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )


def test_ask_json_follows_the_contract(real_index: Path) -> None:
    proc = run_ask("--json", "How many personnel died during the operations?", index=real_index)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert {"question", "answer", "abstained", "citations", "timings"} <= set(data)
    assert set(data["timings"]) == {"retrieve_s", "generate_s", "total_s"}
    assert data["citations"] and not data["abstained"]
    for c in data["citations"]:
        assert set(c) == {"doc", "start", "end", "quote"}
        assert source(c["doc"])[c["start"] : c["end"]] == c["quote"]


def test_ask_batch_reads_stdin_and_prints_one_object_per_line(real_index: Path) -> None:
    questions = "What award was given to the regiment?\n\nWhat is the capital of France?\n"
    proc = run_ask("--json", "-", stdin=questions, index=real_index)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [a["abstained"] for a in answers] == [False, True]


def test_ask_prints_markers_and_sources(real_index: Path) -> None:
    proc = run_ask("What award was given to the regiment?", index=real_index)
    assert proc.returncode == 0, proc.stderr
    assert "[1]" in proc.stdout and "Sources:" in proc.stdout
    assert "002_7e10418466832cda.txt [" in proc.stdout


def test_corrupt_model_file_is_one_line_and_exit_2(real_index: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    proc = run_ask("--model", str(bad), "How many died?", index=real_index)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot load model")
