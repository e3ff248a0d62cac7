"""Every threshold and cut-off the product decides with, in one frozen object.

Settings say where things are and which model runs; the Policy says when to answer, when
to refuse and when sources conflict. Reports print the policy they ran with, so a figure
can always be traced to the numbers that produced it. Nothing here reads the environment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.models import QWEN_15B, QWEN_15B_ALIAS

# Written by benchmarks/calibrate.py; committed, so the shipped decision is reproducible.
CALIBRATION = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Policy:
    name: str = "rules-v1"
    # Questions longer than this are refused as input errors (the chat box has the same cap).
    max_question_chars: int = 2000
    # Below this cosine similarity for the best passage, the corpus is taken not to
    # address the question at all and the model is not asked.
    min_similarity: float = 0.25
    # The model may name at most this many passages as evidence.
    max_evidence: int = 3
    # A statement is supported when every number it adds is in its cited passages and at
    # least this share of its other content words is.
    support_share: float = 0.5
    # A document the answer did not cite is asked separately (to surface a conflict) only
    # when one of its passages is among the `conflict_top` best and scores at least
    # `conflict_relevance` of the best passage.
    conflict_top: int = 3
    conflict_relevance: float = 0.8
    # A disagreeing answer stands beside the first only when its evidence is at least this
    # share as relevant as the first answer's (the cosine of its best sentence, or of the
    # sentence that got it asked, against the first's best cited one). Its own share, not
    # `conflict_relevance`: that one compares chunks, this one sentences, and a source
    # asked for a chunk at 0.8 gave its answer from sentences just under 0.8 ("golf" for
    # Larry Gilbert at 0.77). At 0.7, RAMDocs a (fit, 200) gained right sides (every right
    # answer 0.305 -> 0.315, no planted or wrong figure moved) and SQuAD a nothing, but
    # SQuAD c (report) gained a false conflict ("When was John Gallagher born?" paired
    # with a 1979 from another article; 0.024 -> 0.028), where more sides must cost
    # nothing; so it stays 0.8, the share used before (README "Every side").
    side_relevance: float = 0.8
    # Other sources are also sought this many chunks deep (0: only among the shown
    # passages): on a corpus of many documents a third answer sits below the k chunks
    # the first answer reads. A document is asked when its best chunk scores at least
    # `conflict_relevance` of the best chunk, and only if it does not already hold the
    # first answer's value (it would only agree: no model call is spent on it).
    # Fitted on RAMDocs a: the right answers' documents among the distinct documents of
    # the top 4 chunks held 0.79 of the right answers, of the top 8 0.84, of the top 12
    # or more 0.85 (60 questions, seed 0; relevance share 0.8).
    side_depth: int = 8
    # ... and only when that chunk's cosine to the question is at least this. A relevance
    # share alone pairs unrelated articles when the best chunk is weak (SQuAD c: 11 of
    # 250 answers said "the sources differ" across two unrelated articles). Fitted with
    # no model on the fitting sets, benchmarks-style: at 0.5 the deep search still finds
    # 0.92 of RAMDocs a's right documents with another answer, and none of the 26
    # unrelated articles it reached for 400 SQuAD a and b questions (0.4 keeps 0.15).
    side_floor: float = 0.5
    # Each other source is asked with at most this many of its own best sentences. 2
    # (shorter prompts, cheaper calls) cost the seed suite its conflicts (detection 0.6 ->
    # 0.2, a false conflict 0.026) and RAMDocs a 0.23 -> 0.22 of questions with every
    # right answer, so each source keeps as many sentences as the first answer reads.
    side_passages: int = 6
    # A source whose sentences above hold no value of the first answer's kind (no date for
    # "when") is asked with its best retrieved sentences that do, instead of being passed
    # over: a page's date often stands outside the sentences most like the question
    # (RAMDocs a: "Cove Fort ... founded in 1867" behind three undated ones).
    kind_sentences: bool = True
    # For a number, the same when none of those sentences holds one beside a term the
    # question asks about beyond its names: "Hughesville is located at (38.533731,
    # −76.782220)" holds numbers, but "The population was 2,197" answers "What is the
    # population of Hughesville?" (RAMDocs a; rag.conflicts.answers_kind).
    asked_sentences: bool = True
    # When the first answer, read from the passages of several documents together, is
    # refused, each of those documents (the sources `_sides` would ask, within the same
    # `max_sides - 1` calls, each reaching `side_floor`) is asked alone until one's answer
    # passes the same decision. Chosen on the fitting sets (README "Every side", "A refused
    # answer read again, one source at a time"): RAMDocs a refused 0.100 -> 0.050 of
    # questions, at least one right answer 0.733 -> 0.783; the seed suite's false refusals
    # 0.163 -> 0.116 (accuracy 0.698 -> 0.721); SQuAD a and b gave no answer they refused.
    rescue: bool = True
    # Asked when, a source left without a model call (over `max_sides`, or with no dated
    # sentence among those retrieved) is read by code: the one date its sentences give
    # within `date_window` words of a term the question asks about beyond its names
    # (rag.conflicts.dated_side). Chosen on RAMDocs a (200 questions): of the sources
    # asked, code read a date for 8, 7 of them right and the model's; of those left over,
    # 5, 4 right and the fifth the right year of a fuller right date. At 0 words ("born"
    # anywhere in the sentence) it read "born in Hull ... joined Stoke City in 1972".
    dated_sides: bool = True
    date_window: int = 4
    # A disagreeing answer is a side only when its evidence speaks to the same part of the
    # question as the first answer's: of the question terms the smaller evidence holds,
    # at least this share must be in the other's too. 1.0 (one holds the other) keeps a
    # neighbouring topic out on the seed corpus; on RAMDocs, sources about different
    # subjects word the question differently ("Jimmy Ryan" against "Ryan ... born").
    # 0.5 moved nothing on RAMDocs a (every right answer 0.23 -> 0.22 at 4 sides): there
    # the two evidence sentences often hold disjoint parts of the question ("first
    # broadcast" against "Tomorrow's World"), which no share admits. It stays 1.0.
    conflict_coverage: float = 1.0
    # A disagreeing value is a side only when some source giving it cites evidence that
    # holds a term of the question or opens by referring back to its document's subject
    # ("It was founded in 1867"): rag.conflicts.speaks_to. Chosen on SQuAD a and RAMDocs a
    # (README "A side that names nothing the question asks").
    side_needs_terms: bool = True
    # A lower-case value is widened by at most this many words to the end of its noun
    # phrase in the cited passages ("comedy" -> "comedy film"; rag.values.whole); 0 keeps
    # the model's words. Chosen on RAMDocs a and SQuAD a and b (README "A value's whole
    # phrase").
    phrase_words: int = 2
    # At most `max_sides - 1` other documents are asked: each costs one more model call
    # (0.5-1.5 s on 2 cores). Fitted on RAMDocs a (60 questions, seed 0; README "Every
    # side"): asking one other document among the shown passages stated every right
    # answer for 0.12 of questions; 8 chunks deep, 3 sides did for 0.20 and 4 for 0.22.
    # 4 took p50 5.4 s there, further over the 3.5 s budget, so 3 was the default. Measured
    # again on today's reading (2026-11-25, 200 questions): of the right answers a lost,
    # 19 sat in a retrieved source left unasked because the two calls were spent. At 4,
    # every right answer 0.305 -> 0.325 and wrong stated 0.482 -> 0.509 (three dates);
    # calls 491 -> 540, p50 unchanged (2.97 -> 2.91 s); SQuAD a and c answer the same
    # with the same calls. So 4 is the default.
    max_sides: int = 4
    # Two documents are near-copies when this share of the smaller one's word shingles
    # (runs of `shingle_words` words) also occur in the other. A near-copy that gives a
    # different value is the signature of a planted claim (RAMDocs' misinfo documents are
    # copies of real ones with the answer changed). On RAMDocs a, 61 of the 119 misinfo
    # documents reach 0.5 with a real document of their question (66 reach 0.3), and 3
    # of the 891 pairs of real documents with different answers do; fit it there.
    near_copy: float = 0.5
    # A side beyond the first is shown only when the calibrated confidence of a source
    # giving it reaches this (the first answer needs `min_confidence`). Fitted on the
    # fitting sets by benchmarks/fit_sides.py and stored with the score it reads, so a
    # refit of the score drops it; 0.0: every accepted side is shown.
    side_confidence: float = 0.0
    # Five words in a row are rarely shared by chance, but survive a changed value in a
    # sentence of normal length.
    shingle_words: int = 5
    # Sentences that address the assistant ("ignore previous instructions") are not
    # evidence: they are kept from the model and from citations (rag.injection).
    drop_instructions: bool = True
    # Refuse an answer that is not the kind of thing the question asks for (a name, a
    # count, a date). The calibrated policy reads this as one signal among others instead.
    type_veto: bool = True
    # Signals of rag.signals.LACKS that refuse an answer whenever they are non-zero: the
    # cited documents never name a name or number the question holds (names_unseen), or
    # never a number it holds (numbers_unseen); the question is negated and no cited
    # sentence is (negation_unmatched). Chosen by
    # benchmarks/calibrate.py fit-vetoes on the fitting sets, with no seed figure worse
    # and no right answer of a RAMDocs a run refused, and stored with the score.
    vetoes: tuple[str, ...] = ()
    # Which other sources are worth a model call: a logistic regression over what is known
    # of a source before it is asked (rag.answer.source_features), standardised like
    # `weights`, estimating that it gives a right side the answer shows. A source scoring
    # under `ask_confidence` is not asked and its turn goes to the next; a near-copy of a
    # cited document is always heard. Fitted by benchmarks/fit_asking.py and stored with
    # the score; empty: every source that could give a side is asked.
    ask_weights: tuple[tuple[str, float, float, float], ...] = field(default=())
    ask_intercept: float = 0.0
    ask_confidence: float = 0.0
    # The calibrated answer score: a logistic regression over rag.signals, standardised
    # by (mean, scale) per signal. Empty means no score: answer whenever grounded.
    weights: tuple[tuple[str, float, float, float], ...] = field(default=())
    intercept: float = 0.0
    # Answer only when the score (an estimate of P(correct)) reaches this.
    min_confidence: float = 0.0

    def describe(self) -> dict[str, object]:
        """The policy as plain values, for reports."""
        return asdict(self)


RULES = Policy()


def calibrated(path: Path = CALIBRATION) -> Policy:
    """The fitted policy from `path`, or the hand-set rules when nothing was fitted."""
    if not path.exists():
        return RULES
    data = json.loads(path.read_text(encoding="utf-8"))
    return replace(
        RULES,
        name=str(data["name"]),
        type_veto=bool(data.get("type_veto", False)),
        vetoes=tuple(str(v) for v in data.get("vetoes", ())),
        weights=_weights(data["weights"]),
        intercept=float(data["intercept"]),
        min_confidence=float(data["min_confidence"]),
        side_confidence=float(data.get("side_confidence", RULES.side_confidence)),
        ask_weights=_weights(data.get("ask_weights", ())),
        ask_intercept=float(data.get("ask_intercept", RULES.ask_intercept)),
        ask_confidence=float(data.get("ask_confidence", RULES.ask_confidence)),
    )


def _weights(rows: list[dict[str, Any]]) -> tuple[tuple[str, float, float, float], ...]:
    """A stored logistic regression's (signal, mean, scale, weight) rows."""
    return tuple(
        (str(w["signal"]), float(w["mean"]), float(w["scale"]), float(w["weight"])) for w in rows
    )


DEFAULT = calibrated()

# A score fitted on one model's signals does not carry over to another (the 1.5B model's
# log-probabilities and citing habits differ), so a model the product ships may have its
# own fit, named by its alias or its file name; any other model gets DEFAULT.
MODEL_CALIBRATIONS = {
    name: CALIBRATION.with_name("calibration-qwen1.5b.json")
    for name in (QWEN_15B_ALIAS, QWEN_15B.file)
}


def for_model(model: Path | None) -> Policy:
    """The calibrated policy fitted for `model` if there is one, else DEFAULT."""
    path = MODEL_CALIBRATIONS.get(model.name) if model is not None else None
    return calibrated(path) if path is not None and path.exists() else DEFAULT
