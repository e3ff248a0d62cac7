"""The external evaluation harness (SQuAD 2.0 and RAMDocs) on hand-made cases and answer
dicts: normalisation, F1/EM, "states a phrase", every summary metric, the risk–coverage
table, sampling, the loaders and the runner's file handling. No model, no data files,
except one loader test that reads the real sets when they sit beside the repository."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks import external as runner
from rag.errors import InputError
from rag.external import (
    answer_text,
    citation_valid,
    claims,
    exact_match,
    normalize,
    numbers,
    occurs,
    sample,
    states,
    token_f1,
)
from rag.external_ramdocs import (
    RamCase,
    RamDoc,
    load_ramdocs,
    score_ramdocs,
    summarize_ramdocs,
)
from rag.external_squad import (
    SquadCase,
    SquadScore,
    load_squad,
    risk_coverage,
    score_squad,
    summarize_squad,
)
from rag.text import strip_markers

# --- text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Latin", "latin"),
        ("The Latin language.", "latin language"),
        ("an apple a day", "apple day"),
        ("Theatre", "theatre"),  # "the" is removed only as a whole word
        ("  military\n force ", "military force"),
        ("1,000", "1000"),
        ("Walley–Beckett", "walleybeckett"),  # Unicode dash removed like ASCII "-"
        ("“Quoted”", "quoted"),
        ('Football (soccer) ."', "football soccer"),
        ("", ""),
    ],
)
def test_normalize_follows_squad_and_drops_unicode_punctuation(raw: str, normal: str) -> None:
    assert normalize(raw) == normal


@pytest.mark.parametrize(
    ("raw", "stripped"),
    [
        ("1,000 [1].", "1,000."),
        ("Latin [1, 2] and Greek [3].", "Latin and Greek."),
        ("[12]", ""),
        ("see [a] and [1 ,2]", "see [a] and"),
        ("no markers", "no markers"),
    ],
)
def test_strip_markers_removes_only_numeric_citation_markers(raw: str, stripped: str) -> None:
    assert strip_markers(raw) == stripped


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        ("Latin", ["Latin"], 1.0, 1.0),
        ("the Latin.", ["Latin"], 1.0, 1.0),
        ("Latin", ["Greek", "latin"], 1.0, 1.0),  # the best gold counts
        ("it is military force", ["military force"], 0.0, 2 / 3),  # P 2/4, R 1
        ("force", ["military force"], 0.0, 2 / 3),  # P 1, R 1/2
        ("Greek", ["Latin"], 0.0, 0.0),
        ("", ["Latin"], 0.0, 0.0),
        ("Latin", [], 0.0, 0.0),  # no gold (unanswerable): nothing to match
        ("a", ["the"], 1.0, 1.0),  # both empty after normalisation: SQuAD counts a match
        ("force force", ["force"], 0.0, 2 / 3),  # repeated tokens count once each
    ],
)
def test_exact_match_and_token_f1(prediction: str, golds: list[str], em: float, f1: float) -> None:
    assert exact_match(prediction, golds) == em
    assert token_f1(prediction, golds) == pytest.approx(f1)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("1,000 troops", {"1000"}),
        ("19 September 1940", {"19", "1940"}),
        ("1923-1929", {"1923", "1929"}),
        ("42.7 years", {"42.7"}),
        ("in 1989.", {"1989"}),
        ("no digits", set()),
    ],
)
def test_numbers_reads_separators_and_decimals(text: str, found: set[str]) -> None:
    assert numbers(text) == found


@pytest.mark.parametrize(
    ("phrase", "text", "stated"),
    [
        ("Second Boer War", "It ended the second Boer War [1].", True),
        ("Boer", "the Boers", False),  # whole tokens only
        ("1981", "founded in 19812", False),
        ("19 September 1940", "born on 19 Sept. 1940", True),  # every number occurs
        ("19 September 1940", "born on 19 September 1950", False),
        ("3,171 people", "3171 died", True),
        ("1923-1929", "built from 1923 to 1929", True),
        ("1923-1929", "built in 1923", False),
        ("Carpenters", "The Carpenters recorded it.", True),
        ("The", "the band", False),  # an empty phrase after normalisation is never stated
    ],
)
def test_states_by_phrase_or_by_all_numbers(phrase: str, text: str, stated: bool) -> None:
    assert states(phrase, text) is stated


def test_occurs_is_whole_token_containment() -> None:
    assert occurs("military force", "by military force")
    assert not occurs("military force", "by paramilitary force")


# --- answer dicts ----------------------------------------------------------------------

SQUAD_TEXT = "Imperialism comes from Latin. It is administered by military force."
TEXTS = {"imperialism.txt": SQUAD_TEXT}


def span(doc_text: str, phrase: str) -> tuple[int, int]:
    start = doc_text.index(phrase)
    return start, start + len(phrase)


def cite(doc: str, phrase: str, texts: dict[str, str], quote: str | None = None) -> dict[str, Any]:
    start, end = span(texts[doc], phrase)
    return {"doc": doc, "start": start, "end": end, "quote": quote or phrase}


def answer(
    text: str,
    cites: Sequence[dict[str, Any]] = (),
    *,
    abstained: bool = False,
    conflict: bool = False,
    total_s: float = 1.0,
    confidence: float | None = None,
    statements: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An `ask --json` answer dict; by default one statement citing every citation."""
    if statements is None:
        statements = (
            []
            if abstained
            else [{"text": strip_markers(text), "citations": list(range(len(cites))), "docs": []}]
        )
    return {
        "question": "?",
        "answer": text,
        "abstained": abstained,
        "citations": list(cites),
        "timings": {"retrieve_s": 0.0, "generate_s": 0.0, "total_s": total_s},
        "conflict": conflict,
        "kind": "refusal" if abstained else "conflict" if conflict else "answer",
        "statements": statements,
        "confidence": confidence,
        "policy": "test",
    }


