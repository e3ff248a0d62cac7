"""Every prompt, as constants, and the one place prompts are built and fitted to the
model's context window. The fixed part comes first so llama.cpp can reuse its KV cache
across questions; only the passages and the question change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from string import Formatter

from rag.records import Passage

Message = dict[str, str]

# The one sentence the product says when the corpus does not answer the question.
REFUSAL = "The corpus does not contain an answer to this question."

SYSTEM = (
    "You answer questions about the user's documents using only the numbered passages the "
    'user gives. Reply with JSON. First, in "evidence", list the numbers of the passages '
    'that answer the question. Then, in "answer", copy the words from those passages '
    "that answer it: a name, number, date, place or short phrase, not a whole sentence."
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
# documents the reply's shape (rag.reply reads it), which the worked examples show the model.
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
# How every reply opens, written into the prompt after the assistant's turn marker so the
# model does not spend tokens on it. The worked examples open this way, so at temperature 0
# the model would write these very tokens itself: the reply is the same, about 0.1 s
# sooner per call (4 tokens at 35-50 tokens/s on 2 cores). Not used with the grammar,
# which must see the whole object.
REPLY_START = '{"evidence": ['
# Unconstrained, the model may run on after the object; the object is flat, so its first
# closing brace ends it (rag.reply reads a reply with or without it).
ANSWER_STOP = ("}",)
# The answer is a short phrase inside a small JSON object.
ANSWER_MAX_TOKENS = 64

# Characters per token assumed when fitting a prompt before it is tokenized. Qwen's
# tokenizer averages about 4 on English prose; 3 leaves room for numbers, names and
# other scripts. The generator still refuses a prompt that does not fit, with a message.
CHARS_PER_TOKEN = 3.0
# Chat-template markers around each message, in tokens.
MESSAGE_OVERHEAD_TOKENS = 6


@dataclass(frozen=True)
class Prompt:
    """A finished prompt: chat messages, stop strings and the reply's JSON schema."""

    messages: tuple[Message, ...]
    stop: tuple[str, ...] = ANSWER_STOP
    schema: str = ANSWER_SCHEMA_JSON
    # The reply's opening, given rather than generated (see REPLY_START).
    reply_start: str = REPLY_START


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


# Checked at import, so a typo in a template fails every test at once, not one answer later.
assert _fields(USER) == {"passages", "question"}, _fields(USER)
assert _fields(PASSAGE) == {"number", "text"}, _fields(PASSAGE)
assert all(replied.startswith(REPLY_START) for _, replied in EXAMPLES)


def fixed_messages() -> tuple[Message, ...]:
    """The system prompt and worked examples: the prefix every prompt shares."""
    messages: list[Message] = [{"role": "system", "content": SYSTEM}]
    for asked, replied in EXAMPLES:
        messages += [
            {"role": "user", "content": asked},
            {"role": "assistant", "content": replied},
        ]
    return tuple(messages)


def render_user(passages: list[Passage], question: str) -> str:
    """The user message: numbered passages, then the question."""
    # Line breaks inside a passage would blur where one numbered passage ends.
    body = "\n".join(
        PASSAGE.format(number=p.number, text=" ".join(p.text.split())) for p in passages
    )
    return USER.format(passages=body, question=question)


def build(passages: list[Passage], question: str) -> Prompt:
    """The answer prompt for these passages and this question."""
    user = {"role": "user", "content": render_user(passages, question)}
    return Prompt(messages=(*fixed_messages(), user))


def estimate_tokens(prompt: Prompt) -> int:
    """A generous token count for a prompt, from its length in characters."""
    chars = sum(len(m["content"]) for m in prompt.messages)
    return int(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * len(prompt.messages)


def fit(
    passages: list[Passage], question: str, n_ctx: int, max_tokens: int = ANSWER_MAX_TOKENS
) -> tuple[Prompt, list[Passage]]:
    """The prompt, and the passages it shows: passages come most relevant first, so the
    least relevant are dropped until prompt and answer fit the context window."""
    kept = list(passages)
    while True:
        prompt = build(kept, question)
        if estimate_tokens(prompt) + max_tokens <= n_ctx or not kept:
            return prompt, kept
        kept.pop()
