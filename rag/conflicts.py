"""When sources answer the same question differently.

The first answer cites some documents. Each other document that holds one of the best
passages, and each near-copy of a cited document, is asked the question with only its own
passages; every answer is a `Candidate`. `merge` groups candidates by value (agreeing
values are one side, with every source's citations and the fullest wording) and leaves
out answers to a neighbouring question. `judge` then reads the documents themselves: a
value that only a near-copy of another side's document gives is disputed (the signature
of a planted claim) and never shown alone, and sides whose documents carry different
titles answer for different subjects that share a name."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import combinations

from rag.align import MIN_SHARED, replaced, shared
from rag.chunking import sentence_spans
from rag.policy import Policy
from rag.qtypes import answer_kind, asks_date, fits_question
from rag.records import AMBIGUOUS, ANSWER, CONFLICT, Grounded, Passage
from rag.text import STOPWORDS, WORD, terms
from rag.values import dates

TextOf = Callable[[str], str]


@dataclass(frozen=True)
class Candidate:
    """One document's (or the first prompt's) answer as grounded, and whether it passed
    the same answer decision as the first answer (rag.decide)."""

    grounded: tuple[Grounded, ...]
    accepted: bool
    # The calibrated estimate that this source's answer is right (rag.decide.confidence);
    # agreement found by code carries the value's own. None: the policy has no score.
    confidence: float | None = None
    # The cosine of the source's sentence most like the question, when it was asked with
    # other sentences (those holding a value of the answer's kind): its relevance is the
    # document's, not that of the sentence its value happens to stand in.
    relevance: float | None = None
    # Read by code as the date standing next to what the question asks (`dated_side`):
    # it answers the part of the question asked by construction.
    dated: bool = False

    @property
    def value(self) -> str:
        """What the candidate states: its grounded sentences, not the raw draft."""
        return " ".join(g.text for g in self.grounded)

    @property
    def passages(self) -> tuple[Passage, ...]:
        return tuple(p for g in self.grounded for p in g.passages)


@dataclass(frozen=True)
class Side:
    """One value and all that gives it: its grounded sentences (carrying the citations of
    every agreeing source), its documents, and how it stands against the other sides."""

    grounded: tuple[Grounded, ...]
    docs: tuple[str, ...]
    # Some source giving it passed the answer decision; only such sides are shown, except
    # beside a disputed side they dispute.
    accepted: bool
    disputed: bool = False
    subject: str = ""
    # The best calibrated confidence of the sources giving it (None: no score).
    confidence: float | None = None

    @property
    def value(self) -> str:
        return " ".join(g.text for g in self.grounded)


def other_documents(
    shown: Sequence[Passage],
    deep: Sequence[tuple[str, float]],
    cited: set[str],
    policy: Policy,
) -> list[str]:
    """Documents the answer did not cite that may answer differently, best first: those
    holding one of the top `conflict_top` shown passages, then those among the `deep`
    (doc, cosine) retrieval results that reach `side_floor`, each nearly as relevant as
    the best (`conflict_relevance`). All of them; the caller spends at most `max_sides - 1` calls.

    Both seed articles cover one event, so "among the top passages" alone held for almost
    every question and doubled the model calls (benchmarks: 2.0 calls per answer)."""
    out: list[str] = []
    for ranked in (
        [(p.doc, p.dense) for p in shown[: policy.conflict_top]],
        # Deeper down, a weak best chunk makes the share meaningless: a floor too.
        [(d, s) for d, s in deep[: policy.side_depth] if s >= policy.side_floor],
    ):
        if not ranked:
            continue
        best = ranked[0][1]
        for doc, score in ranked:
            if doc not in cited and doc not in out and score >= policy.conflict_relevance * best:
                out.append(doc)
    return out


def own_passages(shown: Sequence[Passage], doc: str) -> list[Passage]:
    """The shown passages of one document, renumbered from 1 for a prompt of its own."""
    return [replace(p, number=n + 1) for n, p in enumerate(x for x in shown if x.doc == doc)]


# --- values -------------------------------------------------------------------------------


def value_terms(question: str, value: str) -> frozenset[str]:
    """The value, normalised: its terms (lower case, no punctuation, articles or other
    stopwords, number words as digits) less the question's, which every answer may repeat."""
    asked = set(terms(question))
    own = frozenset(t for t in terms(value) if t not in asked)
    return own or frozenset(terms(value))


def gives(question: str, value: str, text: str) -> bool:
    """Whether the text holds every term of the value."""
    return value_terms(question, value) <= set(terms(text))


