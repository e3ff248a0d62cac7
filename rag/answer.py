"""The question path, as plain calls: embed, retrieve, select passages, prompt, complete,
parse, ground, score, decide, compare sources, answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rag import conflicts, decide, prompts, render, reply, signals
from rag.ground import ground
from rag.qtypes import fits_question
from rag.records import ANSWER, CONFLICT, REFUSAL, Answer, Completion, Grounded, Passage, Timings
from rag.retrieve import passages, rank_passages, retrieve

if TYPE_CHECKING:
    from rag.generate import OnText
    from rag.index import OpenIndex


def ask(index: OpenIndex, question: str, on_text: OnText | None = None) -> Answer:
    """Answer from the corpus alone, with citations, or refuse."""
    started = time.perf_counter()
    policy, settings = index.policy, index.settings
    q = decide.check_question(question, policy)
    opened = index.sync()
    qvec = index.embedder.embed([q])[0]
    hits = retrieve(q, qvec, opened, settings.k, index.bm25)
    spans = passages(hits, index.text)
    shown = rank_passages(spans, index.sentence_vectors(spans), qvec, settings.max_passages)
    refusal = Answer(
        question=q,
        kind=REFUSAL,
        text=prompts.REFUSAL,
        retrieved=tuple(h.chunk for h in hits),
        passages=tuple(shown),
        policy=policy.name,
    )
    retrieved = time.perf_counter()
    if not decide.worth_asking(shown, policy):
        return _finish(refusal, started, retrieved, [])

    first = _draft(index, shown, q, on_text)
    row = signals.compute(q, first.shown, first.answer, first.grounded, first.completion)
    score = decide.confidence(row, policy)
    refusal = replace(refusal, signals=row, confidence=score)
    if not decide.answerable(first.grounded) or not decide.accept(row, score, policy):
        return _finish(refusal, started, retrieved, [first.completion])

    completions = [first.completion]
    sides, conflict = [first.grounded], False
    cited = {p.doc for g in first.grounded for p in g.passages}
    other = conflicts.other_document(shown, cited, policy)
    if other:
        second = _draft(index, conflicts.own_passages(shown, other), q, None)
        completions.append(second.completion)
        if second.grounded and fits_question(q, second.answer):
            sides, conflict = conflicts.compare(
                q, first.answer, first.grounded, second.answer, second.grounded, policy
            )
    stated = render.statements(sides, index.citation)
    answer = replace(
        refusal,
        kind=CONFLICT if conflict else ANSWER,
        statements=stated,
        text=render.text(stated, conflict),
        citations=render.citations(stated),
    )
    return _finish(answer, started, retrieved, completions)


@dataclass(frozen=True)
class _Draft:
    """One model call: the passages it was shown, its answer, and that answer grounded."""

    shown: list[Passage]
    answer: str
    grounded: list[Grounded]
    completion: Completion


def _draft(index: OpenIndex, shown: list[Passage], q: str, on_text: OnText | None) -> _Draft:
    prompt, fitted = prompts.fit(shown, q, index.settings.n_ctx)
    completion = index.generator.complete(
        prompt, max_tokens=prompts.ANSWER_MAX_TOKENS, on_text=on_text
    )
    draft = reply.parse(completion.text)
    grounded = ground(draft.answer, draft.evidence, fitted, q, index.policy)
    return _Draft(fitted, draft.answer, grounded, completion)


def _finish(
    answer: Answer, started: float, retrieved: float, completions: list[Completion]
) -> Answer:
    return replace(
        answer,
        timings=Timings(
            retrieve_s=retrieved - started,
            generate_s=sum(c.generate_s for c in completions),
            total_s=time.perf_counter() - started,
        ),
        prompt_tokens=sum(c.prompt_tokens for c in completions),
        completion_tokens=sum(c.completion_tokens for c in completions),
        first_token_s=completions[0].first_token_s if completions else 0.0,
        model_calls=len(completions),
    )
