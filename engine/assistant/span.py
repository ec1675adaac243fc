"""The shortest part of a memory that answers a question (a name, place, number, title or phrase), cut with spaCy."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .grounding import STOP, content_words, stem
from ..inference.nlp import parse
from ..records import MemoryRecord

if TYPE_CHECKING:
    from spacy.tokens import Span as Sentence, Token

WHO, WHERE, NUMBER, DURATION, FREQUENCY, WHY, HOW, WHAT, YES_NO = (
    "who", "where", "number", "duration", "frequency", "why", "how", "what", "yes/no")
_KINDS = ((WHO, r"(who|whom|whose)\b"), (WHERE, r"where\b"), (NUMBER, r"how (many|much)\b"),
          (DURATION, r"how long\b"), (FREQUENCY, r"how often\b"), (WHY, r"why\b"), (HOW, r"how\b"),
          (WHAT, r"((in|on|at|for|from|with|to|about|by) )?(what|which)\b"),
          (YES_NO, r"(is|are|was|were|do|does|did|has|have|had|can|could|would|will|should)\b"))
_GENERIC_NOUNS = frozenset({"kind", "type", "sort", "thing", "things", "name", "names", "way", "ways"})
_LIGHT_VERBS = frozenset({"be", "do", "have", "get", "go", "make", "take"})  # anchors only with an object
_PLACES = ("GPE", "LOC", "FAC")
_NUMBERS = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")
_UNITS = re.compile(r"\b(years?|months?|weeks?|days?|hours?|minutes?|decades?)\b", re.IGNORECASE)
_NUMBER_WORD = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                          r"twenty|thirty|forty|fifty|a few|several|a couple of)\b", re.IGNORECASE)
_OFTEN = re.compile(r"\b((?:once|twice|\w+ times)(?: or (?:once|twice|\w+ times))?(?: a| per| every) \w+|"
                    r"every (?:\w+ )?(?:day|week|weekend|month|year|morning|evening|night)|"
                    r"(?:daily|weekly|monthly|yearly|annually|often|rarely|sometimes|regularly))\b",
                    re.IGNORECASE)
_QUOTED = re.compile(r"[\"“]([^\"“”]{2,80})[\"”]")
_GREETINGS = frozenset({"thanks", "thank", "hey", "hi", "hello", "congrats", "wow", "oh", "aw", "aww"})
_BECAUSE = frozenset({"because", "cause", "'cause", "’cause", "since"})
_FIRST_PERSON = {"i": "{who}", "me": "{who}", "my": "{who}'s", "mine": "{who}'s", "myself": "{who}"}
_CONTRACTED = {"'m": "is", "'ve": "has", "'d": "would", "'ll": "will"}
_COMPLEMENTS = ("dobj", "attr", "acomp", "ccomp", "xcomp", "oprd", "dative", "pobj", "advcl")
_NO_ANSWER_START = ("AUX", "PART", "PRON", "ADV", "SCONJ", "INTJ", "DET")  # after a key word: no answer
_TIME_LEAD = re.compile(r"(?:(?:a |one )?(?:little |short )?while|\w+ (?:days?|weeks?|months?|years?)) ago\b|"
                        r"(?:last|this|next|yesterday|today|tonight|recently|lately)\b", re.IGNORECASE)
MAX_WORDS = 14  # a span longer than this is cut at a comma, or at this many words
MAX_PARTS = 2  # memories a list question ("What pets does Melanie have?") gathers answers from
# (two: the grounding check backs one claim with at most two memories, a name from a third is unsaid)


@dataclass(frozen=True, slots=True)
class QuestionForm:
    """What a question asks for: its kind (who, where, number, ...), the noun it names as the
    answer's type ("What *song* ..."), its main verb, and whether it wants several things."""

    kind: str
    noun: str | None  # lemma of the answer's type noun, e.g. "song" in "Which song motivates her?"
    verb: str | None  # lemma of the question's main verb, e.g. "realize"
    wants_list: bool  # a plural type noun: "What activities does she do?"
    asked: frozenset[str]  # stems of every word of the question (names included)
    lemmas: tuple[tuple[str, str], ...] = ()  # (stem of a word, stem of its lemma): "raising" -> "raise"


