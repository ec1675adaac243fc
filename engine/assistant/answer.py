"""Questions answered from memory: relevant memories, dates from the store, a checked model reply or "I don't know"."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from .context import build_context, human_date
from .grounding import Claim, check, content_words, names, stem
from ..extraction.temporal import find_mentions
from ..inference.nlp import parse
from .span import WHO, AnswerSpan, QuestionForm, answer_spans, of_the_asked_kind, question_form
from ..records import MemoryRecord, ScoredMemory

INSTRUCTIONS = (
    "You answer questions about people from the memories given. Use only the memories. Answer in "
    "a few words, without a full sentence. After the answer, write the numbers of the memories you "
    "used in brackets, like [2].")
# One worked example, not a "when" question: those never reach the model (dates come from the
# store), and an example answered with a date taught it to answer every question with one.
EXAMPLE_IN = ("Memories:\n[1] [3 June 2023] Maya: I adopted a cat called Miso last week!\n"
              "[2] [9 June 2023] Sam: My sister lives in Oslo.\n\nQuestion: What pet did Maya adopt?")
EXAMPLE_OUT = "A cat called Miso [1]"
ANSWER_TOKENS = 48
_CITE = re.compile(r"\[(\d{1,3})\]")
_LEAD = re.compile(r"^\s*(the )?(short )?answer( to (this|the) question)? is:?\s*|^\s*answer:\s*", re.IGNORECASE)
_MONTH = ("(January|February|March|April|May|June|July|August|September|October|November|December)")
_DATE = re.compile(rf"\b(\d{{1,2}} {_MONTH} \d{{4}}|{_MONTH} \d{{1,2}},? \d{{4}}|{_MONTH} \d{{4}}|"
                   rf"\d{{4}}-\d{{2}}-\d{{2}}|(?:19|20)\d{{2}})\b")
_STOP = frozenset("a an the and or of to in on at for is was were be by with it its that this as "
                  "from did does do what when where who how why which".split())


class Completer(Protocol):
    """A chat model giving plain text (engine.inference.llm.LlamaCppLLM.complete)."""

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 stop: list[str] | None = None) -> str:
        ...


class Searcher(Protocol):
    """Anything with Memory.search_records' signature."""

    def search_records(self, query: str, *, top_k: int = 20, filters: Mapping[str, Any] | None = None,
                       threshold: float | None = None, reference_date: Any = None) -> list[ScoredMemory]:
        ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A model's answer, the memories it cites, and the context it was given (ids and words)."""

    text: str
    memory_ids: tuple[str, ...]  # cited: the memories the answer rests on
    context_ids: tuple[str, ...]  # every memory the model was shown, best first
    context_words: int
    supported: bool = True  # False: the model's reply said more than the memories; `text` is cut from them
    claims: tuple[Claim, ...] = ()  # the model's reply, claim by claim, as the grounding check saw it
    abstained: bool = False  # no memory was relevant enough: "I don't have a memory of that."


NO_MEMORY = "I don't have a memory of that."
_QUESTION_WORDS = frozenset("kind type sort thing things name names something anything much many long "
                            "often get got go went make made feel felt after before during besides "
                            "according recent recently latest together reason describe describes described "
                            "mention mentions mentioned".split())  # "describe", "mention": what frames a question
# A date in a question is matched against when a memory was said (search's time signal), not its words.
_DATE_WORDS = frozenset("january february march april may june july august september october november december "
                        "monday tuesday wednesday thursday friday saturday sunday".split())
_QUESTION_STEMS = frozenset(stem(w) for w in _QUESTION_WORDS | _DATE_WORDS)  # "getting" is "get"
MIN_KEY_SHARE = 0.5  # of the question's key words a memory must share to count as relevant
SHORT_SENTENCE = 12  # words: a quoted sentence this short comes with the one after it
QUOTE_MIN_SHARE = 0.6  # ...and to be quoted in place of a reply that failed the grounding check
SPAN_MEMORIES = 6  # the most relevant memories an answer may be cut from (spans)