REFUSAL = "The corpus does not contain an answer to this question."


def test_claims_read_statements_with_their_cited_and_named_docs() -> None:
    a = answer(
        "The sources differ. a.txt: 1989 [1]. b.txt: 1981 [2].",
        [{"doc": "a.txt"}, {"doc": "b.txt"}],
        statements=[
            {"text": "1989", "citations": [0], "docs": []},
            {"text": "1981", "citations": [1], "docs": ["c.txt"]},
        ],
    )
    assert [(c.text, set(c.docs)) for c in claims(a)] == [
        ("1989", {"a.txt"}),
        ("1981", {"b.txt", "c.txt"}),
    ]
    # The rendered prose ("The sources differ.", document names) is not what is scored.
    assert answer_text(a) == "1989 1981"


def test_claims_of_a_refusal_are_empty_and_an_old_answer_is_one_claim() -> None:
    assert claims(answer(REFUSAL, abstained=True)) == []
    old = answer("Latin [1].", [{"doc": "x.txt"}], statements=[])
    assert [(c.text, set(c.docs)) for c in claims(old)] == [("Latin.", {"x.txt"})]


@pytest.mark.parametrize(
    ("citation", "valid"),
    [
        (cite("imperialism.txt", "Latin", TEXTS), True),
        (cite("imperialism.txt", "Latin", TEXTS, quote="Greek"), False),
        ({"doc": "other.txt", "start": 0, "end": 5, "quote": "Imper"}, False),
        ({"doc": "imperialism.txt", "start": 60, "end": 999, "quote": "force."}, False),
        ({"doc": "imperialism.txt", "start": "0", "end": 5, "quote": "Imper"}, False),
    ],
)
def test_citation_valid_is_the_span_invariant(citation: dict[str, Any], valid: bool) -> None:
    assert citation_valid(citation, TEXTS) is valid


# --- SQuAD -----------------------------------------------------------------------------


def squad_case(id: str, answers: Sequence[str] = (), abstain: bool = False) -> SquadCase:
    return SquadCase(
        id=id,
        question=f"question {id}?",
        doc="imperialism.txt",
        abstain=abstain,
        answers=tuple(answers),
        spans=tuple(span(SQUAD_TEXT, a) for a in answers),
    )


