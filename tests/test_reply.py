"""rag.reply: the model's JSON reply read finished (parse) and while it streams
(partial_answer), both tolerant of replies cut off by max_tokens."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.records import Draft
from rag.reply import parse, partial_answer


@pytest.mark.parametrize(
    ("raw", "answer", "evidence"),
    [
        ('{"answer": "About 1,000", "evidence": [1]}', "About 1,000", (1,)),
        ('{"evidence": [2], "answer": "four years"}', "four years", (2,)),
        # Repeats are dropped, order kept; numbers not shown are ground's job, not parse's.
        ('{"answer": "nine", "evidence": [2, 2, 9]}', "nine", (2, 9)),
        # Only real integers are passage numbers: not true, not "3".
        ('{"answer": "x", "evidence": [true, "3", 3]}', "x", (3,)),
        ('{"answer": "x", "evidence": 3}', "x", ()),
        ('{"answer": "x"}', "x", ()),
        ('{"answer": "  spaced \\n  out ", "evidence": []}', "spaced out", ()),
        # Stopped at "}" (prompts.ANSWER_STOP), so the closing brace is missing.
        ('{"evidence": [2], "answer": "four years"', "four years", (2,)),
        ('{"answer": "About 1,000", "evidence": [1, 3]', "About 1,000", (1, 3)),
        # Text after the object.
        ('{"answer": "x", "evidence": [1]} and more', "x", (1,)),
        # Cut off inside the evidence list: the numbers so far count.
        ('{"answer": "cut off", "evidence": [1, 2', "cut off", (1, 2)),
        ('{"evidence": [3, 1', "", (3, 1)),
        # Cut off inside the answer: nothing half-said is kept.
        ('{"answer": "never clos', "", ()),
        ('{"evidence": [2], "answer": "never clos', "", (2,)),
        ("not json at all", "", ()),
        ("", "", ()),
        ('{"answer": 5, "evidence": []}', "", ()),
        # A list of strings ("Which two courts ...?") is one phrase, in or out of valid JSON.
        (
            '{"answer": ["France", "Italy", "Belgium"], "evidence": [1]}',
            "France, Italy and Belgium",
            (1,),
        ),
        (
            '{"evidence": [1, 4], "answer": ["the Court", "national courts"]',
            "the Court and national courts",
            (1, 4),
        ),
        ('{"answer": ["Ford, GM"], "evidence": [2]', "Ford, GM", (2,)),
        ('{"answer": ["x", " x "], "evidence": [2]}', "x", (2,)),
        ('{"answer": ["q ] \\"r\\"", "s"], "evidence": [3]', 'q ] "r" and s', (3,)),
        # Not strings, empty, or cut off before it closed: no answer.
        ('{"answer": ["5", 4], "evidence": [1]', "", (1,)),
        ('{"answer": [], "evidence": [1]}', "", (1,)),
        ('{"answer": ["x", "cut', "", ()),
        ('{"answer": null, "evidence": [1]}', "", (1,)),
        ('["a list"]', "", ()),
        # A raw line break inside the string (a base model's habit) in a truncated reply.
        ('{"answer": "two\nlines", "evidence": [1', "two lines", (1,)),
        ('{"answer": "Kim\\u2019s unit", "evidence": [1', "Kim’s unit", (1,)),
        ('{"answer": "bad \\u12 escape", "evidence": [1]', "", (1,)),
    ],
)
def test_parse(raw: str, answer: str, evidence: tuple[int, ...]) -> None:
    assert parse(raw) == Draft(answer=answer, evidence=evidence)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ('{"ans', ""),
        ('{"answer": ', ""),
        ('{"answer": "', ""),
        ('{"answer": "About 1,', "About 1,"),
        ('{"answer": "About 1,000", "evid', "About 1,000"),
        ('{"answer": "About 1,000", "evidence": [1]}', "About 1,000"),
        ('{"answer":"a \\"quoted\\" word', 'a "quoted" word'),
        ('{"answer": "line\\', "line"),  # escape cut in half
        ('{"answer": "line\\nnext', "line\nnext"),
        ('{"answer": "Kim\\u2019', "Kim’"),
        ('{"answer": "Kim\\u20', "Kim"),  # \u escape cut in half
        ('{"answer": "smile \\ud83d', "smile "),  # surrogate pair cut in half
        ('{"answer": "smile \\ud83d\\ude42!', "smile 🙂!"),
        ('{"evidence": [2], "answer": "late key', "late key"),
        ('{"answer": "<img src=x>', "<img src=x>"),
    ],
)
def test_partial_answer_reads_unfinished_json(raw: str, expected: str) -> None:
    assert partial_answer(raw) == expected


@given(st.text(max_size=60))
def test_partial_answer_of_every_prefix_is_a_prefix_of_the_answer(answer: str) -> None:
    raw = json.dumps({"answer": answer, "evidence": [1]})
    seen = [partial_answer(raw[:i]) for i in range(len(raw) + 1)]
    assert seen[-1] == answer
    assert all(answer.startswith(s) for s in seen)


@given(st.text(max_size=60), st.lists(st.integers(min_value=1, max_value=20), max_size=4))
def test_streamed_and_finished_readings_agree(answer: str, evidence: list[int]) -> None:
    """What the stream showed last is what parse returns, up to whitespace."""
    raw = json.dumps({"evidence": evidence, "answer": answer})
    draft = parse(raw)
    assert draft.answer == " ".join(partial_answer(raw).split())
    assert draft.evidence == tuple(dict.fromkeys(evidence))