def key_stems(question: str) -> set[str]:
    """The stems a relevant memory should share with the question (names and generic words left out)."""
    people = {n.casefold() for n in names(question)}
    return {stem(w) for w in content_words(question)
            if w.casefold() not in people and w.casefold().removesuffix("'s") not in people
            and stem(w) not in _QUESTION_STEMS and not w[0].isdigit()}


def relevant_memories(question: str, records: Sequence[MemoryRecord]) -> list[MemoryRecord]:
    """The memories that speak of the question, best first; [] means memory is silent on it
    (scored_relevance() gives the share of key words each one holds)."""
    return [r for _, r in scored_relevance(question, records)]


def scored_relevance(question: str, records: Sequence[MemoryRecord]) -> list[tuple[float, MemoryRecord]]:
    """(share of the question's key words held, memory) for the relevant memories, best first (by
    the share of all its key words, those naming the answer's type first, then search's order).

    A memory is relevant when its statements (its questions assert nothing) share at least
    MIN_KEY_SHARE of the question's key words (by stem), or of those besides the answer's type noun
    (answer_type) when it holds them as the question uses them, and, when the question names people,
    is said by or mentions one of them. "What did Caroline realise after her race?" is not answered
    by Melanie's race.
    """
    people = {re.sub(r"['’]s$", "", n).casefold() for n in names(question)}
    speakers = {(r.actor or "").casefold() for r in records if r.actor}
    people = {_full_name(p, speakers) for p in people}
    keys = key_stems(question)
    named = answer_type(question)
    # "What instruments does Melanie play?" is answered by "I play clarinet": the answer's type noun
    # is what the answer is an instance of, seldom a word of it; the other key words must still be held
    beside = keys - {named} if named in keys and len(keys) > 1 else keys
    asked_as = _word_classes(question) if beside != keys else {}
    out: list[tuple[float, int, float, MemoryRecord]] = []
    for k, r in enumerate(records):
        speaker = (r.actor or "").casefold()
        mentioned = any(_about(r, p) for p in people)
        if people and not mentioned and speaker not in people:
            continue
        # said by a person the question names to someone it does not name: only what they say of
        # themselves ("That race sounds great, Mel!" is not about the speaker's race)
        to_named = any(_addressed(r, p) for p in people if p != speaker)
        text = _statements(r.memory) if mentioned or to_named or not people else _own_statements(r.memory)
        have = {stem(w) for w in re.findall(r"[A-Za-z0-9'’-]+", text)}
        share = whole = len(keys & have) / len(keys) if keys else 1.0
        if beside != keys and len(beside & have) / len(beside) > share:
            # ...said as asked: "What setback did Caroline face?" is not answered by "my mentee's face"
            said_as = _word_classes(text)
            if all(asked_as.get(w, set()) & said_as.get(w, set()) for w in beside & have):
                share = len(beside & have) / len(beside)
        if share >= MIN_KEY_SHARE and (keys & have or not keys):
            out.append((-whole - (named in have) / 1000, k, share, r))
    # ranked by all the key words held, naming the type first ("Marley flooring"), then search's order
    return [(share, r) for _, _, share, r in sorted(out, key=lambda t: (t[0], t[1]))]


def _word_classes(text: str) -> dict[str, set[str]]:
    """Each word's stem with the classes it is used in ("verb", "noun", else spaCy's part of speech)."""
    out: dict[str, set[str]] = {}
    for token in parse([text])[0]:
        kind = "verb" if token.pos_ in ("VERB", "AUX") else "noun" if token.pos_ in ("NOUN", "PROPN") else token.pos_
        out.setdefault(stem(token.text), set()).add(kind)
    return out


def answer_type(question: str) -> str | None:
    """The stem of the noun the answer is an instance of ("instrument" in "What instruments does
    Melanie play?", "book" in "What kind of books..."), or None when the question names none."""
    noun = question_form(question).noun
    return stem(noun) if noun else None