FIRST = "Imperialism comes from Latin."
SECOND = "It is administered by military force."
SQUAD = [
    # Right, cited on the gold span.
    (
        squad_case("q1", ["Latin"]),
        answer("Latin [1].", [cite("imperialism.txt", FIRST, TEXTS)], total_s=1.0),
    ),
    # Wordy but contains the gold: F1 0.5, correct; cites the wrong sentence.
    (
        squad_case("q2", ["military force"]),
        answer(
            "It is administered by military force [1].",
            [cite("imperialism.txt", FIRST, TEXTS)],
            total_s=2.0,
        ),
    ),
    # Answerable, refused.
    (squad_case("q3", ["Latin"]), answer(REFUSAL, abstained=True, total_s=3.0)),
    # Unanswerable, refused.
    (squad_case("q4", abstain=True), answer(REFUSAL, abstained=True, total_s=4.0)),
    # Unanswerable, answered, says the sources differ, with a broken citation.
    (
        squad_case("q5", abstain=True),
        answer(
            "Latin [1].",
            [cite("imperialism.txt", SECOND, TEXTS, quote="forged")],
            conflict=True,
            total_s=5.0,
        ),
    ),
]
SQUAD_SCORES = [score_squad(c, a, TEXTS) for c, a in SQUAD]


SQUAD_EXPECTED = {
    "q1": {"em": 1.0, "f1": 1.0, "contained": True, "cited_gold": True, "correct": True},
    "q2": {"em": 0.0, "f1": 0.5, "contained": True, "cited_gold": False, "correct": True},
    "q3": {"refused": True, "f1": 0.0, "correct": False, "squad2_f1": 0.0},
    "q4": {"refused": True, "correct": False, "squad2_f1": 1.0},
    "q5": {"f1": 0.0, "correct": False, "squad2_f1": 0.0, "valid_citations": 0, "conflict": True},
}


@pytest.mark.parametrize(("case_id", "expected"), SQUAD_EXPECTED.items())
def test_score_squad_per_question(case_id: str, expected: dict[str, object]) -> None:
    score = next(s for s in SQUAD_SCORES if s.id == case_id)
    assert {k: getattr(score, k) for k in expected} == pytest.approx(expected)


def test_contained_needs_a_short_answer() -> None:
    long = "Latin " + "and many other words besides " * 3
    score = score_squad(squad_case("q", ["Latin"]), answer(long), TEXTS)
    assert not score.contained and not score.correct


SQUAD_SUMMARY = {
    "em_answered": 0.5,  # q1 1, q2 0
    "em_all": 1 / 3,  # q3's refusal counts 0
    "f1_answered": 0.75,
    "f1_all": 0.5,
    "contained_answered": 1.0,
    "contained_all": 2 / 3,
    "citation_hit": 0.5,  # q1 yes, q2 no
    "refusal_accuracy": 0.5,  # q4 yes, q5 no
    "false_refusal_rate": 1 / 3,  # q3
    "squad2_f1": 0.5,  # (1 + 0.5 + 0 + 1 + 0) / 5
    "squad2_f1_always_refuse": 0.4,  # 2 of 5 unanswerable
    "precision": 2 / 3,  # of q1, q2, q5 given, q1 and q2 are correct
    "coverage": 0.6,
    "false_conflict_rate": 0.2,
    "citation_validity": 2 / 3,
    "median_cited_chars": float(len(FIRST)),  # spans: FIRST, FIRST, SECOND
    "latency_p50": 3.0,
    "latency_p95": 4.8,
    "n": 5.0,
    "n_answerable": 3.0,
    "n_unanswerable": 2.0,
}


@pytest.mark.parametrize(("metric", "value"), list(SQUAD_SUMMARY.items()))
def test_summarize_squad(metric: str, value: float) -> None:
    assert summarize_squad(SQUAD_SCORES)[metric] == pytest.approx(value)


def test_every_squad_metric_is_tested() -> None:
    assert set(summarize_squad(SQUAD_SCORES)) == set(SQUAD_SUMMARY)


