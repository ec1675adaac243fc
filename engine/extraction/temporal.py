"""Deterministic date handling: reads timestamps and resolves "yesterday", "last May" against a message's time."""
from __future__ import annotations

import calendar
import math
import numbers
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable

from ..errors import InvalidInputError

# Rules for ambiguous expressions (the reference day is the calendar day of the reference datetime on
# its own wall clock):
# - Weeks are ISO weeks (Mon-Sun), a weekend the Sat-Sun of a week; "last/this/next week|weekend|month|
#   year" are calendar units ("next weekend" said on a Monday is the weekend of next week).
# - "last Saturday" is the latest Saturday strictly before the reference day, "next Friday" the first
#   strictly after, "this Friday" the Friday of the reference week. A bare "(on) Saturday" is the latest
#   one before, or the first after when its sentence speaks of the future ("will", "'ll", "going to",
#   "plan to", "want to", "next", "soon" ...) or a present tense comes right before "on Saturday"
#   ("my appointment is on Friday", "I'm seeing her on Friday"). "the weekend" follows the tense rule.
# - Months, seasons and days without a year: "last May" is the latest May that ended before the
#   reference day, "next May" the first that starts after it, "this May" the one holding the reference
#   day or else the nearest; a bare "in May" / "the 8th of May" is the latest that has started (the
#   current one counts) or, in a future sentence, the first that has not ended. Seasons are northern
#   meteorological (spring Mar-May ... winter Dec-Feb); "winter 2022" is Dec 2022-Feb 2023.
# - "N days ago" / "in N days" is one day; with weeks, months or years, the calendar week, month or
#   year holding the shifted day. "the past/last N <units>" is a rolling window ending on the reference
#   day ("the next N <units>" starts on it). a/an/one = 1, a couple (of) = 2, a few = 3.
# - early/mid/late split a year into Jan-Apr, May-Aug, Sep-Dec and a month into days 1-10, 11-20, 21-end;
#   "since X" runs from the start of X to the reference day; "earlier/later this X" cut X there.
# - Not dates: "recently", "lately", the verb "may", "second", bare numbers, "in 3 years" after a
#   negation. A bare month counts when capitalised (never a bare "May") or after in/during/since/of/
#   by/until/early/mid/late ...; a bare year only after such a word.

__all__ = ["DateWindow", "TimeMention", "parse_timestamp", "find_mentions", "resolve_event_date",
           "query_window", "is_when_question"]

MIN_YEAR, MAX_YEAR = 1900, 2200
_HINT = "use ISO 8601 like 2024-05-01T14:30:00Z or unix seconds"


