"""Bad input gets one line on stderr and exit code 2, never a traceback; no model loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run(cmd: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / cmd), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
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
