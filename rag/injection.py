"""Text that speaks to the assistant instead of stating a fact ("ignore previous
instructions", "System note:", "<|im_start|>") is an attempt to steer the model, not
evidence. `addresses_assistant` spots it, so such a sentence is never shown to the model
and never cited.

The patterns are few and deliberately narrow: a corpus is mostly ordinary prose, and a
false alarm silently hides a true fact. Each family needs a sign that its reader is a
model (the word "instructions" with "previous" or "above", "AI" or "language model", a
chat-template marker, an order that opens a sentence), so "the committee must answer to
parliament" or "instructions for voters were posted" stay evidence.
"""

from __future__ import annotations

import re

# Names for a model as a reader. A bare "assistant" is not one: "as an assistant, I
# kept the mayor's diary" is a memoir, "you are an assistant coach" a quote.
_MODEL = (
    r"(?:AI\s+)?(?:AI|A\.I\.|artificial\s+intelligence|(?:large\s+)?language\s+models?|LLMs?|chatbots?)"
    r"(?:\s+(?:assistants?|models?|systems?))?"
)
# Words that point back at the instructions a model was given.
_EARLIER = r"(?:previous|prior|above|earlier|preceding|foregoing|original|system|your|all|any)"

_PATTERNS = [
    # Overriding its instructions: "ignore (all) previous instructions", "disregard your
    # rules", "disregard the above". A pointer back is required: "drivers ignore the
    # rules" is news. "above" must not start "above-mentioned".
    rf"\b(?:ignore|disregard|forget)\s+(?:(?:the|of|and|all|any)\s+)*{_EARLIER}\s+"
    r"(?:\w+\s+)?(?:instructions?|directions|prompts?|guidelines|rules|context)\b",
    r"\b(?:ignore|disregard|forget)\s+(?:(?:all|of|the)\s+)*"
    r"(?:above|foregoing|everything\s+(?:above|before))\b(?!-)",
    # Announcing replacement instructions: "New instructions:", "your real task is".
    r"\b(?:new|updated|real|actual|hidden|secret|additional)\s+instructions?\s*:",
    r"\byour\s+(?:new|real|actual|true)\s+(?:instructions?|task)\b",
    # Naming its reader as a model: "As an AI,", "you are a helpful assistant", "if you
    # are a language model", "Note to AI models:", "any AI reading this". "As an AI"
    # needs a comma or "I/you" after it, so "works as an AI researcher" stays a fact.
    rf"\bas\s+an?\s+{_MODEL}\s*(?:,|\b(?:I|you)\b)",
    r"\byou\s+are\s+(?:now\s+)?an?\s+(?:(?:helpful|harmless|honest|friendly)\s+)+"
    r"(?:AI\s+)?assistant\b",
    rf"\byou\s+are\s+(?:now\s+)?an?\s+(?:\w+\s+)?{_MODEL}\s*(?:[,.;:]|$|\b(?:and|that|who)\b)",
    rf"\bif\s+you\s+are\s+an?\s+(?:\w+\s+)?{_MODEL}",
    rf"\b(?:dear|attention|note\s+(?:to|for)|message\s+(?:to|for)|instructions?\s+for)"
    rf"[\s,:]+(?:the\s+|all\s+|any\s+)?{_MODEL}",
    rf"\b(?:any|all|every)\s+{_MODEL}\s+(?:reading|processing|summari[sz]ing|seeing|answering)\b",
    # Orders about the reply itself: "you must answer", "respond with", "reply only with".
    # A third party's duty ("the committee must answer to parliament") has no "you", and
    # "you must answer for/to" is accountability, not a reply; a bare imperative counts
    # only where it opens a sentence.
    r"\byou\s+(?:must|should|shall|have\s+to|need\s+to|are\s+(?:required|instructed)\s+to|will)"
    r"\s+(?:now\s+|always\s+|only\s+)?(?:answer|respond|reply|say|output|print)\b"
    r"(?!\s+(?:for|to)\b)",
    r"(?:^|[.!?:;]\s+|\n\s*)(?:please\s+|always\s+|only\s+|now\s+|just\s+)?"
    r"(?:respond|reply|answer|say|output)\s+(?:only\s+|exactly\s+|just\s+|always\s+)?"
    r"(?:with|the\s+following)\b",
    # An answer fixed in advance, whatever is asked: "the answer is X regardless.",
    # "whatever the question", "the correct answer to any question is". "Regardless of
    # the question of sovereignty" is politics, hence the "of" exclusion.
    r"\banswer\s+is\b[^.!?\n]{0,80}\bregardless\s*(?:[.!;,]|$)",
    r"\b(?:regardless|no\s+matter\s+what|whatever)\s+(?:of\s+)?(?:the\s+|what\s+|which\s+)?"
    r"(?:question(?!\s+of\b)|query|prompt|(?:is|you\s+are)\s+asked)",
    r"\b(?:correct|right|only|true|real)\s+answer\s+to\s+(?:any|every|all)\s+questions?\b",
    # A fake system or assistant turn: "System note:", "Assistant:" opening a line,
    # "### Instruction:" (Alpaca-style templates). A bare "System:" is left out, since
    # specifications write "System: 64-bit".
    r"\bsystem\s+(?:note|message|prompt|instructions?|override|update|notice)s?\s*:",
    r"(?:^|\n)\s*assistant\s*:",
    r"(?:^|\n)\s*#+\s*(?:system|instruction|response|assistant)\s*:",
    # Chat-template control tokens, which no document has a reason to contain:
    # <|im_start|>, <|eot_id|>, [INST], <<SYS>>, <start_of_turn>.
    r"<\|[a-z_]{2,30}\|>",
    r"\[/?INST\]",
    r"<</?SYS>>",
    r"<(?:start|end)_of_turn>",
]

_ADDRESSES_ASSISTANT = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def addresses_assistant(text: str) -> bool:
    """Whether the text speaks to an AI assistant (instructions, roles, template markers)
    instead of stating something about the world."""
    return _ADDRESSES_ASSISTANT.search(text) is not None
