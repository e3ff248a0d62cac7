"""The benchmark runner's pure helpers: statistics, the synthetic corpus, recall, the
switch-point estimate and the table. Nothing here times anything."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.growth import round_down, switch_point
from benchmarks.stats import (
    Figure,
    Target,
    by_section,
    fmt,
    percentile,
    progress_text,
    recall_at_k,
    render_table,
    statistic,
)
from benchmarks.synthetic import noisy_vectors, seed_sentences, synthetic_documents
from rag.chunking import chunk_text
from rag.records import Document

SENTENCES = [
    "The ceremony was held at Kigye Airport on December 12th.",
    "Kim Jong-un welcomed the unit.",
    "The mission began in early August and cleared ordnance in Kursk.",
    "About 1,000 engineer troops were sent.",
    "Kim acknowledged the deaths of nine personnel during operations.",
]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # order of the samples does not matter
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0),
        (list(range(1, 21)), 95, 19.05),
    ],
)
def test_percentile_interpolates_like_numpy(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_an_error_and_a_skipped_figure_is_nan() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    assert math.isnan(statistic((), "median"))
    assert Figure("s", "skipped", "s", ()).ok is None


def test_targets_check_the_statistic_they_name() -> None:
    samples = (1.0, 1.0, 1.0, 9.0)
    assert Target("<=", 4.0).met(samples) is True  # median 1
    assert Target("<=", 4.0, "max").met(samples) is False
    assert Target(">=", 3.0, "mean").met(samples) is True
    assert Target(">=", 0.9).label("×") == "median ≥ 0.9 ×"


def test_synthetic_corpus_is_deterministic_and_reaches_the_chunk_count() -> None:
    a = synthetic_documents(SENTENCES, 300, seed=7, chunk_chars=400, overlap=1)
    b = synthetic_documents(SENTENCES, 300, seed=7, chunk_chars=400, overlap=1)
    c = synthetic_documents(SENTENCES, 300, seed=8, chunk_chars=400, overlap=1)
    assert a == b
    assert [d.text for d in a] != [d.text for d in c]
    chunks = [ch for d in a for ch in chunk_text(d.name, d.text, 400, 1)]
    assert len(chunks) >= 300
    # It stops at the first document that reaches the target.
    last = len(chunk_text(a[-1].name, a[-1].text, 400, 1))
    assert len(chunks) - last < 300
    assert {s for d in a for s in seed_sentences([d])} <= set(SENTENCES)


def test_a_smaller_synthetic_corpus_is_a_prefix_of_a_larger_one() -> None:
    small = synthetic_documents(SENTENCES, 50, seed=1, chunk_chars=400, overlap=1)
    large = synthetic_documents(SENTENCES, 500, seed=1, chunk_chars=400, overlap=1)
    assert large[: len(small)] == small


def test_seed_sentences_are_distinct_and_in_order() -> None:
    doc = Document("a.txt", "One. Two.\nOne. Three.\n", "x")
    assert seed_sentences([doc]) == ["One.", "Two.", "Three."]


def test_noisy_vectors_keep_the_real_ones_and_are_unit_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(10, 16)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    out = noisy_vectors(real, 35, seed=3)
    assert out.shape == (35, 16) and out.dtype == np.float32
    assert np.array_equal(out[:10], real)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out, noisy_vectors(real, 35, seed=3))
    # Each copy stays close to its source but is not a duplicate.
    cos = np.sum(out[10:20] * real, axis=1)
    assert np.all(cos > 0.9) and np.all(cos < 1.0)


@pytest.mark.parametrize(
    ("exact", "ids", "scores", "expected"),
    [
        ([0.9, 0.8, 0.7], [1, 2, 3], [0.9, 0.8, 0.7], 1.0),
        ([0.9, 0.8, 0.7], [1, 2, 9], [0.9, 0.8, 0.5], 2 / 3),
        # A tie with the k-th exact score counts, whichever id carries it.
        ([0.9, 0.8, 0.7], [1, 2, 9], [0.9, 0.8, 0.7], 1.0),
        ([0.9, 0.8, 0.7], [1, -1, -1], [0.9, -3e38, -3e38], 1 / 3),
    ],
)
def test_recall_counts_ties_with_the_kth_score(
    exact: list[float], ids: list[int], scores: list[float], expected: float
) -> None:
    got = recall_at_k(np.array(exact), np.array(ids), np.array(scores, dtype=np.float32))
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("points", "expected", "extrapolated"),
    [
        ([(1000, 1.0), (10_000, 10.0), (100_000, 100.0)], 20_000, False),
        ([(1000, 1.0), (10_000, 2.0)], 172_000, True),  # 1 ms per 9,000 chunks
        ([(1000, 30.0), (2000, 60.0)], 1000, False),
        ([(1000, 5.0), (2000, 5.0)], None, True),
    ],
)
def test_switch_point_interpolates_or_extrapolates(
    points: list[tuple[int, float]], expected: int | None, extrapolated: bool
) -> None:
    got = switch_point(points, 20.0)
    if expected is None:
        assert got.chunks is None
    else:
        assert got.chunks == pytest.approx(expected, rel=0.01)
    assert got.extrapolated is extrapolated


def test_round_down_keeps_two_significant_figures() -> None:
    assert round_down(347_912) == 340_000
    assert round_down(19_990) == 19_000
    assert round_down(42) == 42


def test_fmt() -> None:
    assert fmt(math.nan) == "—"
    assert fmt(0) == "0"
    assert fmt(0.012345) == "0.0123"
    assert fmt(3.14159) == "3.14"
    assert fmt(31.4159) == "31.4"
    assert fmt(314.159) == "314"
    assert fmt(31_415.9) == "31,416"


def test_table_shows_sections_targets_marks_and_notes() -> None:
    figures = [
        Figure("startup", "`ask --help`", "s", (0.1, 0.2, 0.3), Target("<=", 0.5)),
        Figure("startup", "`rag --help`", "s", (0.9, 1.0), Target("<=", 0.5)),
        Figure("cold ask", "peak RSS", "MiB", (900.0,), note="one run"),
        Figure("cold ask", "skipped one", "", (), note="skipped: no model"),
    ]
    table = render_table(figures, ["header line"], ["footer line"])
    lines = table.splitlines()
    assert lines[0] == "header line"
    assert lines[-1] == "footer line"
    assert "startup" in lines and "cold ask" in lines
    ask = next(line for line in lines if "`ask --help`" in line)
    assert "0.200" in ask and "median ≤ 0.5 s" in ask and ask.endswith("✓")
    rag = next(line for line in lines if "`rag --help`" in line)
    assert rag.endswith("✗")
    assert "    one run" in lines and "    skipped: skipped: no model" not in lines
    skipped = next(line for line in lines if "skipped one" in line)
    assert "—" in skipped
    # The numeric columns line up.
    assert ask.index("0.200") + len("0.200") == rag.index("0.950") + len("0.950")


def test_progress_text() -> None:
    line = progress_text("embedding", 50, 100, 10.0, width=10)
    assert line == "embedding [#####.....] 50/100 5/s eta 10s"
    assert progress_text("x", 0, 10, 0.0, width=4) == "x [....] 0/10 0/s eta —"


def test_figure_json_is_plain_data() -> None:
    data = Figure("s", "n", "ms", (1.0, 3.0), Target("<=", 2.0)).to_json()
    assert data["median"] == 2.0 and data["ok"] is True and data["target"] == "median ≤ 2 ms"
    assert Figure("s", "n", "ms", ()).to_json()["median"] is None


def test_sections_measured_in_two_phases_print_as_one_block() -> None:
    figures = [
        Figure("a", "1", "s", (1.0,)),
        Figure("b", "2", "s", (1.0,)),
        Figure("a", "3", "s", (1.0,)),
        Figure("c", "4", "s", (1.0,)),
    ]
    assert [f.name for f in by_section(figures)] == ["1", "3", "2", "4"]
