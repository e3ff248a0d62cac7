"""Scoring answers against the regression cases: pure functions over records, no models.

Answerable and conflict cases are "scored" cases: they have evidence and expect an answer.
Unanswerable cases only ask for a refusal."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.cases import Case
from rag.records import Answer, Citation

# metric -> (">=" or "<=", value): the regression gate, in one visible place.
# Each bar is what the default configuration measured on 2026-11-23 (Qwen2.5-0.5B, dense,
# k=4, 6 passages, no grammar, the calibrated policy in rag/calibration.json; README
# "Quality"), rounded down a little. llama.cpp at temperature 0 with the same thread count
# gives the same answers run to run on one machine; a build for another CPU may answer a
# borderline question differently (2026-11-24: one seed answer of 59 between two machines),
# so a bar keeps about one answer of room below what was measured. Raise a bar when
# quality improves; never lower one to get a green run. Raised 2026-11-24 after the rescue
# of refused answers (README "A refused answer read again"), which can only turn a refusal
# into an answer: citation recall 0.62 -> 0.65 (0.674 measured), false refusals 0.15 ->
# 0.14 (0.116), refusal 0.65 -> 0.68 (0.8125 here, 0.75 on the earlier machine before the
# rescue). Raised 2026-11-25 after sentence rule 3 (README "A title that ends in a
# question mark"): answer accuracy 0.70 -> 0.72 (0.744 measured, 0.721 before it),
# retrieval recall 0.85 -> 0.86 (0.884; 0.872 before), refusal 0.68 -> 0.75 (0.8125 on
# every run on this machine since the rescue). Targets, not yet met: answer accuracy
# >= 0.9, citation recall >= 0.9, refusal accuracy >= 0.9, false refusals <= 0.1.
# Latency is not gated here: benchmarks/run.py measures speed.
THRESHOLDS: dict[str, tuple[str, float]] = {
    "answer_accuracy": (">=", 0.72),
    "citation_recall": (">=", 0.65),
    "citation_precision": (">=", 0.80),
    "citation_validity": (">=", 1.0),
    "refusal_accuracy": (">=", 0.75),
    "false_refusal_rate": ("<=", 0.14),
    "false_conflict_rate": ("<=", 0.05),
    "retrieval_recall_at_k": (">=", 0.86),
}

# Metrics on a 0..1 scale, in the order the report and chart show them.
QUALITY_METRICS = (
    "answer_accuracy",
    "citation_recall",
    "citation_recall_any",
    "citation_precision",
    "char_precision",
    "char_recall",
    "char_iou",
    "citation_validity",
    "refusal_accuracy",
    "false_refusal_rate",
    "retrieval_recall_at_k",
    "false_conflict_rate",
    "conflict_detection",
)

# Curly quotes and no-break spaces are how the corpus writes what a model may write plainly.
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


@dataclass(frozen=True)
class CaseResult:
    id: str
    kind: str
    question: str
    answer: str
    correct: bool
    refused: bool
    cited_any_expected: bool
    cited_all_expected: bool
    n_citations: int
    n_citations_on_target: int
    # Character sets per doc, so overlapping citations are not counted twice.
    char_cited: int
    char_expected: int
    char_shared: int
    valid_citations: int
    invalid_citations: int
    # Share of expected spans lying wholly inside one retrieved chunk.
    retrieval_hit: float
    # Sum of citation lengths: how much text the reader is sent to check.
    cited_chars: int
    latency: float
    # The answer said the sources differ.
    conflict: bool = False

    @property
    def scored(self) -> bool:
        return self.kind != "unanswerable"

    @property
    def passed(self) -> bool:
        """Right answer, no broken citation, and for scored cases at least one cited proof."""
        if not self.correct or self.invalid_citations:
            return False
        return self.cited_any_expected or not self.scored


def _normal(text: str) -> str:
    return text.translate(_QUOTES).casefold()


def _mentions(text: str, options: Iterable[str]) -> bool:
    """Whole words only: "May" is an answer, the "may" inside "mayor" is not. A number
    may carry an ordinal suffix: "528" is in "528th"."""

    def pattern(option: str) -> str:
        o = _normal(option)
        end = r"(?!\d)" if o[-1:].isdigit() else r"(?!\w)"
        return rf"(?<!\w){re.escape(o)}{end}"

    return any(re.search(pattern(o), text) for o in options)


def is_correct(case: Case, answer: Answer) -> bool:
    """Unanswerable: refused. Otherwise an acceptable string, and for conflicts one per side."""
    if case.kind == "unanswerable":
        return answer.abstained
    if answer.abstained:
        return False
    # Statements, not the rendered sentence: its markers and lead-ins are not the answer.
    text = _normal(" ".join(s.text for s in answer.statements))
    if case.kind == "conflict":
        return all(_mentions(text, group) for _, group in case.answers_by_doc)
    return _mentions(text, case.answers)


def _chars(spans: Iterable[tuple[str, int, int]]) -> set[tuple[str, int]]:
    return {(doc, i) for doc, start, end in spans for i in range(start, end)}


def _is_valid(cite: Citation, corpus_texts: dict[str, str]) -> bool:
    """The span invariant: the doc exists and its text at [start:end] is the quote."""
    text = corpus_texts.get(cite.doc)
    return (
        text is not None
        and 0 <= cite.start <= cite.end
        and text[cite.start : cite.end] == cite.quote
    )


def score_case(case: Case, answer: Answer, corpus_texts: dict[str, str]) -> CaseResult:
    """Every per-case figure for one answer."""
    expected = [(ev.doc, ev.start, ev.end) for ev in case.evidence]
    cites = [(c.doc, c.start, c.end) for c in answer.citations]

    def overlaps(cite: tuple[str, int, int], span: tuple[str, int, int]) -> bool:
        return cite[0] == span[0] and cite[1] < span[2] and span[1] < cite[2]

    covered = [any(overlaps(c, span) for c in cites) for span in expected]
    on_target = sum(any(overlaps(c, span) for span in expected) for c in cites)
    valid = sum(_is_valid(c, corpus_texts) for c in answer.citations)
    inside = [
        any(
            ch.doc == ev.doc and ch.start <= ev.start and ev.end <= ch.end
            for ch in answer.retrieved
        )
        for ev in case.evidence
    ]
    cited_set, expected_set = _chars(cites), _chars(expected)
    return CaseResult(
        id=case.id,
        kind=case.kind,
        question=case.question,
        answer=answer.text,
        correct=is_correct(case, answer),
        refused=answer.abstained,
        cited_any_expected=any(covered),
        cited_all_expected=bool(covered) and all(covered),
        n_citations=len(cites),
        n_citations_on_target=on_target,
        char_cited=len(cited_set),
        char_expected=len(expected_set),
        char_shared=len(cited_set & expected_set),
        valid_citations=valid,
        invalid_citations=len(cites) - valid,
        retrieval_hit=sum(inside) / len(inside) if inside else 0.0,
        cited_chars=sum(max(0, end - start) for _, start, end in cites),
        latency=answer.timings.total_s,
        conflict=answer.conflict,
    )


def _ratio(num: float, den: float, empty: float = 0.0) -> float:
    return num / den if den else empty


def _mean(values: Sequence[float]) -> float:
    # An empty group scores 0.0, so a missing kind cannot pass a ">=" bar unnoticed.
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(results: Sequence[CaseResult]) -> dict[str, float]:
    """Suite-level metrics; char metrics are micro-averaged over scored cases."""
    scored = [r for r in results if r.scored]
    unanswerable = [r for r in results if not r.scored]
    n_cites = sum(r.n_citations for r in scored)
    cited = sum(r.char_cited for r in scored)
    expected = sum(r.char_expected for r in scored)
    shared = sum(r.char_shared for r in scored)
    valid = sum(r.valid_citations for r in results)
    checked = valid + sum(r.invalid_citations for r in results)
    latencies = [r.latency for r in results]
    answered = [r.cited_chars for r in results if not r.refused]
    return {
        "answer_accuracy": _mean([r.correct for r in scored]),
        "citation_recall": _mean([r.cited_all_expected for r in scored]),
        "citation_recall_any": _mean([r.cited_any_expected for r in scored]),
        "citation_precision": _ratio(sum(r.n_citations_on_target for r in scored), n_cites),
        "char_precision": _ratio(shared, cited),
        "char_recall": _ratio(shared, expected),
        "char_iou": _ratio(shared, cited + expected - shared),
        "citation_validity": _ratio(valid, checked, empty=1.0),
        "refusal_accuracy": _mean([r.refused for r in unanswerable]),
        "false_refusal_rate": _mean([r.refused for r in scored]),
        "retrieval_recall_at_k": _mean([r.retrieval_hit for r in scored]),
        # "The sources differ" on a question where they do not is a wrong answer in spirit,
        # even when the right value is among the versions shown.
        "false_conflict_rate": _mean([r.conflict for r in results if r.kind == "answerable"]),
        "conflict_detection": _mean([r.conflict for r in results if r.kind == "conflict"]),
        "median_cited_chars": float(statistics.median(answered)) if answered else 0.0,
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
        "n_cases": float(len(results)),
        "n_answerable": float(sum(r.kind == "answerable" for r in results)),
        "n_conflict": float(sum(r.kind == "conflict" for r in results)),
        "n_unanswerable": float(len(unanswerable)),
    }


def check_thresholds(
    summary: dict[str, float], thresholds: dict[str, tuple[str, float]]
) -> list[str]:
    """One readable line per metric that misses its bar; empty when all pass."""
    failures = []
    for name, (op, bar) in thresholds.items():
        if name not in summary:
            failures.append(f"{name}: missing from the summary")
        elif op == ">=" and not summary[name] >= bar:
            failures.append(f"{name} = {summary[name]:.3f}, needs >= {bar:.3f}")
        elif op == "<=" and not summary[name] <= bar:
            failures.append(f"{name} = {summary[name]:.3f}, needs <= {bar:.3f}")
        elif op not in (">=", "<="):
            failures.append(f"{name}: unknown comparison {op!r}; use '>=' or '<='")
    return failures


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ordered(results: Sequence[CaseResult]) -> list[CaseResult]:
    # Failures first; the stable sort keeps file order within each group.
    return sorted(results, key=lambda r: r.passed)


def render_table(results: Sequence[CaseResult], width: int = 60) -> str:
    """A plain-text per-case table, failures first."""
    rows = [("status", "id", "kind", "answer", "cites")]
    for r in _ordered(results):
        status = "PASS" if r.passed else "FAIL"
        rows.append((status, r.id, r.kind, _clip(r.answer, width), str(r.n_citations)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def write_report(
    results: Sequence[CaseResult],
    summary: dict[str, float],
    folder: Path,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write folder/report.md and folder/metrics.png, creating the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Regression report", ""]
    if extra:
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {_md(str(k))} | {_md(str(v))} |" for k, v in extra.items()]
        lines.append("")
    lines += ["## Summary", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.3f} |" for name, value in summary.items()]
    lines += ["", "## Cases", "", "| status | id | kind | answer | cites |"]
    lines.append("|---|---|---|---|---|")
    for r in _ordered(results):
        status = "PASS" if r.passed else "FAIL"
        answer = _md(_clip(r.answer, 120))
        lines.append(f"| {status} | {r.id} | {r.kind} | {answer} | {r.n_citations} |")
    (folder / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _plot(results, summary, folder / "metrics.png")


def _plot(results: Sequence[CaseResult], summary: dict[str, float], path: Path) -> None:
    # Imported here so that importing rag.evaluate stays cheap and needs no display.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in QUALITY_METRICS if n in summary]
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(12, 4.5))
    bars.barh(names, [summary[n] for n in names], color="tab:blue")
    bars.set_xlim(0, 1)
    bars.invert_yaxis()
    bars.set_title("Quality (0..1)")
    latencies = [r.latency for r in results]
    hist.hist(latencies, bins=min(20, max(1, len(latencies))), color="tab:gray")
    for q, style in ((50, "--"), (95, ":")):
        hist.axvline(percentile(latencies, q), color="black", linestyle=style, label=f"p{q}")
    hist.set_title("Latency per question (s)")
    hist.set_xlabel("seconds")
    hist.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
