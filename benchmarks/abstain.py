"""Does the model know when the passages do not answer? Measured, not shipped.

A worked example whose passages do not answer the question, replied to with empty
evidence (`{"evidence": [], "answer": ""}`), is added to the prompt's examples; for each
answered question of a recording (benchmarks/external.py --record), the same passages the
product shows are put to the model and its probability of opening the evidence list empty
is read at the first position of its reply. A model that knew would give that probability
to the unanswerable questions and the wrong answers:

    python benchmarks/abstain.py reports/external/squad2-a-n200-s0-record/results.jsonl \\
        --limit 150 [--opening given]

`--opening given` gives the product's reply opening (prompts.REPLY_START, ending in "[")
and reads the probability of "]" next; `written` (the default) gives `{"evidence":` and
reads the probability of an empty list token ("[]", " []") against the rest. It prints
the AUC of the probability against right answers and against answerable questions, and
the five-fold cross-validated AUC of the logistic score without and with it (README
"Trust"). One model process; run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.verifier import auc, cross_validated_auc
from rag import prompts
from rag.signals import NAMES

UNANSWERED = (
    "Passages:\n"
    "[1] The bridge, which engineers said would take ‘at least a decade’ to build, "
    "opened in March after only four years of work.\n"
    "[2] Mayor Ana Ruiz called the project ‘a victory for the whole region,’ the city "
    "gazette reported.\n\n"
    "Question: Who designed the bridge?",
    '{"evidence": [], "answer": ""}',
)
OPENINGS = {"given": prompts.REPLY_START, "written": '{"evidence":'}


def p_empty(index: Any, question: str, opening: str, empty: np.ndarray) -> float:
    """The model's probability of an empty evidence list for the passages the product
    would show for `question`."""
    from llama_cpp import LogitsProcessorList

    from rag.answer import _evidence
    from rag.retrieve import rank_passages, retrieve

    s = index.settings
    qvec = index.embedder.embed([question])[0]
    hits = retrieve(question, qvec, index.sync(), s.k, index.bm25)
    spans = _evidence(index, hits)
    vectors = index.sentence_vectors(spans)
    shown = rank_passages(spans, vectors, qvec, s.max_passages, question, s.rerank_alpha)
    prompt, _ = prompts.fit(shown, question, s.n_ctx)
    generator = index.generator
    llm = generator._llm
    tokens = generator.tokens(list(prompt.messages))
    tokens += llm.tokenize(opening.encode("utf-8"), add_bos=False, special=False)
    seen: list[float] = []

    def first(_ids: Any, scores: np.ndarray) -> np.ndarray:
        if not seen:
            z = np.exp(scores - scores.max())
            seen.append(float(z[empty].sum() / z.sum()))
        return scores

    llm.create_completion(
        prompt=tokens,
        max_tokens=1,
        temperature=0.0,
        logits_processor=LogitsProcessorList([first]),
    )
    return seen[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recording", type=Path, help="a results.jsonl written with --record")
    p.add_argument("--limit", type=int, default=150, help="answered questions to probe")
    p.add_argument("--opening", choices=sorted(OPENINGS), default="written")
    args = p.parse_args(argv)
    # The example sits among the fixed examples, so it is in the cached prefix.
    # (Three examples where the product has two: this probe alone changes the prompt.)
    prompts.EXAMPLES = (prompts.EXAMPLES[0], UNANSWERED, *prompts.EXAMPLES[1:])  # type: ignore[assignment]
    from benchmarks.external import data_root
    from rag import open_index

    rows = [json.loads(line) for line in args.recording.open(encoding="utf-8")]
    set_name = rows[0]["set"]
    rows = [r for r in rows if not r["answer"]["abstained"]][: args.limit]
    index: Any = open_index(
        corpus=data_root() / set_name / "corpus",
        index=Path(__file__).resolve().parent.parent / "reports" / "external-index" / set_name,
    )
    index.sync()
    index.warm_up()
    llm = index.generator._llm
    opening = OPENINGS[args.opening]
    close = "]" if args.opening == "given" else "[]"
    empty = np.array(
        [
            t
            for t in range(llm.n_vocab())
            if llm.detokenize([t]).decode("utf-8", errors="replace").lstrip().startswith(close)
        ]
    )
    probs = np.array([p_empty(index, r["answer"]["question"], opening, empty) for r in rows])
    right = np.array([bool(r["score"]["correct"]) for r in rows])
    answerable = np.array([bool(r["score"]["answerable"]) for r in rows])
    signals = np.array([[r["signals"][n] for n in NAMES] for r in rows], dtype=float)
    result = {
        "questions": len(rows),
        "opening": args.opening,
        "p_empty_median": float(np.median(probs)),
        # A model that knew would give the wrong answers the higher probability.
        "auc_right_answers": auc(-probs, right),
        "auc_answerable": auc(-probs, answerable),
        "score_auc_cv": cross_validated_auc(signals, right),
        "score_with_p_empty_auc_cv": cross_validated_auc(
            np.hstack([signals, np.log(probs + 1e-12)[:, None]]), right
        ),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
