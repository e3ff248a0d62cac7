"""Fixtures that run app.py for real (as a subprocess, with the default models) or with a
held fake model (in this process, for the queue), and drive it with Debian's Chromium.
Test modules import what they use from here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rag.decide import check_question
from rag.policy import DEFAULT
from rag.prompts import REFUSAL
from rag.records import REFUSAL as REFUSED
from rag.records import Answer

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
ARTIFACTS = REPO / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A first start may build the index and assemble the GGUF, on two shared cores.
START_TIMEOUT_S = 300.0


@dataclass
class RunningApp:
    """One app.py process; `started` is time.monotonic() just before it was spawned."""

    url: str
    process: subprocess.Popen[bytes]
    started: float
    log: Path
    ready_s: float = 0.0
    first_answer_s: float | None = None
    first_answer_by: str = ""
    notes: list[str] = field(default_factory=list)

    def answered(self, by: str) -> None:
        """Record the time from process start to the first answer anyone got."""
        if self.first_answer_s is None:
            self.first_answer_s = time.monotonic() - self.started
            self.first_answer_by = by

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(
    corpus: Path, index: Path, log: Path, *args: str, timeout: float = START_TIMEOUT_S
) -> RunningApp:
    """Spawn app.py on a free port and wait until it serves the page."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_HOST", "RAG_PORT")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(REPO / "app.py"),
        "--port",
        str(port),
        "--corpus",
        str(corpus),
        "--index",
        str(index),
        *args,
    ]
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    app = RunningApp(url=f"http://127.0.0.1:{port}/", process=process, started=started, log=log)
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url, timeout=5) as response:
                if response.status == 200:
                    app.ready_s = time.monotonic() - started
                    return app
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    app.stop()
    raise RuntimeError(f"app.py did not serve {app.url} within {timeout:.0f} s:\n{app.log_tail()}")


# One seeds app per test session, shared by every module that imports the fixture (each
# import registers its own fixture, so the instance is cached here rather than by pytest).
_SHARED: dict[str, RunningApp] = {}


@pytest.fixture(scope="session")
def seeds_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """app.py on seeds/ with the real default models and a fresh index in a temp folder."""
    app = _SHARED.get("seeds")
    if app is None or app.process.poll() is not None:
        tmp = tmp_path_factory.mktemp("seeds-app")
        app = start_app(SEEDS, tmp / "index", tmp / "app.log")
        _SHARED["seeds"] = app
    yield app
    app.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium through playwright (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; `./run.sh test` installs it (apt-get chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# --- the page with a held model, in this process -----------------------------------------


class HeldModel:
    """Stands in for the pipeline: each question streams a token every 50 ms, as llama.cpp
    does, and is answered (refused) only when the test lets one through with `release()`.
    It stops when its `on_text` raises, as LlamaGenerator.complete does, and records that;
    so the queue can be tested in order, with no race against a real model's speed."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.stopped: list[str] = []
        self._go = threading.Semaphore(0)

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._go.release()

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> Answer:
        q = check_question(question, DEFAULT)
        self.asked.append(q)
        try:
            if on_text:
                on_text('{"evidence": [], "answer": "Held')
            while not self._go.acquire(timeout=0.05):
                if on_text:
                    on_text(".")
        except BaseException:
            self.stopped.append(q)
            raise
        return Answer(question=q, kind=REFUSED, text=REFUSAL)


@dataclass
class HeldApp:
    """app.build() served in this process over a HeldModel; `log` holds the app's lines."""

    url: str
    model: HeldModel
    log: list[str]


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def held_app(max_queue: int) -> Iterator[HeldApp]:
    """The chat page and API of app.py, with at most `max_queue` questions waiting."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # app.py is a script at the top, not in the package
    import app
    from rag.web import Asker

    model = HeldModel()
    log: list[str] = []
    demo = app.build(Asker(model), lambda doc: "", max_queue=max_queue, log=log.append)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        share=False,
        ssr_mode=False,
        css=app.CSS,
        quiet=True,
        prevent_thread_lock=True,
    )
    try:
        yield HeldApp(url=f"http://127.0.0.1:{port}/", model=model, log=log)
    finally:
        model.release(100)  # let every worker thread end before the server goes
        demo.close()
