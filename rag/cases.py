"""The regression cases file: one JSON object per line, each a question with the answers
we accept and the exact source sentences that prove them.

Every quote is located in its document when the file loads, so a case whose evidence drifts
from the corpus fails loudly here instead of silently scoring zero in the evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.corpus import load_corpus
from rag.errors import InputError

KINDS = ("answerable", "unanswerable", "conflict")
# "first" and "second" name the corpus documents in sorted order; "none" is for unanswerable.
SOURCES = ("first", "second", "both", "none")
REQUIRED = ("id", "question", "kind", "source", "answers", "evidence")
OPTIONAL = ("answers_by_doc", "tags")


@dataclass(frozen=True)
class Evidence:
    """An expected span: `corpus_text[doc][start:end] == quote`."""

    doc: str
    quote: str
    start: int
    end: int


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    kind: str
    source: str
    answers: tuple[str, ...]
    # For conflict cases: (doc, acceptable strings for that doc's version) pairs.
    answers_by_doc: tuple[tuple[str, tuple[str, ...]], ...]
    evidence: tuple[Evidence, ...]
    tags: tuple[str, ...] = ()


class _LineError(Exception):
    """A problem with one line; load_cases adds the file name and line number."""


def read_texts(corpus: Path) -> dict[str, str]:
    """Document name -> text, decoded exactly as the index reads it, so offsets agree."""
    docs, _ = load_corpus(corpus)
    return {d.name: d.text for d in docs}


def load_cases(path: Path, corpus: Path) -> list[Case]:
    """Parse and validate every case; raises InputError naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"cases file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not valid UTF-8 (byte {exc.start})") from None
    texts = read_texts(corpus)
    cases: list[Case] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = _parse(line, texts)
            if case.id in first_line:
                raise _LineError(f"duplicate id {case.id!r} (first on line {first_line[case.id]})")
        except _LineError as exc:
            raise InputError(f"{path.name} line {number}: {exc}") from None
        first_line[case.id] = number
        cases.append(case)
    if not cases:
        raise InputError(f"{path.name}: no cases (the file is empty); add one JSON object a line")
    return cases


def _parse(line: str, texts: dict[str, str]) -> Case:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _LineError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise _LineError("expected a JSON object")
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise _LineError(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise _LineError(f"unknown field(s): {', '.join(unknown)}")
    case_id = _text(raw, "id")
    kind = _text(raw, "kind")
    source = _text(raw, "source")
    if kind not in KINDS:
        raise _LineError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if source not in SOURCES:
        raise _LineError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    answers = _strings(raw["answers"], "answers")
    by_doc = _answers_by_doc(raw.get("answers_by_doc"), texts)
    evidence = tuple(_evidence(item, texts) for item in _list(raw["evidence"], "evidence"))
    tags = _strings(raw.get("tags", []), "tags")
    case = Case(case_id, _text(raw, "question"), kind, source, answers, by_doc, evidence, tags)
    _check_consistent(case, sorted(texts))
    return case


def _check_consistent(case: Case, doc_names: list[str]) -> None:
    """Rules that tie the fields together, so a mislabelled case cannot load."""
    docs = {ev.doc for ev in case.evidence}
    if case.kind == "unanswerable":
        if case.answers or case.evidence or case.answers_by_doc:
            raise _LineError("an unanswerable case has empty answers and evidence")
        if case.source != "none":
            raise _LineError("an unanswerable case has source 'none'")
        return
    if not case.answers:
        raise _LineError(f"a {case.kind} case needs at least one acceptable answer")
    if not case.evidence:
        raise _LineError(f"a {case.kind} case needs at least one evidence quote")
    if case.source == "none":
        raise _LineError(f"a {case.kind} case cannot have source 'none'")
    if case.source == "both" and len(docs) < 2:
        raise _LineError("source 'both' needs evidence from two documents")
    if case.source in ("first", "second"):
        position = SOURCES.index(case.source)
        expected = doc_names[position] if position < len(doc_names) else None
        if docs != {expected}:
            raise _LineError(f"source {case.source!r} means evidence only from {expected}")
    if case.kind == "conflict":
        if len(case.answers_by_doc) < 2:
            raise _LineError("a conflict case needs answers_by_doc for at least two documents")
        if {doc for doc, _ in case.answers_by_doc} - docs:
            raise _LineError("every document in answers_by_doc needs an evidence quote")
        union = {a for _, group in case.answers_by_doc for a in group}
        if union != set(case.answers):
            raise _LineError("answers must be the union of the answers_by_doc lists")
    elif case.answers_by_doc:
        raise _LineError("answers_by_doc is only for conflict cases")


def _evidence(item: Any, texts: dict[str, str]) -> Evidence:
    if not isinstance(item, dict) or set(item) != {"doc", "quote"}:
        raise _LineError('each evidence item is an object {"doc": ..., "quote": ...}')
    doc = _text(item, "doc")
    quote = _text(item, "quote")
    if doc not in texts:
        raise _LineError(f"unknown doc {doc!r}; the corpus has {', '.join(sorted(texts))}")
    text = texts[doc]
    start = text.find(quote)
    if start < 0:
        raise _LineError(f"quote not found in {doc}: {_clip(quote)}")
    # Searching from start + 1 also catches overlapping repeats, which str.count misses.
    if text.find(quote, start + 1) >= 0:
        raise _LineError(f"quote found more than once in {doc}; lengthen it: {_clip(quote)}")
    return Evidence(doc=doc, quote=quote, start=start, end=start + len(quote))


def _answers_by_doc(value: Any, texts: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _LineError("answers_by_doc must be an object mapping doc -> list of strings")
    pairs = []
    for doc, group in value.items():
        if doc not in texts:
            raise _LineError(f"unknown doc {doc!r} in answers_by_doc")
        strings = _strings(group, f"answers_by_doc[{doc!r}]")
        if not strings:
            raise _LineError(f"answers_by_doc[{doc!r}] is empty")
        pairs.append((doc, strings))
    return tuple(pairs)


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _LineError(f"{key} must be a non-empty string")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise _LineError(f"{name} must be a list")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    items = _list(value, name)
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise _LineError(f"{name} must hold only non-empty strings")
    return tuple(items)


def _clip(quote: str, limit: int = 60) -> str:
    shown = quote if len(quote) <= limit else quote[: limit - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)
