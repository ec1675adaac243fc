"""A model-free check of a reply against its memories: names, numbers, dates and words must be found there."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Sequence

from .context import human_date
from ..extraction.temporal import DateWindow, find_mentions
from ..records import MemoryRecord

# Words that carry no claim: function words, pronouns, auxiliaries, and the glue of a short answer.
STOP = frozenset("""
a an the and or but nor of to in on at for from by with without about as into onto over under than then
is am are was were be been being do does did done have has had having will would shall should can could
may might must it its it's this that these those there here what when where who whom whose which why how
i me my mine we us our ours you your yours he him his she her hers they them their theirs one ones
not no yes so very also too just only still yet ever never always often some any all each every both
more most much many such own same other another again once up down out off if because while until
said says say told tell think thinks thought know knows knew like likes liked really well lot lots
s t d ll m re ve don didn doesn isn wasn aren weren haven hasn hadn won wouldn couldn shouldn
i'm i've i'd i'll you're she's he's they're we're that's what's let's
yeah oh okay ok hey hi hello thanks thank great good nice cool awesome amazing wow glad happy sure
answer question memory memories remember loci found date day time
""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,]\d+)?")
_CITE = re.compile(r"\[(\d{1,3})\]")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_MONTH_WORDS = frozenset("january february march april may june july august september october november "
                         "december monday tuesday wednesday thursday friday saturday sunday".split())
MIN_CONTENT_SHARE = 0.6  # of a claim's content words must be found in the memories or the question


@dataclass(frozen=True, slots=True)
class Claim:
    """One sentence of a reply: whether the memories back it, what is missing, which memories back it."""

    text: str
    supported: bool
    unsupported: tuple[str, ...]  # the names, numbers, dates and words found nowhere in the evidence
    memory_ids: tuple[str, ...]  # the memories sharing the most with it, best first


@dataclass(frozen=True, slots=True)
class Grounding:
    """A reply split into claims, each checked against the cited memories and the question."""

    claims: tuple[Claim, ...]

    @property
    def supported(self) -> bool:
        """True when no claim holds anything the memories and the question do not say."""
        return all(c.supported for c in self.claims)

    @property
    def memory_ids(self) -> tuple[str, ...]:
        """The memories the supported claims rest on, in order of first use."""
        return tuple(dict.fromkeys(i for c in self.claims if c.supported for i in c.memory_ids))


# Common irregular verb forms -> the base form, so "met" finds "meet" and "went" finds "go".
_IRREGULAR = dict(pair.split(":") for pair in """
met:meet went:go gone:go saw:see seen:see bought:buy made:make took:take taken:take gave:give given:give
ran:run came:come got:get gotten:get began:begin begun:begin felt:feel found:find kept:keep left:leave
lost:lose paid:pay sold:sell sent:send spent:spend taught:teach thought:think told:tell wrote:write
written:write read:read built:build drew:draw drawn:draw flew:fly flown:fly grew:grow grown:grow
knew:know known:know brought:bring caught:catch chose:choose chosen:choose ate:eat eaten:eat
fell:fall fallen:fall held:hold heard:hear led:lead meant:mean sang:sing sung:sing sat:sit slept:sleep
spoke:speak spoken:speak stood:stand swam:swim won:win wore:wear worn:wear became:become did:do done:do
had:have has:have was:be were:be been:be am:be is:be are:be children:child kids:kid people:person
""".split())