@dataclass(frozen=True, slots=True)
class AnswerSpan:
    """A phrase cut from one memory that answers the question, first person turned into the speaker."""

    text: str
    record: MemoryRecord


def question_form(question: str) -> QuestionForm:
    """Read what `question` asks for (see QuestionForm)."""
    low = " ".join(question.casefold().split())
    kind = next((k for k, pattern in _KINDS if re.match(pattern, low)), WHAT)
    doc = parse([question.strip()])[0]
    noun = verb = None
    plural = False
    if kind in (WHAT, WHO):
        wh = next((t for t in doc if t.lower_ in ("what", "which", "whose")), None)
        head = wh.head if wh is not None and wh.dep_ == "det" else None
        if head is not None and head.pos_ in ("NOUN", "PROPN"):
            if head.lower_ in _GENERIC_NOUNS:  # "what kind of books": the noun after "of"
                inner = [c for p in head.children if p.lower_ == "of" for c in p.children if c.dep_ == "pobj"]
                head = inner[0] if inner else head
            noun, plural = head.lemma_.casefold(), head.tag_ in ("NNS", "NNPS")
    roots = [t for t in doc if t.dep_ == "ROOT"]
    if roots:
        candidates = [roots[0], *(c for c in roots[0].children if c.dep_ in ("xcomp", "ccomp", "advcl"))]
        verbs = [t for t in candidates if t.pos_ in ("VERB", "AUX") and t.lemma_.casefold() not in ("be", "do")]
        verb = verbs[0].lemma_.casefold() if verbs else None
    asked = frozenset(stem(w) for w in re.findall(r"[A-Za-z0-9'’-]+", question))
    lemmas = tuple((stem(t.text), stem(t.lemma_)) for t in doc if t.is_alpha and stem(t.text) != stem(t.lemma_))
    return QuestionForm(kind, noun, verb, plural, asked | {b for _, b in lemmas}, lemmas)


def of_the_asked_kind(reply: str, form: QuestionForm) -> bool:
    """Whether a reply is the kind of thing asked: a count or a length of time holds a number (a
    date is no answer to "How long ..."), a frequency says how often. Other kinds are not judged."""
    if form.kind in (NUMBER, DURATION):
        bare = re.sub(r"\b\d{1,2} \w+ \d{4}\b|\b(19|20)\d{2}\b", " ", reply)  # dates are no count
        return bool(_NUMBER_WORD.search(bare) or re.search(r"\b(once|twice|a couple|a few|many|dozens?)\b", bare, re.I))
    if form.kind == FREQUENCY:
        return bool(_OFTEN.search(reply) or _NUMBER_WORD.search(reply))
    return True


def answer_spans(question: str, records: Sequence[MemoryRecord], key: set[str],
                 form: QuestionForm | None = None) -> list[AnswerSpan]:
    """The spans answering `question`, from the first of `records` (relevant memories, best first)
    that holds one; for a list question, from up to MAX_PARTS memories, each a different answer.

    `key` is the question's key stems (answer.key_stems): a memory's sentence sharing most of them is
    where the answer is looked for. A yes/no question gets none: the span would not say yes or no.
    """
    form = form or question_form(question)
    if form.kind == YES_NO or not records:
        return []
    key = key | {b for a, b in form.lemmas if a in key}
    out: list[AnswerSpan] = []
    seen: set[str] = set()
    for record, doc in zip(records, parse([_plain(r) for r in records])):
        text = _span_of(doc, form, key, record.actor or "", generic=not out)
        if text is None or text.casefold() in seen:
            continue
        seen.add(text.casefold())
        out.append(AnswerSpan(text, record))
        if not form.wants_list or len(out) >= MAX_PARTS:
            break
    return out


