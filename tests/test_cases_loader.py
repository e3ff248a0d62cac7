"""A malformed cases file is refused with an InputError that names the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cases import Evidence, load_cases
from rag.errors import InputError

FIRST = "a.txt"
SECOND = "b.txt"
# Curly quotes and a repeated sentence, like the real corpus, to exercise exact matching.
TEXTS = {
    FIRST: "The unit\u2019s mission began in August. It ended in December. Kim spoke.",
    SECOND: "Nine died. About 1,000 went. Nine died.",
}


def case(**overrides: object) -> str:
    base: dict[str, object] = {
        "id": "ok",
        "question": "When did it begin?",
        "kind": "answerable",
        "source": "first",
        "answers": ["August"],
        "evidence": [{"doc": FIRST, "quote": "The unit\u2019s mission began in August."}],
    }
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not None}, ensure_ascii=False)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_valid_file_loads_with_offsets(tmp_path: Path, corpus: Path) -> None:
    conflict = case(
        id="c",
        kind="conflict",
        source="both",
        answers=["August", "1,000"],
        answers_by_doc={FIRST: ["August"], SECOND: ["1,000"]},
        evidence=[
            {"doc": FIRST, "quote": "The unit\u2019s mission began in August."},
            {"doc": SECOND, "quote": "About 1,000 went."},
        ],
    )
    path = write(tmp_path, case(), "", "   ", conflict)
    first, second = load_cases(path, corpus)
    assert first.evidence == (Evidence(FIRST, "The unit\u2019s mission began in August.", 0, 35),)
    assert second.evidence[1] == Evidence(SECOND, "About 1,000 went.", 11, 28)
    assert second.answers_by_doc == ((FIRST, ("August",)), (SECOND, ("1,000",)))


BOTH_DOCS = [
    {"doc": FIRST, "quote": "The unit\u2019s mission began in August."},
    {"doc": SECOND, "quote": "About 1,000 went."},
]

BAD_LINES = [
    ("bad json", '{"id": "x", ', "invalid JSON"),
    ("not an object", "[1, 2]", "expected a JSON object"),
    ("missing field", case(question=None), "missing field(s): question"),
    ("unknown field", case(answer=["x"]), "unknown field(s): answer"),
    ("wrong type", case(answers="August"), "answers must be a list"),
    ("unknown kind", case(kind="maybe"), "unknown kind 'maybe'"),
    ("unknown source", case(source="third"), "unknown source 'third'"),
    ("unknown doc", case(evidence=[{"doc": "c.txt", "quote": "Kim spoke."}]), "unknown doc"),
    (
        "quote not found",
        case(evidence=[{"doc": FIRST, "quote": "The unit's mission began in August."}]),
        "quote not found in a.txt",
    ),
    (
        "quote found twice",
        case(source="second", evidence=[{"doc": SECOND, "quote": "Nine died."}]),
        "quote found more than once in b.txt",
    ),
    ("unanswerable with answers", case(kind="unanswerable", source="none"), "unanswerable"),
    ("answerable without evidence", case(evidence=[]), "needs at least one evidence"),
    (
        "source disagrees with evidence",
        case(source="second"),
        "source 'second' means evidence only from b.txt",
    ),
    ("both from one document", case(source="both"), "source 'both' needs evidence from two"),
    (
        "conflict without answers_by_doc",
        case(kind="conflict", source="both", evidence=BOTH_DOCS),
        "a conflict case needs answers_by_doc",
    ),
    (
        "answers are not the union of answers_by_doc",
        case(
            kind="conflict",
            source="both",
            answers=["August"],
            answers_by_doc={FIRST: ["August"], SECOND: ["1,000"]},
            evidence=BOTH_DOCS,
        ),
        "answers must be the union",
    ),
    (
        "answers_by_doc on an answerable case",
        case(answers_by_doc={FIRST: ["August"], SECOND: ["1,000"]}),
        "answers_by_doc is only for conflict cases",
    ),
]


@pytest.mark.parametrize(
    ("line", "message"), [(line, msg) for _, line, msg in BAD_LINES], ids=[n for n, *_ in BAD_LINES]
)
def test_a_bad_line_names_file_line_and_problem(
    tmp_path: Path, corpus: Path, line: str, message: str
) -> None:
    # The bad case sits on line 3, after a valid case and a blank line.
    path = write(tmp_path, case(id="good"), "", line)
    with pytest.raises(InputError) as caught:
        load_cases(path, corpus)
    assert str(caught.value).startswith("cases.jsonl line 3: ")
    assert message in str(caught.value)


def test_a_duplicate_id_names_both_lines(tmp_path: Path, corpus: Path) -> None:
    path = write(tmp_path, case(id="same"), case(id="other"), case(id="same"))
    with pytest.raises(InputError) as caught:
        load_cases(path, corpus)
    assert str(caught.value) == "cases.jsonl line 3: duplicate id 'same' (first on line 1)"


@pytest.mark.parametrize("content", ["", "\n\n   \n"], ids=["empty", "blank lines only"])
def test_a_file_without_cases_is_refused(tmp_path: Path, corpus: Path, content: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=r"^cases\.jsonl: no cases"):
        load_cases(path, corpus)


def test_a_missing_file_is_an_input_error(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_cases(tmp_path / "nope.jsonl", corpus)
