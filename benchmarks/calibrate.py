"""Fit the answer/refuse score (rag.policy's `weights`) on recorded questions.

    # 1. record: every question through the product with a policy that answers whenever
    #    the answer is grounded, keeping each question's signals (rag.signals)
    .venv/bin/python benchmarks/calibrate.py record-seeds --out reports/calibration/seeds.jsonl
    .venv/bin/python benchmarks/external.py --set squad2/a --sample 250 --record
    .venv/bin/python benchmarks/external.py --set squad2/b --sample 250 --record
    # 2. fit on those files (never on the corpus you report on), write rag/calibration.json
    .venv/bin/python benchmarks/calibrate.py fit reports/calibration/seeds.jsonl \\
        reports/external/squad2-a-*/results.jsonl reports/external/squad2-b-*/results.jsonl

    # 3. report on a corpus never fitted on: the rules, the calibrated score, and the
    #    risk-coverage table, applied to the recorded answers of that corpus
    .venv/bin/python benchmarks/calibrate.py report reports/external/squad2-c-*/results.jsonl

    # 4. choose the vetoes (rag.signals.LACKS) on the same fitting files, keeping the
    #    score and its operating point, no seed figure worse, and no right answer of a
    #    RAMDocs run on its fitting set (made with --policy vetoes=, none) refused
    .venv/bin/python benchmarks/calibrate.py fit-vetoes reports/calibration/seeds.jsonl \\
        reports/external/squad2-a-*/results.jsonl reports/external/squad2-b-*/results.jsonl \\
        --gate reports/calibration/seeds.jsonl \\
        --answered reports/external/none/ramdocs-a-n200-s0/results.jsonl

The decision is a pure function of the recorded signals, so applying a policy to recorded
answers gives what the product answers under it (rows refused by the recording policy stay
refused; an answer the policy refuses becomes a refusal, scored as one).

The score is a logistic regression over standardised signals, fitted by Newton's method
with a small L2 penalty. The operating point (min_confidence) is the threshold that
maximises the SQuAD2-style utility on the fitting data: an answer earns its F1 (0 when
the question has no answer), a refusal earns 1 when the question has no answer, else 0.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.policy import CALIBRATION, RULES, Policy
from rag.signals import LACKS, NAMES, lacks

L2 = 1.0
# The recording policy: no score and no type veto, so every grounded answer is given and
# its signals and correctness can be seen.
RECORD = {"name": "record", "type_veto": False, "weights": (), "min_confidence": 0.0}


@dataclass(frozen=True)
class Row:
    """One recorded question: its signals, whether the recording policy answered it, and
    what answering and refusing it are worth."""

    signals: dict[str, float]
    answered: bool
    correct: bool
    if_answered: float
    if_refused: float


def rows_from(path: Path) -> list[Row]:
    """Rows of an external results.jsonl or a seeds recording."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        answer, score = data["answer"], data["score"]
        answerable = bool(score["answerable"])
        out.append(
            Row(
                signals=signals_of(data),
                answered=not answer["abstained"],
                correct=bool(score["correct"]),
                if_answered=float(score["f1"]) if answerable else 0.0,
                if_refused=0.0 if answerable else 1.0,
            )
        )
    return out


def signals_of(data: Mapping[str, Any]) -> dict[str, float]:
    """A recorded answer's signals. Recordings made before the LACKS signals existed get
    them computed here, from the first statement's citations and the corpus the row was
    asked of (its "set" under benchmarks/external.py's data root, else the seeds): they
    are pure functions of the question and the cited texts, so no model is run again."""
    answer = data["answer"]
    signals = {k: float(v) for k, v in (answer.get("signals") or {}).items()}
    if not signals or all(name in signals for name in LACKS):
        return signals
    statements = answer.get("statements") or []
    if not statements:  # a refusal: nothing was cited, and the decision is not reached
        return signals
    citations = answer.get("citations") or []
    cited = [citations[i] for i in statements[0]["citations"]]
    texts = _corpus(str(data.get("set") or ""))
    docs = list(dict.fromkeys(c["doc"] for c in cited))
    return signals | lacks(
        answer["question"], [c["quote"] for c in cited], [texts[d] for d in docs]
    )


@functools.cache
def _corpus(set_name: str) -> dict[str, str]:
    """Every document's text of an external set ("squad2/a"), or of the seeds for ""."""
    from benchmarks.external import data_root
    from rag.settings import REPO

    folder = data_root() / set_name / "corpus" if set_name else REPO / "seeds"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.txt"))}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights and intercept of an L2-penalised logistic regression (Newton's method)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.eye(d + 1) * l2
    penalty[d, d] = 0.0  # the intercept is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (p - y) + penalty @ w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:d], float(w[d])


