"""What a chat message is (a statement, a question, a request, small talk) and what of it to remember."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..extraction.small_talk import is_small_talk

STATEMENT, QUESTION, REQUEST, SMALL_TALK, REMEMBER = "statement", "question", "request", "small talk", "remember"

# "remember that ...", "please note: ...", "don't forget I ...": the user asks for a memory explicitly.
_REMEMBER = re.compile(r"^\W*(?:(?:please|pls|ok|okay|and|also)\W+)*(?:(?:can|could|would|will)\s+you\s+)?"
                       r"(?:remember|note|keep\s+in\s+mind|make\s+a\s+note|don['’]?t\s+forget|do\s+not\s+forget|"
                       r"save|store|memori[sz]e)\b(?:\s+(?:that|this|down))?\s*[:,-]?\s*", re.I)
_QUESTION_START = re.compile(
    r"^\W*(?:(?:and|so|but|then|ok|okay|hey|hi|also|loci)\W+)*"
    r"(?:who|whom|whose|what|when|where|which|why|how|"
    r"(?:is|are|am|was|were|do|does|did|have|has|had|can|could|will|would|should|shall|may|might|must)"
    r"(?:n['’]t)?\s+(?:i|you|we|they|he|she|it|my|your|our|their|his|her|its|there|the|a|an|this|that|"
    r"these|those|anyone|anybody|someone|somebody|[A-Z][a-z]+))\b", re.I)
_REQUEST_START = re.compile(
    r"^\W*(?:(?:please|pls|ok|okay|and|so|also|now|hey|loci)\W+)*"
    r"(?:tell|show|list|give|find|search|look|explain|describe|summari[sz]e|write|draft|make|create|help|"
    r"remind|recommend|suggest|translate|compute|calculate|check|compare|name|count|let['’]?s|say|repeat|"
    r"forget|delete|stop|continue|go\s+on|answer|what\s+about|how\s+about)\b", re.I)
_ASKING = re.compile(r"\b(?:i\s+(?:wonder|want\s+to\s+know|need\s+to\s+know|forgot|forget|don['’]?t\s+"
                     r"(?:know|remember))|do\s+you\s+(?:know|remember)|any\s+idea)\b", re.I)


@dataclass(frozen=True, slots=True)
class Intent:
    """A chat message's kind and, for a statement or an explicit "remember that", what to store."""

    kind: str
    to_remember: str | None  # the user's own words to store, or None: keep it in the chat log only


def classify(text: str) -> Intent:
    """Sort a user's chat message: statements (and "remember that X") are remembered, the rest is not.

    A question ("When is my appointment?", "Do you know ...", ending in "?"), a request to the
    assistant ("Tell me about Caroline", "Can you ...") and small talk ("thanks!") stay in the chat
    log. A statement ("My cat is called Miso") is remembered in the user's own words; in a message
    that mixes them ("I moved to Oslo. Any tips?") only the statement sentences are. "remember
    that X" stores X, whatever X is.
    """
    said = " ".join(text.split())
    explicit = _REMEMBER.match(said)
    if explicit and len(said) > explicit.end() and not said.endswith("?") and \
            not re.match(r"(?:who|what|when|where|which|why|how|if|whether)\b", said[explicit.end():], re.I):
        rest = said[explicit.end():].strip()
        return Intent(REMEMBER, rest[0].upper() + rest[1:])
    if not said or is_small_talk(said):
        return Intent(SMALL_TALK, None)
    kinds = [(_sentence_kind(s), s) for s in re.split(r"(?<=[.!?])\s+", said) if s.strip()]
    kept = [s for kind, s in kinds if kind == STATEMENT]
    if kept:
        return Intent(STATEMENT, " ".join(kept))
    found = {kind for kind, _ in kinds}
    return Intent(QUESTION if QUESTION in found else REQUEST if REQUEST in found else SMALL_TALK, None)


def _sentence_kind(sentence: str) -> str:
    if is_small_talk(sentence):
        return SMALL_TALK
    if sentence.endswith("?") or _QUESTION_START.match(sentence) or _ASKING.search(sentence):
        return QUESTION
    if _REQUEST_START.match(sentence):
        return REQUEST
    return STATEMENT