def scored(
    answerable: bool, refused: bool, f1: float = 0.0, confidence: float | None = None
) -> SquadScore:
    return SquadScore(
        id="x",
        answerable=answerable,
        refused=refused,
        conflict=False,
        em=0.0,
        f1=f1,
        contained=False,
        cited_gold=False,
        n_citations=0,
        valid_citations=0,
        span_chars=(),
        latency=0.0,
        confidence=confidence,
    )


RISK = [
    scored(True, False, f1=1.0, confidence=0.9),  # right
    scored(True, False, f1=0.0, confidence=0.6),  # wrong
    scored(False, False, confidence=0.3),  # answered an unanswerable question
    scored(False, True),  # rightly refused
    scored(True, True),  # wrongly refused
]


@pytest.mark.parametrize(
    ("threshold", "answered", "coverage", "precision", "squad2_f1"),
    [
        (0.3, 3, 0.6, 1 / 3, 0.4),
        (0.6, 2, 0.4, 0.5, 0.6),  # the unanswerable one is now refused: +1
        (0.9, 1, 0.2, 1.0, 0.6),  # the wrong answer refused: no gain, no loss
    ],
)
def test_risk_coverage_by_default_thresholds(
    threshold: float, answered: int, coverage: float, precision: float, squad2_f1: float
) -> None:
    row = next(p for p in risk_coverage(RISK) if p.threshold == threshold)
    assert (row.answered, row.coverage, row.precision, row.squad2_f1) == pytest.approx(
        (answered, coverage, precision, squad2_f1)
    )


def test_risk_coverage_thresholds_are_the_answers_confidences() -> None:
    assert [p.threshold for p in risk_coverage(RISK)] == [0.3, 0.6, 0.9]


def test_risk_coverage_above_every_score_refuses_everything() -> None:
    (row,) = risk_coverage(RISK, [1.0])
    assert (row.answered, row.coverage, row.precision, row.squad2_f1) == (0, 0.0, 0.0, 0.4)


def test_risk_coverage_lowest_threshold_is_the_recorded_run() -> None:
    summary, first = summarize_squad(RISK), risk_coverage(RISK)[0]
    assert first.coverage == summary["coverage"]
    assert first.precision == summary["precision"]
    assert first.squad2_f1 == summary["squad2_f1"]


def test_risk_coverage_keeps_answers_without_a_score() -> None:
    rows = risk_coverage([scored(True, False, f1=1.0), scored(True, False, confidence=0.5)])
    assert [(p.threshold, p.answered) for p in rows] == [(0.5, 2)]
    assert risk_coverage([scored(True, False, f1=1.0)]) == []


# --- RAMDocs ---------------------------------------------------------------------------

RAM_TEXTS = {
    "d1.txt": "The PMK was founded in 1989.",
    "d2.txt": "The PMK was founded in 1981.",
    "d3.txt": "Kevin Lewis was born on 19 September 1940.",
    "d4.txt": "Kevin Lewis was born on 19 September 1950.",
    "d5.txt": "Kevin Lewis was born on 25 September 1952.",
    "d6.txt": "A Kind of Hush is by the Carpenters.",
    "d7.txt": "A Kind of Hush is by The Beatles.",
    "d8.txt": "He plays the tabla.",
    "d9.txt": "Needtobreathe recorded it.",
}


def whole(doc: str, quote: str | None = None) -> dict[str, Any]:
    return cite(doc, RAM_TEXTS[doc], RAM_TEXTS, quote)


def ram_case(
    id: str, gold: list[str], wrong: list[str], docs: list[tuple[str, str, str]]
) -> RamCase:
    return RamCase(id, f"{id}?", tuple(gold), tuple(wrong), tuple(RamDoc(*d) for d in docs))