def stem(word: str) -> str:
    """A crude stem so "painted", "painting" and "paints" meet: casefolded, endings cut, 6 letters."""
    w = word.casefold().replace("’", "'")
    w = re.sub(r"'s?$", "", w)  # "Melanie's", and the plural possessive "pets'"
    w = _IRREGULAR.get(w, w)
    for end in ("ings", "ing", "ed", "es", "s", "ly"):
        if len(w) > len(end) + 3 and w.endswith(end):
            w = w[: -len(end)]
            if end in ("ings", "ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]  # running -> run, stopped -> stop (but not falling, passed)
            break
    return w[:6]


def content_words(text: str) -> list[str]:
    """The words of a text that carry meaning (not stop words), as written."""
    return [w for w in _WORD.findall(text) if w.casefold().replace("’", "'") not in STOP and len(w) > 1]


def names(text: str) -> list[str]:
    """Capitalised words that are not the first of their sentence, nor a month or a weekday."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text):
        words = _WORD.findall(sentence)
        for k, w in enumerate(words):
            if k and w[0].isupper() and w.casefold() not in STOP and w.casefold() not in _MONTH_WORDS:
                out.append(w)
    return out


_COUNTS = {"the": 1, "a": 1, "one": 1, "a couple of": 2, "two": 2, "three": 3, "four": 4, "five": 5,
           "a few": 5, "several": 5}
_UNIT_DAYS = {"day": 1, "week": 7, "weekend": 7, "month": 31, "year": 366}
_ANCHORED = re.compile(rf"\b({'|'.join(sorted(_COUNTS, key=len, reverse=True))}|\d+)\s+"
                       r"(day|week|weekend|month|year)s?\s+(before|after)\s+$", re.IGNORECASE)


def _anchored_window(m: re.Match[str], day: DateWindow) -> DateWindow:
    """The days "the week before 9 June 2023" (or "two weeks after ...") can mean, generously:
    from as many units as it counts, plus one, up to the day before the date it is anchored to."""
    count = _COUNTS.get(m.group(1).casefold()) or int(m.group(1))
    span = timedelta(days=(count + 1) * _UNIT_DAYS[m.group(2).casefold()])
    if m.group(3).casefold() == "before":
        return DateWindow(day.start - span, day.start - timedelta(days=1))
    return DateWindow(day.end + timedelta(days=1), day.end + span)


def record_windows(record: MemoryRecord) -> list[DateWindow]:
    """The days a memory speaks of: its event date, the day it was said, and the dates in its text."""
    windows = [DateWindow.of_day(record.timestamp.date())]
    if record.event_date:
        try:
            parts = [date.fromisoformat(p[:10]) if len(p) >= 10 else date.fromisoformat(p + "-01")
                     for p in record.event_date.split("/", 1)]
            if record.event_date.count("-") == 1 and "/" not in record.event_date:  # a whole month
                windows.append(DateWindow.of_month(parts[0].year, parts[0].month))
            else:
                windows.append(DateWindow(parts[0], parts[-1]))
        except ValueError:
            pass
    windows += [m.window for m in find_mentions(record.memory, record.timestamp)]
    return windows


def evidence_text(record: MemoryRecord) -> str:
    """Everything a claim may rest on from one memory: its text, speaker and dates in words."""
    dates = [human_date(record.timestamp.date().isoformat())]
    if record.event_date:
        dates.append(human_date(record.event_date))
    return " ".join([record.memory, record.actor or "", *dates])


def check(reply: str, question: str, memories: Sequence[MemoryRecord], *,
          now: datetime | None = None) -> Grounding:
    """Split `reply` into claims and check each against `memories` and `question`.

    A claim is supported when every name, number and date in it appears in the memories that back
    it (those sharing the most with it, at most two: a name from one memory and a fact from another
    make a new, unsaid claim; a date must overlap a day a memory speaks of), and at least
    MIN_CONTENT_SHARE of its other content words (by stem) appear in the evidence. The question
    counts as evidence for words (repeating it is no invention) but not for dates or numbers. No
    model is involved: the same input always gives the same result.
    """
    windows = [(r, w) for r in memories for w in record_windows(r)]
    texts = {r.id: evidence_text(r) for r in memories}
    stems = {i: {stem(w) for w in _WORD.findall(t)} for i, t in texts.items()}
    lower = {i: t.casefold() for i, t in texts.items()}
    question_stems = {stem(w) for w in _WORD.findall(question)}
    # a sentence's first word is capitalised anyway: it is a name when the memories use it as one
    known_names = {w for r in memories for w in _WORD.findall(r.memory)
                   if w[0].isupper() and w.casefold() not in STOP and w.casefold() not in _MONTH_WORDS}
    known_names |= {r.actor for r in memories if r.actor}
    # A relative date in the reply ("in April") may be meant from today or from when a memory was said.
    references = list(dict.fromkeys([now or datetime.now().astimezone(), *(r.timestamp for r in memories)]))
    claims: list[Claim] = []
    for sentence in _SENTENCE.split(_CITE.sub("", reply)):
        sentence = sentence.strip()
        if not _WORD.search(sentence):
            continue
        missing: list[str] = []
        found_in: list[tuple[str, list[str]]] = []  # each name, number and date with the memories holding it
        score: dict[str, float] = {i: 0.0 for i in texts}
        rest = sentence
        readings: dict[tuple[int, str], list[DateWindow]] = {}
        for reference in references:
            for mention in find_mentions(sentence, reference):
                readings.setdefault((mention.start_char, mention.text), []).append(mention.window)
        for (at, mention_text), options in list(readings.items()):
            anchored = _ANCHORED.search(sentence, 0, at)  # "the week before" 9 June 2023
            if anchored is not None and options:
                for key in [k for k in readings if anchored.start() <= k[0] <= at]:  # "The weekend" in it
                    del readings[key]
                readings[(anchored.start(), sentence[anchored.start():at + len(mention_text)])] = \
                    [_anchored_window(anchored, options[0])]
        for (_at, mention_text), options in readings.items():
            overlapping = list(dict.fromkeys(r.id for r, w in windows for o in options
                                             if w.start <= o.end and o.start <= w.end))
            if not overlapping:
                missing.append(mention_text)
            found_in.append((mention_text, overlapping))
            for i in overlapping:
                score[i] += 2
            rest = rest.replace(mention_text, " ")
        first = _WORD.findall(rest)[:1]
        claim_names = first + names(rest) if first and first[0] in known_names else names(rest)
        for name in claim_names:
            name = re.sub(r"['’]s$", "", name)  # "Melanie's" is Melanie
            have = [i for i, t in lower.items() if re.search(rf"\b{re.escape(name.casefold())}\b", t)]
            if name.casefold() in question.casefold():
                pass  # the question's own names are no invention
            elif not have:
                missing.append(name)
            else:
                found_in.append((name, have))
            for i in have:
                score[i] += 2
        for number in re.findall(r"\b\d+(?:[.,]\d+)?\b", rest):
            have = [i for i, t in lower.items() if re.search(rf"\b{re.escape(number)}\b", t)]
            if not have:
                missing.append(number)
            found_in.append((number, have))
            for i in have:
                score[i] += 1
        words = [w for w in content_words(rest) if not w[0].isdigit() and w not in claim_names]
        unfound = []
        for w in words:
            s = stem(w)
            have = [i for i, st in stems.items() if s in st]
            for i in have:
                score[i] += 1
            if not have and s not in question_stems:
                unfound.append(w)
        share_found = 1 - len(unfound) / len(words) if words else 1.0
        if share_found < MIN_CONTENT_SHARE:
            missing += unfound
        best = sorted((i for i in score if score[i] > 0), key=lambda i: -score[i])
        top = score[best[0]] if best else 0
        backing = tuple(i for i in best if score[i] >= top * 0.75)[:2]
        missing += [text for text, have in found_in if have and not set(have) & set(backing)]
        claims.append(Claim(sentence, not missing, tuple(dict.fromkeys(missing)), backing))
    return Grounding(tuple(claims))