@dataclass(frozen=True, slots=True)
class DateWindow:
    """An inclusive range of calendar days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"DateWindow ends before it starts: {self.start} > {self.end}")

    @classmethod
    def of_day(cls, d: date) -> DateWindow:
        """The window of one day."""
        return cls(d, d)

    @classmethod
    def of_month(cls, year: int, month: int) -> DateWindow:
        """The window of one calendar month."""
        return cls(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))

    @classmethod
    def of_year(cls, year: int) -> DateWindow:
        """The window of one calendar year."""
        return cls(date(year, 1, 1), date(year, 12, 31))

    @property
    def days(self) -> int:
        """How many days the window spans."""
        return (self.end - self.start).days + 1

    def iso(self) -> str:
        """ISO 8601: one date, or the interval "start/end"."""
        return self.start.isoformat() if self.start == self.end else f"{self.start}/{self.end}"

    def contains(self, d: date) -> bool:
        """Whether the day (or the calendar day of a datetime) lies inside the window."""
        day = d.date() if isinstance(d, datetime) else d
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class TimeMention:
    """One time expression found in a text, with the days it refers to."""

    text: str
    start_char: int
    end_char: int
    window: DateWindow


# ---------------------------------------------------------------- timestamps

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_FULL_MONTH = "|".join(m.lower() for m in calendar.month_name if m)
_WEEKDAYS = tuple(d.lower() for d in calendar.day_name)
_WEEKDAY = "|".join(_WEEKDAYS)
_ORD = r"(?:st|nd|rd|th)"

_UNIX_TEXT = re.compile(r"[+-]?\d{9,11}(?:\.\d+)?")
_CLOCK = re.compile(r"\b(?P<h>\d{1,2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?\s*(?:(?P<ap>[ap])\.?m\b\.?)?", re.I)
_HUMAN_DATE = re.compile(
    rf"(?:(?:{_WEEKDAY})\s+)?(?:(?:the\s+)?(?P<d1>\d{{1,2}}){_ORD}?\s+(?:of\s+)?(?P<m1>{_MONTH})\.?"
    rf"|(?P<m2>{_MONTH})\.?\s+(?P<d2>\d{{1,2}}){_ORD}?)\s+(?P<y>\d{{4}})", re.I)


def _shown(value: object) -> str:
    """A short repr of a value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _from_unix(value: object) -> datetime:
    """Unix seconds -> UTC datetime, with a hint when the number looks like milliseconds."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except OverflowError:
        seconds = 1e300
    if not math.isfinite(seconds):
        raise InvalidInputError(f"{_shown(value)} is not a finite number of seconds; {_HINT}.")
    if abs(seconds) > 1e11:
        raise InvalidInputError(
            f"{_shown(value)} is too large for unix seconds (milliseconds? divide by 1000); {_HINT}.")
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidInputError(f"{_shown(value)} is out of range for unix seconds; {_HINT}.") from None


def _from_human(text: str) -> datetime | None:
    """Forms like "1:56 pm on 8 May, 2023", "May 8, 2023 10:00" or "8 May 2023"; None when not one."""
    hour = minute = second = 0
    for m in _CLOCK.finditer(text):
        if m["mi"] or m["ap"]:
            hour, minute, second = int(m["h"]), int(m["mi"] or 0), int(m["s"] or 0)
            if m["ap"]:
                if not 1 <= hour <= 12:
                    return None
                hour = hour % 12 + (12 if m["ap"].lower() == "p" else 0)
            text = text[:m.start()] + " " + text[m.end():]
            break
    d = _HUMAN_DATE.fullmatch(" ".join(re.sub(r"\b(?:on|at)\b|,", " ", text, flags=re.I).split()))
    if d is None:
        return None
    try:
        return datetime(int(d["y"]), _MONTHS[(d["m1"] or d["m2"]).lower()], int(d["d1"] or d["d2"]),
                        hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None


def parse_timestamp(value: object) -> datetime:
    """Read a datetime, date, unix seconds or date/time string as a timezone-aware UTC datetime (naive means UTC)."""
    if value is None:
        raise InvalidInputError(f"No date/time given; {_HINT}.")
    if isinstance(value, bool):
        raise InvalidInputError(f"Got a boolean ({value}) where a date/time was expected; {_HINT}.")
    if isinstance(value, datetime):
        dt = value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    elif isinstance(value, numbers.Real):
        dt = _from_unix(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidInputError(f"An empty string is not a date/time; {_HINT}.")
        if _UNIX_TEXT.fullmatch(text):
            dt = _from_unix(text)
        else:
            try:
                dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
            except ValueError:
                parsed = _from_human(text)
                if parsed is None:
                    raise InvalidInputError(f"Could not read {_shown(value)} as a date/time; {_HINT}.") from None
                dt = parsed
            if dt.utcoffset() is None:
                dt = dt.replace(tzinfo=timezone.utc)
    else:
        raise InvalidInputError(f"Expected a date/time, got {type(value).__name__} {_shown(value)}; {_HINT}.")
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise InvalidInputError(f"{_shown(value)} is outside the supported years {MIN_YEAR}-{MAX_YEAR}; {_HINT}.")
    return dt.astimezone(timezone.utc)


def timestamp_or_now(value: object) -> datetime:
    """A caller's optional date/time argument: parse_timestamp(value), or now (UTC) when None."""
    if value is None:
        return datetime.now(timezone.utc)
    return parse_timestamp(value)


# ---------------------------------------------------------------- calendar arithmetic

def _add_months(d: date, n: int) -> date:
    """The same day n months later, clamped to the month's length."""
    year, month0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(year, month0 + 1, min(d.day, calendar.monthrange(year, month0 + 1)[1]))


def _week(d: date) -> DateWindow:
    """The ISO week (Monday-Sunday) holding d."""
    monday = d - timedelta(days=d.weekday())
    return DateWindow(monday, monday + timedelta(days=6))


def _weekend(d: date) -> DateWindow:
    """The Saturday-Sunday of the ISO week holding d."""
    saturday = d + timedelta(days=5 - d.weekday())
    return DateWindow(saturday, saturday + timedelta(days=1))


def _shift(ref: date, n: int, unit: str) -> date:
    """The day moved by n units (d, w, m or y)."""
    if unit in "dw":
        return ref + timedelta(days=n * (7 if unit == "w" else 1))
    return _add_months(ref, n * (12 if unit == "y" else 1))


