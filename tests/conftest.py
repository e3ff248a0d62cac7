from __future__ import annotations

from pathlib import Path

import pytest

from rag.settings import Settings, load_settings

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


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text(ARTICLE_A, encoding="utf-8")
    (folder / "b.md").write_text(ARTICLE_B, encoding="utf-8")
    return folder


@pytest.fixture
def settings(corpus: Path, tmp_path: Path) -> Settings:
    return load_settings(corpus=corpus, index=tmp_path / "index", min_similarity=0.05)
