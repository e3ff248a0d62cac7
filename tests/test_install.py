"""Installs anywhere: `pip install .` outside the repository ships every subpackage and the
calibration data, keeps the index and model cache in per-user folders, and asks for a
corpus instead of assuming seeds/. And the first-run set-up shows its progress."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from rag import models
from rag.errors import ModelError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source installed (not editable) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    shutil.copytree(REPO / "rag", src / "rag", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    # The fitted policy may not be committed yet; a stand-in proves package data ships.
    calibration = src / "rag" / "calibration.json"
    if not calibration.exists():
        stand_in = {"name": "stand-in", "weights": [], "intercept": 0.0, "min_confidence": 0.0}
        calibration.write_text(json.dumps(stand_in))
    target = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(src)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return target


def run(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command against the installed copy only: no checkout on the path, a fresh home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {
        "PYTHONPATH": str(site),
        "HOME": str(cwd / "home"),
        "XDG_CACHE_HOME": str(cwd / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_ships_its_subpackages_and_data(site: Path) -> None:
    assert (site / "rag" / "readers" / "pdf.py").is_file()
    assert (site / "rag" / "calibration.json").is_file()
    assert not (site / "tests").exists() and not (site / "benchmarks").exists()
    assert {p.name for p in (site / "bin").iterdir()} >= {"ask", "rag"}


CHECK_DEFAULTS = """
import rag.settings as s
from rag.errors import InputError
from pathlib import Path
cache = Path.cwd() / "cache" / "rag"
assert Path(s.__file__).is_relative_to(Path({site!r})), s.__file__
assert not s.CHECKOUT
assert s.Settings().model_cache == cache / "models"
import json, rag.policy
shipped = json.loads(rag.policy.CALIBRATION.read_text())
assert s.Settings().policy.name == shipped["name"], "the shipped calibration was not read"
try:
    s.load_settings()
except InputError as exc:
    print(exc)
else:
    raise SystemExit("a corpus was not required")
a = s.load_settings(corpus=Path("docs"))
b = s.load_settings(corpus=Path("other") / "docs")
assert a.index.parent == b.index.parent == cache / "indexes", a.index
assert a.index.name.startswith("docs-") and a.index != b.index
assert s.load_settings(corpus=Path("docs"), index=Path("mine")).index == Path("mine")
"""


def test_outside_a_checkout_the_index_and_models_go_to_per_user_folders(
    site: Path, tmp_path: Path
) -> None:
    proc = run(site, sys.executable, "-c", CHECK_DEFAULTS.format(site=str(site)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "no corpus folder given, and this install has no seeds/ to default to: "
        "pass --corpus DIR or set RAG_CORPUS"
    )


def test_the_installed_commands_work_and_ask_for_a_corpus(site: Path, tmp_path: Path) -> None:
    for command in ("ask", "rag"):
        proc = run(site, str(site / "bin" / command), "--help", cwd=tmp_path)
        assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
    proc = run(site, str(site / "bin" / "rag"), "index", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no corpus folder given")


INDEX_WITH_A_FAKE = """
import numpy as np
from pathlib import Path
from rag.index import build
from rag.settings import load_settings

class Ones:
    def embed(self, texts):
        out = np.ones((len(texts), 384), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

print(build(load_settings(corpus=Path("docs")), Ones(), log=lambda m: None).manifest["documents"])
"""


def test_an_installed_rag_indexes_into_the_user_cache_and_reads_texts_back(
    site: Path, tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.md").write_text("# Note\nThe survey began in 1911.\n")
    proc = run(site, sys.executable, "-c", INDEX_WITH_A_FAKE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['note.md']"
    [index] = (tmp_path / "cache" / "rag" / "indexes").iterdir()
    assert (index / "manifest.json").is_file()
    proc = run(site, str(site / "bin" / "rag"), "text", "note.md", "--corpus", "docs", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "# Note\nThe survey began in 1911.\n"), proc.stderr


# The first model assembly shows progress ---------------------------------------------------


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Three small stand-in parts of the default model, with their checksum."""
    blobs = [os.urandom(3 << 20), os.urandom(2 << 20), b"end"]
    paths = []
    for n, blob in enumerate(blobs):
        paths.append(tmp_path / f"part{n}.bin")
        paths[-1].write_bytes(blob)
    whole = b"".join(blobs)
    stand_in = models.SplitModel(
        models.QWEN.file,
        hashlib.sha256(whole).hexdigest(),
        tuple((str(p), "") for p in paths),
        "stand-in parts",
    )
    monkeypatch.setattr(models, "QWEN", stand_in)
    monkeypatch.setattr(models, "_packaged", lambda package, name: Path(package))
    return whole


def test_the_first_model_assembly_says_what_it_does_and_how_far_it_is(
    parts: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = models.assemble(models.QWEN, tmp_path / "cache")
    assert target.read_bytes() == parts
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"assembling the model {target.name} into {target} (once; 5 MB)"
    assert lines[-1] == "assembling and checking the model: 5 MB/5 MB (100%)"
    models.assemble(models.QWEN, tmp_path / "cache")  # verified once: silent after that
    assert capsys.readouterr().err == ""


def test_on_a_terminal_the_assembly_draws_a_bar(
    parts: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(models, "_terminal", lambda: True)
    models.assemble(models.QWEN, tmp_path / "cache")
    err = capsys.readouterr().err
    assert "assembling and checking the model: 100%" in err
    assert "MB/s" in err or "B/s" in err  # tqdm's rate


# The default model is converted to q8_0 once ---------------------------------------------


@pytest.fixture
def small_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> models.SplitModel:
    """SmolLM2-135M (an installed candidate) standing in for the default model's parts."""
    path = models._packaged(*models.SMOLLM2)
    monkeypatch.setattr(models, "_packaged", lambda package, name: Path(package))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return models.SplitModel("small.gguf", sha, ((str(path), ""),), "stand-in")


def test_the_conversion_is_the_same_bytes_every_time_and_is_done_once(
    small_source: models.SplitModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = models.Converted("small-q8.gguf", "0" * 64, small_source, "Q8_0")
    with pytest.raises(ModelError, match=r"gave SHA-256 [0-9a-f]{64}, expected 0{64}") as err:
        models.convert(wrong, tmp_path / "one")
    assert not [p.name for p in (tmp_path / "one").iterdir() if "q8" in p.name]  # none kept
    right = replace(wrong, sha256=str(err.value).split("SHA-256 ")[1][:64])
    target = models.convert(right, tmp_path / "two")  # converted again, elsewhere: same bytes
    assert target.read_bytes()[:4] == b"GGUF"
    said = capsys.readouterr().err
    assert f"converting the model to Q8_0 into {target} (once; a few seconds)" in said
    assert "q8_0" not in said  # llama.cpp's line per tensor is not shown
    done = target.stat().st_mtime_ns
    assert models.convert(right, tmp_path / "two") == target
    assert (target.stat().st_mtime_ns, capsys.readouterr().err) == (done, "")


def test_run_sh_checks_the_stamp_of_the_default_model() -> None:
    """run.sh skips the model stage by the default model's .verified stamp, named there
    without starting Python; it must be the stamp rag.models writes."""
    from rag.models import QWEN_Q8

    stamp = Path(QWEN_Q8.file).with_suffix(".verified").name
    run_sh = (Path(__file__).resolve().parent.parent / "run.sh").read_text(encoding="utf-8")
    assert f"models/{stamp}" in run_sh