def _unit_window(d: date, unit: str) -> DateWindow:
    """The calendar day, week, month or year holding d."""
    if unit in "dw":
        return DateWindow.of_day(d) if unit == "d" else _week(d)
    return DateWindow.of_month(d.year, d.month) if unit == "m" else DateWindow.of_year(d.year)


def _pick(windows: Iterable[DateWindow], mode: str, ref: date) -> DateWindow | None:
    """Choose among yearly occurrences: last (ended), next (not started), this, past (started), future (not ended)."""
    ws = sorted(windows, key=lambda w: w.start)
    if mode in ("last", "past"):
        found = [w for w in ws if (w.end < ref if mode == "last" else w.start <= ref)]
        return found[-1] if found else None
    if mode in ("next", "future"):
        return next((w for w in ws if (w.start > ref if mode == "next" else w.end >= ref)), None)
    return min(ws, key=lambda w: 0 if w.contains(ref) else min(abs((w.start - ref).days), abs((w.end - ref).days)))


# ---------------------------------------------------------------- mention patterns

_NUM_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())} | {"a": 1, "an": 1}
_NUM = r"(?:a\s+)?couple(?:\s+of)?|(?:a\s+)?few|\d{1,3}|" + "|".join(sorted(_NUM_WORDS, key=len, reverse=True))
_UNIT = r"days?|weeks?|months?|years?"
_QUAL = r"(?:(last|previous|this\s+past|this\s+coming|this|next|coming)\s+)"
_FUTURE = re.compile(r"\b(?:will|shall|going\s+to|gonna|plan(?:s|ning)?\s+to|intend(?:s|ing)?\s+to|hope\s+to|"
                     r"want\s+to|upcoming|soon|next|tomorrow)\b|['’]ll\b", re.I)
# "my appointment is on Friday", "I'm seeing her on Friday": the present tense right before "on <day>"
# speaks of a coming day (a plan or a schedule), "it was on Friday" of a past one.
_SCHEDULED = re.compile(r"\b(?:is|are|am|['’]s|['’]re|['’]m)\s+(?:(?:\w+ing|due|booked|scheduled|planned|set)\s+)?"
                        r"(?:(?!been\b|was\b|were\b)\w+\s+){0,2}?on\s+$", re.I)
_NEGATION = re.compile(r"n['’]t\b|\bnot\b|\bnever\b", re.I)
_DATE_CONTEXT = re.compile(r"\b(?:in|during|since|of|by|until|till|through|throughout|from|before|after|"
                           r"around|early|mid|late|year)[\s-]+$", re.I)
_SEASON_CONTEXT = re.compile(r"\b(?:(?:in|during|over|through|throughout|since|all)\s+(?:the\s+)?|the\s+|"
                             r"(?:early|mid|late)[\s-]+)$", re.I)
_IN_SEASON = re.compile(r"\b(?:in|during|over|since)\s+(?:the\s+)?$", re.I)
_PREFIX = re.compile(r"\b(early|mid|late|earlier|later|since|the\s+(?:beginning|start|middle|end)\s+of)"
                     r"[\s-]+(?:in\s+)?$", re.I)
_REPEAT = re.compile(r"\b(?:once|twice|times|every)\s+$", re.I)
_SEASON_START = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}


def _qual(word: str | None) -> str | None:
    """A qualifier normalised to last, this or next."""
    key = " ".join((word or "").lower().split())
    return {"previous": "last", "this past": "last", "this coming": "next", "coming": "next"}.get(key, key) or None


def _number(text: str) -> int:
    """Digits or a number word as an int (a couple = 2, a few = 3)."""
    text = text.lower()
    return 2 if "couple" in text else 3 if "few" in text else int(text) if text.isdigit() else _NUM_WORDS[text]


def _sentence_has(m: re.Match[str], pattern: re.Pattern[str]) -> bool:
    """Whether the sentence holding the match contains the pattern."""
    text = m.string
    start = max(text.rfind(c, 0, m.start()) for c in ".!?\n") + 1
    ends = [i for i in (text.find(c, m.end()) for c in ".!?\n") if i >= 0]
    return pattern.search(text, start, min(ends, default=len(text))) is not None


def _tense(m: re.Match[str]) -> str:
    """"future" when the match's sentence speaks of the future, else "past"."""
    return "future" if _sentence_has(m, _FUTURE) else "past"


def _preceded(m: re.Match[str], pattern: re.Pattern[str]) -> bool:
    """Whether the text just before the match ends with the pattern."""
    return pattern.search(m.string, max(0, m.start() - 40), m.start()) is not None


