"""Benchmarks that need a fresh process: `--help` start-up, cold `ask`, and peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.stats import Figure, Target

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
# Modules that must not load on the `--help` path (STYLE habit 7); the last three are
# reported for information.
FORBIDDEN_ON_HELP = ("torch", "llama_cpp", "gradio")
# The numpy MiniLM exists so that answering one question never imports torch.
FORBIDDEN_ON_ASK = ("torch", "sentence_transformers", "gradio")
WATCHED = ("torch", "llama_cpp", "gradio", "sentence_transformers", "transformers", "faiss")
HELP_BUDGET_S = 0.5
COLD_ASK_BUDGET_S = 4.0
RSS_BUDGET_MIB = 1536.0

# Runs a rag.cli entry point in this interpreter, then says which watched modules it loaded.
PROBE = f"""
import contextlib, io, json, sys
from rag import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = getattr(cli, sys.argv[1])(sys.argv[2:])
    except SystemExit as exc:
        code = exc.code
loaded = sorted(m for m in {WATCHED!r} if m in sys.modules)
print(json.dumps({{"code": code, "modules": loaded}}))
"""


@dataclass(frozen=True)
class Child:
    seconds: float
    max_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_child(argv: list[str], env: dict[str, str]) -> Child:
    """Run a command to exit; wall time from spawn to exit, and that child's own peak RSS.

    os.wait4 reports the rusage of exactly this child, where RUSAGE_CHILDREN would be the
    maximum over every child this process ever waited for."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=REPO
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            seconds=seconds,
            # Linux reports ru_maxrss in KiB.
            max_rss_mib=usage.ru_maxrss / 1024,
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def probe_modules(entry: str, args: list[str], env: dict[str, str]) -> tuple[Child, list[str]]:
    """Run `rag.cli.<entry>(args)` in a fresh interpreter; the modules in WATCHED it loaded."""
    child = run_child([str(BIN / "python"), "-c", PROBE, entry, *args], env)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"module probe for {entry} {args} failed: {child.stderr.strip()[-500:]}")
    report = json.loads(lines[-1])
    return child, list(report["modules"])


def measure_startup(repeats: int, env: dict[str, str]) -> list[Figure]:
    """`ask --help` and `rag --help` in fresh processes, and what they import."""
    figures = []
    for command, entry in (("ask", "ask_main"), ("rag", "main")):
        times = []
        for _ in range(repeats):
            child = run_child([str(BIN / command), "--help"], env)
            if child.returncode != 0:
                raise RuntimeError(f"{command} --help exited {child.returncode}: {child.stderr}")
            times.append(child.seconds)
        figures.append(
            Figure("startup", f"`{command} --help`", "s", tuple(times), Target("<=", HELP_BUDGET_S))
        )
        _, modules = probe_modules(entry, ["--help"], env)
        bad = [m for m in modules if m in FORBIDDEN_ON_HELP]
        figures.append(_forbidden(f"`{command} --help`", FORBIDDEN_ON_HELP, bad, modules))
    return figures


def measure_cold_ask(question: str, repeats: int, env: dict[str, str]) -> list[Figure]:
    """`ask --json QUESTION` from spawn to exit, the index already built; and its peak RSS."""
    # The first run is not timed: it warms the page cache (and assembles the default GGUF
    # if it was never assembled), and it reports what an answering process imports.
    first, modules = probe_modules("ask_main", ["--json", question], env)
    bad = [m for m in modules if m in FORBIDDEN_ON_ASK]
    times, rss = [], []
    for _ in range(repeats):
        child = run_child([str(BIN / "ask"), "--json", question], env)
        if child.returncode != 0:
            raise RuntimeError(f"ask exited {child.returncode}: {child.stderr.strip()[-500:]}")
        json.loads(child.stdout.strip().splitlines()[-1])
        times.append(child.seconds)
        rss.append(child.max_rss_mib)
    return [
        Figure("cold ask", "first `ask` after the build (untimed warm-up)", "s", (first.seconds,)),
        Figure(
            "cold ask",
            "cold `ask --json` in a fresh process",
            "s",
            tuple(times),
            Target("<=", COLD_ASK_BUDGET_S),
        ),
        Figure(
            "cold ask", "peak RSS of `ask`", "MiB", tuple(rss), Target("<=", RSS_BUDGET_MIB, "max")
        ),
        _forbidden("`ask`", FORBIDDEN_ON_ASK, bad, modules),
    ]


def measure_cli_index(env: dict[str, str]) -> list[Figure]:
    """`rag index` from a fresh process into the index folder in `env`; later benchmarks
    use the index it writes."""
    child = run_child([str(BIN / "rag"), "index"], env)
    if child.returncode != 0:
        raise RuntimeError(f"rag index exited {child.returncode}: {child.stderr.strip()[-500:]}")
    section = "index build (seed corpus)"
    return [
        Figure(
            section, "`rag index` in a fresh process (torch import included)", "s", (child.seconds,)
        ),
        Figure(section, "peak RSS of `rag index`", "MiB", (child.max_rss_mib,)),
    ]


def _forbidden(path: str, forbidden: tuple[str, ...], bad: list[str], loaded: list[str]) -> Figure:
    return Figure(
        "startup" if "--help" in path else "cold ask",
        f"{'/'.join(forbidden)} imported by {path}",
        "modules",
        (float(len(bad)),),
        Target("<=", 0, "max"),
        f"loaded: {', '.join(loaded) or 'none of ' + ', '.join(WATCHED)}",
    )
