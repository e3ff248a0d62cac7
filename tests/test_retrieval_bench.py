"""The retrieval benchmark's pure helpers: span recall, the rerank mix and the choice of
configurations. No models, no data."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.retrieval import (
    Config,
    Span,
    cheaper_first,
    contains,
    fit_score,
    hit,
    one_lever,
    order,
    overlaps,
)
from rag.retrieve import lexical_share, mix

GOLD: list[Span] = [("a.txt", 100, 120), ("a.txt", 300, 310)]


@pytest.mark.parametrize(
    ("found", "want_contains", "want_overlaps"),
    [
        ([("a.txt", 90, 130)], True, True),  # holds the first gold span wholly
        ([("a.txt", 100, 120)], True, True),  # exactly the span: both ends count
        ([("a.txt", 110, 200)], False, True),  # starts inside it
        ([("a.txt", 120, 300)], False, False),  # touches both spans, shares no character
        ([("b.txt", 0, 1000)], False, False),  # right offsets, wrong document
        ([("b.txt", 0, 10), ("a.txt", 305, 400)], False, True),  # any found span will do
        ([], False, False),
    ],
)
def test_recall_needs_the_same_document_and_shared_characters(
    found: list[Span], want_contains: bool, want_overlaps: bool
) -> None:
    assert hit(found, GOLD, contains) is want_contains
    assert hit(found, GOLD, overlaps) is want_overlaps


def test_rerank_mix_lifts_the_sentence_with_the_question_terms() -> None:
    question = {"engineer", "troop", "sent"}
    sentences = ["The ceremony was held in Pyongyang.", "About 1,000 engineer troops were sent."]
    lexical = np.array([lexical_share(question, s) for s in sentences])
    assert lexical.tolist() == [0.0, 1.0]
    assert lexical_share(set(), sentences[1]) == 0.0  # a question of stop words only
    cosines = np.array([0.6, 0.5])
    assert order(mix(cosines, lexical, 1.0)).tolist() == [0, 1]  # alpha 1: cosine alone
    assert mix(cosines, lexical, 0.5) == pytest.approx([0.3, 0.75])
    assert order(mix(cosines, lexical, 0.7)).tolist() == [1, 0]
    # Equal scores keep retrieval order, as rank_passages does.
    assert order(np.array([0.5, 0.5, 0.9])).tolist() == [2, 0, 1]


def test_choice_fits_on_seeds_a_b_only_prefers_the_cheaper_tie_and_moves_one_lever() -> None:
    small, large = (Config("dense", 400, 4, 1.0), 6), (Config("hybrid", 800, 12, 0.7), 10)
    recall = {
        "seeds": {small: 0.9, large: 0.9},
        "a": {small: 0.6, large: 0.7},
        "b": {small: 0.6, large: 0.5},
        "c": {small: 0.0, large: 1.0},  # the reporting corpus never counts
    }
    assert fit_score(recall, small) == pytest.approx(0.7)
    assert fit_score(recall, large) == pytest.approx(0.7)
    ranked = sorted([large, small], key=lambda key: (-fit_score(recall, key), cheaper_first(key)))
    assert ranked == [small, large]
    # The one-lever view moves exactly one setting of the default at a time.
    base = small[0]
    variants = one_lever(base, 6)
    assert variants[0] == (base, 6)
    assert len(variants) == len(set(variants)) == 1 + 2 + 2 + 3 + 2 + 3
    for config, shown in variants[1:]:
        moved = [a != b for a, b in zip(vars(config).values(), vars(base).values(), strict=True)]
        assert sum(moved) + (shown != 6) == 1