def scored(rows: list[Row], policy: Policy) -> list[float | None]:
    """The policy's score of each answered row (None for a refusal or a row without signals)."""
    from rag.decide import confidence

    return [confidence(r.signals, policy) if r.answered and r.signals else None for r in rows]


def _given(
    row: Row, score: float | None, threshold: float, veto: bool, vetoes: tuple[str, ...] = ()
) -> bool:
    if not (row.answered and score is not None) or score < threshold:
        return False
    if any(row.signals.get(name, 0.0) for name in vetoes):
        return False
    return not veto or bool(row.signals.get("fits_type", 1.0))


def utility(
    rows: list[Row],
    scores: list[float | None],
    threshold: float,
    veto: bool = False,
    vetoes: tuple[str, ...] = (),
) -> float:
    """Mean SQuAD2-style value when answers scoring below `threshold` (or, with `veto`, not
    of the question's type, or with a non-zero signal of `vetoes`) are refused."""
    total = 0.0
    for row, score in zip(rows, scores, strict=True):
        given = _given(row, score, threshold, veto, vetoes)
        total += row.if_answered if given else row.if_refused
    return total / len(rows)


def seed_figures(
    rows: list[Row],
    scores: list[float | None],
    threshold: float,
    veto: bool,
    vetoes: tuple[str, ...] = (),
) -> dict[str, float]:
    """The seed regression suite's answer figures under a decision, from a recording."""
    answerable = [(r, s) for r, s in zip(rows, scores, strict=True) if r.if_refused == 0.0]
    unanswerable = [(r, s) for r, s in zip(rows, scores, strict=True) if r.if_refused == 1.0]
    figures: dict[str, float] = {}
    if answerable:
        figures["answer_accuracy"] = _share(
            [_given(r, s, threshold, veto, vetoes) and r.correct for r, s in answerable]
        )
        figures["false_refusal_rate"] = _share(
            [not _given(r, s, threshold, veto, vetoes) for r, s in answerable]
        )
    if unanswerable:
        figures["refusal_accuracy"] = _share(
            [not _given(r, s, threshold, veto, vetoes) for r, s in unanswerable]
        )
    return figures


def gate(rows: list[Row], scores: list[float | None], threshold: float, veto: bool) -> bool:
    """Whether the seed regression suite's bars (rag.evaluate.THRESHOLDS) still hold."""
    from rag.evaluate import THRESHOLDS

    for name, value in seed_figures(rows, scores, threshold, veto).items():
        op, bar = THRESHOLDS[name]
        if (op == ">=" and value < bar) or (op == "<=" and value > bar):
            return False
    return True


