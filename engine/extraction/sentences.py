"""Sentence scaffolding: messages -> standalone statements (spaCy clauses, names for pronouns, absolute dates)."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Sequence

from . import temporal
from ..inference.nlp import parse
from .small_talk import is_small_talk
from ..records import Message
from .cancel import CancelToken, check_cancel

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 20_000  # per message, what the sentence splitter reads



_REACTION_SUBJECTS = frozenset({"that", "this", "it", "you", "which", "there", "what", "they", "those"})
_FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our", "ours"})
_SECOND_PERSON = frozenset({"you", "your", "yours", "yourself", "yourselves", "ya", "u"})
_LEAD_FILLERS = frozenset({"actually", "oh", "ah", "wow", "well", "so", "yeah", "yes", "haha", "hahaha", "lol", "hey",
                           "hi", "hmm", "um", "ok", "okay", "anyway", "btw", "omg", "gosh", "aww", "ooh"})
_CONTRACTIONS = {"'m": "is", "’m": "is", "'ve": "has", "’ve": "has", "'ll": "will", "’ll": "will",
                 "'d": "would", "’d": "would", "am": "is"}
_IRREGULAR = {"am": "is", "have": "has", "do": "does", "go": "goes", "are": "is", "was": "was",
              "'re": "is"}
_SKIP_ADVERBS = frozenset({"really", "also", "just", "always", "never", "still", "usually", "often",
                           "sometimes", "totally", "actually", "absolutely", "mostly", "already",
                           "honestly", "definitely", "truly", "even", "only", "rarely", "recently"})


@dataclass(frozen=True, slots=True)
class Statement:
    """One clause of one message, rewritten to stand alone."""

    index: int  # the message it came from
    text: str  # rewritten (names for pronouns, dates made absolute)
    original: str  # as said, for the date resolver and for the model
    informative: bool


def _third_person(verb: str) -> str:
    low = verb.lower()
    if low in _IRREGULAR:
        out = _IRREGULAR[low]
    elif low.endswith(("s", "sh", "ch", "x", "z", "o")):
        out = low + "es"
    elif len(low) > 1 and low.endswith("y") and low[-2] not in "aeiou":
        out = low[:-1] + "ies"
    else:
        out = low + "s"
    return out.capitalize() if verb[:1].isupper() else out


def _rewrite(tokens: Sequence[Any], speaker: str, rewrite: bool, antecedent: str | None = None) -> str:
    """Join tokens back into text, with first-person words replaced by the speaker's name.

    A "he"/"she" subject becomes `antecedent`, the last other person named earlier in the message.
    """
    out: list[str] = []
    conjugate: set[int] = set()
    if rewrite:
        for pos, tok in enumerate(tokens):
            if tok.lower_ == "i" and tok.dep_ in ("nsubj", "nsubjpass"):
                for nxt in tokens[pos + 1:pos + 4]:
                    if nxt.lower_ in _SKIP_ADVERBS:
                        continue
                    if nxt.tag_ == "VBP" or nxt.lower_ in _CONTRACTIONS:
                        conjugate.add(nxt.i)
                    break
    for pos, tok in enumerate(tokens):
        word, space = tok.text, tok.whitespace_
        low = tok.lower_
        if rewrite:
            if low == "i" and tok.tag_ == "PRP":
                word = speaker
            elif low == "me" and tok.tag_ == "PRP":
                word = speaker
            elif low in ("my", "mine") and tok.tag_ in ("PRP$", "PRP", "JJ"):
                word = f"{speaker}'s"
            elif low in ("he", "she") and antecedent and tok.dep_ in ("nsubj", "nsubjpass"):
                word = antecedent
                if pos + 1 < len(tokens) and tokens[pos + 1].lower_ in ("'s", "’s"):
                    space = " "
            elif low in ("'s", "’s") and pos > 0 and tokens[pos - 1].lower_ in ("he", "she") and antecedent \
                    and tok.tag_ == "VBZ":
                word = "is"
            elif tok.i in conjugate:
                if low in _CONTRACTIONS:
                    word = _CONTRACTIONS[low]
                    if out and not out[-1].endswith(" "):
                        out[-1] += " "
                elif low == "do" and pos + 1 < len(tokens) and tokens[pos + 1].lower_ in ("n't", "not"):
                    word = "does"
                else:
                    word = _third_person(tok.text)
        out.append(word + space)
    return "".join(out).strip()


def _strip_lead(tokens: list[Any], names: frozenset[str]) -> list[Any]:
    """Drop leading interjections and vocatives: "Oh wow, Mel, I ..." -> "I ..."."""
    start = 0
    while start < len(tokens):
        tok = tokens[start]
        low = tok.lower_
        if tok.is_punct or tok.dep_ == "intj" or tok.tag_ == "UH" or low in _LEAD_FILLERS:
            start += 1
        elif (tok.text in names or low in names) and start + 1 < len(tokens) and (
                tokens[start + 1].is_punct or tokens[start + 1].text in names):
            start += 1  # "Mel," / "Mel!" addressed to the listener
        else:
            break
    while len(tokens) > start and tokens[-1].is_punct and tokens[-1].text not in (".", "!", "?"):
        tokens = tokens[:-1]
    return tokens[start:]


def _clauses(tokens: list[Any], split: bool) -> list[list[Any]]:
    """Split "I love X and my sister lives in Y" at the conjunction when both sides have a subject."""
    if not split:
        return [tokens]
    parts: list[list[Any]] = []
    start = 0
    for k, tok in enumerate(tokens):
        if tok.dep_ != "cc" or tok.lower_ not in ("and", "but", "so") or k == start:
            continue
        left = tokens[start:k]
        right = tokens[k + 1:k + 4]
        left_subject = any(t.dep_ in ("nsubj", "nsubjpass") for t in left)
        right_subject = any(t.dep_ in ("nsubj", "nsubjpass") and t.head.i > tok.i for t in right)
        if left_subject and right_subject:
            while left and left[-1].is_punct:
                left = left[:-1]
            parts.append(left)
            start = k + 1
    parts.append(tokens[start:])
    return [p for p in parts if p]


def _is_agent(message: Message) -> bool:
    """An unnamed assistant's own words: memories are about the people it talks with (as in mem0)."""
    return message.role in ("assistant", "tool") and not (message.name or "").strip()


