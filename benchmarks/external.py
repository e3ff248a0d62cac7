"""The external evaluation runner: questions of SQuAD 2.0 or RAMDocs, asked through the
product's public path over an index of that set's corpus, scored by rag.external_*.

    .venv/bin/python benchmarks/external.py --set squad2/c --sample 300 --seed 0 \
        [--out reports/external/] [--index DIR] [--json]
    .venv/bin/python benchmarks/external.py --rescore reports/external/<run>/results.jsonl

Writes `<out>/<set>-n<N>-s<seed>/results.jsonl` (one line per question: the case id, the
`ask --json` answer dict, its score and any `signals` the answer carries), then
`summary.json`; `--rescore` recomputes the summary from a results file without the model.
The data is read in place from ../shared/external (or $RAG_EXTERNAL); when it is absent
the runner says so in one line and exits 0. Progress goes to stderr, one line a question.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

# Run as a script, only benchmarks/ is on sys.path; the suite imports itself as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.calibrate import RECORD
from rag.errors import InputError, RagError
from rag.external import DEFAULT_ROOT, answer_text, load_texts, read_jsonl, sample
from rag.external_ramdocs import RamCase, RamScore, load_ramdocs, score_ramdocs, summarize_ramdocs
from rag.external_squad import (
    SquadCase,
    SquadScore,
    load_squad,
    risk_coverage,
    score_squad,
    summarize_squad,
)

if TYPE_CHECKING:
    from rag.index import OpenIndex

REPO = Path(__file__).resolve().parent.parent
KINDS = ("squad2", "ramdocs")
# Rows of the printed risk–coverage table; summary.json holds every threshold.
RISK_ROWS = 10
Case = SquadCase | RamCase
Score = SquadScore | RamScore


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def data_root() -> Path:
    """Where squad2/ and ramdocs/ live: $RAG_EXTERNAL, else ../shared/external."""
    return Path(os.environ.get("RAG_EXTERNAL") or DEFAULT_ROOT)


class Asker(Protocol):
    def ask(self, question: str) -> Any: ...


# The product's public path; `_open` is the one line to change when that path does.
def _open(corpus: Path, index: Path, **overrides: Any) -> OpenIndex:
    from rag import open_index

    return open_index(corpus=corpus, index=index, **overrides)


def _ready(idx: OpenIndex) -> None:
    """Build or reuse the index (the product decides by its manifest), then load the models.
    The index folder is a cache, so one that is damaged or was built with other settings is
    rebuilt with the product's own indexing instead of stopping the run."""
    from rag.errors import StoreError
    from rag.index import build

    try:
        idx.sync()
    except StoreError as exc:
        log(f"rebuilding the index cache: {exc}")
        build(idx.settings, log=log)
    idx.warm_up()


def load_set(folder: Path, kind: str) -> list[Case]:
    """The cases of one set folder, by its kind (squad2 or ramdocs)."""
    return list(load_squad(folder) if kind == "squad2" else load_ramdocs(folder))


def score(case: Case, answer: Mapping[str, Any], texts: Mapping[str, str]) -> Score:
    """Score one answer dict with its set's scorer."""
    if isinstance(case, SquadCase):
        return score_squad(case, answer, texts)
    return score_ramdocs(case, answer, texts)