def could_give(value: str, texts: Iterable[str]) -> bool:
    """Whether some text holds a value of the same kind as `value` (rag.qtypes kinds): a
    date needs a date, a number a number; any text may hold another kind of answer. A
    source whose sentences hold none cannot give a side (merge keeps only values of the
    first answer's kind), so asking it would only spend a model call."""
    kind = value_kind(value)
    if kind == "date":
        return any(value_kind(t) == "date" for t in texts)
    if kind == "number":
        return any(t[0].isdigit() for text in texts for t in terms(text))
    return True


def answers_kind(question: str, value: str, text: str) -> bool:
    """Whether a sentence could give a side for a number: it holds one, and a term the
    question asks about beyond its names ("The population was 2,197 at the 2010 census"
    for "What is the population of Hughesville?", where "Hughesville is located at
    (38.533731, −76.782220)" holds numbers but no population). A count is written beside
    what it counts; a date is not held to this, because it often stands apart from its
    verb ("Empress Borjigit (28 March 1613 – 1641)" answers "born" without the word:
    RAMDocs a, where holding dates to it lost three right dates and gained one). Any
    sentence that could give a value could for other kinds, or when the question asks
    about nothing but names."""
    if not could_give(value, [text]):
        return False
    if value_kind(value) != "number":
        return True
    asked = asked_about(question)
    return not asked or bool(asked & set(terms(text)))


def agreeing(
    question: str,
    value: str,
    spans: Sequence[tuple[str, int, int, str]],
    confidence: float | None = None,
) -> list[Candidate]:
    """For each document among the (doc, start, end, text) spans, its first sentence that
    holds every term of the value, as an accepted candidate giving that value (with the
    value's own `confidence`): agreement found by code, without a model call."""
    out: dict[str, Candidate] = {}
    for doc, start, end, text in spans:
        if doc not in out and gives(question, value, text):
            p = Passage(number=len(out) + 1, doc=doc, start=start, end=end, text=text, dense=0.0)
            out[doc] = Candidate((Grounded(value, (p,)),), True, confidence)
    return list(out.values())


def copy_side(question: str, first: Candidate, doc: str, text: str) -> Candidate | None:
    """The answer of `doc`, a near-copy of a document the first answer cites, read by
    code: its sentence that aligns with a cited sentence, and the words it has where that
    sentence has the value (rag.align). None when no sentence aligns, or when the copy
    says the same there or nothing. Carries no calibrated score: no model gave it."""
    wanted = sorted(value_terms(question, first.value))
    spans = [(s, e, set(terms(text[s:e]))) for s, e in sentence_spans(text)]
    for cited in first.passages:
        mine = set(terms(cited.text))
        # Only sentences sharing most of the cited one's terms can align with it.
        near = [(s, e) for s, e, theirs in spans if _shared(mine, theirs) >= MIN_SHARED]
        if not near:
            continue
        start, end = max(near, key=lambda se: shared(cited.text, text[se[0] : se[1]]))
        found = replaced(cited.text, text[start:end], wanted)
        if found is None:
            continue
        value = text[start + found[0] : start + found[1]]
        # The aligned sentence is the cited one with a value changed: as relevant to the
        # question, so it carries the cited sentence's similarity.
        p = Passage(1, doc, start, end, text[start:end], dense=cited.dense)
        return Candidate((Grounded(value, (p,)),), True, None)
    return None


def dated_side(
    question: str, doc: str, text: str, relevance: float, window: int
) -> Candidate | None:
    """Asked when, the one date `doc` gives for what the question asks, read by code: each
    of its sentences that holds exactly one date, and within `window` words of it a term
    the question asks about beyond its names ("built" in "When was Cove Fort built?");
    None unless all of them give the same date (the fullest wording is kept). Carries no
    calibrated score (no model gave it) and the document's `relevance`: the sentence may
    not name the subject.

    Read only for sources no model call is left for: where it gives a date it is mostly
    right (RAMDocs a, 200 questions: 7 of 8 on sources the model was asked, 4 of 5 on
    those left over), but the model reads many dates code cannot (43 right ones there)."""
    if not asks_date(question):
        return None
    asked = asked_about(question)
    if not asked:
        return None
    found: list[tuple[int, int, int, int]] = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        spans = dates(sentence)
        if len(spans) == 1 and _near(sentence, spans[0], asked, window):
            found.append((start, end, start + spans[0][0], start + spans[0][1]))
    if not found:
        return None
    values = [value_terms(question, text[a:b]) for _, _, a, b in found]
    fullest = max(range(len(found)), key=lambda i: len(values[i]))
    if not all(v <= values[fullest] for v in values):
        return None
    start, end, a, b = found[fullest]
    p = Passage(1, doc, start, end, text[start:end], dense=relevance)
    return Candidate((Grounded(" ".join(text[a:b].split()), (p,)),), True, None, relevance, True)


