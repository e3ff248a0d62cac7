"""Whether to answer or refuse. Every number it compares with comes from the Policy."""

from __future__ import annotations

import math

from rag.errors import InputError
from rag.policy import Policy
from rag.records import Grounded, Passage


def check_question(question: str, policy: Policy) -> str:
    """The question with its whitespace collapsed; empty or over-long is an InputError."""
    q = " ".join(question.split())
    if not q:
        raise InputError("the question is empty")
    if len(q) > policy.max_question_chars:
        raise InputError(
            f"the question is {len(q)} characters; the limit is {policy.max_question_chars}"
        )
    return q


def worth_asking(shown: list[Passage], policy: Policy) -> bool:
    """Whether any passage is similar enough to the question to ask the model at all."""
    return bool(shown) and shown[0].dense >= policy.min_similarity


def answerable(grounded: list[Grounded]) -> bool:
    """Whether a statement of the draft answer survived grounding."""
    return bool(grounded)


def confidence(signals: dict[str, float], policy: Policy) -> float | None:
    """The fitted estimate that the answer is right, or None when the policy has no score."""
    if not policy.weights:
        return None
    return logistic(signals, policy.weights, policy.intercept)


def worth_a_call(features: dict[str, float], policy: Policy) -> bool:
    """Whether another source is worth asking: its fitted chance of giving a right side
    reaches `ask_confidence` (always, when the policy has no such score)."""
    if not policy.ask_weights:
        return True
    return logistic(features, policy.ask_weights, policy.ask_intercept) >= policy.ask_confidence


def logistic(
    row: dict[str, float], weights: tuple[tuple[str, float, float, float], ...], intercept: float
) -> float:
    """A standardised logistic regression: `weights` are (name, mean, scale, weight)."""
    z = intercept + sum(
        weight * (row[name] - mean) / scale for name, mean, scale, weight in weights
    )
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def accept(signals: dict[str, float], score: float | None, policy: Policy) -> bool:
    """Whether a grounded answer is given: of the right type when the policy vetoes on
    type, lacking nothing the policy's vetoes name, and scored at least `min_confidence`
    when it has a score."""
    if policy.type_veto and not signals.get("fits_type", 1.0):
        return False
    if any(signals.get(name, 0.0) for name in policy.vetoes):
        return False
    return score is None or score >= policy.min_confidence