def no_worse(figures: dict[str, float], before: dict[str, float]) -> bool:
    """Whether no seed figure is worse than `before` (a change judged on its own: the live
    suite, which also reads refused answers again, passes its bars before it)."""
    from rag.evaluate import THRESHOLDS

    return all(
        value >= before[name] if THRESHOLDS[name][0] == ">=" else value <= before[name]
        for name, value in figures.items()
    )


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def fit(paths: list[Path], out: Path, gated: Path | None = None) -> dict[str, Any]:
    """Fit on `paths`; with `gated` (a seeds recording among them), choose the operating
    point only among those that keep the seed regression suite above its bars."""
    rows = [r for p in paths for r in rows_from(p)]
    train = [r for r in rows if r.answered and r.signals]
    x = np.array([[r.signals[n] for n in NAMES] for r in train], dtype=float)
    y = np.array([float(r.correct) for r in train])
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    weights, intercept = fit_logistic((x - mean) / scale, y)
    policy = replace(
        RULES,
        type_veto=False,
        weights=tuple(
            (n, float(m), float(s), float(w))
            for n, m, s, w in zip(NAMES, mean, scale, weights, strict=True)
        ),
        intercept=intercept,
    )
    scores = scored(rows, policy)
    seeds = rows_from(gated) if gated else []
    seed_scores = scored(seeds, policy)
    candidates = sorted({round(s, 4) for s in scores if s is not None} | {0.0, 1.01})
    allowed = [
        (t, veto)
        for t in candidates
        for veto in (False, True)
        if not gated or gate(seeds, seed_scores, t, veto)
    ]
    if not allowed:
        raise SystemExit("no operating point keeps the seed suite above its bars")
    best, veto = max(allowed, key=lambda tv: (utility(rows, scores, *tv), -tv[0]))
    free, free_veto = max(
        ((t, v) for t in candidates for v in (False, True)),
        key=lambda tv: (utility(rows, scores, *tv), -tv[0]),
    )
    digest = hashlib.sha256(json.dumps([str(p.name) for p in paths]).encode()).hexdigest()[:8]
    result = {
        "name": f"calibrated-{digest}",
        "fitted_on": [str(p) for p in paths],
        "questions": len(rows),
        "answered_when_grounded": len(train),
        "correct_share": float(y.mean()) if len(y) else 0.0,
        "intercept": intercept,
        "min_confidence": best,
        "type_veto": veto,
        "gated_by": str(gated) if gated else None,
        "utility_at_operating_point": utility(rows, scores, best, veto),
        # What the fitting data alone would choose, without the seed suite's bars.
        "unconstrained_operating_point": {
            "min_confidence": free,
            "type_veto": free_veto,
            "utility": utility(rows, scores, free, free_veto),
        },
        "utility_answer_all_grounded": utility(rows, scores, 0.0),
        "utility_refuse_all": utility(rows, scores, 1.01),
        "weights": [
            {"signal": n, "mean": m, "scale": s, "weight": w} for n, m, s, w in policy.weights
        ],
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def right_first_answers_refused(path: Path, vetoes: tuple[str, ...]) -> int:
    """In a recording of a corpus where every question has an answer (RAMDocs: its score
    counts `gold_stated`), the answers stating a right answer that `vetoes` would refuse."""
    from rag.external import read_jsonl

    lost = 0
    for data in read_jsonl(path):
        if data["answer"]["abstained"] or not data["score"]["gold_stated"]:
            continue
        signals = signals_of(data)
        lost += any(signals.get(name, 0.0) for name in vetoes)
    return lost


def fit_vetoes(
    paths: list[Path], calibration: Path, gated: Path, answered: tuple[Path, ...] = ()
) -> dict[str, Any]:
    """Choose which LACKS signals refuse an answer, keeping `calibration`'s score, operating
    point and type veto: the set that maximises utility on `paths` among those that leave
    no figure of the seed suite (the `gated` recording) worse than no veto does and refuse
    no right answer of the `answered` recordings (corpora where every question has an
    answer), the smaller set on a tie.
    Writes the choice into `calibration` and returns every set's figures."""
    from rag.policy import calibrated

    policy = calibrated(calibration)
    rows = [r for p in paths for r in rows_from(p)]
    seeds = rows_from(gated)
    scores, seed_scores = scored(rows, policy), scored(seeds, policy)
    point = (policy.min_confidence, policy.type_veto)
    before = seed_figures(seeds, seed_scores, *point)
    options = [
        (
            vetoes,
            utility(rows, scores, *point, vetoes),
            no_worse(seed_figures(seeds, seed_scores, *point, vetoes), before),
            sum(right_first_answers_refused(p, vetoes) for p in answered),
        )
        for size in range(len(LACKS) + 1)
        for vetoes in itertools.combinations(LACKS, size)
    ]
    allowed = [o for o in options if o[2] and not o[3]]
    chosen = max(allowed, key=lambda o: (o[1], -len(o[0])))[0]
    data = json.loads(calibration.read_text(encoding="utf-8"))
    data["vetoes"] = list(chosen)
    data["vetoes_fitted_on"] = [str(p) for p in (*paths, *answered)]
    calibration.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return {
        "chosen": list(chosen),
        "options": [
            {"vetoes": list(v), "utility": u, "seeds_no_worse": k, "right_answers_refused": n}
            for v, u, k, n in options
        ],
    }


def _squad_scores(path: Path) -> list[tuple[dict[str, float], Any]]:
    """(signals, SquadScore) of each recorded SQuAD question."""
    from rag.external_squad import SquadScore

    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            fields = {k: v for k, v in data["score"].items() if k not in ("correct", "squad2_f1")}
            fields["span_chars"] = tuple(fields["span_chars"])
            out.append((signals_of(data), SquadScore(**fields)))
    return out


def _refuse(score: Any) -> Any:
    """The score of the same question had it been refused."""
    return replace(
        score,
        refused=True,
        conflict=False,
        em=0.0,
        f1=0.0,
        contained=False,
        cited_gold=False,
        n_citations=0,
        valid_citations=0,
        span_chars=(),
        confidence=None,
    )


def report(path: Path, calibration: Path) -> dict[str, Any]:
    """Rows for the recording policy, the hand-set rules and the calibrated score on one
    recorded corpus, and the risk-coverage table of the calibrated score."""
    from rag.decide import accept, confidence
    from rag.external_squad import risk_coverage, summarize_squad
    from rag.policy import calibrated

    recorded = _squad_scores(path)
    fitted = calibrated(calibration)
    rows: dict[str, dict[str, float]] = {}
    for name, policy in (
        ("answer when grounded", None),
        ("rules-v1", RULES),
        (fitted.name, fitted),
    ):
        scores = []
        for sig, score in recorded:
            keep = not score.refused and (
                policy is None or accept(sig, confidence(sig, policy), policy)
            )
            scores.append(score if keep else _refuse(score))
        rows[name] = summarize_squad(scores)
    # The curve moves the threshold only: an answer the policy's vetoes refuse (its type,
    # what its sources lack) is refused at every threshold. With no score, accept() reads
    # only the vetoes.
    curve_scores = [
        replace(score, confidence=confidence(sig, fitted) if sig else None)
        if score.refused or not sig or accept(sig, None, fitted)
        else _refuse(score)
        for sig, score in recorded
    ]
    curve = risk_coverage(curve_scores, [round(t / 20, 2) for t in range(0, 20)])
    return {
        "file": str(path),
        "policy": fitted.describe(),
        "rows": rows,
        "risk_coverage": [vars(p) for p in curve],
    }


def record_seeds(out: Path) -> None:
    """Ask every seed regression case with the recording policy; one JSON line each."""
    from rag import open_index
    from rag.cases import load_cases, read_texts
    from rag.eval_cli import DEFAULT_CASES
    from rag.evaluate import is_correct
    from rag.settings import REPO

    opened = open_index(REPO / "seeds", REPO / "index", **RECORD)
    cases = load_cases(DEFAULT_CASES, REPO / "seeds")
    read_texts(REPO / "seeds")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for n, case in enumerate(cases, 1):
            answer = opened.ask(case.question)
            answerable = case.kind != "unanswerable"
            correct = is_correct(case, answer) and answerable
            score = {"answerable": answerable, "correct": correct, "f1": float(correct)}
            fh.write(json.dumps({"id": case.id, "answer": answer.to_json(), "score": score}) + "\n")
            print(f"[{n}/{len(cases)}] {case.id}: {answer.text[:70]}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record-seeds", help="record the seed regression cases")
    rec.add_argument("--out", type=Path, default=Path("reports/calibration/seeds.jsonl"))
    f = sub.add_parser("fit", help="fit on recorded files and write the calibration")
    f.add_argument("files", type=Path, nargs="+")
    f.add_argument("--out", type=Path, default=CALIBRATION)
    f.add_argument(
        "--gate", type=Path, help="a seeds recording whose regression bars must still hold"
    )
    v = sub.add_parser("fit-vetoes", help="choose the vetoes, keeping the fitted score")
    v.add_argument("files", type=Path, nargs="+")
    v.add_argument("--calibration", type=Path, default=CALIBRATION)
    v.add_argument("--gate", type=Path, required=True, help="a seeds recording")
    v.add_argument(
        "--answered",
        type=Path,
        action="append",
        default=[],
        help="a RAMDocs results.jsonl (every question has an answer); repeatable",
    )
    r = sub.add_parser("report", help="apply the policies to a recorded SQuAD corpus")
    r.add_argument("file", type=Path)
    r.add_argument("--calibration", type=Path, default=CALIBRATION)
    args = p.parse_args(argv)
    if args.command == "record-seeds":
        record_seeds(args.out)
        return 0
    if args.command == "fit-vetoes":
        chosen = fit_vetoes(args.files, args.calibration, args.gate, tuple(args.answered))
        print("| vetoes | utility on the fitting files | seeds no worse | right answers refused |")
        print("|---|---|---|---|")
        for o in chosen["options"]:
            names = ", ".join(o["vetoes"]) or "none"
            seeds = "yes" if o["seeds_no_worse"] else "no"
            print(f"| {names} | {o['utility']:.4f} | {seeds} | {o['right_answers_refused']} |")
        print(f"chosen: {', '.join(chosen['chosen']) or 'none'} (written to {args.calibration})")
        return 0
    if args.command == "report":
        result = report(args.file, args.calibration)
        keys = (
            "squad2_f1",
            "precision",
            "coverage",
            "refusal_accuracy",
            "false_refusal_rate",
            "f1_answered",
            "em_answered",
            "contained_answered",
            "citation_hit",
            "false_conflict_rate",
            "citation_validity",
            "median_cited_chars",
            "latency_p50",
            "latency_p95",
        )
        print("| policy | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 1) + "|")
        for name, row in result["rows"].items():
            print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
        print(
            "\n| threshold | answered | coverage | precision | SQuAD2-F1 |\n|---|---|---|---|---|"
        )
        for pt in result["risk_coverage"]:
            print(
                f"| {pt['threshold']:.2f} | {pt['answered']} | {pt['coverage']:.3f} | "
                f"{pt['precision']:.3f} | {pt['squad2_f1']:.3f} |"
            )
        return 0
    result = fit(args.files, args.out, args.gate)
    print(json.dumps({k: v for k, v in result.items() if k != "weights"}, indent=2))
    for w in result["weights"]:
        print(f"  {w['signal']:22s} {w['weight']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