def _is_imperative(tokens: Sequence[Any]) -> bool:
    """"Please answer in German", "Try the ramen": a base-form verb first and no subject."""
    words = [t for t in tokens if t.is_alpha and t.lower_ not in ("please", "just", "also", "kindly")]
    if not words or words[0].tag_ != "VB" or words[0].dep_ != "ROOT":
        return False
    return not any(t.dep_ in ("nsubj", "nsubjpass", "expl") for t in tokens)


def _last_person(tokens: Sequence[Any], speaker: str) -> str | None:
    """The last person (or named pet) mentioned in a clause, for "he"/"she" later in the message."""
    found = None
    for tok in tokens:
        if tok.ent_type_ == "PERSON" or (tok.pos_ == "PROPN" and tok.ent_type_ in ("", "PERSON")):
            if tok.text != speaker and tok.is_alpha and tok.text[:1].isupper():
                found = tok.text
    return found




def _informative(tokens: Sequence[Any], names: frozenset[str]) -> bool:
    """True when a clause says something about someone: not a question, greeting or reaction."""
    alpha = [t for t in tokens if t.is_alpha]
    if len(alpha) < 3:
        return False
    if any(t.text == "?" for t in tokens[-2:]):
        return False
    if is_small_talk(" ".join(t.text for t in tokens)):
        return False
    if any(t.lower_ in _SECOND_PERSON for t in tokens):
        return False  # about the listener, mostly reactions ("you should visit her")
    if any(t.lower_ in _FIRST_PERSON for t in tokens):
        return True
    subjects = [t for t in tokens if t.dep_ in ("nsubj", "nsubjpass", "expl")]
    if subjects and all(t.lower_ in _REACTION_SUBJECTS for t in subjects):
        return False  # "That sounds great", "You did amazing", "It was so fun"
    if not subjects and not any(t.pos_ == "VERB" for t in tokens):
        return False  # "Such a beautiful place!"
    has_name = any(t.pos_ == "PROPN" or t.ent_type_ or t.lower_ in ("he", "she") for t in tokens)
    return has_name or len(alpha) >= 5


def statements(messages: Sequence[Message], *, split: bool = True, rewrite: bool = True,
               filter_small_talk: bool = True, merge: bool = True,
               cancel: CancelToken | None = None) -> list[Statement]:
    """Every message split into clauses, filtered and rewritten to stand alone.

    merge=True joins the informative clauses of one message into one statement, so an answer
    spread over two clauses of a turn ("I failed the test" + "I've been feeling stuck") stays
    in one memory; merge=False keeps one statement per clause.
    """
    names = frozenset(n for m in messages for n in (m.name, (m.name or "").split(" ")[0]) if n)
    out: list[Statement] = []
    # Only messages that can give a statement are parsed: an unnamed assistant's replies and
    # small talk are skipped unparsed (about half of an imported chat).
    wanted = [i for i, m in enumerate(messages)
              if not (filter_small_talk and (is_small_talk(m.content or "") or _is_agent(m)))]
    texts = [(messages[i].content or "")[:MAX_MESSAGE_CHARS] for i in wanted]
    docs = parse(texts, batch_size=32, keep=True)  # kept: the entity linker reads these messages next
    for index, doc in zip(wanted, docs):
        check_cancel(cancel)
        msg = messages[index]
        speaker = (msg.name or "").strip() or f"the {msg.role}"
        sentences = list(doc.sents) if split else [doc[:]]
        last_person: str | None = None
        found: list[Statement] = []
        for sent in sentences:
            tokens = _strip_lead(list(sent), names) if filter_small_talk else list(sent)
            for clause in _clauses(tokens, split and not merge):
                informative = _informative(clause, names)
                if filter_small_talk and not informative:
                    last_person = _last_person(clause, speaker) or last_person
                    continue
                text = _rewrite(clause, speaker, rewrite, last_person if rewrite else None)
                if rewrite and _is_imperative(clause):
                    text = f"{speaker} says to {text[:1].lower()}{text[1:]}"
                text = finish(text)
                last_person = _last_person(clause, speaker) or last_person
                original = "".join(t.text_with_ws for t in clause).strip()
                if len(text) >= 3:
                    found.append(Statement(index, text, original, informative))
        if merge and len(found) > 1:
            found = [Statement(index, " ".join(s.text for s in found),
                               " ".join(s.original for s in found), True)]
        out += found
    return out


