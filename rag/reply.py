"""The model's reply format, read in one place.

The model replies with one JSON object: `"evidence"`, a list of the numbers of the passages
it answers from, and `"answer"`, a short string copied from them (prompts.ANSWER_SCHEMA
states it for the grammar, the worked examples show it to the model); a list of strings,
which the model writes for "Which two ...?", is read as one phrase. The keys may come
in either order. The reply is read twice: `partial_answer` while it streams, to show the
answer as it grows, and `parse` once it has ended. Neither trusts it to be complete or
valid JSON: unconstrained generation stops at the first "}" (prompts.ANSWER_STOP), so a
finished reply may lack its closing brace; it stops at max_tokens, mid-string or mid-list;
and a base model writes raw line breaks inside strings."""

from __future__ import annotations

import json
import re

from rag.records import Draft

_ANSWER_OPEN = re.compile(r'"answer"\s*:\s*"')
# A closed answer string, escapes included, in a reply that is not valid JSON.
_ANSWER_STRING = re.compile(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)"')
# A closed list of answer strings ("Which two courts ...?"), in a reply that is not valid JSON.
_ANSWER_LIST = re.compile(r'"answer"\s*:\s*(\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])')
# The evidence list as far as it got: "[1, 2" of a reply cut off mid-list still counts.
_EVIDENCE_LIST = re.compile(r'"evidence"\s*:\s*\[([\d,\s]*)')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_LOW_SURROGATE = re.compile(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def parse(raw: str) -> Draft:
    """The answer text and evidence numbers of a finished reply; tolerant of truncation."""
    answer: object
    evidence: object
    try:
        data = json.loads(raw)
        answer = data.get("answer", "") if isinstance(data, dict) else ""
        evidence = data.get("evidence", []) if isinstance(data, dict) else []
    except ValueError:
        answer, evidence = _salvage(raw)
    if isinstance(answer, list):
        answer = _listed(answer)
    if not isinstance(answer, str):
        answer = ""
    if not isinstance(evidence, list):
        evidence = []
    # bool is an int subclass: `true` is not a passage number.
    numbers = [e for e in evidence if isinstance(e, int) and not isinstance(e, bool)]
    return Draft(answer=" ".join(answer.split()), evidence=tuple(dict.fromkeys(numbers)))


def _listed(items: list[object]) -> str:
    """A list answer as one phrase, "A, B and C", repeats dropped. Asked "Which two ...?"
    the model lists its answer although the format asks for a string; a list holding
    anything but strings is no answer."""
    strings = [i for i in items if isinstance(i, str)]
    if len(strings) < len(items):
        return ""
    names = list(dict.fromkeys(" ".join(i.split()) for i in strings if i.strip()))
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def _salvage(raw: str) -> tuple[str, list[int]]:
    """What a reply cut off by max_tokens still says: the answer if its string (or list of
    strings) closed, and the evidence numbers written so far."""
    m = _ANSWER_STRING.search(raw)
    listed = None if m else _ANSWER_LIST.search(raw)
    try:
        # strict=False: a raw line break inside the string is a base model's habit.
        if m:
            answer = json.loads(f'"{m.group(1)}"', strict=False)
        else:
            answer = _listed(json.loads(listed.group(1), strict=False)) if listed else ""
    except ValueError:
        answer = ""
    m2 = _EVIDENCE_LIST.search(raw)
    evidence = [int(x) for x in re.findall(r"\d+", m2.group(1))] if m2 else []
    return answer, evidence


def partial_answer(raw: str) -> str:
    """The value of "answer" as far as the model's unfinished JSON spells it out."""
    m = _ANSWER_OPEN.search(raw)
    if not m:
        return ""
    out: list[str] = []
    i = m.end()
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        # An escape may be cut off mid-way; stop before it and pick it up next delta.
        if i + 1 >= len(raw):
            break
        code = raw[i + 1]
        if code != "u":
            out.append(_ESCAPES.get(code, code))
            i += 2
            continue
        digits = raw[i + 2 : i + 6]
        if len(digits) < 4 or not _HEX4.fullmatch(digits):
            break
        point = int(digits, 16)
        i += 6
        if 0xD800 <= point < 0xDC00:  # a surrogate pair needs its low half too
            low = raw[i : i + 6]
            if not _LOW_SURROGATE.fullmatch(low):
                break
            point = 0x10000 + ((point - 0xD800) << 10) + (int(low[2:], 16) - 0xDC00)
            i += 6
        out.append(chr(point))
    return "".join(out)