RAM = [
    # One of two right answers, cited to its document.
    (
        ram_case(
            "r1",
            ["1989", "1981"],
            [],
            [("d1.txt", "correct", "1989"), ("d2.txt", "correct", "1981")],
        ),
        answer("1989 [1].", [whole("d1.txt")], total_s=1.0),
    ),
    # Both right answers (one by its numbers only), one cited to the wrong document, and
    # the planted wrong one, flagged by "the sources differ"; the misinfo quote is forged.
    (
        ram_case(
            "r2",
            ["19 September 1940", "25 September 1952"],
            ["19 September 1950"],
            [
                ("d3.txt", "correct", "19 September 1940"),
                ("d4.txt", "misinfo", "19 September 1950"),
                ("d5.txt", "correct", "25 September 1952"),
            ],
        ),
        answer(
            "The sources differ. ...",
            [whole("d3.txt"), whole("d4.txt", quote="forged")],
            conflict=True,
            total_s=2.0,
            statements=[
                {"text": "born on 19 Sept. 1940", "citations": [0], "docs": []},
                {"text": "25 September 1952", "citations": [0], "docs": []},
                {"text": "19 September 1950", "citations": [1], "docs": []},
            ],
        ),
    ),
    # The planted wrong answer passed on as fact (an older answer dict without statements).
    (
        ram_case(
            "r3",
            ["Carpenters"],
            ["The Beatles"],
            [("d6.txt", "correct", "Carpenters"), ("d7.txt", "misinfo", "The Beatles")],
        ),
        answer("The Beatles [1].", [whole("d7.txt")], total_s=3.0, statements=[]),
    ),
    # Refused; "Bongo" is a gold answer no document gives.
    (
        ram_case("r4", ["Tabla", "Bongo"], [], [("d8.txt", "correct", "Tabla")]),
        answer(REFUSAL, abstained=True, total_s=4.0),
    ),
    # The one right answer, cited.
    (
        ram_case("r5", ["Needtobreathe"], [], [("d9.txt", "correct", "Needtobreathe")]),
        answer("Needtobreathe [1].", [whole("d9.txt")], total_s=5.0),
    ),
]
RAM_SCORES = [score_ramdocs(c, a, RAM_TEXTS) for c, a in RAM]


RAM_EXPECTED = {
    "r1": {"gold_stated": 1, "gold_cited": 1, "all_gold": False, "wrong_stated": False},
    "r2": {"gold_stated": 2, "gold_cited": 1, "all_gold": True, "wrong_stated": True},
    "r3": {"gold_stated": 0, "wrong_stated": True, "wrong_unflagged": True},
    "r4": {"refused": True, "gold_stated": 0, "gold_without_doc": 1},
    "r5": {"gold_stated": 1, "gold_cited": 1, "all_gold": True, "valid_citations": 1},
}


@pytest.mark.parametrize(("case_id", "expected"), RAM_EXPECTED.items())
def test_score_ramdocs_per_question(case_id: str, expected: dict[str, object]) -> None:
    score = next(s for s in RAM_SCORES if s.id == case_id)
    assert {k: getattr(score, k) for k in expected} == expected


def test_a_flagged_wrong_answer_is_not_passed_on() -> None:
    r2 = next(s for s in RAM_SCORES if s.id == "r2")
    assert r2.wrong_stated and r2.conflict and not r2.wrong_unflagged
    assert r2.valid_citations == 1  # the misinfo citation's quote was forged


RAM_SUMMARY = {
    "all_gold": 0.4,  # r2, r5
    "gold_share": 0.5,  # (1/2 + 1 + 0 + 0 + 1) / 5
    "any_gold": 0.6,  # r1, r2, r5
    "two_plus_gold": 1 / 3,  # of r1, r2, r4 (two or more golds), only r2
    "all_gold_no_wrong": 0.2,  # r5 (r2 also stated the wrong one)
    "wrong_unflagged": 0.5,  # of r2, r3 (planted wrong answers), r3
    "wrong_stated": 1.0,
    "refused": 0.2,
    "gold_cited": 0.75,  # 3 of the 4 stated golds are cited to a document giving them
    "citation_validity": 0.8,  # 4 of 5 citations
    "latency_p50": 3.0,
    "latency_p95": 4.8,
    "n": 5.0,
    "n_multi_gold": 3.0,
    "n_with_wrong": 2.0,
    "gold_without_doc": 1.0,
}


@pytest.mark.parametrize(("metric", "value"), list(RAM_SUMMARY.items()))
def test_summarize_ramdocs(metric: str, value: float) -> None:
    assert summarize_ramdocs(RAM_SCORES)[metric] == pytest.approx(value)