def signals_of(answer: Any, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer's decision signals when it carries any (JSON key or attribute), else None."""
    raw = data["signals"] if "signals" in data else getattr(answer, "signals", None)
    if raw is None:
        return None
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        return dataclasses.asdict(raw)
    return dict(raw)


def _verdict(s: Score) -> str:
    if s.refused:
        return "refused"
    if isinstance(s, SquadScore):
        return f"F1 {s.f1:.2f}" + ("" if s.answerable else " (unanswerable)")
    return f"gold {s.gold_stated}/{s.n_gold}" + (" WRONG" if s.wrong_stated else "")


def ask_all(
    asker: Asker,
    set_name: str,
    cases: Sequence[Case],
    texts: Mapping[str, str],
    out: IO[str],
) -> tuple[list[Score], list[dict[str, Any]]]:
    """Ask every case, write one JSON line per question as it is answered, and score;
    returns the scores and the answer dicts."""
    scores, answers = [], []
    for n, case in enumerate(cases, 1):
        answer = asker.ask(case.question)
        data = answer.to_json()
        s = score(case, data, texts)
        line = {
            "set": set_name,
            "id": case.id,
            "answer": data,
            "score": s.to_json(),
            "signals": signals_of(answer, data),
        }
        # Flushed per line, so an interrupted run still rescores what it finished.
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        out.flush()
        scores.append(s)
        answers.append(data)
        said = " ".join(answer_text(data).split())[:60]
        log(f"[{n}/{len(cases)}] {case.id} {s.latency:.1f}s {_verdict(s)} | {said}")
    return scores, answers


def _grid(points: Sequence[Any], rows: int) -> list[Any]:
    """At most `rows` points, evenly spread and always keeping the first and the last."""
    if len(points) <= rows:
        return list(points)
    step = (len(points) - 1) / (rows - 1)
    return [points[round(i * step)] for i in range(rows)]


def summarize(scores: Sequence[Score]) -> tuple[dict[str, float], list[dict[str, float]]]:
    """The set's summary and, for SQuAD, the full risk–coverage table."""
    squad = [s for s in scores if isinstance(s, SquadScore)]
    if squad:
        return summarize_squad(squad), [dataclasses.asdict(p) for p in risk_coverage(squad)]
    return summarize_ramdocs([s for s in scores if isinstance(s, RamScore)]), []


def _policy(answers: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """The policy names the answers report, and the values of the policy the run used."""
    return {"names": sorted({str(a.get("policy", "")) for a in answers}), "values": dict(values)}


def _figure(name: str, value: float) -> str:
    # Counts print as whole numbers; shares, seconds and characters with three decimals.
    counted = name == "n" or name.startswith("n_") or name == "gold_without_doc"
    return f"{value:.0f}" if counted else f"{value:.3f}"


def render(report: Mapping[str, Any]) -> str:
    """The report as plain text: what ran, with which settings and policy, and the figures."""
    settings = ", ".join(f"{k}={v}" for k, v in report["settings"].items())
    lines = [
        f"set {report['set']}: {report['questions']} questions "
        f"(sample {report.get('sample')}, seed {report.get('seed')})",
        f"settings: {settings}",
        f"policy: {json.dumps(report['policy'])}",
        "",
    ]
    width = max(len(k) for k in report["summary"])
    lines += [f"{k.ljust(width)}  {_figure(k, v)}" for k, v in report["summary"].items()]
    if report["risk_coverage"]:
        lines += ["", "risk–coverage (answer only when confidence >= threshold):"]
        lines.append("threshold  answered  coverage  precision  squad2_f1")
        for p in _grid(report["risk_coverage"], RISK_ROWS):
            lines.append(
                f"{p['threshold']:9.4f}  {p['answered']:8d}  {p['coverage']:8.3f}  "
                f"{p['precision']:9.3f}  {p['squad2_f1']:9.3f}"
            )
    elif report["summary"].get("coverage"):
        lines.append("\nrisk–coverage: no answer carries a confidence score")
    return "\n".join(lines)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Index, ask and score one set; write results.jsonl and summary.json; return the report."""
    kind = args.set.split("/")[0]
    folder = root / args.set
    cases = sample(load_set(folder, kind), args.sample, args.seed)
    texts = load_texts(folder / "corpus")
    index = args.index or REPO / "reports" / "external-index" / args.set
    drawn = "all" if args.sample is None else args.sample
    tag = ("-record" if args.record else "") + (f"-{args.tag}" if args.tag else "")
    out = args.out / f"{args.set.replace('/', '-')}-n{drawn}-s{args.seed}{tag}"
    out.mkdir(parents=True, exist_ok=True)
    # Recording answers every grounded draft and keeps its signals, for calibrate.py.
    overrides = {**(RECORD if args.record else {}), **dict(args.policy)}
    idx = _open(folder / "corpus", index, **overrides)
    _ready(idx)
    started = time.perf_counter()
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
        scores, answers = ask_all(idx, args.set, cases, texts, fh)
    log(f"{len(cases)} questions in {time.perf_counter() - started:.0f} s; results in {out}")
    summary, risk = summarize(scores)
    report = {
        "set": args.set,
        "sample": args.sample,
        "seed": args.seed,
        "questions": len(cases),
        # The policy is a field of the settings; it is reported once, under "policy".
        "settings": {k: v for k, v in dataclasses.asdict(idx.settings).items() if k != "policy"},
        "policy": _policy(answers, idx.policy.describe()),
        "summary": summary,
        "risk_coverage": risk,
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def _policy_field(text: str) -> tuple[str, object]:
    """FIELD=VALUE for a policy field, the value parsed as the field's default's type."""
    from rag.policy import RULES

    name, sep, raw = text.partition("=")
    default = getattr(RULES, name, None) if sep else None
    # A list of names (vetoes=names_unseen,negation_unmatched; empty for none) is settable;
    # a fitted regression's rows are not.
    names = {f.name for f in dataclasses.fields(RULES) if f.type == "tuple[str, ...]"}
    if name in names:
        from rag.signals import LACKS

        values = tuple(v for v in raw.split(",") if v)
        unknown = [v for v in values if v not in LACKS]
        if unknown:
            raise argparse.ArgumentTypeError(f"{name}: not one of {', '.join(LACKS)}: {unknown[0]}")
        return name, values
    if default is None or isinstance(default, tuple):
        raise argparse.ArgumentTypeError(f"not a settable policy field: {text!r}")
    try:
        if isinstance(default, bool):
            if raw not in ("true", "false"):
                raise ValueError(raw)
            return name, raw == "true"
        return name, type(default)(raw)
    except ValueError:
        message = f"{name} takes a {type(default).__name__}, not {raw!r}"
        raise argparse.ArgumentTypeError(message) from None


def _recorded_set(path: Path) -> str:
    lines = read_jsonl(path)
    if not lines:
        raise InputError(f"{path} holds no results")
    return str(lines[0]["set"])


def rescore(path: Path, root: Path) -> dict[str, Any]:
    """Recompute every score and the summary from a results file, against the current data."""
    lines = read_jsonl(path)
    set_name = _recorded_set(path)
    cases = {c.id: c for c in load_set(root / set_name, set_name.split("/")[0])}
    unknown = [line["id"] for line in lines if line["id"] not in cases]
    if unknown:
        raise InputError(f"{path}: ids not in {set_name}: {', '.join(unknown[:5])}")
    texts = load_texts(root / set_name / "corpus")
    scores = [score(cases[line["id"]], line["answer"], texts) for line in lines]
    summary, risk = summarize(scores)
    ran = path.with_name("summary.json")
    before = json.loads(ran.read_text()) if ran.exists() else {}
    return before | {
        "set": set_name,
        "questions": len(lines),
        "settings": before.get("settings", {}),
        "policy": _policy(
            [line["answer"] for line in lines], before.get("policy", {}).get("values") or {}
        ),
        "summary": summary,
        "risk_coverage": risk,
    }


def _set_name(value: str) -> str:
    if value.split("/")[0] not in KINDS or value.count("/") != 1:
        raise argparse.ArgumentTypeError(f"{value!r}: use squad2/a|b|c or ramdocs/a|b")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--set", type=_set_name, help="squad2/a|b|c or ramdocs/a|b")
    what.add_argument("--rescore", type=Path, metavar="FILE", help="a results.jsonl to rescore")
    parser.add_argument("--sample", type=int, default=None, help="questions to draw (all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "external")
    parser.add_argument("--index", type=Path, default=None, help="index cache folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--record",
        action="store_true",
        help="answer every grounded draft (no score, no type veto), for benchmarks/calibrate.py",
    )
    parser.add_argument(
        "--policy",
        type=_policy_field,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="run with one policy field changed (repeatable), e.g. max_sides=4",
    )
    parser.add_argument("--tag", default="", help="suffix for the results folder")
    args = parser.parse_args(argv)
    root = data_root()
    try:
        set_name = args.set or _recorded_set(args.rescore)
        if not (root / set_name / "cases.jsonl").is_file():
            log(f"skipped: no external data at {root / set_name} (set RAG_EXTERNAL)")
            return 0
        report = rescore(args.rescore, root) if args.rescore else run(args, root)
    except (RagError, OSError) as exc:
        log(f"error: {exc}")
        return 2
    print(json.dumps(report, default=str) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