def _plain(record: MemoryRecord) -> str:
    text = " ".join(record.memory.split())
    if record.actor and text.startswith(f"{record.actor}:"):
        text = text[len(record.actor) + 1:].strip()
    return text


def _span_of(doc: object, form: QuestionForm, key: set[str], speaker: str, generic: bool = True) -> str | None:
    """The answer in one parsed memory: its sentences tried best first (most key words shared).
    generic=False: only a name, number, title or what the question's noun or verb points at, not
    the words after its key words (a list's further items must be of the asked kind)."""
    sentences = [s for s in doc.sents if not s.text.rstrip().endswith("?")]  # type: ignore[attr-defined]
    if not sentences:
        return None
    typed = form.kind in (WHO, WHERE, NUMBER, DURATION, FREQUENCY)
    shared = [_sentence_score(s, form, key, typed) for s in sentences]
    order = sorted(range(len(sentences)), key=lambda k: (-shared[k], k))
    for k in order:  # a name or a number may sit in a sentence next to the one that matched
        if shared[k] <= 0:
            break  # no sentence left that speaks of the question
        # a name or number of the asked kind; else what the question's noun or verb points at, in
        # any sentence that speaks of the question ("We all made our own pots" after "I took my kids
        # to a pottery workshop"), before the words after a key word in the best one
        tokens = _typed(sentences[k], form) if typed else _phrase(sentences[k], form, key, generic=False)
        if tokens:
            text = _readable(tokens, speaker)
            if text and _new_words(text, form):
                return text
    if shared[order[0]] <= 0 or not (generic or typed):
        return None
    # nothing of the asked kind: the words around the key words of the best sentence
    tokens = _phrase(sentences[order[0]], form, key, generic)
    text = _readable(tokens, speaker) if tokens else None
    return text if text and _new_words(text, form) else None


def _sentence_score(sentence: Sentence, form: QuestionForm, key: set[str], typed: bool) -> float:
    """How likely a sentence holds the answer: the key words it shares (by word or lemma), the
    question's verb, an entity of the asked kind; a sentence with nothing new (a greeting) scores 0."""
    shared = len(key & _stems(sentence))
    spoken_to = {t.i for e in sentence.ents if e.label_ == "PERSON" and _addressed(e) for t in e}
    if not any(stem(t.text) not in form.asked and t.is_alpha and t.lower_ not in STOP and t.i not in spoken_to
               for t in sentence):
        return 0.0  # "Thanks, Caroline!" says nothing
    score = float(shared)
    if _verb_anchor(sentence, form) is not None:
        score += 1.0
    if typed and _typed(sentence, form) is not None:
        score += 0.5
    if form.kind == WHAT and _QUOTED.search(sentence.text):
        score += 0.5
    return score


def _stems(tokens: Sentence | Sequence[Token]) -> set[str]:
    """The stems of the tokens' words and of their lemmas ("raising" meets "raise")."""
    return {s for t in tokens for s in (stem(t.text), stem(t.lemma_))}


def _matches(token: Token, key: set[str]) -> bool:
    return stem(token.text) in key or stem(token.lemma_) in key


def _new_words(text: str, form: QuestionForm) -> bool:
    """Whether a span says something the question does not (a span repeating it answers nothing)."""
    return any(stem(w) not in form.asked for w in content_words(text)) or \
        any(n not in form.asked for n in re.findall(r"\b\d+\b", text))


def _typed(sentence: Sentence, form: QuestionForm) -> list[Token] | None:
    """A name, place, number, duration or frequency in the sentence, none of it already asked."""
    ents = [e for e in sentence.ents if not all(stem(t.text) in form.asked for t in e)]
    if form.kind == WHO:
        found = [e for e in ents if e.label_ == "PERSON" and not _addressed(e)]
    elif form.kind == WHERE:
        found = [e for e in ents if e.label_ in _PLACES]
        if not found:
            return _place_phrase(sentence, form)
    elif form.kind == NUMBER:
        found = [e for e in ents if e.label_ in _NUMBERS]
        if found:
            head = found[0].root.head  # "3 kids": the counted noun comes along
            if head.i == found[0].end and head.pos_ == "NOUN":
                return list(found[0]) + [head]
    elif form.kind == DURATION:
        found = [e for e in ents if e.label_ == "DATE" and _UNITS.search(e.text) and _NUMBER_WORD.search(e.text)]
    else:
        match = next((m for m in _OFTEN.finditer(sentence.text)
                      if not all(stem(w) in form.asked for w in m.group(1).split())), None)
        if match is None:
            return None
        start = sentence.start_char + match.start(1)
        end = sentence.start_char + match.end(1)
        return [t for t in sentence if start <= t.idx < end]
    return list(found[0]) if found else None