def _near(sentence: str, span: tuple[int, int], asked: set[str], window: int) -> bool:
    """Whether a term of `asked` stands within `window` words of the date at `span`: "was
    built in 1743", "born on 17 October 1970"; a clause away, the date is another event's
    ("born in Hull and played ... before joining Stoke City in 1972")."""
    before = WORD.findall(sentence[: span[0]])[-window:] if window else []
    after = WORD.findall(sentence[span[1] :])[:window]
    return bool(asked & set(terms(" ".join(before + after))))


def asked_about(question: str) -> set[str]:
    """The question's terms less its names (its capitalised words after the first, and
    what it quotes) and the question word: what it asks about them."""
    words = WORD.findall(question)
    quoted = {w for q in re.findall(r'"([^"]+)"', question) for w in WORD.findall(q)}
    names = {w for w in words[1:] if w[0].isupper()} | quoted
    named = set(terms(" ".join(names)))
    return {t for t in terms(" ".join(words[1:])) if t not in named}


def merge(question: str, candidates: Sequence[Candidate], policy: Policy) -> list[Side]:
    """The candidates grouped by value, the first candidate's side first.

    Equal values agree, and so do values whose terms are a subset of another's ("August
    10" and "August 10, 1966"): the side keeps the fuller wording, never the shorter, with
    both sources' citations. A candidate that disagrees with the first joins as a side of
    its own only when it answers the same question; otherwise it is left out."""
    if not candidates:
        return []
    anchor = candidates[0]
    # The values some source's evidence names the question in (or refers back to it in):
    # a value no source does is not a side, however it is worded (`speaks_to`).
    voiced = [
        value_terms(question, c.value)
        for c in candidates
        if c.grounded and (not policy.side_needs_terms or speaks_to(question, c))
    ]
    sides: list[Side] = []
    for c in candidates:
        if not c.grounded or (c is not anchor and not fits_question(question, c.value)):
            continue
        mine = value_terms(question, c.value)
        for i, side in enumerate(sides):
            theirs = value_terms(question, side.value)
            if _agree(mine, theirs):
                sides[i] = _join(side, c, fuller=len(mine) > len(theirs))
                break
        else:
            if c is anchor or (
                same_question(question, anchor, c, policy)
                and any(v and _agree(mine, v) for v in voiced)
            ):
                sides.append(Side(c.grounded, _docs(c), c.accepted, confidence=c.confidence))
    return sides


def same_question(question: str, anchor: Candidate, other: Candidate, policy: Policy) -> bool:
    """Whether a disagreeing answer answers what the first answers: a value of the same
    kind (place, date, number), evidence about the same part of the question, and
    evidence at least `side_relevance` as relevant."""
    top = max(p.dense for p in anchor.passages)
    return (
        value_kind(anchor.value) == value_kind(other.value)
        and same_part(question, anchor, other, policy)
        and evidence_relevance(other) >= policy.side_relevance * top
    )


# Words that open a sentence by referring back to what its document is about.
_REFERS_BACK = frozenset({"it", "its", "he", "his", "she", "her", "they", "their", "this", "these"})


def speaks_to(question: str, c: Candidate) -> bool:
    """Whether the candidate's evidence holds a term of the question, or opens by
    referring back to its document's subject. `merge` keeps a side only when some source
    giving its value does: one may cite a fragment ("Malik Shah I and proclaimed sultan
    at Baghdad") where another names the subject ("... her son Mahmud").

    `same_part` holds an evidence set with no question term as held by any (it says
    nothing against the first answer's part), so without this a sentence about another
    subject passed whenever it was relevant enough: "ARPANET and SITA HLN became
    operational in 1969" for "When did the series of strikes happen?" (SQuAD a). A
    sentence that names nothing the question does can answer it only through a pronoun
    for its document's subject ("It was founded in 1867 by Ira Hinckley", from the page
    on Cove Fort); one that opens on a subject of its own names another."""
    if c.dated or _coverage(question, c.passages):
        return True
    opening = (WORD.search(p.text) for p in c.passages)
    return any(m is not None and m.group().lower() in _REFERS_BACK for m in opening)


