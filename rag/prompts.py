"""Every prompt, as constants. The fixed part comes first so llama.cpp can reuse its KV
cache across questions; only the passages and the question change."""

from __future__ import annotations

import json
from string import Formatter

from rag.records import Passage

# The one sentence the product says when the corpus does not answer the question.
REFUSAL = "The corpus does not contain an answer to this question."

SYSTEM = (
    "You answer questions about news articles using only the numbered passages the user "
    "gives. Reply with JSON. First, in \"evidence\", list the numbers of the passages that "
    "answer the question. Then, in \"answer\", copy the words from those passages that "
    "answer it: a name, number, date, place or short phrase, not a whole sentence."
)

USER = "Passages:\n{passages}\n\nQuestion: {question}"

# Worked examples, sent as earlier chat turns. A 0.5B model copies the shape of an
# example far better than it follows a description. They sit in the fixed prefix, so
# llama.cpp keeps them in its KV cache and they cost nothing after the first question.
# They are about an invented topic so no fact in them can leak into an answer.
EXAMPLES = (
    (
        "Passages:\n"
        "[1] The bridge, which engineers said would take ‘at least a decade’ to build, "
        "opened in March after only four years of work.\n"
        "[2] Mayor Ana Ruiz called the project ‘a victory for the whole region,’ the city "
        "gazette reported.\n"
        "[3] Shop owners said traffic had doubled since the opening.\n\n"
        "Question: How did the mayor describe the project?",
        '{"evidence": [2], "answer": "a victory for the whole region"}',
    ),
    (
        "Passages:\n"
        "[1] Shop owners said traffic had doubled since the opening.\n"
        "[2] The bridge, which engineers said would take ‘at least a decade’ to build, "
        "opened in March after only four years of work.\n\n"
        "Question: How long did the construction take?",
        '{"evidence": [2], "answer": "four years"}',
    ),
)

PASSAGE = "[{number}] {text}"

# With RAG_GRAMMAR=1 this constrains decoding, so the reply always parses. Either way it
# documents the reply's shape, which the worked examples above show the model.
ANSWER_SCHEMA = {
    "type": "object",
    # Evidence first: the model commits to passages, then copies its answer out of them.
    "properties": {
        "evidence": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
        "answer": {"type": "string", "maxLength": 200},
    },
    "required": ["evidence", "answer"],
}
ANSWER_SCHEMA_JSON = json.dumps(ANSWER_SCHEMA)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


# Checked at import, so a typo in a template fails every test at once, not one answer later.
assert _fields(USER) == {"passages", "question"}, _fields(USER)
assert _fields(PASSAGE) == {"number", "text"}, _fields(PASSAGE)


def render_user(passages: list[Passage], question: str) -> str:
    """The user message: numbered passages, then the question."""
    # Line breaks inside a passage would blur where one numbered passage ends.
    body = "\n".join(
        PASSAGE.format(number=p.number, text=" ".join(p.text.split())) for p in passages
    )
    return USER.format(passages=body, question=question)