def test_every_ramdocs_metric_is_tested() -> None:
    assert set(summarize_ramdocs(RAM_SCORES)) == set(RAM_SUMMARY)


def test_gold_givers_match_after_normalisation() -> None:
    case = ram_case("r", ["Football (American) "], [], [("x.txt", "correct", "football american")])
    assert case.givers("Football (American) ") == {"x.txt"}


# --- sampling --------------------------------------------------------------------------


def test_sample_is_seeded_and_keeps_file_order() -> None:
    items = list(range(100))
    first = sample(items, 10, seed=0)
    assert first == sample(items, 10, seed=0)
    assert first != sample(items, 10, seed=1)
    assert first == sorted(first) and len(set(first)) == 10


@pytest.mark.parametrize("n", [None, 5, 50])
def test_sample_of_at_least_everything_is_everything(n: int | None) -> None:
    assert sample(["a", "b", "c", "d", "e"], n, seed=3) == ["a", "b", "c", "d", "e"]


def test_sample_rejects_a_negative_size() -> None:
    with pytest.raises(InputError):
        sample([1, 2, 3], -1, seed=0)


# --- loaders ---------------------------------------------------------------------------


def write_squad(folder: Path) -> None:
    (folder / "corpus").mkdir(parents=True)
    (folder / "corpus" / "imperialism.txt").write_text(SQUAD_TEXT, encoding="utf-8")
    rows = [
        {
            "id": "q1",
            "question": "Origin?",
            "doc": "imperialism.txt",
            "abstain": False,
            "answers": ["Latin"],
            "spans": [list(span(SQUAD_TEXT, "Latin"))],
        },
        {
            "id": "q4",
            "question": "Never?",
            "doc": "imperialism.txt",
            "abstain": True,
            "plausible_answers": ["military force"],
        },
    ]
    (folder / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_load_squad_reads_both_kinds(tmp_path: Path) -> None:
    write_squad(tmp_path)
    q1, q4 = load_squad(tmp_path)
    assert q1 == SquadCase(
        "q1", "Origin?", "imperialism.txt", False, ("Latin",), (span(SQUAD_TEXT, "Latin"),)
    )
    assert q4.abstain and q4.plausible_answers == ("military force",) and q4.answers == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "cases.jsonl:2: not valid JSON"),
        ('{"id": "x", "question": "?", "doc": "d"}', "cases.jsonl:2: missing abstain"),
        (
            '{"id": "x", "question": "?", "doc": "d", "abstain": false, "answers": ["a"],'
            ' "spans": []}',
            "cases.jsonl:2: an answerable case needs answers and spans",
        ),
    ],
)
def test_load_squad_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    good = '{"id": "ok", "question": "?", "doc": "d", "abstain": true}'
    (tmp_path / "cases.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(InputError, match=message):
        load_squad(tmp_path)


def test_load_ramdocs(tmp_path: Path) -> None:
    row = {
        "id": "aq1",
        "question": "When?",
        "gold_answers": ["1989"],
        "wrong_answers": ["1975"],
        "docs": [{"file": "a1.txt", "type": "correct", "answer": "1989"}],
    }
    (tmp_path / "cases.jsonl").write_text(json.dumps(row) + "\n")
    (case,) = load_ramdocs(tmp_path)
    assert case == RamCase(
        "aq1", "When?", ("1989",), ("1975",), (RamDoc("a1.txt", "correct", "1989"),)
    )
    (tmp_path / "cases.jsonl").write_text(json.dumps(row | {"docs": [{"file": "a1.txt"}]}) + "\n")
    with pytest.raises(InputError, match="missing type, answer"):
        load_ramdocs(tmp_path)


def test_loaders_on_the_real_sets() -> None:
    """The README's counts, every gold span slices to its answer, every doc file exists."""
    root = runner.data_root()
    if not (root / "squad2" / "a" / "cases.jsonl").exists():
        pytest.skip(f"no external data at {root}")
    from rag.external import load_texts

    for name, total, answerable in (("a", 1311, 553), ("b", 1644, 829), ("c", 1629, 803)):
        cases = load_squad(root / "squad2" / name)
        texts = load_texts(root / "squad2" / name / "corpus")
        assert (len(cases), sum(not c.abstain for c in cases)) == (total, answerable)
        for c in cases:
            assert all(texts[c.doc][s:e] in c.answers for s, e in c.spans), c.id
    for name in ("a", "b"):
        ram = load_ramdocs(root / "ramdocs" / name)
        files = {p.name for p in (root / "ramdocs" / name / "corpus").iterdir()}
        assert len(ram) == 200
        assert all(d.file in files for c in ram for d in c.docs)


# --- the runner ------------------------------------------------------------------------


@dataclass(frozen=True)
class Signals:
    best_similarity: float


class FakeAnswer:
    def __init__(self, data: dict[str, Any], signals: Signals | None) -> None:
        self.data, self.signals = data, signals

    def to_json(self) -> dict[str, Any]:
        return self.data


class FakeIndex:
    """Answers "Latin" with a signals record, refuses everything else without one."""

    def ask(self, question: str) -> FakeAnswer:
        if "Origin" in question:
            data = answer("Latin [1].", [cite("imperialism.txt", FIRST, TEXTS)], confidence=0.7)
            return FakeAnswer(data, Signals(0.8))
        return FakeAnswer(answer(REFUSAL, abstained=True), None)


def test_runner_records_answers_scores_and_signals_then_rescores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_squad(tmp_path / "squad2" / "x")
    cases = runner.load_set(tmp_path / "squad2" / "x", "squad2")
    out = io.StringIO()
    scores, _ = runner.ask_all(FakeIndex(), "squad2/x", cases, TEXTS, out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["id"], line["signals"]) for line in lines] == [
        ("q1", {"best_similarity": 0.8}),
        ("q4", None),
    ]
    assert lines[0]["score"]["correct"] and lines[1]["answer"]["abstained"]
    assert "[1/2] q1" in capsys.readouterr().err

    results = tmp_path / "results.jsonl"
    results.write_text(out.getvalue())
    monkeypatch.setenv("RAG_EXTERNAL", str(tmp_path))
    assert runner.main(["--rescore", str(results), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == summarize_squad([s for s in scores if isinstance(s, SquadScore)])
    assert report["summary"]["squad2_f1"] == 1.0
    assert report["risk_coverage"] == [
        {"threshold": 0.7, "answered": 1, "coverage": 0.5, "precision": 1.0, "squad2_f1": 1.0}
    ]


def test_runner_skips_in_one_line_without_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_EXTERNAL", str(tmp_path / "absent"))
    assert runner.main(["--set", "squad2/c", "--sample", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "skipped" in captured.err


def test_runner_render_prints_settings_policy_and_risk_table() -> None:
    report = {
        "set": "squad2/c",
        "questions": 5,
        "sample": 5,
        "seed": 0,
        "settings": {"k": 4},
        "policy": {"names": ["test"], "values": {"min_similarity": 0.25}},
        "summary": summarize_squad(RISK),
        "risk_coverage": [
            {"threshold": 0.3, "answered": 3, "coverage": 0.6, "precision": 0.3, "squad2_f1": 0.4}
        ],
    }
    text = runner.render(report)
    assert "settings: k=4" in text and '"min_similarity": 0.25' in text
    assert "squad2_f1" in text and "   0.3000         3" in text


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("max_sides=4", ("max_sides", 4)),
        ("rescue=false", ("rescue", False)),
        (
            "vetoes=names_unseen,negation_unmatched",
            ("vetoes", ("names_unseen", "negation_unmatched")),
        ),
        ("vetoes=", ("vetoes", ())),  # none: the run before the vetoes
    ],
)
def test_a_policy_field_is_read_as_its_type(text: str, parsed: tuple[str, object]) -> None:
    assert runner._policy_field(text) == parsed


@pytest.mark.parametrize("text", ["vetoes=names_missing", "weights=1", "max_sides=four", "nope=1"])
def test_a_bad_policy_field_is_an_argument_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        runner._policy_field(text)
