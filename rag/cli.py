"""The `rag` and `ask` commands. This is the only place (besides app.py) where errors
become messages and exit codes; `--help` imports nothing heavy."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import InputError, RagError

if TYPE_CHECKING:
    from rag.records import Answer

EXIT_USAGE = 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", type=Path, help="corpus folder (default: seeds/, env RAG_CORPUS)")
    p.add_argument("--index", type=Path, help="index folder (default: index/, env RAG_INDEX)")


def _answering(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("-k", type=int, help="chunks to retrieve (default 4, env RAG_K)")
    p.add_argument(
        "--model", type=Path,
        help="GGUF path, or 'qwen' (default), 'smollm2', 'gemma' (env RAG_MODEL)",
    )
    p.add_argument("--retrieval", choices=["hybrid", "dense"], help="default hybrid")


def _ask_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Answer a question from the corpus with exact citations, or refuse.",
    )
    p.add_argument("question", help="the question, or - to read one question per line from stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object per answer")
    _answering(p)
    return p


def _settings(args: argparse.Namespace) -> Any:
    from rag.settings import load_settings

    return load_settings(
        corpus=getattr(args, "corpus", None),
        index=getattr(args, "index", None),
        k=getattr(args, "k", None),
        model=getattr(args, "model", None),
        retrieval=getattr(args, "retrieval", None),
    )


def format_answer(answer: Answer) -> str:
    """Answer text, then a numbered Sources list with doc, range and quote."""
    lines = [answer.text]
    if answer.citations:
        lines += ["", "Sources:"]
        for n, c in enumerate(answer.citations, 1):
            quote = " ".join(c.quote.split())
            lines.append(f"[{n}] {c.doc} [{c.start}:{c.end}] \u201c{quote}\u201d")
    return "\n".join(lines)


def _run_ask(args: argparse.Namespace) -> int:
    from rag.models import resolve
    from rag.pipeline import Pipeline, check_question

    settings = _settings(args)
    if args.question != "-":
        check_question(args.question)  # fail before any model loads
    # A missing or broken model file is reported before minutes go into building an index.
    pipeline = Pipeline(replace(settings, model=resolve(settings.model)))
    questions = sys.stdin if args.question == "-" else [args.question]
    status = 0
    for line in questions:
        if args.question == "-" and not line.strip():
            continue
        try:
            answer = pipeline.ask(line)
        except InputError as exc:
            if args.question != "-":
                raise
            # In batch mode one bad line must not lose the answers to the others.
            print(f"error: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        else:
            print(format_answer(answer), flush=True)
            if args.question == "-":
                print()
    return status


def _run_index(args: argparse.Namespace) -> int:
    from rag.pipeline import index_corpus

    index_corpus(_settings(args))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from rag.eval_cli import run_eval

    return run_eval(args, _settings(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag", description="Cited question answering, offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_index = sub.add_parser("index", help="build the index from the corpus")
    _common(p_index)
    p_ask = sub.add_parser("ask", help="answer a question (same as the `ask` command)")
    p_ask.add_argument("question")
    p_ask.add_argument("--json", action="store_true")
    _answering(p_ask)
    p_eval = sub.add_parser("eval", help="run the regression suite and report metrics")
    p_eval.add_argument(
        "--cases", type=Path, help="cases file (default tests/regression/cases.jsonl)"
    )
    p_eval.add_argument("--json", action="store_true", help="print one JSON object")
    p_eval.add_argument("--report", type=Path, help="write report.md and metrics.png here")
    p_eval.add_argument("--no-gate", action="store_true", help="exit 0 even below thresholds")
    _answering(p_eval)
    args = parser.parse_args(argv)
    handlers = {"index": _run_index, "ask": _run_ask, "eval": _run_eval}
    return _guard(lambda: handlers[args.command](args))


def ask_main(argv: list[str] | None = None) -> int:
    args = _ask_parser("ask").parse_args(argv)
    return _guard(lambda: _run_ask(args))


def _guard(run: Any) -> int:
    """Every expected failure is one line on stderr and exit code 2, never a traceback."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # The query embedder's matrices are small; BLAS threads only fight llama.cpp's for the
    # two cores (a MiniLM query took 430 ms with 2 threads under load, 40 ms with one).
    # Set before numpy loads, which nothing on the path to here has done.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        return int(run())
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
