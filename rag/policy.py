"""Every threshold and cut-off the product decides with, in one frozen object.

Settings say where things are and which model runs; the Policy says when to answer, when
to refuse and when sources conflict. Reports print the policy they ran with, so a figure
can always be traced to the numbers that produced it. Nothing here reads the environment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

# Written by benchmarks/calibrate.py; committed, so the shipped decision is reproducible.
CALIBRATION = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Policy:
    name: str = "rules-v1"
    # Questions longer than this are refused as input errors (the chat box has the same cap).
    max_question_chars: int = 2000
    # Below this cosine similarity for the best passage, the corpus is taken not to
    # address the question at all and the model is not asked.
    min_similarity: float = 0.25
    # The model may name at most this many passages as evidence.
    max_evidence: int = 3
    # A statement is supported when every number it adds is in its cited passages and at
    # least this share of its other content words is.
    support_share: float = 0.5
    # A document the answer did not cite is asked separately (to surface a conflict) only
    # when one of its passages is among the `conflict_top` best and scores at least
    # `conflict_relevance` of the best passage. The same share decides whether that
    # document's answer is relevant enough to stand beside the first as a conflict.
    conflict_top: int = 3
    conflict_relevance: float = 0.8
    # Refuse an answer that is not the kind of thing the question asks for (a name, a
    # count, a date). The calibrated policy reads this as one signal among others instead.
    type_veto: bool = True
    # The calibrated answer score: a logistic regression over rag.signals, standardised
    # by (mean, scale) per signal. Empty means no score: answer whenever grounded.
    weights: tuple[tuple[str, float, float, float], ...] = field(default=())
    intercept: float = 0.0
    # Answer only when the score (an estimate of P(correct)) reaches this.
    min_confidence: float = 0.0

    def describe(self) -> dict[str, object]:
        """The policy as plain values, for reports."""
        return asdict(self)


RULES = Policy()


def calibrated(path: Path = CALIBRATION) -> Policy:
    """The fitted policy from `path`, or the hand-set rules when nothing was fitted."""
    if not path.exists():
        return RULES
    data = json.loads(path.read_text(encoding="utf-8"))
    return replace(
        RULES,
        name=str(data["name"]),
        type_veto=False,
        weights=tuple(
            (str(w["signal"]), float(w["mean"]), float(w["scale"]), float(w["weight"]))
            for w in data["weights"]
        ),
        intercept=float(data["intercept"]),
        min_confidence=float(data["min_confidence"]),
    )


DEFAULT = calibrated()