def _full_name(name: str, speakers: set[str]) -> str:
    """A short name as the speaker who goes by it: "mel" -> "melanie" when one speaker's name starts so."""
    if name in speakers or len(name) < 3:
        return name
    longer = [s for s in speakers if s.startswith(name)]
    return longer[0] if len(longer) == 1 else name


def _statements(text: str) -> str:
    """A memory's text without its questions: "What got you into running?" says nothing about running."""
    return " ".join(x for x in re.split(r"(?<=[.!?])\s+", text) if not x.rstrip().endswith("?"))


_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|us|our|ours)\b",
                           re.IGNORECASE)
_SECOND_PERSON = re.compile(r"\b(you|you're|you've|you'd|you'll|your|yours|yourself|ya|u|ur)\b", re.IGNORECASE)
_VOCATIVE = re.compile(r",\s*[A-Z][a-z]+\s*[!?.,]|^\s*(?:[Hh]ey|[Hh]i|[Hh]ello|[Tt]hanks|[Tt]hank you|[Ww]ow|[Oo]h|"
                       r"[Yy]es|[Yy]eah|[Cc]ongrats|[Aa]w+)[,!]?\s+[A-Z][a-z]+\s*[,!.]")  # "..., Mel!" "Hey Mel,"


def _own_statements(text: str) -> str:
    """What a speaker says of themselves: their statements minus those spoken to someone else.

    A sentence in the second person ("your son's okay") or addressed by name ("That race sounds
    great, Mel!") with no first person in it is about the listener, not the speaker; so is a whole
    turn that speaks to the listener and says nothing in the first person ("Sounds special, those
    beach trips! Do you have other summer traditions?"): a reaction to what the listener told.
    """
    body = _unprefixed(text)
    sentences = re.split(r"(?<=[.!?])\s+", body)
    # a short question ("How about you?") closing one's own news does not make the turn a reaction
    to_listener = any(_SECOND_PERSON.search(x) for x in sentences
                      if not (x.rstrip().endswith("?") and len(x.split()) <= 4))
    if to_listener and not _FIRST_PERSON.search(_statements(body)):
        return ""
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+", _statements(body)):
        spoken_to = bool(_SECOND_PERSON.search(sentence) or _VOCATIVE.search(sentence))
        if not spoken_to or _FIRST_PERSON.search(sentence):
            kept.append(sentence)
    return " ".join(kept)


def _unprefixed(text: str) -> str:
    """A transcript line without its "Name: " (the speaker is not someone spoken to)."""
    return re.sub(r"^\s*[A-Z][\w'’.-]*(?: [A-Z][\w'’.-]*)?:\s*", "", text)


def _about(record: MemoryRecord, person: str) -> bool:
    """Whether a memory speaks of `person`: names them, other than by addressing them ("Hey Caroline,")."""
    text = _said(record)
    mentions = len(re.findall(rf"\b{re.escape(person)}\b", text))
    return mentions > _address_count(text, person)


def _addressed(record: MemoryRecord, person: str) -> bool:
    """Whether a memory is spoken to `person` ("Thanks, Caroline!"): its "you" is them."""
    return _address_count(_said(record), person) > 0


def _said(record: MemoryRecord) -> str:
    text = record.memory.casefold()
    if record.actor and text.startswith(record.actor.casefold() + ":"):
        text = text[len(record.actor) + 1:]
    return text


def _address_count(text: str, person: str) -> int:
    name = re.escape(person)
    return len(re.findall(rf"\b{name}\s*[,!]|,\s*{name}\s*(?:[.!?]|$)", text))


_GLUE = frozenset("a an the is are was were be been being am that which who it its to of as by".split())