def _addressed(name: Sentence) -> bool:
    """Whether a name is the person spoken to ("Thanks, Caroline!", "Hey Mel,"), not one spoken of."""
    doc = name.doc
    before = doc[name.start - 1] if name.start > 0 else None
    after = doc[name.end] if name.end < len(doc) else None
    opens = before is None or before.is_punct or before.pos_ == "INTJ" or before.lower_ in _GREETINGS
    return opens and (after is None or after.text in ("!", ",", ".", "?"))


def _place_phrase(sentence: Sentence, form: QuestionForm) -> list[Token] | None:
    """"in my slipper": a place preposition with an object the question does not name."""
    for t in sentence:
        if t.dep_ == "prep" and t.lower_ in ("in", "at", "to", "from", "near", "inside", "under", "on"):
            objects = [c for c in t.children if c.dep_ == "pobj"]
            if objects and any(stem(x.text) not in form.asked and x.pos_ in ("NOUN", "PROPN")
                               for x in objects[0].subtree):
                return [t, *objects[0].subtree]
    return None


def _phrase(sentence: Sentence, form: QuestionForm, key: set[str], generic: bool = True) -> list[Token] | None:
    """The words of the sentence that answer a what/which/how/why question.

    In order: a quoted title the question does not hold; for "why", the reason ("because ...",
    "to ..."); what the question's verb governs in the sentence ("realize [that self-care is
    important]"); the words naming the asked type ("What pet" -> "guinea pig"); else the sentence
    from its first new word after the last key word (or its predicate) to the end of the clause.
    """
    for match in _QUOTED.finditer(sentence.text):
        if not all(stem(w) in form.asked for w in re.findall(r"[A-Za-z0-9'’-]+", match.group(1))):
            start, end = sentence.start_char + match.start(1), sentence.start_char + match.end(1)
            return [t for t in sentence if start <= t.idx < end]
    if form.kind == WHY:
        for t in sentence:
            if t.lower_ in _BECAUSE and t.dep_ in ("mark", "prep", "advmod"):
                return [x for x in t.head.subtree if x.i > t.i]
    anchor = _verb_anchor(sentence, form)
    if anchor is not None:
        for child in anchor.children:
            if child.dep_ in _COMPLEMENTS and child.i > anchor.i:
                tokens = [x for x in child.subtree]
                if any(stem(x.text) not in form.asked and x.lower_ not in STOP and x.is_alpha for x in tokens):
                    return tokens
    if form.noun and form.kind == WHAT:
        for t in sentence:
            if t.lemma_.casefold() == form.noun or stem(t.text) == stem(form.noun):
                if t.dep_ == "nsubj" and t.head.lemma_ == "be":  # "our pet is [a dog called Oliver]"
                    said = [x for x in t.head.children if x.dep_ in ("attr", "acomp") and x.i > t.i]
                    if said:
                        return [x for x in said[0].subtree]
                if t.dep_ == "attr" and t.head.lemma_ == "be":  # "[this necklace] is a gift from ..."
                    subject = [x for x in t.head.children if x.dep_ == "nsubj" and x.pos_ in ("NOUN", "PROPN")]
                    if subject:
                        return [x for x in subject[0].subtree]
                named = [x for x in t.children if x.dep_ in ("appos", "conj")]
                if named:
                    return [x for x in named[0].subtree]
                mods = [x for x in t.lefts if x.dep_ in ("compound", "amod", "nmod")
                        and stem(x.text) not in form.asked]
                if mods:
                    return [*mods[0].subtree, *(x for x in t.lefts if x.i > mods[0].i), t]
    return _after_key(sentence, form, key) if generic else None


