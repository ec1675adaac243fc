"""Temporal resolution: message expressions, search windows, timestamps and when-questions against fixed references."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest

from engine.errors import InvalidInputError, LociError
from engine.extraction.temporal import (DateWindow, TimeMention, find_mentions, is_when_question, parse_timestamp,
                             query_window, resolve_event_date)

UTC = timezone.utc
# LoCoMo's "1:56 pm on 8 May, 2023": a Monday (checked in test_reference_is_a_monday).
REF = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def day(iso: str) -> DateWindow:
    """One-day window from an ISO date."""
    return DateWindow.of_day(date.fromisoformat(iso))


def span(first: str, last: str) -> DateWindow:
    """Inclusive window from two ISO dates."""
    return DateWindow(date.fromisoformat(first), date.fromisoformat(last))


def test_reference_is_a_monday():
    assert REF.weekday() == 0 and REF.strftime("%A") == "Monday"


# ---------------------------------------------------------------- DateWindow

def test_window_iso_and_contains():
    assert day("2023-05-07").iso() == "2023-05-07"
    may = DateWindow.of_month(2023, 5)
    assert may == span("2023-05-01", "2023-05-31")
    assert may.iso() == "2023-05-01/2023-05-31"
    assert may.contains(date(2023, 5, 1)) and may.contains(date(2023, 5, 31))
    assert not may.contains(date(2023, 4, 30)) and not may.contains(date(2023, 6, 1))
    assert may.contains(datetime(2023, 5, 31, 23, 59, tzinfo=UTC))
    assert DateWindow.of_month(2024, 2).end == date(2024, 2, 29)
    assert DateWindow.of_year(2022).days == 365


def test_window_is_frozen_and_ordered():
    w = day("2023-05-07")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.start = date(2020, 1, 1)  # type: ignore[misc]
    with pytest.raises(ValueError, match="ends before it starts"):
        DateWindow(date(2023, 5, 8), date(2023, 5, 7))


# ---------------------------------------------------------------- expressions in messages

MESSAGE_CASES = [
    # relative days
    ("I went to a LGBTQ support group yesterday.", day("2023-05-07")),
    ("Today I feel great.", day("2023-05-08")),
    ("We celebrate tonight!", day("2023-05-08")),
    ("I ran 5k this morning.", day("2023-05-08")),
    ("She called the day before yesterday.", day("2023-05-06")),
    ("Last night was fun.", day("2023-05-07")),
    ("I'll see you tomorrow.", day("2023-05-09")),
    ("The parcel comes the day after tomorrow.", day("2023-05-10")),
    # weekdays
    ("We hiked last Saturday.", day("2023-05-06")),
    ("I started last Monday.", day("2023-05-01")),
    ("The show is next Friday.", day("2023-05-12")),
    ("My interview is next Monday.", day("2023-05-15")),
    ("Dinner this Friday?", day("2023-05-12")),
    ("The race is this Sunday.", day("2023-05-14")),
    ("I went hiking on Saturday.", day("2023-05-06")),
    ("I will call her on Friday.", day("2023-05-12")),
    ("This past Sunday I painted.", day("2023-05-07")),
    # calendar units
    ("I was sick last week.", span("2023-05-01", "2023-05-07")),
    ("I'm busy this week.", span("2023-05-08", "2023-05-14")),
    ("We move next week.", span("2023-05-15", "2023-05-21")),
    ("I got promoted last month.", span("2023-04-01", "2023-04-30")),
    ("Exams are next month.", span("2023-06-01", "2023-06-30")),
    ("We married last year.", span("2022-01-01", "2022-12-31")),
    ("I want to travel more this year.", span("2023-01-01", "2023-12-31")),
    ("Next year I retire.", span("2024-01-01", "2024-12-31")),
    ("We camped last weekend.", span("2023-05-06", "2023-05-07")),
    ("Any plans this weekend?", span("2023-05-13", "2023-05-14")),
    ("My sister visits next weekend.", span("2023-05-20", "2023-05-21")),
    ("I read a lot over the weekend.", span("2023-05-06", "2023-05-07")),
    # N units ago / in N units
    ("I adopted a cat 3 days ago.", day("2023-05-05")),
    ("We met two days ago.", day("2023-05-06")),
    ("It rained a couple of days ago.", day("2023-05-06")),
    ("I finished it a few days ago.", day("2023-05-05")),
    ("I joined a week ago.", span("2023-05-01", "2023-05-07")),
    ("She left two weeks ago.", span("2023-04-24", "2023-04-30")),
    ("I quit smoking a month ago.", span("2023-04-01", "2023-04-30")),
    ("We moved three months ago.", span("2023-02-01", "2023-02-28")),
    ("I graduated a year ago.", span("2022-01-01", "2022-12-31")),
    ("He was born 4 years ago.", span("2019-01-01", "2019-12-31")),
    ("The results come in 3 days.", day("2023-05-11")),
    ("I fly out in two weeks.", span("2023-05-22", "2023-05-28")),
    ("Payday is 5 days from now.", day("2023-05-13")),
    # months and seasons without a year
    ("I ran a marathon last May.", span("2022-05-01", "2022-05-31")),
    ("We met in May.", span("2023-05-01", "2023-05-31")),
    ("We went to Paris in March.", span("2023-03-01", "2023-03-31")),
    ("We went to Paris in June.", span("2022-06-01", "2022-06-30")),
    ("I will visit Paris in June.", span("2023-06-01", "2023-06-30")),
    ("I'm going to Rome in March.", span("2024-03-01", "2024-03-31")),
    ("We are planning to go camping in June next year.", span("2024-06-01", "2024-06-30")),
    ("We met in October of last year.", span("2022-10-01", "2022-10-31")),
    ("The 8th of May was my birthday.", day("2023-05-08")),
    ("The wedding was on the 20th of May.", day("2022-05-20")),
    ("We went camping in early May.", span("2023-05-01", "2023-05-10")),
    ("We went to the beach last summer.", span("2022-06-01", "2022-08-31")),
    ("I went skiing last winter.", span("2022-12-01", "2023-02-28")),
    ("I planted roses last spring.", span("2022-03-01", "2022-05-31")),
    ("I started painting last fall.", span("2022-09-01", "2022-11-30")),
    ("The leaves were lovely last autumn.", span("2022-09-01", "2022-11-30")),
    ("We'll go to Spain this summer.", span("2023-06-01", "2023-08-31")),
    ("I learned to surf in the summer.", span("2022-06-01", "2022-08-31")),
    # absolute dates
    ("In May 2023 I started a new job.", span("2023-05-01", "2023-05-31")),
    ("I moved here in 2022.", span("2022-01-01", "2022-12-31")),
    ("The concert was on 8 May 2023.", day("2023-05-08")),
    ("The concert was on May 8, 2023.", day("2023-05-08")),
    ("My birthday was May 8th.", day("2023-05-08")),
    ("The release is 2023-05-08.", day("2023-05-08")),
    ("It was at 1:56 pm on 8 May, 2023.", day("2023-05-08")),
    ("We spent summer 2021 in Maine.", span("2021-06-01", "2021-08-31")),
    ("Sept 3, 2022 was a Saturday.", day("2022-09-03")),
    # early/mid/late, since, rolling windows
    ("I started the blog in early 2022.", span("2022-01-01", "2022-04-30")),
    ("She moved in mid-2022.", span("2022-05-01", "2022-08-31")),
    ("We adopted him in late 2022.", span("2022-09-01", "2022-12-31")),
    ("I changed jobs late last year.", span("2022-09-01", "2022-12-31")),
    ("I was promoted at the end of 2022.", span("2022-09-01", "2022-12-31")),
    ("I've lived here since 2020.", span("2020-01-01", "2023-05-08")),
    ("It has been a long week: the past week was hard.", span("2023-05-01", "2023-05-08")),
    ("I've slept badly the past few days.", span("2023-05-05", "2023-05-08")),
    ("I ran every day in the last 3 days.", span("2023-05-05", "2023-05-08")),
    ("I'll be busy the next few days.", span("2023-05-08", "2023-05-11")),
    ("I read two books earlier this month.", span("2023-05-01", "2023-05-08")),
]


@pytest.mark.parametrize(("text", "expected"), MESSAGE_CASES, ids=[t for t, _ in MESSAGE_CASES])
def test_message_expressions(text, expected):
    assert resolve_event_date(text, REF) == expected


def test_message_table_is_large_enough():
    assert len(MESSAGE_CASES) >= 35


NOT_DATES = [
    "I may go swimming.",
    "May I ask you something?",
    "This may help you.",
    "I have 3 kids and 2 dogs.",
    "Wait a second.",
    "She came second in the race.",
    "We march together for rights.",
    "I've been painting a lot recently.",
    "Lately I feel tired.",
    "Spring water tastes better.",
    "I fall asleep early.",
    "I ran 2000 meters.",
    "Sundays are for resting.",
    "Mayday, mayday!",
    "I haven't seen him in 3 years.",
    "I go twice in a week.",
    "I love painting sunsets.",
]


@pytest.mark.parametrize("text", NOT_DATES)
def test_words_that_are_not_dates(text):
    assert find_mentions(text, REF) == []
    assert resolve_event_date(text, REF) is None


def test_reference_is_read_on_its_own_wall_clock():
    # 01:00 on 9 May in Sydney is 15:00 on 8 May in UTC; the speaker's "yesterday" is 8 May.
    sydney = timezone(timedelta(hours=10))
    assert resolve_event_date("I met her yesterday", datetime(2023, 5, 9, 1, 0, tzinfo=sydney)) == day("2023-05-08")
    assert resolve_event_date("I met her yesterday", date(2023, 5, 9)) == day("2023-05-08")
    assert resolve_event_date("I met her yesterday", "1:56 pm on 8 May, 2023") == day("2023-05-07")


def test_other_reference_days():
    sunday = datetime(2023, 5, 14, 9, 0, tzinfo=UTC)
    assert resolve_event_date("last weekend", sunday) == span("2023-05-06", "2023-05-07")
    assert resolve_event_date("this weekend", sunday) == span("2023-05-13", "2023-05-14")
    assert resolve_event_date("next Sunday", sunday) == day("2023-05-21")
    assert resolve_event_date("last Sunday", sunday) == day("2023-05-07")
    december = datetime(2023, 12, 10, tzinfo=UTC)
    assert resolve_event_date("We swam a lot last summer.", december) == span("2023-06-01", "2023-08-31")
    assert resolve_event_date("It snowed last winter.", december) == span("2022-12-01", "2023-02-28")
    assert resolve_event_date("next month", december) == span("2024-01-01", "2024-01-31")
    assert resolve_event_date("a month ago", datetime(2024, 3, 31, tzinfo=UTC)) == span("2024-02-01", "2024-02-29")


def test_event_date_takes_the_first_mention_narrowed_by_later_ones():
    assert resolve_event_date("Yesterday I decided to move next month.", REF) == day("2023-05-07")
    assert resolve_event_date("Last year, on 3 May 2022, I graduated.", REF) == day("2022-05-03")
    assert resolve_event_date("In 2022 I moved; last week I visited.", REF) == span("2022-01-01", "2022-12-31")


# ---------------------------------------------------------------- find_mentions offsets

def test_mentions_carry_exact_offsets_and_original_text():
    text = "I met her yesterday and we meet again next Friday."
    mentions = find_mentions(text, REF)
    assert mentions == [
        TimeMention("yesterday", 10, 19, day("2023-05-07")),
        TimeMention("next Friday", 38, 49, day("2023-05-12")),
    ]
    for m in mentions:
        assert text[m.start_char:m.end_char] == m.text


def test_mentions_include_prefixes_and_keep_case():
    text = "Since 2020 I have lived here; in mid-2022 I moved to 8 May, 2023 LAST WEEK."
    assert [(m.text, m.start_char, m.end_char, m.window) for m in find_mentions(text, REF)] == [
        ("Since 2020", 0, 10, span("2020-01-01", "2023-05-08")),
        ("mid-2022", 33, 41, span("2022-05-01", "2022-08-31")),
        ("8 May, 2023", 53, 64, day("2023-05-08")),
        ("LAST WEEK", 65, 74, span("2023-05-01", "2023-05-07")),
    ]


def test_longest_expression_wins_over_its_parts():
    (m,) = find_mentions("the day before yesterday", REF)
    assert (m.text, m.window) == ("the day before yesterday", day("2023-05-06"))
    (m,) = find_mentions("on May 8, 2023 at noon", REF)
    assert (m.text, m.start_char, m.end_char) == ("May 8, 2023", 3, 14)


def test_find_mentions_rejects_non_text():
    with pytest.raises(InvalidInputError, match="Expected text as a string"):
        find_mentions(None, REF)  # type: ignore[arg-type]


# ---------------------------------------------------------------- search queries

QUERY_CASES = [
    ("What did I do last week?", span("2023-05-01", "2023-05-07")),
    ("What did Caroline do in May 2023?", span("2023-05-01", "2023-05-31")),
    ("What happened yesterday?", day("2023-05-07")),
    ("What did we talk about last month?", span("2023-04-01", "2023-04-30")),
    ("Where did I go last weekend?", span("2023-05-06", "2023-05-07")),
    ("What did I eat on Saturday?", day("2023-05-06")),
    ("What are my plans for next week?", span("2023-05-15", "2023-05-21")),
    ("What did I buy in 2022?", span("2022-01-01", "2022-12-31")),
    ("What happened on 8 May 2023?", day("2023-05-08")),
    ("What happened on May 7, 2023?", day("2023-05-07")),
    ("what did i do last may", span("2022-05-01", "2022-05-31")),
    ("What did Melanie do last summer?", span("2022-06-01", "2022-08-31")),
    ("What did I read two weeks ago?", span("2023-04-24", "2023-04-30")),
    ("Any news from the past few days?", span("2023-05-05", "2023-05-08")),
    ("Where have I worked since 2020?", span("2020-01-01", "2023-05-08")),
    ("What did Jon do in early 2022?", span("2022-01-01", "2022-04-30")),
    ("What was decided at the 2023-05-01 meeting?", day("2023-05-01")),
    ("What did I do this morning?", day("2023-05-08")),
    ("What did I do in March?", span("2023-03-01", "2023-03-31")),
    ("Which concerts are coming up this month?", span("2023-05-01", "2023-05-31")),
    ("What did I do three days ago?", day("2023-05-05")),
    ("Who did I meet a year ago?", span("2022-01-01", "2022-12-31")),
    ("What is Caroline's favourite colour?", None),
    ("I may go swimming", None),
    ("When did Melanie paint a sunrise?", None),
    ("How many kids does Caroline have?", None),
    ("Did I march in the parade?", None),
    ("Who came second in the race?", None),
    ("What have I been doing recently?", None),
    ("", None),
]


@pytest.mark.parametrize(("query", "expected"), QUERY_CASES, ids=[q or "<empty>" for q, _ in QUERY_CASES])
def test_query_window(query, expected):
    assert query_window(query, REF) == expected


def test_query_table_is_large_enough():
    assert len(QUERY_CASES) >= 22


def test_every_text_a_pattern_matches_passes_the_quick_check_that_skips_the_rest():
    """find_mentions skips the patterns for a text without a digit or a time word: no text any
    pattern matches may be skipped so (and every pattern is matched by some text here)."""
    from engine.extraction import temporal

    texts = [t for t, _ in MESSAGE_CASES] + NOT_DATES + [q for q, _ in QUERY_CASES] + \
        ["Mid-MAY we met.", "in three MONTHS", "Ｍａｙ 2023", "٢٠٢٣-٠٥-٠١ was a Monday", "Due 2024-03."]
    matched = set()
    for text in texts:
        for i, (pattern, _handler) in enumerate(temporal._PATTERNS):
            if pattern.search(text):
                matched.add(i)
                assert temporal._may_name_a_time(text), (text, pattern.pattern)
    assert matched == set(range(len(temporal._PATTERNS)))
    assert not temporal._may_name_a_time("I love painting sunsets, lately!")
    assert find_mentions("I love painting sunsets, lately!", REF) == []


# ---------------------------------------------------------------- parse_timestamp

ACCEPTED = [
    (datetime(2023, 5, 8, 13, 56), datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    (datetime(2023, 5, 8, 15, 56, tzinfo=timezone(timedelta(hours=2))), datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    (date(2023, 5, 8), datetime(2023, 5, 8, tzinfo=UTC)),
    (1683554160, datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    (1683554160.5, datetime(2023, 5, 8, 13, 56, 0, 500000, tzinfo=UTC)),
    ("1683554160", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("2023-05-08", datetime(2023, 5, 8, tzinfo=UTC)),
    ("2023-05-08T13:56:00Z", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("2023-05-08T15:56:00+02:00", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("2023-05-08 13:56", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("  2023-05-08T13:56:00.250z ", datetime(2023, 5, 8, 13, 56, 0, 250000, tzinfo=UTC)),
    ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("10:30 am on 1 January, 2024", datetime(2024, 1, 1, 10, 30, tzinfo=UTC)),
    ("12:05 am on 1 Jan, 2024", datetime(2024, 1, 1, 0, 5, tzinfo=UTC)),
    ("12:30 pm on 1 Jan 2024", datetime(2024, 1, 1, 12, 30, tzinfo=UTC)),
    ("8 May 2023", datetime(2023, 5, 8, tzinfo=UTC)),
    ("the 8th of May 2023", datetime(2023, 5, 8, tzinfo=UTC)),
    ("May 8, 2023", datetime(2023, 5, 8, tzinfo=UTC)),
    ("Monday, May 8, 2023 at 7 pm", datetime(2023, 5, 8, 19, 0, tzinfo=UTC)),
    ("May 8 2023 18:45:10", datetime(2023, 5, 8, 18, 45, 10, tzinfo=UTC)),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED, ids=[repr(v) for v, _ in ACCEPTED])
def test_parse_timestamp_accepts(value, expected):
    got = parse_timestamp(value)
    assert got == expected
    assert got.tzinfo is UTC


REJECTED = [
    (None, "No date/time given; use ISO 8601"),
    (True, r"Got a boolean \(True\) where a date/time was expected"),
    (float("nan"), "is not a finite number of seconds"),
    (float("inf"), "is not a finite number of seconds"),
    ("blah", r"Could not read 'blah' as a date/time; use ISO 8601 like 2024-05-01T14:30:00Z or unix seconds\."),
    ("", "An empty string is not a date/time"),
    ("   ", "An empty string is not a date/time"),
    ("2023-02-30", "Could not read '2023-02-30' as a date/time"),
    ("13:56 pm on 8 May, 2023", "Could not read '13:56 pm on 8 May, 2023'"),
    ("1850-01-01", "outside the supported years 1900-2200"),
    ("2301-01-01T00:00:00Z", "outside the supported years 1900-2200"),
    (datetime(1800, 1, 1), "outside the supported years 1900-2200"),
    (date(2500, 1, 1), "outside the supported years 1900-2200"),
    (1683554160000, r"too large for unix seconds \(milliseconds\? divide by 1000\)"),
    (10 ** 400, "too large for unix seconds"),
    ([2023, 5, 8], "Expected a date/time, got list"),
]


@pytest.mark.parametrize(("value", "message"), REJECTED, ids=[repr(v)[:30] for v, _ in REJECTED])
def test_parse_timestamp_rejects_with_a_helpful_message(value, message):
    with pytest.raises(InvalidInputError, match=message) as info:
        parse_timestamp(value)
    assert isinstance(info.value, LociError) and isinstance(info.value, ValueError)
    assert "ISO 8601" in info.value.user_message


def test_long_garbage_is_shortened_in_the_message():
    with pytest.raises(InvalidInputError) as info:
        parse_timestamp("x" * 500)
    assert len(str(info.value)) < 160


# ---------------------------------------------------------------- when-questions

@pytest.mark.parametrize("query", [
    "When did Caroline go to the LGBTQ support group?",
    "when is the party",
    "And when did she move?",
    "What date did Melanie paint a sunrise?",
    "What year did Jon start his business?",
    "Which month did they go camping?",
    "What day of the week is the meeting?",
    "How long ago did Caroline move from Sweden?",
    "What time does the gym open?",
    "On what date was the race?",
    "What's the date of the wedding?",
    "How many years ago did she adopt the dog?",
])
def test_when_questions(query):
    assert is_when_question(query) is True


@pytest.mark.parametrize("query", [
    "What did Caroline do when she was young?",
    "What is Caroline's favourite colour?",
    "How long has Melanie been painting?",
    "Where did she go last week?",
    "Whenever I run, what do I listen to?",
    "What a day it was, who was there?",
    "",
])
def test_not_when_questions(query):
    assert is_when_question(query) is False


def test_module_is_light():
    import ast
    import pathlib

    source = pathlib.Path(__file__).resolve().parents[3] / "engine" / "extraction" / "temporal.py"
    tree = ast.parse(source.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "calendar", "math", "numbers", "re", "dataclasses", "datetime", "typing",
                        "errors"}


@pytest.mark.parametrize("text, day", [
    ("My appointment is on Friday", date(2024, 5, 10)),  # said on Wednesday 8 May 2024: the coming Friday
    ("I'm seeing her on Friday", date(2024, 5, 10)),
    ("The party is on Saturday!", date(2024, 5, 11)),
    ("It was on Friday", date(2024, 5, 3)),
    ("I went to the gym on Friday", date(2024, 5, 3))])
def test_a_present_tense_weekday_is_the_coming_one(text: str, day: date) -> None:
    said = datetime(2024, 5, 8, 10, 0, tzinfo=timezone.utc)
    assert resolve_event_date(text, said) == DateWindow.of_day(day)
