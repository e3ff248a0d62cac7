"""Would a yes/no verifier make the calibrated score better? Measured, not shipped.

For each answered question of a recording (benchmarks/external.py --record), a model is
asked whether the cited sentences themselves state the recorded answer to the question,
and its probability of "yes" is set beside the eleven signals of rag.signals:

    python benchmarks/verifier.py reports/external/squad2-a-n200-s0-record/results.jsonl \\
        --model qwen1.5b --limit 120

It prints the verifier's AUC alone and the five-fold cross-validated AUC of the logistic
score without and with it (README "Trust"). One model process; run it alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, only benchmarks/ is on sys.path; the suite imports itself as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.calibrate import fit_logistic
from rag.signals import NAMES

SYSTEM = "You check answers against a passage. Reply with one word: yes or no."
ASK = (
    "Passage: {passage}\n\nQuestion: {question}\nProposed answer: {answer}\n\n"
    "Does the passage itself state that this is the answer to this exact question? yes or no"
)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The probability that a right answer outscores a wrong one (ties count half)."""
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    above = (pos[:, None] > neg[None, :]).mean()
    return float(above + 0.5 * (pos[:, None] == neg[None, :]).mean())


def cross_validated_auc(x: np.ndarray, labels: np.ndarray, folds: int = 5) -> float:
    """AUC of the logistic score, each question scored by a fit that never saw it."""
    fold = np.random.default_rng(0).permutation(len(labels)) % folds
    out = np.zeros(len(labels))
    for f in range(folds):
        train, test = fold != f, fold == f
        mean, scale = x[train].mean(0), x[train].std(0) + 1e-9
        weights, intercept = fit_logistic((x[train] - mean) / scale, labels[train].astype(float))
        out[test] = (x[test] - mean) / scale @ weights + intercept
    return auc(out, labels)


def p_yes(llm: Any, row: dict[str, Any]) -> float:
    """The verifier's probability of "yes" against "no" for one recorded answer."""
    answer = row["answer"]
    passage = " ".join(c["quote"] for c in answer["citations"])
    value = " / ".join(s["text"] for s in answer.get("statements") or []) or answer["answer"]
    user = ASK.format(passage=passage, question=answer["question"], answer=value)
    reply = llm.create_chat_completion(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        max_tokens=1,
        temperature=0,
        logprobs=True,
        top_logprobs=20,
    )
    tops = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    yes = sum(math.exp(t["logprob"]) for t in tops if t["token"].strip().lower() == "yes")
    no = sum(math.exp(t["logprob"]) for t in tops if t["token"].strip().lower() == "no")
    return yes / (yes + no) if yes + no > 0 else 0.5


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recording", type=Path, help="a results.jsonl written with --record")
    p.add_argument("--model", default="qwen", help="qwen, qwen1.5b or a GGUF path")
    p.add_argument("--limit", type=int, default=120, help="answered questions to verify")
    args = p.parse_args(argv)
    from llama_cpp import Llama

    from rag.models import resolve
    from rag.settings import load_settings

    settings = load_settings()
    path = resolve(Path(args.model), settings.model_cache)
    # Log-probabilities need every position's logits; the prompts are short.
    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=2, logits_all=True, verbose=False)
    rows = [json.loads(line) for line in args.recording.open(encoding="utf-8")]
    rows = [r for r in rows if not r["answer"]["abstained"] and r["answer"]["citations"]]
    rows = rows[: args.limit]
    verdicts = np.array([p_yes(llm, r) for r in rows])
    labels = np.array([bool(r["score"]["correct"]) for r in rows])
    signals = np.array([[r["signals"][n] for n in NAMES] for r in rows], dtype=float)
    result = {
        "questions": len(rows),
        "correct_share": float(labels.mean()),
        "verifier_auc": auc(verdicts, labels),
        "score_auc_cv": cross_validated_auc(signals, labels),
        "score_with_verifier_auc_cv": cross_validated_auc(
            np.hstack([signals, verdicts[:, None]]), labels
        ),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
