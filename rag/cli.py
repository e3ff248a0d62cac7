"""The `rag` and `ask` commands. This is the only place (besides app.py) where errors
become messages and exit codes; `--help` imports nothing heavy."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rag.errors import InputError, RagError

if TYPE_CHECKING:
    from rag.records import Answer
    from rag.settings import Settings

EXIT_USAGE = 2
# C0 and C1 control characters, except tab and newline, are shown as visible escapes in
# text meant for a terminal: a document or file name holding "\x1b]0;…\x07" must not
# retitle the window or clear the screen.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.pop(ord("\t"))
_CONTROL_KEEP_NEWLINE = dict(_CONTROL)
_CONTROL_KEEP_NEWLINE.pop(ord("\n"))


def visible(text: str, newlines: bool = False) -> str:
    """Text safe to print to a terminal: control characters as `\\xNN` escapes."""
    return text.translate(_CONTROL_KEEP_NEWLINE if newlines else _CONTROL)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", type=Path, help="corpus folder (default: seeds/, env RAG_CORPUS)")
    p.add_argument("--index", type=Path, help="index folder (default: index/, env RAG_INDEX)")
    p.add_argument(
        "--store",
        help="where the index lives: faiss (default, the --index folder), FILE.db (embedded "
        "Milvus Lite) or http://HOST:PORT (a Milvus server; token in RAG_MILVUS_TOKEN); "
        "env RAG_STORE",
    )


def _answering(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("-k", type=int, help="chunks to retrieve (default 4, env RAG_K)")
    p.add_argument(
        "--model",
        type=Path,
        help="GGUF path, or qwen (default), qwen1.5b, smollm2, gemma (env RAG_MODEL)",
    )
    p.add_argument(
        "--retrieval", choices=["hybrid", "dense"], help="default dense (env RAG_RETRIEVAL)"
    )


def _ask_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", help="the question, or - to read one question per line from stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object per answer")
    _answering(p)


def _settings(args: argparse.Namespace) -> Settings:
    from rag.settings import load_settings

    return load_settings(
        corpus=getattr(args, "corpus", None),
        index=getattr(args, "index", None),
        store=getattr(args, "store", None),
        k=getattr(args, "k", None),
        model=getattr(args, "model", None),
        retrieval=getattr(args, "retrieval", None),
    )


def format_answer(answer: Answer) -> str:
    """Answer text, then a numbered Sources list: doc, page, heading, range and quote."""
    lines = [visible(answer.text)]
    if answer.citations:
        lines += ["", "Sources:"]
        for n, c in enumerate(answer.citations, 1):
            quote = " ".join(c.quote.split())
            where = [visible(c.doc)]
            if c.page is not None:
                where.append(f"p. {c.page}")
            if c.heading:
                where.append(f"§ {visible(' '.join(c.heading.split()))}")
            lines.append(f"[{n}] {', '.join(where)} [{c.start}:{c.end}] “{visible(quote)}”")
    return "\n".join(lines)


def _questions(arg: str) -> Iterator[tuple[int, str | None]]:
    """(line number, question) pairs; in batch mode a line that is not valid UTF-8 comes as
    None, so it is reported alone and the other lines are still answered."""
    if arg != "-":
        yield 0, arg
        return
    for number, raw in enumerate(sys.stdin.buffer, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None
            continue
        if line.strip():
            yield number, line


def _run_ask(args: argparse.Namespace) -> int:
    from rag.decide import check_question
    from rag.index import OpenIndex
    from rag.models import resolve

    settings = _settings(args)
    batch = args.question == "-"
    if not batch:
        check_question(args.question, settings.policy)  # fail before any model loads
    # A missing or broken model file is reported before minutes go into building an index.
    opened = OpenIndex(replace(settings, model=resolve(settings.model, settings.model_cache)))
    status = 0
    for number, line in _questions(args.question):
        try:
            if line is None:
                raise InputError("the line is not valid UTF-8")
            answer = opened.ask(line)
        except InputError as exc:
            if not batch:
                raise
            # In batch mode one bad line must not lose the answers to the others.
            print(f"error: line {number}: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        else:
            print(format_answer(answer), flush=True)
            if batch:
                print()
    return status


def _run_index(args: argparse.Namespace) -> int:
    from rag.index import build

    settings = _settings(args)
    if args.from_index is not None:
        from rag.sync import copy_index

        if settings.store == "faiss":
            raise InputError("--from-index copies a FAISS index into a Milvus --store")
        copy_index(settings, args.from_index)
        return 0
    build(settings)
    return 0


def _run_text(args: argparse.Namespace) -> int:
    from rag.index import OpenIndex

    text = OpenIndex(_settings(args)).text(args.doc)
    sys.stdout.write(text if args.raw else visible(text, newlines=True))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from rag.eval_cli import run_eval

    return run_eval(args, _settings(args))


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="rag", description="Cited question answering, offline.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p_index = sub.add_parser("index", help="build the index from the corpus")
    _common(p_index)
    p_index.add_argument(
        "--from-index",
        type=Path,
        metavar="DIR",
        help="copy the FAISS index in DIR into the --store given, without embedding again",
    )
    p_ask = sub.add_parser("ask", help="answer a question (same as the `ask` command)")
    _ask_arguments(p_ask)
    p_text = sub.add_parser(
        "text", help="print a document's text exactly as citations index it (text[start:end])"
    )
    p_text.add_argument("doc", help="the document's name, as citations give it")
    p_text.add_argument("--raw", action="store_true", help="print control characters as they are")
    _common(p_text)
    p_eval = sub.add_parser("eval", help="run the regression suite and report metrics")
    p_eval.add_argument(
        "--cases", type=Path, help="cases file (default tests/regression/cases.jsonl)"
    )
    p_eval.add_argument("--json", action="store_true", help="print one JSON object")
    p_eval.add_argument("--report", type=Path, help="write report.md and metrics.png here")
    p_eval.add_argument("--no-gate", action="store_true", help="exit 0 even below thresholds")
    _answering(p_eval)
    args = parser.parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "index": _run_index,
        "ask": _run_ask,
        "text": _run_text,
        "eval": _run_eval,
    }
    return _guard(lambda: handlers[args.command](args))


def ask_main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="ask", description="Answer a question from the corpus with exact citations, or refuse."
    )
    _ask_arguments(parser)
    args = parser.parse_args(argv)
    return _guard(lambda: _run_ask(args))


def _guard(run: Callable[[], int]) -> int:
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
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
