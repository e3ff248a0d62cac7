from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rag.policy import RULES
from rag.settings import Settings, load_settings

if TYPE_CHECKING:
    from rag.index import OpenIndex

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

ARTICLE_A = (
    "The ceremony was held at Kigye Airport on December 12th. Kim Jong-un welcomed the unit.\n"
    "The mission began in early August and cleared ordnance in Kursk.\n"
)
ARTICLE_B = (
    "The ceremony was held in Pyongyang on Friday. About 1,000 engineer troops were sent.\n"
    "Kim acknowledged the deaths of nine personnel during operations.\n"
)


@pytest.fixture(autouse=True)
def _no_rag_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own RAG_* variables must not change what a test sees."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text(ARTICLE_A, encoding="utf-8")
    (folder / "b.md").write_text(ARTICLE_B, encoding="utf-8")
    return folder


@pytest.fixture
def settings(corpus: Path, tmp_path: Path) -> Settings:
    """Settings for the fakes. The policy is the hand-set rules, not the fitted score: a
    refit of rag/calibration.json must not change what a fake-model test proves (the
    calibrated decision has its own tests in test_decide.py and test_calibrate.py)."""
    chosen = load_settings(corpus=corpus, index=tmp_path / "index", model_cache=tmp_path / "m")
    return replace(chosen, policy=replace(RULES, min_similarity=0.05))


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh index of the seed corpus, built once per session with the real embedder."""
    from rag.index import build

    folder = tmp_path_factory.mktemp("real-index")
    build(load_settings(corpus=SEEDS, index=folder), log=lambda m: None)
    return folder


@pytest.fixture(scope="session")
def real_pipeline(real_index: Path) -> OpenIndex:
    """The real embedding model and the default GGUF, loaded once per test session."""
    from rag.index import OpenIndex

    opened = OpenIndex(load_settings(corpus=SEEDS, index=real_index), log=lambda m: None)
    opened.warm_up()
    return opened