def without_restatement(reply: str, question: str) -> str:
    """A reply without the part that restates the question: "A charity race raised awareness for
    mental health" to "What did the charity race raise awareness for?" -> "Mental health". Only a
    restatement of at least two of the question's words is cut, and only when something new is left."""
    words = reply.split()
    asked = {stem(w).rstrip("e") for w in re.findall(r"[A-Za-z0-9'’-]+", question)}  # "raised" meets "raise"
    cut, restated = 0, 0
    for k, w in enumerate(words):
        bare = re.sub(r"^[^\w]+|[^\w]+$", "", w)
        if not bare:
            continue
        if stem(bare).rstrip("e") in asked and bare.casefold() not in _GLUE:
            restated += bare.casefold() not in _STOP
            cut = k + 1
        elif bare.casefold() not in _STOP and bare.casefold() not in _GLUE:
            break
    rest = words[cut:]
    while rest and re.sub(r"[^\w]", "", rest[0]).casefold() in _GLUE:
        rest = rest[1:]
    if restated < 2 or not content_words(" ".join(rest)):
        return reply
    text = " ".join(rest).strip(" ,;:")
    return text[:1].upper() + text[1:]


def adds_nothing(reply: str, question: str) -> bool:
    """Whether a reply only repeats the question ("A workshop" to "What workshop did she attend?"):
    none of its content words is new. Such a reply is no answer, however well grounded."""
    asked = {stem(w) for w in content_words(question)}
    said = {stem(w) for w in content_words(_CITE.sub("", reply))}
    return not (said - asked)


def assumes_missing(reply: str, question: str, shown: Sequence[MemoryRecord]) -> bool:
    """Whether a reply asserts a key word of the question that none of its memories holds: "What
    setback did she face?" answered "A setback when her mentee's face lit up" from a memory with
    no setback in it. The grounding check lets a reply repeat the question; not its missing part."""
    said = {stem(w) for w in content_words(_CITE.sub("", reply))}
    held = {stem(w) for r in shown for w in re.findall(r"[A-Za-z0-9'’-]+", r.memory)}
    return bool((key_stems(question) & said) - held)


def says_nothing_new(reply: str, question: str, shown: Sequence[MemoryRecord]) -> bool:
    """A grounded reply that is still no answer: it only repeats the question, or asserts the part
    of it the memories do not hold (adds_nothing, assumes_missing)."""
    return adds_nothing(reply, question) or assumes_missing(reply, question, shown)


def names_the_listener(reply: str, form: QuestionForm, shown: Sequence[MemoryRecord]) -> bool:
    """Whether a "who" reply names only people the memories speak *to* ("Thanks, Caroline! It was Matt
    Patterson"): the one addressed is not who did what was asked."""
    if form.kind != WHO:
        return False
    said = [re.sub(r"['’]s$", "", w).casefold() for w in re.findall(r"\b[A-Z][a-z]+(?:['’]s)?\b", reply)]
    said = [w for w in said if w not in _STOP]
    holding = {w: [r for r in shown if re.search(rf"\b{re.escape(w)}\b", r.memory.casefold())] for w in said}
    return bool(said) and all(holding[w] and all(_addressed(r, w) and not _about(r, w) for r in holding[w])
                              for w in said)


# Nouns that say who: a memory lacking one the question holds is about someone else ("grandpa's gift"
# against a gift from the grandma), however close it is otherwise.
_PERSON_NOUNS = frozenset(stem(w) for w in """grandpa grandma grandfather grandmother granddad grandad granny
nana grandson granddaughter grandchild mom mum mother dad father parent stepmother stepfather brother sister
sibling twin son daughter kid child children baby husband wife spouse partner boyfriend girlfriend fiance
fiancee friend buddy roommate boss coworker colleague mentor mentee neighbor neighbour uncle aunt cousin nephew
niece teacher student classmate doctor therapist""".split())
NEAR_RANK = 3  # search's best hits, among which a near miss may still answer


