"""RAMDocs (conflicting evidence): the cases, one answer's score and the set's summary.

Every question has one or more right answers (different documents answer for different
people or places) and may have planted wrong ones. An answer "states" a phrase by
`rag.external.states`. See /work/shared/external/ramdocs/README.md for the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.evaluate import percentile
from rag.external import (
    Answer,
    citation_valid,
    claims,
    latency,
    normalize,
    read_jsonl,
    require,
    share,
    states,
)


@dataclass(frozen=True)
class RamDoc:
    """One of the question's documents: `type` is correct, misinfo or noise."""

    file: str
    type: str
    answer: str


@dataclass(frozen=True)
class RamCase:
    id: str
    question: str
    gold_answers: tuple[str, ...]
    wrong_answers: tuple[str, ...]
    docs: tuple[RamDoc, ...]

    def givers(self, gold: str) -> frozenset[str]:
        """The documents whose answer is this gold answer (after normalisation)."""
        want = normalize(gold)
        return frozenset(d.file for d in self.docs if normalize(d.answer) == want)


def load_ramdocs(folder: Path) -> list[RamCase]:
    """The cases of one corpus folder (`folder/cases.jsonl`), in file order."""
    path = folder / "cases.jsonl"
    cases = []
    for number, row in enumerate(read_jsonl(path), 1):
        where = f"{path}:{number}"
        require(row, ("id", "question", "gold_answers", "wrong_answers", "docs"), where)
        for doc in row["docs"]:
            require(doc, ("file", "type", "answer"), f"{where} (a doc)")
        cases.append(
            RamCase(
                id=str(row["id"]),
                question=str(row["question"]),
                gold_answers=tuple(row["gold_answers"]),
                wrong_answers=tuple(row["wrong_answers"]),
                docs=tuple(RamDoc(d["file"], d["type"], d["answer"]) for d in row["docs"]),
            )
        )
    return cases


@dataclass(frozen=True)
class RamScore:
    """Every per-question figure for one answer."""

    id: str
    n_gold: int
    gold_stated: int
    # Stated gold answers stated by a statement that cites a document giving that answer.
    gold_cited: int
    # Gold answers that none of the question's documents gives (they cannot be cited).
    gold_without_doc: int
    has_wrong: bool
    wrong_stated: bool
    conflict: bool
    refused: bool
    n_citations: int
    valid_citations: int
    latency: float

    @property
    def all_gold(self) -> bool:
        return self.gold_stated == self.n_gold

    @property
    def wrong_unflagged(self) -> bool:
        """A planted wrong answer passed on as fact: stated, and the sources not said to differ."""
        return self.wrong_stated and not self.conflict

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"all_gold": self.all_gold, "wrong_unflagged": self.wrong_unflagged}


def score_ramdocs(case: RamCase, answer: Answer, texts: Mapping[str, str]) -> RamScore:
    """Score one `ask --json` answer dict against its case; `texts` are the corpus files."""
    said = claims(answer)
    text = " ".join(c.text for c in said)
    stated = [g for g in case.gold_answers if states(g, text)]
    cited = [g for g in stated if any(states(g, c.text) and c.docs & case.givers(g) for c in said)]
    cites = answer.get("citations") or []
    return RamScore(
        id=case.id,
        n_gold=len(case.gold_answers),
        gold_stated=len(stated),
        gold_cited=len(cited),
        gold_without_doc=sum(not case.givers(g) for g in case.gold_answers),
        has_wrong=bool(case.wrong_answers),
        wrong_stated=any(states(w, text) for w in case.wrong_answers),
        conflict=bool(answer.get("conflict")),
        refused=bool(answer.get("abstained")),
        n_citations=len(cites),
        valid_citations=sum(citation_valid(c, texts) for c in cites),
        latency=latency(answer),
    )


def summarize_ramdocs(scores: Sequence[RamScore]) -> dict[str, float]:
    """Set-level figures, each a share of the questions it can apply to."""
    multi = [s for s in scores if s.n_gold >= 2]
    planted = [s for s in scores if s.has_wrong]
    stated = sum(s.gold_stated for s in scores)
    n_cites = sum(s.n_citations for s in scores)
    latencies = [s.latency for s in scores]
    return {
        "all_gold": share([s.all_gold for s in scores]),
        "gold_share": share([s.gold_stated / s.n_gold for s in scores if s.n_gold]),
        "any_gold": share([s.gold_stated >= 1 for s in scores]),
        "two_plus_gold": share([s.gold_stated >= 2 for s in multi]),
        # The paper's headline: every gold answer and no wrong one (its best RAG baseline,
        # with each question's own documents given directly, scored 0.326).
        "all_gold_no_wrong": share([s.all_gold and not s.wrong_stated for s in scores]),
        "wrong_unflagged": share([s.wrong_unflagged for s in planted]),
        "wrong_stated": share([s.wrong_stated for s in planted]),
        "refused": share([s.refused for s in scores]),
        "gold_cited": sum(s.gold_cited for s in scores) / stated if stated else 0.0,
        "citation_validity": sum(s.valid_citations for s in scores) / n_cites if n_cites else 1.0,
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
        "n": float(len(scores)),
        "n_multi_gold": float(len(multi)),
        "n_with_wrong": float(len(planted)),
        "gold_without_doc": float(sum(s.gold_without_doc for s in scores)),
    }
