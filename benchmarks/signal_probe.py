"""Would more signals make the answer score better? Measured, not shipped.

Each candidate signal is computed from what a recording already holds (the question, the
answer and its cited sentences), added to rag.signals' eleven, and the score is refitted
exactly as benchmarks/calibrate.py fits it (fitting files, seed gate), then applied to the
report file. No generator runs; the three cosine probes load the embedding model:

    python benchmarks/signal_probe.py --gate reports/calibration/seeds.jsonl \\
        --fit reports/external/squad2-a-n200-s0-record/results.jsonl \\
        --fit reports/external/squad2-b-n200-s0-record/results.jsonl \\
        --report reports/external/squad2-c-n250-s0-record/results.jsonl

For the eleven signals and for each candidate added alone it prints the five-fold
cross-validated AUC on the fitting rows, the AUC on the report file, and SQuAD2-style
utility and precision on the report file at the seed-gated operating point and at the
unconstrained one (README "Trust").
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.calibrate import Row, fit_logistic, gate, rows_from, utility
from benchmarks.verifier import auc, cross_validated_auc
from rag.embed import MiniLM
from rag.signals import NAMES
from rag.text import strip_markers, terms

_NEGATION = re.compile(r"\b(?:not|never|no|n't|without)\b", re.I)
_NAME = re.compile(r"(?<!^)\b(?:[A-Z][\w'’-]+|\d[\d,.]*)")

_HOW_MANY = re.compile(r"\bhow many ([^?]*)", re.I)
# Words after "how many" that end the counted noun phrase: a verb or a preposition.
_NOUN_END = 3
# How close (in words) to the answer a question term counts as beside it.
_NEAR = 5


def _counted_noun_missing(q: str, a: str, quotes: list[str]) -> float:
    """For "How many X ..." questions: the answer's number is not followed, within three
    words in its cited sentence, by a term of X ("1,000 engineer troops" for "How many
    mines"). 0 for other questions."""
    m = _HOW_MANY.search(q)
    numbers = [t for t in terms(a) if t[0].isdigit()]
    if not m or not numbers:
        return 0.0
    noun = set(terms(m.group(1))[:_NOUN_END])
    for quote in quotes:
        words = terms(quote)
        for i, w in enumerate(words):
            if w in numbers and noun & set(words[i + 1 : i + 1 + _NOUN_END]):
                return 0.0
    return 1.0


def _near_share(q: str, a: str, quotes: list[str]) -> float:
    """The share of the question's terms that stand within five words of the answer in a
    cited sentence: an answer lifted from elsewhere in the sentence stands apart from
    what the question asks about."""
    asked = set(terms(q))
    mine = [t for t in terms(a) if t not in asked] or terms(a)
    if not asked or not mine:
        return 0.0
    best = 0.0
    for quote in quotes:
        words = terms(quote)
        at = [i for i, w in enumerate(words) if w in mine]
        if not at:
            continue
        lo, hi = max(0, min(at) - _NEAR), max(at) + _NEAR + 1
        best = max(best, len(asked & set(words[lo:hi])) / len(asked))
    return best


@functools.cache
def _embedder() -> MiniLM:
    return MiniLM()


@functools.cache
def _vector(text: str) -> np.ndarray:
    """The product's embedding of a text (all-MiniLM-L6-v2), once per text."""
    return _embedder().embed([text])[0]


def _cosine(a: str, b: str) -> float:
    return float(_vector(a) @ _vector(b))


def _masked(q: str, a: str, quotes: list[str]) -> float:
    """The question's cosine to a cited sentence with the answer blanked out: what the
    sentence says around the answer, against what the question asks."""
    return max((_cosine(q, x.replace(a, " ") if a else x) for x in quotes), default=0.0)


Probe = Callable[[str, str, list[str]], float]
PROBES: dict[str, Probe] = {
    # How many of the question's terms the cited sentences lack (coverage is a share).
    "missing_terms": lambda q, a, quotes: float(
        len(set(terms(q)) - {t for x in quotes for t in terms(x)})
    ),
    # Names and numbers of the question (capitalised past its first word) not cited.
    "names_missing": lambda q, a, quotes: float(
        len({t for m in _NAME.findall(q) for t in terms(m)} - {t for x in quotes for t in terms(x)})
    ),
    # The answer repeats the question instead of adding to it.
    "answer_in_question": lambda q, a, quotes: (
        len(set(terms(a)) & set(terms(q))) / len(set(terms(a))) if terms(a) else 0.0
    ),
    # SQuAD's adversarial questions often insert a negation the passage does not have.
    "negation_unmatched": lambda q, a, quotes: float(
        bool(_NEGATION.search(q)) and not any(_NEGATION.search(x) for x in quotes)
    ),
    "counted_noun_missing": _counted_noun_missing,
    "near_share": _near_share,
    # Meaning rather than words: the question's cosine to its best cited sentence, to it
    # with the answer blanked out, and of the question with the answer filled in.
    "sentence_cosine": lambda q, a, quotes: max((_cosine(q, x) for x in quotes), default=0.0),
    "masked_cosine": _masked,
    "filled_cosine": lambda q, a, quotes: max(
        (_cosine(f"{q} {a}", x) for x in quotes), default=0.0
    ),
    # The cited sentences share no word with the question at all.
    "covers_nothing": lambda q, a, quotes: float(
        not set(terms(q)) & {t for x in quotes for t in terms(x)}
    ),
}


def load(path: Path) -> list[Row]:
    """The recording's rows, each answered one carrying every probe's value too."""
    rows = rows_from(path)
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    out = []
    for row, data in zip(rows, raw, strict=True):
        answer = data["answer"]
        if row.answered and row.signals:
            quotes = [c["quote"] for c in answer["citations"]]
            text = strip_markers(answer["answer"])
            extra = {n: f(answer["question"], text, quotes) for n, f in PROBES.items()}
            row = replace(row, signals={**row.signals, **extra})
        out.append(row)
    return out


def _x(rows: list[Row], names: list[str]) -> np.ndarray:
    return np.array([[r.signals[n] for n in names] for r in rows], dtype=float)


def evaluate(
    names: list[str], fit: list[Row], seeds: list[Row], report: list[Row]
) -> dict[str, float | bool]:
    """Fit on `fit`, choose the operating points, apply to `report`."""
    train = [r for r in fit if r.answered and r.signals]
    x = _x(train, names)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    labels = np.array([r.correct for r in train], dtype=float)
    weights, intercept = fit_logistic((x - mean) / scale, labels)

    def score(rows: list[Row]) -> list[float | None]:
        out: list[float | None] = []
        for r in rows:
            if not (r.answered and r.signals):
                out.append(None)
                continue
            z = float((_x([r], names)[0] - mean) / scale @ weights + intercept)
            out.append(1.0 / (1.0 + np.exp(-z)))
        return out

    fs, ss, rs = score(fit), score(seeds), score(report)
    points = sorted({round(s, 4) for s in fs if s is not None} | {0.0, 1.01})
    choices = [(t, v) for t in points for v in (False, True)]
    gated = [c for c in choices if gate(seeds, ss, *c)]

    def best(cs: list[tuple[float, bool]]) -> tuple[float, bool]:
        return max(cs, key=lambda c: (utility(fit, fs, *c), -c[0]))

    def precision(t: float, veto: bool) -> float:
        from benchmarks.calibrate import _given

        given = [r for r, s in zip(report, rs, strict=True) if _given(r, s, t, veto)]
        return sum(r.correct for r in given) / len(given) if given else 0.0

    answered = [(r, s) for r, s in zip(report, rs, strict=True) if s is not None]
    out = {
        "cv_auc": cross_validated_auc(x, labels.astype(bool)),
        "report_auc": auc(
            np.array([s for _, s in answered]), np.array([r.correct for r, _ in answered])
        ),
    }
    for label, cs in (("gated", gated), ("free", choices)):
        if cs:
            t, veto = best(cs)
            out[f"{label}_threshold"] = t
            out[f"{label}_report_squad2_f1"] = utility(report, rs, t, veto)
            out[f"{label}_report_precision"] = precision(t, veto)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fit", type=Path, action="append", required=True)
    p.add_argument("--gate", type=Path, required=True, help="the seeds recording")
    p.add_argument("--report", type=Path, required=True)
    args = p.parse_args(argv)
    seeds = load(args.gate)
    fit = seeds + [r for f in args.fit for r in load(f)]
    report = load(args.report)
    for added in [None, *PROBES]:
        names = list(NAMES) + ([added] if added else [])
        figures = evaluate(names, fit, seeds, report)
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
        print(json.dumps({"signals": f"+{added}" if added else "the eleven", **shown}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