def _relative_day(m: re.Match[str], ref: date) -> DateWindow:
    """today, tonight, this morning, yesterday, last night, tomorrow and the days around them."""
    offset = {"the day before yesterday": -2, "the day after tomorrow": 2, "yesterday": -1,
              "last night": -1, "tomorrow": 1}.get(" ".join(m[0].lower().split()), 0)
    return DateWindow.of_day(ref + timedelta(days=offset))


def _weekday(m: re.Match[str], ref: date) -> DateWindow:
    """last/this/next Saturday, or a bare one by tense."""
    target, today = _WEEKDAYS.index(m[2].lower()), ref.weekday()
    ahead = _tense(m) == "future" or _preceded(m, _SCHEDULED)
    qual = _qual(m[1]) or ("next" if ahead else "last")
    if qual == "this":
        return DateWindow.of_day(ref + timedelta(days=target - today))
    if qual == "next":
        return DateWindow.of_day(ref + timedelta(days=(target - today - 1) % 7 + 1))
    return DateWindow.of_day(ref - timedelta(days=(today - target - 1) % 7 + 1))


def _period(m: re.Match[str], ref: date) -> DateWindow:
    """last/this/next week, weekend, month or year (calendar units)."""
    step, unit = {"last": -1, "this": 0, "next": 1}[_qual(m[1]) or "this"], m[2].lower()
    if unit == "weekend":
        return _weekend(ref + timedelta(days=7 * step))
    return _unit_window(_shift(ref, step, unit[0]), unit[0])


def _the_weekend(m: re.Match[str], ref: date) -> DateWindow | None:
    """"the weekend": the latest one that has started, or by tense the first that has not ended."""
    return _pick([_weekend(ref + timedelta(days=7 * k)) for k in (-1, 0, 1)], _tense(m), ref)


def _rolling(m: re.Match[str], ref: date) -> DateWindow | None:
    """the past/last/next N days, weeks, months or years, from or to the reference day."""
    unit = m[4].lower()[0]
    if m[3] is None and (m[1] is None or unit == "d"):
        return None  # "last week" is the calendar week; "the next day" is relative to another event
    n = _number(m[3]) if m[3] else 1
    if m[2].lower() in ("past", "last"):
        return DateWindow(_shift(ref, -n, unit), ref)
    return DateWindow(ref, _shift(ref, n, unit))


def _offset(m: re.Match[str], ref: date) -> DateWindow | None:
    """N days/weeks/months/years ago, in N ..., N ... from now."""
    sign = -1 if m[0].lower().endswith("ago") else 1
    if sign > 0 and (_preceded(m, _REPEAT) or (_sentence_has(m, _NEGATION) and _tense(m) == "past")):
        return None  # "twice in a week", "haven't seen him in 3 years"
    unit = m[2].lower()[0]
    return _unit_window(_shift(ref, sign * _number(m[1]), unit), unit)


def _day_of_month(m: re.Match[str], ref: date, day: str, word: str, year: str | None,
                  marked: bool) -> DateWindow | None:
    """A day of a month, in the year given or the one chosen by tense."""
    month = _MONTHS[word.lower()]
    if year is not None:
        return DateWindow.of_day(date(int(year), month, int(day)))
    if word in ("may", "march") and not marked:
        return None  # "I think 3 may come"
    options = [DateWindow.of_day(date(y, month, int(day))) for y in range(ref.year - 4, ref.year + 5)
               if int(day) <= calendar.monthrange(y, month)[1]]
    return _pick(options, _tense(m), ref)


def _month(m: re.Match[str], ref: date) -> DateWindow | None:
    """A month name without a day or year: qualified, capitalised or after a date word."""
    qual, word = _qual(m[1]), m[2]
    if re.match(r"\s+be\b", m.string[m.end():], re.I):
        return None  # "in may be", "this May be"
    if word.lower() == "may":
        ok = (qual in ("last", "next") or (qual == "this" and word[0] == "M")
              or (qual is None and _preceded(m, _DATE_CONTEXT)))
    else:
        ok = qual is not None or word[0].isupper() or _preceded(m, _DATE_CONTEXT)
    if not ok:
        return None
    options = [DateWindow.of_month(y, _MONTHS[word.lower()]) for y in range(ref.year - 2, ref.year + 3)]
    return _pick(options, qual or _tense(m), ref)


