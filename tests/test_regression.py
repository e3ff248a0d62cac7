"""The regression gate: every case in tests/regression/cases.jsonl through the real
pipeline, failing when any metric falls below its bar in rag.evaluate.THRESHOLDS."""

from __future__ import annotations

import pytest

from rag.cases import load_cases, read_texts
from rag.evaluate import THRESHOLDS, check_thresholds, render_table, score_case, summarize
from tests.conftest import REPO, SEEDS

pytestmark = pytest.mark.real


def test_regression_suite_meets_every_threshold(real_pipeline) -> None:  # type: ignore[no-untyped-def]
    cases = load_cases(REPO / "tests" / "regression" / "cases.jsonl", SEEDS)
    texts = read_texts(SEEDS)
    results = [score_case(case, real_pipeline.ask(case.question), texts) for case in cases]
    summary = summarize(results)
    print(render_table(results))
    print("\n".join(f"{k:24s} {v:.3f}" for k, v in summary.items()))
    assert summary["citation_validity"] == 1.0
    failures = check_thresholds(summary, THRESHOLDS)
    assert not failures, "\n".join(failures)