def same_part(question: str, anchor: Candidate, other: Candidate, policy: Policy) -> bool:
    """Whether the two candidates' evidence speaks to the same part of the question.

    It compares the question terms each source's evidence holds; at `conflict_coverage`
    1.0 one set must hold the other. Asked "When was the regiment established in Kursk?",
    "established in May" and "deployed to Kursk in August" each hold a part the other
    lacks: they answer different questions. A date read by code (`dated_side`) stands next
    to a term the question asks about, so it is not held to the evidence rule, which is
    for sentences a model chose."""
    if other.dated:
        return True
    held = _coverage(question, anchor.passages), _coverage(question, other.passages)
    return _shared(*held) >= policy.conflict_coverage


def evidence_relevance(c: Candidate) -> float:
    """How relevant a candidate's evidence is: the cosine of its best sentence, or of the
    sentence that got its source asked (`Candidate.relevance`) when that is higher."""
    best = max(p.dense for p in c.passages)
    return best if c.relevance is None else max(best, c.relevance)


# A year before 1900 ("1884") is a date as much as "1920" is, and so is a decade ("the
# 1980s"); rag.qtypes reads only 19xx and 20xx as years, which split "founded in 1884"
# from "founded in 1920" and "1980s" from "16 July 1989" (RAMDocs a: "When was the PMK
# founded?" lost its second side that way).
_EARLY_YEAR = re.compile(r"\b1[0-8]\d\d\b|\b1\d\d0s\b|\b20\d0s\b")


def value_kind(value: str) -> str:
    """The kind of value (rag.qtypes.answer_kind), with years before 1900 and decades
    as dates."""
    kind = answer_kind(value)
    return "date" if kind == "number" and _EARLY_YEAR.search(value) else kind


def _join(side: Side, c: Candidate, fuller: bool) -> Side:
    """A side with an agreeing candidate added: the fuller wording's sentences first,
    carrying the other's citations too."""
    if fuller:
        base, extra = c.grounded, tuple(p for g in side.grounded for p in g.passages)
    else:
        base, extra = side.grounded, c.passages
    have = {p for g in base for p in g.passages}
    added = tuple(dict.fromkeys(p for p in extra if p not in have))
    grounded = (replace(base[0], passages=base[0].passages + added), *base[1:])
    return Side(
        grounded,
        tuple(dict.fromkeys(side.docs + _docs(c))),
        side.accepted or c.accepted,
        confidence=_best(side.confidence, c.confidence),
    )


def _agree(x: frozenset[str], y: frozenset[str]) -> bool:
    """Two values' terms agree when one holds the other ("August 10" in "August 10, 1966")."""
    return x <= y or y <= x


def _best(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _docs(c: Candidate) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.doc for p in c.passages))


def _shared(x: set[str], y: set[str]) -> float:
    """The share of the smaller set that the other holds: 1.0 exactly when one holds the
    other (an empty set is held by any)."""
    if not x or not y:
        return 1.0
    return len(x & y) / min(len(x), len(y))


def _coverage(question: str, cited: Sequence[Passage]) -> set[str]:
    """The question's content terms that the cited passages contain."""
    have = {t for p in cited for t in terms(p.text)}
    return {t for t in terms(question) if t in have}


# --- the documents: near-copies and titles ------------------------------------------------


def overlap(a: str, b: str, n: int) -> float:
    """The share of the smaller text's n-word shingles that the other text also has.

    The smaller one, not the union (Jaccard): a planted copy may be a slice of the
    original, and a slice is still a copy."""
    x, y = _shingles(a, n), _shingles(b, n)
    if not x or not y:
        return 0.0
    return len(x & y) / min(len(x), len(y))


# A copy shows in its opening; reading no further bounds the cost (and the cache) for
# book-length documents.
_COPY_CHARS = 20_000


@lru_cache(maxsize=64)
def _shingles(text: str, n: int) -> frozenset[tuple[str, ...]]:
    # Cached: one question compares each retrieved document with several others.
    words = [w.lower() for w in WORD.findall(text[:_COPY_CHARS])]
    if len(words) < n:
        return frozenset({tuple(words)}) if words else frozenset()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def near_copy(a: str, b: str, policy: Policy) -> bool:
    return overlap(a, b, policy.shingle_words) >= policy.near_copy


def near_copies(
    docs: Iterable[str], among: Iterable[str], text_of: TextOf, policy: Policy
) -> list[str]:
    """The documents of `among`, other than `docs`, that are near-copies of one of `docs`."""
    mine = list(dict.fromkeys(docs))
    return [
        d
        for d in dict.fromkeys(among)
        if d not in mine and any(near_copy(text_of(d), text_of(m), policy) for m in mine)
    ]


