"""SQuAD 2.0 articles as corpora: the cases, one answer's score, the set's summary, and
the risk–coverage table that refits a confidence threshold from recorded results.

Answers are the dicts of the `ask --json` contract, so a results file scores again without
the model. See /work/shared/external/squad2/README.md for the data.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.evaluate import percentile
from rag.external import (
    Answer,
    answer_text,
    citation_valid,
    confidence,
    exact_match,
    latency,
    normalize,
    occurs,
    read_jsonl,
    require,
    share,
    token_f1,
)

# An answer of at most this many tokens that contains the gold answer is correct: "Latin,
# the language of Rome" answers "which language?" although its F1 against "Latin" is 0.4.
SHORT_ANSWER_TOKENS = 10
# A given answer counts as correct at this token F1 or above (or when it contains the gold).
CORRECT_F1 = 0.5


@dataclass(frozen=True)
class SquadCase:
    """One question about one article; each of `spans` locates one of `answers` in `doc`."""

    id: str
    question: str
    doc: str
    abstain: bool
    answers: tuple[str, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()
    plausible_answers: tuple[str, ...] = ()


def load_squad(folder: Path) -> list[SquadCase]:
    """The cases of one corpus folder (`folder/cases.jsonl`), in file order."""
    path = folder / "cases.jsonl"
    cases = []
    for number, row in enumerate(read_jsonl(path), 1):
        where = f"{path}:{number}"
        require(row, ("id", "question", "doc", "abstain"), where)
        if not row["abstain"]:
            require(row, ("answers", "spans"), where)
            # A span per occurrence: one answer text can be found at several places.
            if not row["answers"] or not row["spans"]:
                raise InputError(f"{where}: an answerable case needs answers and spans")
        cases.append(
            SquadCase(
                id=str(row["id"]),
                question=str(row["question"]),
                doc=str(row["doc"]),
                abstain=bool(row["abstain"]),
                answers=tuple(row.get("answers", ())),
                spans=tuple((int(s), int(e)) for s, e in row.get("spans", ())),
                plausible_answers=tuple(row.get("plausible_answers", ())),
            )
        )
    return cases


@dataclass(frozen=True)
class SquadScore:
    """Every per-question figure. EM, F1 and containment are 0/False for refusals and for
    unanswerable questions, which have no gold answer."""

    id: str
    answerable: bool
    refused: bool
    conflict: bool
    em: float
    f1: float
    # The normalised gold occurs in an answer of at most SHORT_ANSWER_TOKENS tokens.
    contained: bool
    # A citation overlaps a gold span in the question's own article.
    cited_gold: bool
    n_citations: int
    valid_citations: int
    span_chars: tuple[int, ...]
    latency: float
    confidence: float | None

    @property
    def answered(self) -> bool:
        return not self.refused

    @property
    def correct(self) -> bool:
        """An answer given to an answerable question with F1 ≥ CORRECT_F1 or the gold in it."""
        return self.answered and self.answerable and (self.f1 >= CORRECT_F1 or self.contained)

    @property
    def squad2_f1(self) -> float:
        """SQuAD 2.0 F1: a refusal scores 1 on unanswerable, 0 on answerable; an answer
        scores its token F1 (which is 0 on unanswerable questions)."""
        return _squad2(self, self.answered)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"correct": self.correct, "squad2_f1": self.squad2_f1}


def _squad2(score: SquadScore, answered: bool) -> float:
    if answered:
        return score.f1 if score.answerable else 0.0
    return 0.0 if score.answerable else 1.0


def score_squad(case: SquadCase, answer: Answer, texts: Mapping[str, str]) -> SquadScore:
    """Score one `ask --json` answer dict against its case; `texts` are the corpus files."""
    refused = bool(answer.get("abstained"))
    said = answer_text(answer)
    golds = case.answers if not refused else ()
    cites = answer.get("citations") or []
    short = len(normalize(said).split()) <= SHORT_ANSWER_TOKENS
    return SquadScore(
        id=case.id,
        answerable=not case.abstain,
        refused=refused,
        conflict=bool(answer.get("conflict")),
        em=exact_match(said, golds),
        f1=token_f1(said, golds),
        contained=short and any(occurs(g, said) for g in golds),
        cited_gold=not refused
        and any(
            c.get("doc") == case.doc and c["start"] < end and start < c["end"]
            for c in cites
            for start, end in case.spans
        ),
        n_citations=len(cites),
        valid_citations=sum(citation_valid(c, texts) for c in cites),
        span_chars=tuple(max(0, c["end"] - c["start"]) for c in cites),
        latency=latency(answer),
        confidence=confidence(answer),
    )


def summarize_squad(scores: Sequence[SquadScore]) -> dict[str, float]:
    """Set-level figures. `precision` is the share of given answers that are correct (F1 ≥
    CORRECT_F1 or the gold in a short answer); `_all` variants count refusals as 0."""
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    attempted = [s for s in answerable if s.answered]  # answerable and answered
    given = [s for s in scores if s.answered]
    n_cites = sum(s.n_citations for s in scores)
    spans = [n for s in given for n in s.span_chars]
    latencies = [s.latency for s in scores]
    return {
        "em_answered": share([s.em for s in attempted]),
        "em_all": share([s.em for s in answerable]),
        "f1_answered": share([s.f1 for s in attempted]),
        "f1_all": share([s.f1 for s in answerable]),
        "contained_answered": share([s.contained for s in attempted]),
        "contained_all": share([s.contained for s in answerable]),
        "citation_hit": share([s.cited_gold for s in attempted]),
        "refusal_accuracy": share([s.refused for s in unanswerable]),
        "false_refusal_rate": share([s.refused for s in answerable]),
        "squad2_f1": share([s.squad2_f1 for s in scores]),
        # What refusing everything would score: the bar an answering system has to beat.
        "squad2_f1_always_refuse": share([not s.answerable for s in scores]),
        "precision": share([s.correct for s in given]),
        "coverage": share([s.answered for s in scores]),
        "false_conflict_rate": share([s.conflict for s in scores]),
        "citation_validity": sum(s.valid_citations for s in scores) / n_cites if n_cites else 1.0,
        "median_cited_chars": float(statistics.median(spans)) if spans else 0.0,
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
        "n": float(len(scores)),
        "n_answerable": float(len(answerable)),
        "n_unanswerable": float(len(unanswerable)),
    }


@dataclass(frozen=True)
class RiskPoint:
    """The set's figures had every answer scoring below `threshold` been refused."""

    threshold: float
    answered: int
    coverage: float
    precision: float
    squad2_f1: float


def risk_coverage(
    scores: Sequence[SquadScore], thresholds: Sequence[float] | None = None
) -> list[RiskPoint]:
    """Coverage (answered among all questions), precision of the answers given and SQuAD2-F1
    when answers with confidence below each threshold become refusals; by default every
    distinct confidence of an answer is a threshold. From recorded results a threshold can
    only be raised: a recorded refusal stays one, and an answer that carries no confidence
    is kept at every threshold (no score decided it)."""
    if thresholds is None:
        thresholds = sorted(
            {s.confidence for s in scores if s.answered and s.confidence is not None}
        )
    table = []
    for t in thresholds:
        kept = [s.answered and (s.confidence is None or s.confidence >= t) for s in scores]
        given = [s for s, k in zip(scores, kept, strict=True) if k]
        table.append(
            RiskPoint(
                threshold=t,
                answered=len(given),
                coverage=share(kept),
                precision=share([s.correct for s in given]),
                squad2_f1=share([_squad2(s, k) for s, k in zip(scores, kept, strict=True)]),
            )
        )
    return table
