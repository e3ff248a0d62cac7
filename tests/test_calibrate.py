"""The calibration code on small hand-made data: the logistic fit, the utility it is
chosen by, and the operating point it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.calibrate import Row, fit, fit_logistic, fit_vetoes, rows_from, utility
from rag.decide import confidence
from rag.policy import calibrated
from rag.signals import LACKS, NAMES


def test_logistic_fit_separates_what_a_feature_separates() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + 0.1 * rng.normal(size=400) > 0).astype(float)
    weights, intercept = fit_logistic(x, y, l2=0.1)
    assert weights[0] > 3 * abs(weights[1])  # the informative feature dominates
    assert abs(intercept) < 0.5


def row(answered: bool, correct: bool, answerable: bool, f1: float = 1.0) -> Row:
    return Row({}, answered, correct, f1 if answerable else 0.0, 0.0 if answerable else 1.0)


def test_utility_counts_answers_by_f1_and_refusals_of_unanswerable_questions() -> None:
    rows = [row(True, True, True, 0.8), row(True, False, False), row(False, False, False)]
    # answer all grounded: 0.8 + 0 + 1 (recorded refusal of an unanswerable one)
    assert utility(rows, [0.9, 0.2, None], 0.0) == pytest.approx(1.8 / 3)
    # refuse below 0.5: 0.8 + 1 + 1
    assert utility(rows, [0.9, 0.2, None], 0.5) == pytest.approx(2.8 / 3)
    # refuse everything: only the two unanswerable ones score
    assert utility(rows, [0.9, 0.2, None], 1.01) == pytest.approx(2 / 3)


def write_rows(path: Path, n: int, seed: int) -> None:
    """Answers whose correctness follows `top_similarity`; half the questions unanswerable."""
    rng = np.random.default_rng(seed)
    with path.open("w") as fh:
        for i in range(n):
            good = i % 2 == 0
            signals = {name: float(rng.normal()) for name in NAMES}
            signals["top_similarity"] = float(rng.normal(1.5 if good else -1.5))
            answer = {"abstained": False, "signals": signals}
            score = {"answerable": good, "correct": good, "f1": 1.0 if good else 0.0}
            fh.write(json.dumps({"answer": answer, "score": score}) + "\n")


def test_fit_writes_a_policy_that_refuses_the_wrong_answers(tmp_path: Path) -> None:
    data, out = tmp_path / "rows.jsonl", tmp_path / "calibration.json"
    write_rows(data, 200, seed=1)
    result = fit([data], out)
    assert result["utility_at_operating_point"] > result["utility_answer_all_grounded"]
    policy = calibrated(out)
    assert policy.weights and not policy.type_veto
    good = {name: 0.0 for name in NAMES} | {"top_similarity": 2.0}
    bad = good | {"top_similarity": -2.0}
    assert confidence(good, policy) > policy.min_confidence > confidence(bad, policy)  # type: ignore[operator]
    assert len(rows_from(data)) == 200


def test_the_seed_gate_limits_how_strict_the_operating_point_may_be(tmp_path: Path) -> None:
    """With a gate, the chosen point keeps the seed bars even when the fitting data alone
    would refuse more; here every seed answer is right but scores low."""
    data, seeds, out = tmp_path / "rows.jsonl", tmp_path / "seeds.jsonl", tmp_path / "c.json"
    write_rows(data, 200, seed=2)
    with seeds.open("w") as fh:
        for _ in range(20):
            signals = {name: 0.0 for name in NAMES} | {"top_similarity": -1.0, "fits_type": 1.0}
            answer = {"abstained": False, "signals": signals}
            score = {"answerable": True, "correct": True, "f1": 1.0}
            fh.write(json.dumps({"answer": answer, "score": score}) + "\n")
    free = fit([data], out)
    gated = fit([data], out, gated=seeds)
    assert gated["min_confidence"] < free["min_confidence"]
    assert gated["utility_at_operating_point"] <= free["utility_at_operating_point"]


def write_lacking(path: Path, rows: list[tuple[bool, bool, dict[str, float]]]) -> None:
    """Answers the score gives (a high `top_similarity`), as (answerable, correct, lacks)."""
    with path.open("w") as fh:
        for answerable, correct, lacking in rows:
            signals = {name: 0.0 for name in (*NAMES, *LACKS)} | {"top_similarity": 2.0}
            answer = {"abstained": False, "signals": signals | lacking}
            score = {"answerable": answerable, "correct": correct, "f1": float(correct)}
            fh.write(json.dumps({"answer": answer, "score": score}) + "\n")


def test_fit_vetoes_keeps_a_veto_that_helps_and_spares_the_seed_suite(tmp_path: Path) -> None:
    """Both vetoes refuse ten unanswerable questions of the fitting data, but refusing on
    names_unseen would lose a right seed answer, so only negation_unmatched is chosen."""
    scored, calibration = tmp_path / "scored.jsonl", tmp_path / "calibration.json"
    write_rows(scored, 200, seed=1)
    fit([scored], calibration)
    data, seeds = tmp_path / "rows.jsonl", tmp_path / "seeds.jsonl"
    write_lacking(
        data,
        [(False, False, {"negation_unmatched": 1.0})] * 10
        + [(False, False, {"names_unseen": 1.0})] * 10
        + [(True, True, {})] * 10,
    )
    write_lacking(seeds, [(True, True, {})] * 9 + [(True, True, {"names_unseen": 1.0})])
    result = fit_vetoes([data], calibration, seeds)
    utilities = {tuple(o["vetoes"]): o["utility"] for o in result["options"]}
    assert utilities[()] < utilities[("negation_unmatched",)] < utilities[LACKS]
    assert result["chosen"] == ["negation_unmatched"]
    assert calibrated(calibration).vetoes == ("negation_unmatched",)
    assert calibrated(calibration).weights  # the score is kept


@pytest.mark.parametrize("model", ["qwen1.5b", "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"])
def test_a_model_with_its_own_fit_is_decided_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    from rag import policy as policy_module
    from rag.settings import load_settings

    data, own = tmp_path / "rows.jsonl", tmp_path / "calibration-large.json"
    write_rows(data, 200, seed=3)
    fit([data], own)
    table = {"qwen1.5b": own, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": own}
    monkeypatch.setattr(policy_module, "MODEL_CALIBRATIONS", table)
    assert load_settings(model=Path(model)).policy == calibrated(own)
    # Another model, or none, keeps the default's fit; an explicit field still wins.
    assert load_settings(model=Path("other.gguf")).policy == policy_module.DEFAULT
    assert load_settings().policy == policy_module.DEFAULT
    assert load_settings(model=Path(model), min_confidence=0.9).policy.min_confidence == 0.9


def test_fit_vetoes_refuses_no_right_answer_where_every_question_has_one(
    tmp_path: Path,
) -> None:
    """Where every question has an answer (RAMDocs), a veto that would refuse a first
    answer stating a right one is not chosen, however much it gains elsewhere."""
    scored, calibration = tmp_path / "scored.jsonl", tmp_path / "calibration.json"
    write_rows(scored, 200, seed=1)
    fit([scored], calibration)
    data, seeds, answered = (tmp_path / f"{n}.jsonl" for n in ("rows", "seeds", "ramdocs"))
    write_lacking(
        data,
        [(False, False, {"negation_unmatched": 1.0})] * 10
        + [(False, False, {"names_unseen": 1.0})] * 5,
    )
    write_lacking(seeds, [(True, True, {})] * 10)
    with answered.open("w") as fh:
        for stated, lacking in ((1, {"names_unseen": 1.0}), (0, {"negation_unmatched": 1.0})):
            signals = {name: 0.0 for name in (*NAMES, *LACKS)} | lacking
            answer = {"abstained": False, "signals": signals}
            fh.write(json.dumps({"answer": answer, "score": {"gold_stated": stated}}) + "\n")
    both = ["names_unseen", "negation_unmatched"]
    assert fit_vetoes([data], calibration, seeds)["chosen"] == both  # the smaller on a tie
    result = fit_vetoes([data], calibration, seeds, (answered,))
    refused = {tuple(o["vetoes"]): o["right_answers_refused"] for o in result["options"]}
    assert refused[("names_unseen",)] == refused[LACKS] == 1
    assert refused[()] == refused[("negation_unmatched",)] == 0
    assert result["chosen"] == ["negation_unmatched"]


def test_a_recording_made_before_the_lacks_signals_gets_them_from_its_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import calibrate
    from benchmarks.calibrate import signals_of

    corpus = tmp_path / "squad2" / "x" / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "apple.txt").write_text("AppleTalk was developed in 1985 by Apple.")
    monkeypatch.setenv("RAG_EXTERNAL", str(tmp_path))
    calibrate._corpus.cache_clear()
    quote = {"doc": "apple.txt", "start": 0, "end": 41, "quote": "AppleTalk was developed in 1985."}
    answer = {
        "question": "Who did not develop AppleTalk in 1995?",
        "abstained": False,
        "signals": {"top_similarity": 0.5},
        "citations": [quote],
        "statements": [{"text": "Apple", "citations": [0]}],
    }
    row = signals_of({"set": "squad2/x", "answer": answer})
    lacking = {"names_unseen": 1.0, "numbers_unseen": 1.0, "negation_unmatched": 1.0}
    lacking |= {"name_swapped": 0.0}
    assert row == {"top_similarity": 0.5} | lacking
    recorded = answer | {"signals": row | {"names_unseen": 0.0}}
    assert signals_of({"set": "squad2/x", "answer": recorded})["names_unseen"] == 0.0  # kept
    refused = answer | {"abstained": True, "statements": [], "citations": []}
    assert signals_of({"set": "squad2/x", "answer": refused}) == {"top_similarity": 0.5}
    calibrate._corpus.cache_clear()