def _season(m: re.Match[str], ref: date) -> DateWindow | None:
    """summer 2021, last winter, in the fall (northern meteorological seasons)."""
    name = m[2].lower()

    def occurrence(year: int) -> DateWindow:
        begin = date(year, _SEASON_START[name], 1)
        return DateWindow(begin, _add_months(begin, 3) - timedelta(days=1))

    if m[3]:
        return occurrence(int(m[3]))
    qual = _qual(m[1])
    context = _IN_SEASON if name in ("spring", "fall") else _SEASON_CONTEXT
    if qual is None and not _preceded(m, context):
        return None  # "spring water", "I fall asleep", "the fall of Rome"
    return _pick([occurrence(y) for y in range(ref.year - 3, ref.year + 3)], qual or _tense(m), ref)


def _year(m: re.Match[str], ref: date) -> DateWindow | None:
    """A bare year, only after a date word ("in 2022", "since 2020", "mid-2022")."""
    return DateWindow.of_year(int(m[1])) if _preceded(m, _DATE_CONTEXT) else None


_Handler = Callable[[re.Match[str], date], "DateWindow | None"]
_PATTERNS: tuple[tuple[re.Pattern[str], _Handler], ...] = tuple((re.compile(p, re.I), h) for p, h in (
    (r"\b(?:the\s+day\s+before\s+yesterday|the\s+day\s+after\s+tomorrow|yesterday|today|tonight|tomorrow"
     r"|last\s+night|this\s+(?:morning|afternoon|evening))\b", _relative_day),
    (rf"\b{_QUAL}?({_WEEKDAY})\b", _weekday),
    (rf"\b{_QUAL}(weekend|week|month|year)\b(?!\s+of\b)", _period),
    (r"\bthe\s+weekend\b", _the_weekend),
    (rf"\b(?:(the)\s+)?(past|last|next|coming)\s+(?:({_NUM})\s+)?({_UNIT})\b(?!\s+(?:of|before|after)\b)", _rolling),
    (rf"\b({_NUM})\s+({_UNIT})\s+ago\b", _offset),
    (rf"\bin\s+({_NUM})\s+({_UNIT})\b(?!\s+ago)", _offset),
    (rf"\b({_NUM})\s+({_UNIT})\s+from\s+(?:now|today)\b", _offset),
    (r"\b(\d{4})[-/](\d{1,2})[-/](\d{1,2})\b",
     lambda m, ref: DateWindow.of_day(date(int(m[1]), int(m[2]), int(m[3])))),
    (r"\b(\d{4})-(\d{2})\b(?![-/]\d)", lambda m, ref: DateWindow.of_month(int(m[1]), int(m[2]))),
    (rf"\b(?:the\s+)?(\d{{1,2}})({_ORD})?\s+(?:(of)\s+)?({_MONTH})\b\.?(?:,?\s+(\d{{4}})\b)?",
     lambda m, ref: _day_of_month(m, ref, m[1], m[4], m[5], bool(m[2] or m[3]))),
    (rf"\b({_MONTH})\b\.?\s+(\d{{1,2}})({_ORD})?\b(?!:)(?:,?\s+(\d{{4}})\b)?",
     lambda m, ref: _day_of_month(m, ref, m[2], m[1], m[4], True)),
    (rf"\b({_MONTH})\b\.?,?\s+(?:of\s+)?(\d{{4}})\b",
     lambda m, ref: DateWindow.of_month(int(m[2]), _MONTHS[m[1].lower()])),
    (rf"\b({_MONTH})\b\.?\s+(?:of\s+)?{_QUAL}year\b", lambda m, ref: DateWindow.of_month(
        ref.year + {"last": -1, "this": 0, "next": 1}[_qual(m[2]) or "this"], _MONTHS[m[1].lower()])),
    (rf"\b{_QUAL}?({_FULL_MONTH})\b", _month),
    (rf"\b{_QUAL}?(summer|winter|spring|fall|autumn)\b(?:\s+(?:of\s+)?(\d{{4}})\b)?", _season),
    (r"\b(\d{4})\b(?!\s*%|[-/]\d)", _year),
))
# Every pattern above needs a digit or one of these words, so a text with neither names no time
# (nine chat turns in ten): find_mentions skips the patterns for it (17 scans, ~150 us a text).
_ANCHOR_WORDS = frozenset({"yesterday", "today", "tonight", "tomorrow", "night", "morning", "afternoon", "evening",
                           "weekend", "day", "days", "week", "weeks", "month", "months", "year", "years",
                           *_WEEKDAYS, *_MONTHS, *_SEASON_START})