def worth_answering(question: str, scored: Sequence[tuple[float, MemoryRecord]], ranked: Sequence[str]) -> bool:
    """Whether the relevant memories (`scored`, best first) are close enough to answer `question` from.

    Yes when the best holds enough of its key words (worth_quoting). A near miss, holding only half of
    them, answers too when search ranks it among its NEAR_RANK best hits (`ranked`: the ids of the hits,
    best first; meaning, key words and names together put it there, so the words it lacks are likely
    said otherwise: "What does her necklace symbolize?" against "This necklace ... stands for love") and
    they name no one ("What was grandpa's gift to Caroline?" against a gift from her grandma: another person),
    and the words it holds are used as the question uses them (a verb as a verb).
    """
    if not scored:
        return False
    if worth_quoting(scored[0][0]):
        return True
    best = set(ranked[:NEAR_RANK])
    keys = key_stems(question)
    asked_as = _word_classes(question)
    for _, record in scored:
        if record.id in best:
            held = {stem(w) for w in re.findall(r"[A-Za-z0-9'’-]+", record.memory)}
            said_as = _word_classes(record.memory)
            # ...and what it holds is said as asked: "What setback did she face?" against "her face lit up"
            if not (keys - held) & _PERSON_NOUNS and all(asked_as.get(k, set()) & said_as.get(k, set())
                                                         for k in keys & held):
                return True
    return False


def worth_quoting(share: float) -> bool:
    """Whether the best memory, holding `share` of the question's key words, is close enough to the
    question to answer it from (the model's reply, or a quote of it). Half the key words ("What was
    grandpa's gift to Caroline?" against a gift from her grandma) is a near miss: better "I don't have
    a memory of that" than an answer about something else."""
    return share >= QUOTE_MIN_SHARE


def said_by(record: MemoryRecord) -> str:
    """", said by Caroline on 8 May 2023" (who only when known)."""
    when = human_date(record.timestamp.date().isoformat())
    return f", said by {record.actor} on {when}" if record.actor else f", said on {when}"


def found_reply(record: MemoryRecord, question: str) -> str:
    """What a memory says, as the answer when the model's own reply could not be checked:
    its sentence closest to the question, quoted, with who said it and when."""
    return f"I found: \u201c{found_passage(record, question)}\u201d{said_by(record)}."


def found_passage(record: MemoryRecord, question: str) -> str:
    """A memory's sentence closest to the question (and the next when it is short), "…" marking a cut."""
    text = re.sub(rf"^\s*{re.escape(record.actor)}:\s*", "", record.memory) if record.actor else record.memory
    sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if x.strip()] or [text]
    keys = key_stems(question)
    k = max(range(len(sentences)), key=lambda i: (
        len(keys & {stem(w) for w in re.findall(r"[A-Za-z0-9'’-]+", sentences[i])}), -i))
    end = k + 1
    if end < len(sentences) and len(sentences[k].split()) < SHORT_SENTENCE:
        end += 1  # a short sentence mostly sets the scene ("I went to a workshop."): the next says more
    best = " ".join(sentences[k:end])
    return best if end - k == len(sentences) else f"{best} …"


def memory_spans(question: str, shown: Sequence[MemoryRecord],
                 form: QuestionForm | None = None) -> list[AnswerSpan]:
    """The parts of the memories that answer `question` (span.answer_spans), the restated part of the
    question cut, each checked against the memory it comes from: from the best memory that holds one,
    and for a list question ("What pets does she have?") from one more."""
    if not shown:
        return []
    keys = key_stems(question)
    spans = [AnswerSpan(without_restatement(s.text, question), s.record)
             for s in answer_spans(question, shown[:SPAN_MEMORIES], keys, form)]
    return [s for s in spans if check(s.text, question, [s.record]).supported]


def spans_text(spans: Sequence[AnswerSpan]) -> str:
    """Spans as one answer: "Pottery, camping" (each from its memory, in order)."""
    parts = [s.text for s in spans]
    return ", ".join([parts[0], *(p[:1].lower() + p[1:] if not _is_name(p) else p for p in parts[1:])])


def _is_name(text: str) -> bool:
    first = text.split(" ", 1)[0]
    return bool(first) and first[0].isupper() and bool(names(f"x {first}"))


