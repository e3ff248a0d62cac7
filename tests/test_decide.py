"""The answer/refuse decision: question checks, the early refusal, the type veto of the
hand-set rules, and the calibrated score, on hand-made signal rows."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from rag import decide
from rag.errors import InputError
from rag.policy import RULES, calibrated
from rag.records import Passage


def passage(dense: float) -> Passage:
    return Passage(1, "a.txt", 0, 1, "x", dense)


@pytest.mark.parametrize(
    ("question", "ok"),
    [("Who?", True), ("  Who   came? ", True), ("", False), ("   ", False), ("x" * 2001, False)],
)
def test_question_check(question: str, ok: bool) -> None:
    if ok:
        assert decide.check_question(question, RULES) == " ".join(question.split())
    else:
        with pytest.raises(InputError):
            decide.check_question(question, RULES)


def test_the_question_limit_is_the_policy_s() -> None:
    with pytest.raises(InputError, match="limit is 10"):
        decide.check_question("x" * 11, replace(RULES, max_question_chars=10))


@pytest.mark.parametrize(("best", "asked"), [(0.9, True), (0.25, True), (0.24, False)])
def test_model_is_asked_only_when_a_passage_is_similar_enough(best: float, asked: bool) -> None:
    assert decide.worth_asking([passage(best), passage(0.1)], RULES) is asked
    assert decide.worth_asking([], RULES) is False


@pytest.mark.parametrize(
    ("fits", "veto", "accepted"),
    [(1.0, True, True), (0.0, True, False), (0.0, False, True), (1.0, False, True)],
)
def test_type_veto_is_a_policy_choice(fits: float, veto: bool, accepted: bool) -> None:
    policy = replace(RULES, type_veto=veto)
    assert decide.accept({"fits_type": fits}, None, policy) is accepted


@pytest.mark.parametrize(
    ("row", "vetoes", "accepted"),
    [
        ({"names_unseen": 1.0, "negation_unmatched": 0.0}, ("names_unseen",), False),
        ({"names_unseen": 2.0}, ("names_unseen", "negation_unmatched"), False),
        ({"names_unseen": 0.0, "negation_unmatched": 1.0}, ("names_unseen",), True),
        ({"names_unseen": 0.0, "negation_unmatched": 1.0}, ("negation_unmatched",), False),
        ({"names_unseen": 3.0, "negation_unmatched": 1.0}, (), True),
        ({}, ("names_unseen",), True),  # a row without the signal is not vetoed
    ],
)
def test_a_veto_refuses_whenever_its_signal_is_not_zero(
    row: dict[str, float], vetoes: tuple[str, ...], accepted: bool
) -> None:
    policy = replace(RULES, type_veto=False, vetoes=vetoes)
    assert decide.accept(row, 0.99, policy) is accepted


def test_score_is_a_standardised_logistic_regression() -> None:
    policy = replace(RULES, weights=(("a", 1.0, 2.0, 3.0), ("b", 0.0, 1.0, -1.0)), intercept=0.5)
    # z = 0.5 + 3 * (2 - 1) / 2 - 1 * (1 - 0) / 1 = 1.0
    assert decide.confidence({"a": 2.0, "b": 1.0}, policy) == pytest.approx(1 / (1 + math.e**-1))
    assert decide.confidence({"a": 2.0, "b": 1.0}, RULES) is None


@pytest.mark.parametrize(("score", "accepted"), [(0.71, True), (0.7, True), (0.69, False)])
def test_the_score_must_reach_the_operating_point(score: float, accepted: bool) -> None:
    policy = replace(RULES, type_veto=False, min_confidence=0.7)
    assert decide.accept({}, score, policy) is accepted


@pytest.mark.parametrize(
    ("coverage", "threshold", "asked"),
    [(1.0, 0.5, True), (0.0, 0.5, False), (0.5, 0.5, True), (0.0, 0.0, True)],
)
def test_a_source_is_worth_a_call_when_its_fitted_chance_reaches_the_threshold(
    coverage: float, threshold: float, asked: bool
) -> None:
    # z = 4 * (coverage - 0.5): 0.5 exactly at half the question's terms.
    policy = replace(RULES, ask_weights=(("coverage", 0.5, 1.0, 4.0),), ask_confidence=threshold)
    assert decide.worth_a_call({"coverage": coverage}, policy) is asked
    assert decide.worth_a_call({"coverage": coverage}, RULES)  # no such score: always


def test_the_ask_threshold_can_be_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag.settings import load_settings

    assert load_settings().policy.ask_confidence == 0.0  # the default asks every source
    monkeypatch.setenv("RAG_ASK_CONFIDENCE", "0.42")
    assert load_settings().policy.ask_confidence == 0.42


def test_calibrated_policy_reads_the_fitted_file(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    assert calibrated(path) == RULES
    path.write_text(
        json.dumps(
            {
                "name": "fit-x",
                "intercept": -0.2,
                "min_confidence": 0.6,
                "weights": [{"signal": "a", "mean": 0.1, "scale": 2.0, "weight": 1.5}],
            }
        )
    )
    policy = calibrated(path)
    assert policy.name == "fit-x" and policy.type_veto is False
    assert policy.weights == (("a", 0.1, 2.0, 1.5),) and policy.min_confidence == 0.6
    assert (policy.ask_weights, policy.ask_confidence) == ((), 0.0)  # none fitted: ask all
    data = json.loads(path.read_text()) | {
        "ask_weights": [{"signal": "coverage", "mean": 0.5, "scale": 0.2, "weight": 1.0}],
        "ask_intercept": -1.0,
        "ask_confidence": 0.3,
    }
    path.write_text(json.dumps(data))
    policy = calibrated(path)
    assert policy.vetoes == ()  # none fitted
    path.write_text(json.dumps(data | {"vetoes": ["names_unseen"]}))
    assert calibrated(path).vetoes == ("names_unseen",)
    assert policy.ask_weights == (("coverage", 0.5, 0.2, 1.0),)
    assert (policy.ask_intercept, policy.ask_confidence) == (-1.0, 0.3)