_DIGIT = re.compile(r"\d")
_LETTERS = re.compile(r"[^\W\d_]+")


def _may_name_a_time(text: str) -> bool:
    """False when no pattern can match: the text has no digit and none of _ANCHOR_WORDS."""
    return _DIGIT.search(text) is not None or not _ANCHOR_WORDS.isdisjoint(_LETTERS.findall(text.casefold()))


_PART_OF = {"the beginning of": "early", "the start of": "early", "the middle of": "mid", "the end of": "late"}
_WHEN = re.compile(r"^\W*(?:(?:and|so|but|then|ok|okay)\W+)?when\b"
                   r"|\b(?:what|which)\s+(?:date|day|year|month|time|week|season)\b"
                   r"|\bhow\s+long\s+ago\b|\bsince\s+when\b|\bwhat(?:['’]s|\s+is|\s+was)\s+the\s+date\b"
                   r"|\bhow\s+many\s+(?:days|weeks|months|years)\s+ago\b", re.I)


def _reference_day(reference: object) -> date:
    """The calendar day of the reference, on its own wall clock."""
    if isinstance(reference, date):
        return reference.date() if isinstance(reference, datetime) else reference
    return parse_timestamp(reference).date()


def _with_prefix(text: str, start: int, window: DateWindow, ref: date) -> tuple[int, DateWindow]:
    """Apply a leading early/mid/late, earlier/later or since; returns the new start and window."""
    m = _PREFIX.search(text, max(0, start - 30), start)
    if m is None:
        return start, window
    word = " ".join(m[1].lower().split())
    word = _PART_OF.get(word, word)
    whole_year = window == DateWindow.of_year(window.start.year)
    whole_month = window == DateWindow.of_month(window.start.year, window.start.month)
    if word in ("early", "mid", "late") and (whole_year or whole_month):
        part = ("early", "mid", "late").index(word)
        if whole_year:
            first = date(window.start.year, 1 + 4 * part, 1)
            return m.start(), DateWindow(first, _add_months(first, 4) - timedelta(days=1))
        last = window.end if part == 2 else window.start.replace(day=10 * (part + 1))
        return m.start(), DateWindow(window.start.replace(day=1 + 10 * part), last)
    if word == "since" and window.start <= ref:
        return m.start(), DateWindow(window.start, ref)
    if word in ("earlier", "later") and window.days > 1 and window.contains(ref):
        return m.start(), DateWindow(window.start, ref) if word == "earlier" else DateWindow(ref, window.end)
    return start, window


def find_mentions(text: str, reference: datetime) -> list[TimeMention]:
    """Every time expression in a text, in order, resolved against the moment the text was said."""
    if not isinstance(text, str):
        raise InvalidInputError(f"Expected text as a string, got {type(text).__name__}.")
    ref = _reference_day(reference)
    if not _may_name_a_time(text):
        return []
    candidates: list[tuple[int, int, DateWindow]] = []
    for pattern, handler in _PATTERNS:
        for m in pattern.finditer(text):
            try:
                window = handler(m, ref)
            except (ValueError, OverflowError):  # "31 February", "900 years ago" beyond the calendar
                continue
            if window is not None and MIN_YEAR <= window.start.year and window.end.year <= MAX_YEAR:
                candidates.append((m.start(), m.end(), window))
    candidates.sort(key=lambda c: (c[0], c[0] - c[1]))  # earliest first, then longest
    mentions: list[TimeMention] = []
    for start, end, window in candidates:
        if mentions and start < mentions[-1].end_char:
            continue
        new_start, new_window = _with_prefix(text, start, window, ref)
        if not mentions or new_start >= mentions[-1].end_char:
            start, window = new_start, new_window
        mentions.append(TimeMention(text[start:end], start, end, window))
    return mentions


def resolve_event_date(text: str, reference: datetime) -> DateWindow | None:
    """The best window for a memory: the first mention, narrowed by later mentions that lie inside it."""
    best: DateWindow | None = None
    for mention in find_mentions(text, reference):
        w = mention.window
        if best is None or (best.start <= w.start and w.end <= best.end):
            best = w
    return best


def query_window(query: str, reference: datetime) -> DateWindow | None:
    """The days a search query talks about ("last week", "in May 2023"), or None when it names no time."""
    return resolve_event_date(query, reference)


def is_when_question(query: str) -> bool:
    """Whether a question asks for a time ("When did ...", "What year ...", "How long ago ...")."""
    return isinstance(query, str) and _WHEN.search(query) is not None