def spans_reply(spans: Sequence[AnswerSpan]) -> str:
    """What a person reads: "Pottery, camping, from what Melanie said on 8 May 2023", so the answer
    is seen to be cut from what someone said (and by whom, and when)."""
    first = spans[0].record
    when = sorted({s.record.timestamp.date() for s in spans})
    days = " and ".join(human_date(d.isoformat()) for d in when[:3])
    speakers = list(dict.fromkeys(s.record.actor for s in spans if s.record.actor))
    who = f" {' and '.join(speakers)}" if speakers and len(speakers) <= 2 else ""
    said = f"from what{who} said on {days}" if who or first.actor is None else f"from what was said on {days}"
    return f"{spans_text(spans)}, {said}"


def date_reply(record: MemoryRecord) -> str:
    """A "when" answer from the store: the memory's resolved event date, else the day it was said.

    A date the memory gave relative to when it was said is answered the same way, anchored to that
    day: "last week", said on 9 June 2023 -> "The week before 9 June 2023" (not a precise range the
    speaker never gave), "two weeks ago" -> "Two weeks before ...", "last Friday" -> "Friday 2 June 2023",
    "a few years ago" -> "A few years before 9 June 2023" (not a year the speaker never named).
    """
    event = record.event_date or record.timestamp.date().isoformat()
    return _as_said(record, event) or human_date(event)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LAST_PERIOD = re.compile(r"(?:this )?(?:last|past|previous) (week|weekend)", re.IGNORECASE)
_AGO = re.compile(r"(.+?) ago", re.IGNORECASE)
_VAGUE = re.compile(r"(a few|a couple of|several|some|many) \w+ ago$", re.IGNORECASE)


def _as_said(record: MemoryRecord, event: str) -> str | None:
    """The event date as the memory's own relative words anchored to the day it was said, for a past
    day, weekend or week; None when the date was not given so (then it is written out)."""
    said = record.timestamp.date()
    for mention in find_mentions(record.memory, record.timestamp):
        window = mention.window
        phrase = " ".join(mention.text.split())
        vague = _VAGUE.match(phrase) is not None  # "a few years ago" is no year: 2020 would invent one
        if window.iso() != event or window.end >= said or (window.days > 7 and not vague):
            continue
        before = human_date(said.isoformat())
        if (m := _LAST_PERIOD.fullmatch(phrase)) and window.days in (2, 7):
            return f"The {m.group(1).casefold()} before {before}"
        if (m := _AGO.fullmatch(phrase)) and window.days > 1:
            return f"{m.group(1)[:1].upper()}{m.group(1)[1:]} before {before}"
        if window.days == 1 and any(d.casefold() in phrase.casefold() for d in _WEEKDAYS):
            return f"{_WEEKDAYS[window.start.weekday()]} {human_date(window.start.isoformat())}"
    return None


