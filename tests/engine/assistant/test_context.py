"""engine/assistant/context.py: memories become a dated, attributed block within a word budget."""
from datetime import datetime, timezone

import pytest

from engine.assistant.context import build_context, format_memory
from engine.records import MemoryRecord, Scope, ScoredMemory

T = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)


def rec(i: str, text: str, **kw) -> MemoryRecord:
    return MemoryRecord(id=i, memory=text, hash=i, scope=Scope(user_id="u"), created_at=T,
                        updated_at=T, timestamp=T, **kw)


def test_line_carries_date_speaker_and_text():
    assert format_memory(rec("a", "I went to a  support group", actor="Caroline", memory_type="message")) \
        == "[8 May 2023] Caroline: I went to a support group"
    assert format_memory(rec("b", "Moved to Oslo", event_date="2023-04")) == "[April 2023] Moved to Oslo"
    assert format_memory(rec("c", "Trip", event_date="2023-07-01/2023-07-31")) == "[July 2023] Trip"


def test_speaker_is_not_repeated_and_a_dated_fact_shows_when_it_was_said():
    said = rec("a", "Caroline: I went to a support group", actor="Caroline", memory_type="message")
    assert format_memory(said) == "[8 May 2023] Caroline: I went to a support group"
    fact = rec("f", "Caroline went to a support group on 7 May 2023.", actor="Caroline",
               memory_type="event", event_date="2023-05-07")
    assert format_memory(fact) == "[8 May 2023] Caroline went to a support group on 7 May 2023."


def test_budget_stops_before_the_memory_that_would_overflow():
    hits = [ScoredMemory(rec(str(i), "one two three four five"), 1.0 - i / 10) for i in range(5)]
    ctx = build_context(hits, budget_words=20)
    assert ctx.memory_ids == ("0", "1")  # each line is 8 words with its date
    assert ctx.words == 16 and ctx.words == len(ctx.text.split())


def test_first_memory_is_kept_even_when_longer_than_the_budget():
    ctx = build_context([rec("long", "word " * 50)], budget_words=10)
    assert ctx.memory_ids == ("long",) and ctx.words == 10


def test_empty_hits_and_bad_budget():
    assert build_context([], 100).text == ""
    with pytest.raises(ValueError):
        build_context([], 0)


def test_a_long_memory_that_does_not_fit_lets_shorter_ones_after_it_in():
    hits = [rec("a", "one two three"), rec("long", "word " * 30), rec("b", "four five six")]
    ctx = build_context(hits, budget_words=14)
    assert ctx.memory_ids == ("a", "b") and ctx.words <= 14