def finish(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().rstrip(",;:-")
    text = re.sub(r"[!.]{2,}$|!$", ".", text)
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".?":
        text += "."
    return text


def speaker_of(message: Message) -> str:
    """Who said a message: its name when given, else its role."""
    return (message.name or "").strip() or message.role


# -- types and dates in code ----------------------------------------------------------

_PLAN = re.compile(r"\b(will|going to|gonna|plan(s|ning)? to|want(s)? to|hop(e|es|ing) to|intend(s)? to|"
                   r"would like to|next (week|month|year|weekend|summer|spring|fall|winter|monday|tuesday|"
                   r"wednesday|thursday|friday|saturday|sunday)|tomorrow|soon|upcoming|this (weekend|"
                   r"summer|fall|winter|spring))\b", re.I)
_PREFERENCE = re.compile(r"\b(love[sd]?|like[sd]?|enjoy(s|ed)?|prefer(s|red)?|favou?rite|hate[sd]?|"
                         r"dislike[sd]?|can't stand|fan of|into|passionate about|obsessed with|allergic)\b",
                         re.I)
_RELATION = re.compile(r"\b(sister|brother|mother|mom|mum|dad|father|parents?|wife|husband|partner|"
                       r"girlfriend|boyfriend|fianc[eé]e?|friend|friends|son|daughter|kids?|children|"
                       r"married|colleague|coworker|boss|cousin|aunt|uncle|grand(ma|pa|mother|father)|"
                       r"niece|nephew|roommate|neighbou?r|dating)\b", re.I)
_PAST = re.compile(r"\b(yesterday|ago|last (week|month|year|weekend|night|monday|tuesday|wednesday|"
                   r"thursday|friday|saturday|sunday))\b", re.I)


def guess_type(text: str) -> str:
    """Rule-based memory type: plan, preference, relationship, event, else fact."""
    if _PLAN.search(text) and not _PAST.search(text):
        return "plan"
    if _PREFERENCE.search(text):
        return "preference"
    if _PAST.search(text):
        return "event"
    if _RELATION.search(text):
        return "relationship"
    return "fact"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_PREPOSITIONS = frozenset({"in", "on", "at", "by", "since", "until", "till", "from", "before", "after",
                           "during", "for", "of", "around", "between", "through"})


def _human_date(iso: str) -> str | None:
    """"2023-05-07" -> "on 7 May 2023"; a whole month or year -> "in May 2023" / "in 2023"."""
    try:
        if "/" not in iso:
            d = date.fromisoformat(iso[:10])
            return f"on {d.day} {_MONTHS[d.month - 1]} {d.year}"
        a, b = (date.fromisoformat(x[:10]) for x in iso.split("/", 1))
    except ValueError:
        return None
    if a.day == 1 and (b + timedelta(days=1)).day == 1 and a.month == b.month and a.year == b.year:
        return f"in {_MONTHS[a.month - 1]} {a.year}"
    if (a.month, a.day, b.month, b.day) == (1, 1, 12, 31) and a.year == b.year:
        return f"in {a.year}"
    return f"between {a.day} {_MONTHS[a.month - 1]} {a.year} and {b.day} {_MONTHS[b.month - 1]} {b.year}"


def with_absolute_dates(text: str, original: str, reference: datetime,
                       absolute: bool = True) -> tuple[str, str | None]:
    """The event date said in a statement (engine.extraction.temporal), and the text with it made absolute."""
    try:
        window = temporal.resolve_event_date(original, reference)
        event_date = window.iso() if window is not None else None
        if not absolute or event_date is None:
            return text, event_date
        for mention in temporal.find_mentions(text, reference):
            phrase = _human_date(mention.window.iso())
            if phrase is None or not re.search(r"\b(ago|yesterday|today|tonight|tomorrow|last|next|this|"
                                               r"coming|past|recently|week|month|year|weekend)\b",
                                               mention.text, re.I):
                continue  # already absolute ("in 2022", "on 3 May")
            at = text.find(mention.text)
            if at < 0:
                continue
            before = text[:at].rstrip()
            if before.split(" ")[-1].lower() in _PREPOSITIONS:
                phrase = phrase.split(" ", 1)[1]
            text = text.replace(mention.text, phrase, 1)
        return text, event_date
    except (ValueError, TypeError, OverflowError) as exc:
        log.debug("date resolution failed: %s", exc)
        return text, None
