"""engine/arguments.py: what each public argument may be, and the message when it is not."""
from __future__ import annotations

import logging
import math
from datetime import date, datetime, timezone

import pytest

from engine import InvalidInputError
from engine.arguments import (MAX_MESSAGE_CHARS, MAX_NESTING, UNSET, check_count, check_flag, check_hours, check_id,
                              check_metadata, check_reason, check_scope, check_text, check_threshold,
                              drop_scope_keys, expiration_day, is_blank, updated_metadata)
from engine.records import Scope


@pytest.mark.parametrize("text, message", [
    (b"bytes", "must be text, not bytes"),
    ("x" * 11, "11 characters long; the limit is 10"),
    ("bad \udc80", "not valid Unicode \\(position 4\\)"),
    ("nul\x00here", "NUL character"),
])
def test_text_is_checked_with_a_message_naming_the_field(text, message):
    with pytest.raises(InvalidInputError, match=f"^The note .*{message}"):
        check_text(text, "note", 10)


def test_ids_are_non_empty_text():
    check_id("a1")
    for bad in ("", "   ", None, 7):
        with pytest.raises(InvalidInputError, match="A memory id must be a non-empty string"):
            check_id(bad)


def test_a_scope_turns_integer_ids_into_text_and_refuses_wildcards_and_nothing():
    assert check_scope(42, None, "run-1") == Scope(user_id="42", run_id="run-1")
    with pytest.raises(InvalidInputError, match="agent_id must be a non-empty string, not '\\*'"):
        check_scope(None, "*", None)
    with pytest.raises(InvalidInputError, match="user_id must be a non-empty string, not True"):
        check_scope(True, None, None)
    with pytest.raises(InvalidInputError, match="Say whose memory this is"):
        check_scope(None, None, None)


def test_scope_keys_in_metadata_are_dropped_with_a_warning_under_the_facades_logger(caplog):
    with caplog.at_level(logging.WARNING, logger="engine.memory"):
        clean = drop_scope_keys({"user_id": "eve", "run_id": "r1", "topic": "tea"}, "update()",
                                Scope(user_id="alice", run_id="r1"))
    assert clean == {"topic": "tea"}
    assert [r.name for r in caplog.records] == ["engine.memory"]  # r1 repeats the scope: no warning
    assert "update(): ignoring metadata['user_id']" in caplog.text


@pytest.mark.parametrize("value, day", [
    (date(2025, 12, 31), "2025-12-31"),
    (datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc), "2025-12-31"),
    (" 2025-12-31T10:00:00Z", "2025-12-31"),
])
def test_expiration_days_come_from_dates_datetimes_and_iso_text(value, day):
    assert expiration_day(value) == day


def test_an_unreadable_expiration_day_says_the_expected_form():
    with pytest.raises(InvalidInputError, match="expiration_date must be a date like '2025-12-31'"):
        expiration_day("next friday")


@pytest.mark.parametrize("metadata, message", [
    ([1, 2], "metadata must be a dict, not list"),
    ({"n": math.nan}, "The number at metadata.n is nan"),
    ({"n": 2**63}, "too large to store"),
    ({1: "x"}, "metadata keys must be strings"),
    ({"tags": {"a", "b"}}, "metadata.tags is a set"),
    ({"text": "x" * MAX_MESSAGE_CHARS}, "characters long as JSON"),
])
def test_metadata_must_be_json_a_person_could_store(metadata, message):
    with pytest.raises(InvalidInputError, match=message):
        check_metadata(metadata)


def test_metadata_nested_too_deep_is_refused_and_a_good_dict_is_copied():
    deep: dict = {}
    inner = deep
    for _ in range(MAX_NESTING + 1):
        inner["k"] = {}
        inner = inner["k"]
    with pytest.raises(InvalidInputError, match="nested more than"):
        check_metadata(deep)
    given = {"tags": ["a", 1, 2.5, None, True], "nested": {"x": "y"}}
    copy = check_metadata(given)
    assert copy == given and copy is not given
    assert check_metadata(None) == {}


def test_updated_metadata_merges_and_sets_clears_or_keeps_the_expiry():
    old = {"topic": "tea", "expiration_date": "2025-01-01"}
    scope = Scope(user_id="alice")
    assert updated_metadata(old, {"mood": "calm"}, scope, UNSET) == {**old, "mood": "calm"}
    assert updated_metadata(old, None, scope, None) == {"topic": "tea"}
    assert updated_metadata(old, {"user_id": "eve"}, scope, date(2026, 2, 1)) == \
        {"topic": "tea", "expiration_date": "2026-02-01"}


def test_counts_flags_thresholds_hours_and_reasons():
    check_count(5, "top_k", 1, 10)
    with pytest.raises(InvalidInputError, match="top_k must be a whole number from 1 to 10,000, not True"):
        check_count(True, "top_k", 1, 10_000)
    with pytest.raises(InvalidInputError, match="explain must be True or False, not 'yes'"):
        check_flag("yes", "explain")
    check_threshold(0.3)
    for bad in (math.inf, "0.3", False):
        with pytest.raises(InvalidInputError, match="threshold must be a number"):
            check_threshold(bad)
    check_hours(0)
    with pytest.raises(InvalidInputError, match="max_age_hours must be a number of hours"):
        check_hours(-1)
    check_reason("daily")
    with pytest.raises(InvalidInputError, match="A backup reason is one word"):
        check_reason("two words")


def test_blank_text_is_only_spaces_controls_and_format_marks():
    assert is_blank(" \n\t\u200b\u00a0") and is_blank("")
    assert not is_blank(" a ")
