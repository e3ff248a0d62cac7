"""The question path, as plain calls: embed, retrieve, select passages, prompt, complete,
parse, ground, score, decide, compare sources, answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rag import conflicts, decide, prompts, render, reply, signals
from rag.ground import ground
from rag.injection import addresses_assistant
from rag.records import REFUSAL, Answer, Asked, Completion, Grounded, Hit, Passage, Timings
from rag.retrieve import passages, rank_passages, retrieve

if TYPE_CHECKING:
    import numpy as np

    from rag.generate import OnText
    from rag.index import OpenIndex


def ask(index: OpenIndex, question: str, on_text: OnText | None = None) -> Answer:
    """Answer from the corpus alone, with citations, or refuse."""
    started = time.perf_counter()
    policy, settings = index.policy, index.settings
    q = decide.check_question(question, policy)
    opened = index.sync()
    qvec = index.embedder.embed([q])[0]
    # One search serves the first answer (the top k) and the search for other sources
    # (`side_depth` deep): the top k of a deeper search are the same chunks.
    deep = retrieve(q, qvec, opened, max(settings.k, policy.side_depth), index.bm25)
    hits = deep[: settings.k]
    spans = _evidence(index, hits)
    shown = _ranked(index, spans, qvec, settings.max_passages, q)
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
    refusal = replace(refusal, signals=first.signals, confidence=first.score)
    spent = [first.completion]
    rescued: list[Asked] = []
    if not first.accepted:
        if not policy.rescue:
            return _finish(refusal, started, retrieved, spent)
        # The passages of several documents read together gave no answer to stand by; one
        # of those documents read alone may (RAMDocs: two subjects' pages side by side).
        found, spent_here, rescued = _rescue(index, q, shown, deep, qvec)
        spent += spent_here
        refusal = replace(refusal, asked=tuple(rescued))
        if found is None:
            return _finish(refusal, started, retrieved, spent)
        first = found
        refusal = replace(refusal, signals=first.signals, confidence=first.score)

    sides, kind, completions, heard = _sides(
        index, q, first, shown, deep, qvec, {a.doc for a in rescued}
    )
    stated = render.statements(sides, index.citation)
    answer = replace(
        refusal,
        kind=kind,
        asked=(*rescued, *heard),
        statements=stated,
        text=render.text(stated, kind),
        citations=render.citations(stated),
    )
    return _finish(answer, started, retrieved, [*spent, *completions])


def _rescue(
    index: OpenIndex, q: str, shown: list[Passage], deep: list[Hit], qvec: np.ndarray
) -> tuple[_Draft | None, list[Completion], list[Asked]]:
    """When the first answer was refused: each document that could give a side (as in
    `_sides`, at most `max_sides - 1`) asked alone, best first, until one's answer passes
    the same decision. A document whose own sentences are all that was shown is not asked:
    its prompt would be the first one again. Nor is one whose best chunk is under
    `side_floor`: read alone, a neighbouring article answers a question it is not about
    (SQuAD a: 5 of 200 questions, all unanswerable, answered from such articles at cosines
    0.31-0.50; RAMDocs a's rescued sources stand at 0.50-0.78). Returns that answer or
    None, the calls spent and what each source gave."""
    policy = index.policy
    best = _best_chunks(deep)
    docs = [
        d
        for d in conflicts.other_documents(shown, list(best.items()), set(), policy)
        if best.get(d, 0.0) >= policy.side_floor
        and len(conflicts.own_passages(shown, d)) < len(shown)
    ][: max(0, policy.max_sides - 1)]
    spent: list[Completion] = []
    heard: list[Asked] = []
    for doc in docs:
        own = _own(index, doc, shown, deep, qvec, q, "")
        draft = _draft(index, own.passages, q, None)
        spent.append(draft.completion)
        before = source_features(q, doc, own.passages, best, None, False)
        heard.append(draft.asked(doc, before, rescue=True))
        if draft.accepted:
            return draft, spent, heard
    return None, spent, heard


def _best_chunks(deep: list[Hit]) -> dict[str, float]:
    """Each retrieved document's best chunk cosine, best document first."""
    best: dict[str, float] = {}
    for h in deep:
        best.setdefault(h.chunk.doc, h.dense)
    return best


def _evidence(index: OpenIndex, hits: list[Hit]) -> list[tuple[str, int, int, str]]:
    """The sentences of the hits that may be shown. A sentence that speaks to the
    assistant ("ignore previous instructions") is an attempt to steer it, not evidence:
    it is never shown to the model nor cited."""
    drop = index.policy.drop_instructions
    return [s for s in passages(hits, index.text) if not (drop and addresses_assistant(s[3]))]


def _sides(
    index: OpenIndex,
    q: str,
    first: _Draft,
    shown: list[Passage],
    deep: list[Hit],
    qvec: np.ndarray,
    heard_before: set[str],
) -> tuple[list[conflicts.Side], str, list[Completion], list[Asked]]:
    """Every side the sources support: each other relevant document that does not already
    hold the first answer's value, and each near-copy of a cited one, asked on its own;
    kept if it passes the first answer's decision, then merged by value and judged
    against the documents (rag.conflicts)."""
    policy = index.policy
    score = first.score
    candidates = [first.candidate()]
    cited = {p.doc for g in first.grounded for p in g.passages}
    value = candidates[0].value
    best = _best_chunks(deep)
    others = [
        d
        for d in conflicts.other_documents(shown, list(best.items()), cited, policy)
        if d not in heard_before
    ]
    own = {d: _own(index, d, shown, deep, qvec, q, value) for d in others}
    # A document whose own best sentences (those it would be asked with) hold the value
    # would only agree: that sentence is cited as agreeing, with no model call, which also
    # keeps the value from looking like a lone planted copy. The whole document is not
    # enough: an article may name the value elsewhere and answer differently (seed
    # suite: "Pyongyang" against "Kigye Airport").
    agreeing = conflicts.agreeing(
        q,
        value,
        [(p.doc, p.start, p.end, p.text) for d in others for p in own[d].passages],
        score,
    )
    candidates += agreeing
    agree = {c.passages[0].doc for c in agreeing}
    # A near-copy of a cited document that lacks the answer's value is heard whatever its
    # rank: a planted copy is then surfaced beside the original instead of hiding behind
    # it. What it says instead is read by aligning it with the cited sentence, which a
    # model asked the copy alone often gets wrong; only when that fails is it asked.
    copies = [
        d
        for d in conflicts.near_copies(cited, best, index.text, policy)
        if d not in agree and not conflicts.gives(q, value, index.text(d))
    ]
    read = {d: conflicts.copy_side(q, candidates[0], d, index.text(d)) for d in copies}
    candidates += [c for c in read.values() if c is not None]
    # A source none of whose sentences holds a value of the answer's kind (no date for a
    # date) cannot give a side: it is not asked, and its turn goes to the next.
    # So is one whose fitted chance of giving a right side is too low to be worth a call.
    for d in copies:
        if read[d] is None and d not in own:
            own[d] = _own(index, d, shown, deep, qvec, q, value)
    before = {d: source_features(q, d, own[d].passages, best, score, d in copies) for d in own}
    asked = [
        d
        for d in others
        if d not in agree
        and read.get(d) is None
        and conflicts.could_give(value, [p.text for p in own[d].passages])
        and decide.worth_a_call(before[d], policy)
    ]
    # Sources asked while rescuing a refused first answer count against the same cap.
    asked = asked[: max(0, policy.max_sides - 1 - len(heard_before))]
    asked += [d for d in copies if d not in asked and read[d] is None]
    completions = []
    heard = []
    for doc in asked:
        draft = _draft(index, own[doc].passages, q, None)
        completions.append(draft.completion)
        candidate = draft.candidate(own[doc].relevance)
        candidates.append(candidate)
        heard.append(draft.asked(doc, before[doc]))
    # Asked when, a source left without a call (over the cap, or none of its retrieved
    # sentences dated) may still give its date: read by code, at no call's cost.
    for doc in others if policy.dated_sides else []:
        if doc not in agree and doc not in asked and read.get(doc) is None:
            relevance = best.get(doc, 0.0)
            dated = conflicts.dated_side(q, doc, index.text(doc), relevance, policy.date_window)
            candidates += [dated] if dated is not None else []
    sides, kind = conflicts.judge(conflicts.merge(q, candidates, policy), index.text, policy)
    return sides, kind, completions, heard


def source_features(
    q: str, doc: str, own: list[Passage], best: dict[str, float], score: float | None, copy: bool
) -> dict[str, float]:
    """What is known of another source before it is asked: its best chunk's cosine to the
    question and share of the best chunk's, the share of the question's terms its
    sentences hold, their length, whether it is a near-copy of a cited document, and the
    first answer's score (a sure first answer leaves less to find)."""
    top = max(best.values(), default=0.0)
    mine = best.get(doc, 0.0)
    return {
        "similarity": mine,
        "relevance": mine / top if top > 0 else 0.0,
        "coverage": signals.question_coverage(q, own),
        "copy": float(copy),
        "first_confidence": score if score is not None else 0.0,
        "chars": float(sum(len(p.text) for p in own)),
    }


@dataclass(frozen=True)
class _Source:
    """The sentences a source is asked with and, when they were chosen for holding a value
    of the answer's kind, the cosine of its sentence most like the question: the source's
    relevance, which those sentences do not show."""

    passages: list[Passage]
    relevance: float | None = None


def _own(
    index: OpenIndex,
    doc: str,
    shown: list[Passage],
    deep: list[Hit],
    qvec: np.ndarray,
    q: str,
    value: str,
) -> _Source:
    """The document's shown passages, numbered from 1; for a document none of whose
    sentences made the shown list, its own best retrieved sentences. When these hold no
    value of the kind of `value` (the first answer), its best retrieved sentences that do
    (policy `kind_sentences`); for a number, when none holds one beside a term the
    question asks about, its best retrieved sentences that do (policy `asked_sentences`),
    if it has any."""
    policy = index.policy
    cap = policy.side_passages

    def lacks(own: list[Passage], fits: Callable[[str], bool]) -> bool:
        return policy.kind_sentences and not any(fits(p.text) for p in own)

    def of_kind(text: str) -> bool:
        return conflicts.could_give(value, [text])

    def fits(text: str) -> bool:
        if policy.asked_sentences:
            return conflicts.answers_kind(q, value, text)
        return of_kind(text)

    own = conflicts.own_passages(shown, doc)[:cap]
    if own and not lacks(own, fits):
        return _Source(own)
    # Only now the document's retrieved sentences: most sources are asked as shown.
    mine = _evidence(index, _of(deep, [doc]))
    own = own or _ranked(index, mine, qvec, cap, q)
    giving = [s for s in mine if fits(s[3])] if lacks(own, fits) else []
    if not giving and lacks(own, of_kind):
        giving = [s for s in mine if of_kind(s[3])]
    if not giving:
        return _Source(own)
    return _Source(_ranked(index, giving, qvec, cap, q), max((p.dense for p in own), default=None))


def _ranked(
    index: OpenIndex, spans: list[tuple[str, int, int, str]], qvec: np.ndarray, cap: int, q: str
) -> list[Passage]:
    vectors = index.sentence_vectors(spans)
    return rank_passages(spans, vectors, qvec, cap, q, index.settings.rerank_alpha)


def _of(hits: list[Hit], docs: list[str]) -> list[Hit]:
    return [h for h in hits if h.chunk.doc in docs]


@dataclass(frozen=True)
class _Draft:
    """One model call: the passages it was shown, its answer, that answer grounded, and
    the answer decision on it (its signals, calibrated score, and whether it is given)."""

    shown: list[Passage]
    answer: str
    grounded: list[Grounded]
    completion: Completion
    signals: dict[str, float]
    score: float | None
    accepted: bool

    def candidate(self, relevance: float | None = None) -> conflicts.Candidate:
        return conflicts.Candidate(tuple(self.grounded), self.accepted, self.score, relevance)

    def asked(self, doc: str, before: dict[str, float], rescue: bool = False) -> Asked:
        """The record of asking `doc` this way: what was known of it, what it gave."""
        value = self.candidate().value
        return Asked(
            doc, before, value, self.accepted, self.score, self.completion.generate_s, rescue
        )


def _draft(index: OpenIndex, shown: list[Passage], q: str, on_text: OnText | None) -> _Draft:
    """Ask the model with `shown`, ground its answer and decide on it, as every source is."""
    policy = index.policy
    prompt, fitted = prompts.fit(shown, q, index.settings.n_ctx)
    completion = index.generator.complete(
        prompt, max_tokens=prompts.ANSWER_MAX_TOKENS, on_text=on_text
    )
    draft = reply.parse(completion.text)
    grounded = ground(draft.answer, draft.evidence, fitted, q, policy)
    row = signals.compute(q, fitted, draft.answer, grounded, completion, index.text)
    score = decide.confidence(row, policy)
    accepted = decide.answerable(grounded) and decide.accept(row, score, policy)
    return _Draft(fitted, draft.answer, grounded, completion, row, score, accepted)


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