def answer(searcher: Searcher, llm: Completer, question: str, *,
           filters: Mapping[str, Any] | None = None, budget_words: int = 300,
           reference_date: Any = None) -> Answer:
    """Answer `question` from memory, or say that memory is silent on it.

    Retrieve memories, keep the relevant ones (relevant_memories). None: "I don't have a memory of
    that." A "when" question: the event date of the best one, no model involved. A near miss (the best
    memory holds too few of the question's key words, worth_answering): "I don't have a memory of that"
    too, before any model reply, which could only be about something else. Otherwise the model
    answers from them within `budget_words` words, without restating the question; the reply is checked
    claim by claim (grounding.py) and must be of the asked kind (a number for "how many"). When it
    fails, the model gets a second look at the best memory alone; else the answer is the part of the
    memories that answers (span.py: "Matt Patterson", "In Melanie's slipper"); else the best memory
    is quoted.
    """
    hits = searcher.search_records(question, top_k=max(10, budget_words // 6), filters=filters,
                                   reference_date=reference_date)
    scored = scored_relevance(question, [h.record for h in hits])
    found = [r for _, r in scored]
    if not found:
        return Answer(NO_MEMORY, (), tuple(h.record.id for h in hits[:5]), 0, abstained=True)
    context = build_context(found, budget_words)
    records = {r.id: r for r in found}
    shown = [records[i] for i in context.memory_ids]
    if is_time_question(question):
        return Answer(date_reply(shown[0]), (shown[0].id,), context.memory_ids, context.words)
    if not worth_answering(question, scored, [h.record.id for h in hits]):  # a near miss: a reply would not be about it
        return Answer(NO_MEMORY, (), context.memory_ids, context.words, abstained=True)
    numbered = "\n".join(f"[{n}] {line}" for n, line in enumerate(context.text.split("\n"), start=1))
    chat = [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": EXAMPLE_IN},
            {"role": "assistant", "content": EXAMPLE_OUT},
            {"role": "user", "content": f"Memories:\n{numbered}\n\nQuestion: {question}"}]
    raw = llm.complete(chat, max_tokens=ANSWER_TOKENS, stop=["\n\n", "Question:"])
    text, cited = read_reply(raw, shown)
    text = in_third_person(text, cited or shown[:1])
    text = without_restatement(text, question)  # checked as shown: the restated part proves nothing
    grounding = check(text, question, shown)
    form = question_form(question)
    if not text or not grounding.supported or says_nothing_new(text, question, shown) \
            or not of_the_asked_kind(text, form) or names_the_listener(text, form, shown):
        # asked again with the best memory's passage alone, the model often finds the words it missed
        second = ask_one_memory(llm, question, shown[0])
        if second is not None:
            return Answer(second, (shown[0].id,), context.memory_ids, context.words,
                          claims=check(second, question, [shown[0]]).claims)
        spans = memory_spans(question, shown, form)
        if spans:  # the words of the memories that answer it, not the model's
            return Answer(spans_text(spans), tuple(dict.fromkeys(s.record.id for s in spans)),
                          context.memory_ids, context.words, supported=False, claims=grounding.claims)
        return Answer(found_reply(shown[0], question), (shown[0].id,), context.memory_ids, context.words,
                      supported=False, claims=grounding.claims)
    ids = tuple(dict.fromkeys([r.id for r in cited] + list(grounding.memory_ids))) or (shown[0].id,)
    return Answer(text, ids, context.memory_ids, context.words, claims=grounding.claims)


def ask_one_memory(llm: Completer, question: str, record: MemoryRecord) -> str | None:
    """The model's answer from one memory's passage (the sentences found_reply would quote), or
    None when it is unsupported by that memory or only repeats the question."""
    passage = found_passage(record, question).removesuffix(" …")
    if record.actor:
        passage = f"{record.actor}: {passage}"
    chat = [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": EXAMPLE_IN},
            {"role": "assistant", "content": EXAMPLE_OUT},
            {"role": "user", "content": f"Memories:\n[1] {passage}\n\nQuestion: {question}"}]
    text, _ = read_reply(llm.complete(chat, max_tokens=ANSWER_TOKENS, stop=["\n\n", "Question:"]), [record])
    text = without_restatement(in_third_person(text, [record]), question)
    if not text or says_nothing_new(text, question, [record]) or not check(text, question, [record]).supported \
            or not of_the_asked_kind(text, form := question_form(question)) or names_the_listener(text, form, [record]):
        return None
    return text


_SELF = ((re.compile(r"\bI(?:'|’)m\b|\bI am\b"), "{who} is"), (re.compile(r"\bI(?:'|’)ve\b|\bI have\b"), "{who} has"),
         (re.compile(r"\bI(?:'|’)d\b"), "{who} would"), (re.compile(r"\bI(?:'|’)ll\b"), "{who} will"),
         (re.compile(r"\b(?:my|mine)\b", re.IGNORECASE), "{who}'s"),
         (re.compile(r"\b(?:I|me|myself)\b|^Me\b"), "{who}"))


def in_third_person(reply: str, cited: Sequence[MemoryRecord]) -> str:
    """A reply that copied its memory's words, told by the one who said them: "My daughter's birthday"
    from what Melanie said -> "Melanie's daughter's birthday"; a copied "Melanie:" line prefix dropped.
    Only when the memories it rests on are all one person's (else whose "my" it is is unknown)."""
    speakers = {r.actor for r in cited}
    if len(speakers) != 1 or None in speakers:
        return reply
    who = next(iter(speakers))
    assert who is not None
    reply = re.sub(rf"^\s*{re.escape(who)}:\s*", "", reply)
    for pattern, replacement in _SELF:
        reply = pattern.sub(replacement.format(who=who), reply)
    return reply[:1].upper() + reply[1:] if reply else reply


def read_reply(raw: str, shown: Sequence[MemoryRecord]) -> tuple[str, list[MemoryRecord]]:
    """The answer text without its [n] marks (nor any other bracket), and the memories it cites.

    Numbers outside the context are ignored; with no valid mark, the memories sharing the most
    content words with the answer are cited (none when it shares none).
    """
    first = raw.strip().split("\n")[0]
    text = _LEAD.sub("", _CITE.sub("", first))
    text = re.sub(r"\[[^\]]*(\]|$)", "", text)  # a copied "[14 August 2023]" line prefix, or its start
    text = re.sub(r"\s+", " ", text).strip().rstrip(",;:").strip()
    return text, cited_memories(first, text, shown)


def cited_memories(marked: str, text: str, shown: Sequence[MemoryRecord]) -> list[MemoryRecord]:
    """The memories a reply cites by its [n] marks (`marked`), numbers outside the context ignored;
    with no valid mark, those sharing the most content words with its `text` (none when it shares none)."""
    numbers = [int(n) for n in _CITE.findall(marked)]
    cited = [shown[n - 1] for n in dict.fromkeys(numbers) if 1 <= n <= len(shown)]
    return cited or (_overlapping(text, shown) if text else [])


def as_answered(reply: str, shown: Sequence[MemoryRecord]) -> str:
    """A streamed chat reply (its [n] marks removed) told as answer() tells a copied memory: one that
    starts with the "Name:" of a memory's speaker speaks as them, so it loses the prefix and is told in
    the third person ("Melanie: My daughter's birthday." -> "Melanie's daughter's birthday."); any other
    is the assistant speaking as itself ("you told me so") and stays as it is."""
    text = re.sub(r"[ \t]+", " ", _CITE.sub("", reply)).strip()
    prefix = re.match(r"\s*([A-Z][\w'’.-]*(?: [A-Z][\w'’.-]*)?):", text)
    theirs = [r for r in shown if prefix and r.actor == prefix.group(1)]
    return in_third_person(text, theirs) if theirs else text


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOP}


