"""Where each right answer that a RAMDocs run did not state was lost, counted by stage.

    .venv/bin/python benchmarks/ramdocs_losses.py \\
        --run reports/external/conf8/ramdocs-a-n60-s0/results.jsonl --set a [--depth 8]

Reads a run of benchmarks/external.py (its answers record every other source asked) and
the set's cases (each document's role and answer). It searches the run's index again to see
how deep the documents giving each missing answer sit. No model is called. The stages, in
the order they are tested:

- refused: the whole question was refused;
- no giving document: no document's answer is that answer (RamCase.givers);
- giver not retrieved: no giving document is among the top `--depth` chunks;
- giver cited, another value stated: the answer read a giving document, but stated
  another value from it (a wrong or partial extraction), or cited it as agreeing;
- giver asked, another value: the document was asked on its own and gave another value;
- giver asked, not accepted: it gave the answer, and the calibrated decision refused it;
- giver asked, dropped in merge: accepted, then left out by rag.conflicts.merge;
- giver retrieved, not asked: among the top `--depth` chunks, but no call was spent on
  it (a higher-ranked source took the turn, or it fell under a rule of rag.conflicts).

Use it on the fitting set (a) to choose what to work on next, not to tune on b.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.errors import RagError
from rag.external import claims, read_jsonl, states
from rag.external_ramdocs import load_ramdocs

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "external" / "ramdocs"

STAGES = (
    "refused",
    "no giving document",
    "giver not retrieved",
    "giver cited, another value stated",
    "giver asked, another value",
    "giver asked, not accepted",
    "giver asked, dropped in merge",
    "giver retrieved, not asked",
)


def lost_at(
    gold: str,
    answer: Mapping[str, Any],
    givers: Collection[str],
    retrieved: Collection[str],
) -> str | None:
    """The stage where `gold` was lost (one of STAGES), or None when the answer states it.
    `givers` are the documents that give it (RamCase.givers); `retrieved` the documents
    of the top chunks of the question's search."""
    # "Stated" as the scorer reads it (rag.external_ramdocs.score_ramdocs).
    if states(gold, " ".join(c.text for c in claims(answer))):
        return None
    if answer.get("abstained"):
        return "refused"
    if not givers:
        return "no giving document"
    if not set(givers) & set(retrieved):
        return "giver not retrieved"
    if set(givers) & {c["doc"] for c in answer.get("citations") or []}:
        return "giver cited, another value stated"
    asked = [a for a in answer.get("asked") or [] if a["doc"] in givers]
    if asked:
        if not any(states(gold, a.get("value") or "") for a in asked):
            return "giver asked, another value"
        if not any(a.get("accepted") for a in asked if states(gold, a.get("value") or "")):
            return "giver asked, not accepted"
        return "giver asked, dropped in merge"
    return "giver retrieved, not asked"


def losses(run: Path, name: str, depth: int) -> tuple[int, Counter[str]]:
    """Right answers in the run's questions, and where those not stated were lost."""
    from rag import open_index
    from rag.retrieve import retrieve

    cases = {c.id: c for c in load_ramdocs(SHARED / name)}
    # The index benchmarks/external.py built for this set; built here if it is missing.
    index = open_index(
        corpus=SHARED / name / "corpus",
        index=REPO / "reports" / "external-index" / "ramdocs" / name,
    )
    opened = index.sync()
    counts: Counter[str] = Counter()
    total = 0
    for row in read_jsonl(run):
        case, answer = cases[row["id"]], row["answer"]
        question = answer["question"]
        hits = retrieve(question, index.embedder.embed([question])[0], opened, depth, index.bm25)
        retrieved = {h.chunk.doc for h in hits}
        for gold in case.gold_answers:
            total += 1
            stage = lost_at(gold, answer, case.givers(gold), retrieved)
            if stage:
                counts[stage] += 1
    return total, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a RAMDocs results.jsonl")
    parser.add_argument("--set", choices=("a", "b"), required=True)
    parser.add_argument("--depth", type=int, default=8, help="chunks searched (side_depth)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    folder = SHARED / args.set
    for path in (args.run, folder / "cases.jsonl", folder / "corpus"):
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    if not args.run.is_file():
        print(f"error: {args.run} is a folder; give its results.jsonl", file=sys.stderr)
        return 2
    try:
        total, counts = losses(args.run, args.set, args.depth)
    except (RagError, KeyError) as exc:
        print(f"error: {args.run}: {exc}", file=sys.stderr)
        return 2
    missing = sum(counts.values())
    if args.json:
        print(json.dumps({"right_answers": total, "missing": missing, "stages": dict(counts)}))
        return 0
    print(f"{total} right answers, {missing} not stated ({args.run})")
    print("| stage | right answers lost | share of those lost |\n|---|---|---|")
    for stage in STAGES:
        if counts[stage]:
            print(f"| {stage} | {counts[stage]} | {counts[stage] / missing:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