# A title line, as encyclopedia pages open: the subject's name with an optional
# qualifier in brackets or after a comma, then the text starting again with the name's
# first word ("Kevin Lewis (footballer, born 1952) Kevin William Lewis (born ...",
# "Pittsville, Maryland Pittsville is ...", "Supreme Electoral Tribunal (Honduras) The
# Supreme ..."). The repeated word makes it a title rather than a first sentence; a name
# made only of capitalised words, numbers and stopwords keeps "The ceremony was held ...
# The ..." from passing for one.
_TITLE = re.compile(
    r"\s*(?:#+\s*)?(?P<name>(?P<first>[^\W_][^\s(),]*)[^\n(),]{0,70}?)\s*"
    r"(?P<qualifier>\([^()\n]{1,60}\)|,\s+\S+(?:\s\S+){0,2}?)?\s+(?:The\s+)?(?P=first)\b"
)
# Name, qualifier and the repeated word fit well within this many characters.
_TITLE_CHARS = 200


def subject(text: str) -> str:
    """The title the document opens with, or "" when it opens with running text."""
    m = _TITLE.match(text[:_TITLE_CHARS])
    if not m or not m.group("first")[0].isupper():
        return ""
    if not all(_title_word(w) for w in m.group("name").split()):
        return ""
    return " ".join(
        text[
            m.start("name") : m.end("qualifier") if m.group("qualifier") else m.end("name")
        ].split()
    )


def _title_word(word: str) -> bool:
    """Titles are capitalised; numbers ("Act 1882") and small words ("of") may stand in them."""
    return word[0].isupper() or word[0].isdigit() or word.lower() in STOPWORDS


def judge(sides: Sequence[Side], text_of: TextOf, policy: Policy) -> tuple[list[Side], str]:
    """The sides to show, each marked disputed or not and with its subject, and the kind
    of answer they make (rag.records ANSWER, CONFLICT or AMBIGUOUS).

    A side is disputed when every document giving it is a near-copy of a document giving
    another value: one of the two is a planted copy, and code cannot tell which. Shown are
    the first side and the other sides some accepted source gives with a confidence of at
    least `side_confidence`; beside each of them, the accepted sides given by near-copies
    of its documents, and beside a disputed one every such side, so a planted value is
    never stated on its own."""
    copies = {
        frozenset((a, b))
        for s, t in combinations(sides, 2)
        for a in s.docs
        for b in t.docs
        if a != b and near_copy(text_of(a), text_of(b), policy)
    }

    def copied(docs: Iterable[str], of: Iterable[str]) -> bool:
        return any(frozenset((a, b)) in copies for a in docs for b in of)

    def disputed(i: int) -> bool:
        others = [d for j, t in enumerate(sides) if j != i for d in t.docs]
        return bool(sides[i].docs) and all(copied([d], others) for d in sides[i].docs)

    def titled(s: Side) -> str:
        return next((t for t in (subject(text_of(d)) for d in s.docs) if t), "")

    marked = [replace(s, disputed=disputed(i), subject=titled(s)) for i, s in enumerate(sides)]
    keep = {
        i
        for i, s in enumerate(marked)
        if s.accepted and (i == 0 or sure_enough(s.confidence, policy.side_confidence))
    }
    # A near-copy that says otherwise contradicts the very text cited, and one of the two
    # is planted: beside a disputed side it is shown whatever its decision, beside another
    # shown side when it passed the decision, whatever its score.
    for i in list(keep):
        keep |= {
            j
            for j, t in enumerate(sides)
            if j != i and copied(sides[i].docs, t.docs) and (t.accepted or marked[i].disputed)
        }
    shown = [s for i, s in enumerate(marked) if i in keep]
    return shown, kind(shown)


def sure_enough(confidence: float | None, threshold: float) -> bool:
    """Whether a side beyond the first is sure enough to show: its score reaches
    `threshold` (policy.side_confidence), or there is no score (the hand-set rules)."""
    return confidence is None or confidence >= threshold


def kind(shown: Sequence[Side]) -> str:
    """One side is an answer. Several are a conflict, unless none is disputed and each
    side's documents carry a title of its own: then they answer for different subjects
    that share a name. Sides without titles cannot be told apart by the documents, so
    they stay "the sources differ", which claims no more than that."""
    if len(shown) <= 1:
        return ANSWER
    if any(s.disputed for s in shown):
        return CONFLICT
    keys = [tuple(terms(s.subject)) for s in shown]
    if all(keys) and len(set(keys)) == len(keys):
        return AMBIGUOUS
    return CONFLICT
