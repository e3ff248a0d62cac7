"""Bad input gets one line on stderr and exit code 2, never a traceback; no model loads.
Batch mode survives a bad line; text meant for a terminal cannot control it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import cli, index, models
from rag.records import ANSWER, Answer, Citation, Statement
from rag.settings import Settings
from tests.fakes import HashEmbedder, ScriptedGenerator, find

BIN = Path(sys.executable).parent


def run(cmd: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / cmd), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        | {"HF_HUB_OFFLINE": "1"}
        | env,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "error: the question is empty"),
        (["ask", "   "], "error: the question is empty"),
        (["ask", "x" * 2001], "error: the question is 2001 characters; the limit is 2000"),
        (
            ["ask", "--model", "/no/such.gguf", "Who?"],
            "error: model file /no/such.gguf does not exist",
        ),
        (["ask", "-k", "0", "Who?"], "error: -k must be between 1 and 50, not 0"),
        (
            ["ask", "-k", "abc", "Who?"],
            "error: argument -k: invalid int value: 'abc' (see ask --help)",
        ),
        (
            ["ask", "--model", "/tmp", "Who?"],
            "error: model path /tmp is a folder; pass the path of a .gguf file",
        ),
        (
            ["rag", "index", "--corpus", "/no/such/dir"],
            "error: corpus folder /no/such/dir does not exist; pass --corpus DIR",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip() == message
    assert proc.stdout == ""


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("hello")
    proc = run("ask", "--model", str(fake), "Who?")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: model file {fake} is not a GGUF file (bad header)"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, rag.cli\n"
        "try:\n    rag.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'llama_cpp', 'gradio', 'sentence_transformers',"
        " 'faiss') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAG_N_CTX": "64"}, "error: RAG_N_CTX must be between 512 and 32768 tokens, not 64"),
        ({"RAG_N_CTX": "0"}, "error: RAG_N_CTX must be between 512 and 32768 tokens, not 0"),
        ({"RAG_N_CTX": "many"}, "error: RAG_N_CTX='many' is not a valid value"),
        (
            {"RAG_MIN_SIMILARITY": "nan"},
            "error: RAG_MIN_SIMILARITY must be a number from -1 to 1, not nan",
        ),
        ({"RAG_ASK_CONFIDENCE": "1.5"}, "error: RAG_ASK_CONFIDENCE must be from 0 to 1, not 1.5"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(env: dict[str, str], message: str) -> None:
    proc = run("ask", "Who?", **env)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (2, message, "")


def test_an_error_message_cannot_control_the_terminal() -> None:
    """A path the user passed comes back in the message with its escapes made visible."""
    proc = run("rag", "index", "--corpus", "/no/\x1b]0;pwned\x07\x1b[2J")
    assert proc.returncode == 2
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: corpus folder /no/\\x1b]0;pwned\\x07\\x1b[2J does not exist; pass --corpus DIR"
    )


# --- terminal safety of answers -----------------------------------------------------------

TITLE = "\x1b]0;owned\x07"  # sets the terminal window's title
CLEAR = "\x1b[2J"  # clears the screen


def test_escape_sequences_in_documents_and_answers_print_as_visible_text() -> None:
    quote = f"The bridge opened{CLEAR} in 1990."
    c = Citation(f"{TITLE}bridge.txt", 10, 10 + len(quote), quote, heading=f"History{CLEAR}")
    answer = Answer(
        question="q",
        kind=ANSWER,
        text=f"1990{TITLE} [1].",
        statements=(Statement("1990", (c,)),),
        citations=(c,),
    )
    out = cli.format_answer(answer)
    assert "\x1b" not in out and "\x07" not in out
    assert out == (
        "1990\\x1b]0;owned\\x07 [1].\n\nSources:\n"
        "[1] \\x1b]0;owned\\x07bridge.txt, § History\\x1b[2J [10:40] "
        "“The bridge opened\\x1b[2J in 1990.”"
    )


def test_a_newline_in_a_file_name_does_not_split_a_sources_line() -> None:
    c = Citation("evil\n[2] forged.txt", 0, 5, "Hello")
    answer = Answer(
        question="q",
        kind=ANSWER,
        text="Hi [1].",
        statements=(Statement("Hi", (c,)),),
        citations=(c,),
    )
    lines = cli.format_answer(answer).splitlines()
    assert lines[-1] == "[1] evil\\x0a[2] forged.txt [0:5] “Hello”"
    assert len(lines) == 4


# --- batch mode ---------------------------------------------------------------------------


def test_a_line_that_is_not_utf8_is_reported_and_the_others_are_answered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`printf 'Q1\\n\\xff\\xfe\\nQ2\\n' | ask --json -` answers Q1 and Q2 and reports line 2."""
    real = index.OpenIndex
    emb = HashEmbedder()

    def with_fakes(s: Settings) -> index.OpenIndex:
        generator = ScriptedGenerator(find("1,000"))
        return real(s, embedder=emb, index_embedder=emb, generator=generator, log=lambda _: None)

    monkeypatch.setattr(index, "OpenIndex", with_fakes)
    monkeypatch.setattr(models, "resolve", lambda model, cache: Path("fake.gguf"))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, "1"))  # _guard sets them; restore after
    q1, q2 = "How many engineer troops were sent?", "Where was the ceremony held?"
    stdin = f"{q1}\n".encode() + b"\xff\xfe\n" + f"{q2}\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    args = ["--json", "-", "--corpus", str(settings.corpus), "--index", str(settings.index)]

    status = cli.ask_main(args)

    out, err = capsys.readouterr()
    assert status == 2
    assert [json.loads(line)["question"] for line in out.splitlines()] == [q1, q2]
    assert err == "error: line 2: the line is not valid UTF-8\n"