def _verb_anchor(sentence: Sentence, form: QuestionForm) -> Token | None:
    if form.verb is None:
        return None
    for t in sentence:
        if t.pos_ in ("VERB", "AUX") and (t.lemma_.casefold() == form.verb or stem(t.text) == stem(form.verb)):
            if form.verb not in _LIGHT_VERBS or any(c.dep_ in ("dobj", "attr", "acomp") for c in t.children):
                return t
    return None


def _after_key(sentence: Sentence, form: QuestionForm, key: set[str]) -> list[Token] | None:
    """The clause after the last key word; with none, the sentence's predicate."""
    tokens = list(sentence)
    hits = [k for k, t in enumerate(tokens) if _matches(t, key)]
    start = hits[-1] + 1 if hits else next((k for k, t in enumerate(tokens) if t.dep_ == "ROOT"), 0)
    while start < len(tokens) and (tokens[start].is_punct or tokens[start].lower_ in STOP
                                   and tokens[start].pos_ not in ("VERB", "NOUN", "ADJ", "PROPN", "NUM")):
        start += 1
    end = start
    while end < len(tokens) and not (tokens[end].is_punct and tokens[end].text in ".!?;"):
        end += 1
    first = next((t for t in tokens[start:end] if not _leading_glue(t)), None)
    if first is None:
        return None  # a key word ends the sentence: the memory is quoted
    rest = sentence.doc.text[first.idx:tokens[end - 1].idx + len(tokens[end - 1].text)]
    if first.pos_ in _NO_ANSWER_START or first.tag_ == "VBN" or first.lower_ in ("n't", "n’t") \
            or first.ent_type_ in ("DATE", "TIME") or _TIME_LEAD.match(rest):
        return None  # "been a great experience", "recently", "you recommended ...", "a while ago": the
        # rest of a sentence about something else, not an answer; the next memory is tried, else one is quoted
    return tokens[start:end]


def _leading_glue(token: Token) -> bool:
    """A word a phrase that reads alone does not start with: "that", "the", "to", a clitic ("'s been")."""
    return bool(token.is_punct or token.text.startswith(("'", "’"))
                or token.dep_ in ("det", "mark", "aux", "auxpass", "cc", "punct", "prep", "case")
                and token.lower_ not in ("in", "at", "from", "near", "inside", "under", "on")
                or token.lower_ in ("our", "own", "so", "just", "really", "also"))


def _readable(tokens: Sequence[Token], speaker: str) -> str | None:
    """Tokens as a phrase that reads alone: no leading "that", "the", "to"; "my" -> "Melanie's";
    cut at a comma when long; the first letter capitalised."""
    words = list(tokens)
    while words and _leading_glue(words[0]):
        words = words[1:]
    while words and (words[-1].is_punct or words[-1].lower_ in ("and", "or", "but", "too", "though")):
        words = words[:-1]
    if not words:
        return None
    if len(words) > MAX_WORDS:
        cut = next((k for k, t in enumerate(words) if k >= 4 and t.text in (",", "-", "–", "—")), MAX_WORDS)
        words = words[:min(cut, MAX_WORDS)]
    out = ""
    for k, t in enumerate(words):
        text = t.text
        person = _FIRST_PERSON.get(t.lower_)
        if person and speaker:
            text = person.format(who=speaker)
        elif speaker and t.lower_.replace("’", "'") in _CONTRACTED and k and words[k - 1].lower_ == "i":
            text = " " + _CONTRACTED[t.lower_.replace("’", "'")]  # "I'm" -> "Melanie is"
        out += text + t.whitespace_
    out = out.strip().strip(",;:-–—\"“”' ")
    return out[:1].upper() + out[1:] if out else None