def _overlapping(text: str, shown: Sequence[MemoryRecord]) -> list[MemoryRecord]:
    words = _content(text)
    scored = [(len(words & _content(r.memory)), k) for k, r in enumerate(shown)]
    best = max((s for s, _ in scored), default=0)
    return [shown[k] for s, k in scored if best and s == best][:3]


def is_time_question(question: str) -> bool:
    from ..extraction.temporal import is_when_question

    return is_when_question(question)


def date_answer(text: str, source: MemoryRecord) -> str:
    """A time question's answer as a date: relative words resolved against when `source` was
    said, then only the date kept ("She went on 7 May 2023." -> "7 May 2023"); with no date in
    the reply, the date of the memory it cites."""
    from .context import human_date

    text = absolute_dates(text, source.timestamp)
    found = _DATE.search(text)
    if found is None:
        return human_date(source.event_date or source.timestamp.date().isoformat())
    value = found.group(0)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return human_date(value)
    us = re.fullmatch(rf"{_MONTH} (\d{{1,2}}),? (\d{{4}})", value)
    return f"{us.group(2)} {us.group(1)} {us.group(3)}" if us else value


def absolute_dates(text: str, said_at: datetime) -> str:
    """"last week" in an answer -> the dates it meant, resolved against when the memory was said."""
    from ..extraction.sentences import with_absolute_dates

    out = with_absolute_dates(text, text, said_at)[0]
    first = text.split(" ", 1)[0].casefold()
    if first not in ("on", "in") and out.startswith(("on ", "in ")):
        out = out.split(" ", 1)[1]  # an answer is a phrase: "7 May 2023", not "on 7 May 2023"
    return out
