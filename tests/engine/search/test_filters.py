"""engine/search/filters.py: mem0 filter dicts as predicates, scope extraction and Chroma pre-filters."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import InvalidInputError
from engine.search.filters import chroma_where, compile_filters, scope_of
from engine.records import MemoryRecord, Scope


def rec(**kw):
    t = kw.pop("when", datetime(2024, 5, 10, 12, tzinfo=timezone.utc))
    base = dict(id="m1", memory="Maya adopted a cat", hash="h", scope=Scope(user_id="maya", run_id="s1"),
                created_at=t, updated_at=t, timestamp=t, metadata={"topic": "pets", "stars": 4},
                memory_type="event", event_date="2024-05-03", entities=("Maya", "cat"))
    base.update(kw)
    return MemoryRecord(**base)


@pytest.mark.parametrize("filters, expected", [
    ({"user_id": "maya"}, True),
    ({"user_id": "ingrid"}, False),
    ({"topic": "pets"}, True),
    ({"stars": {"gte": 4}}, True),
    ({"stars": {"gt": 4}}, False),
    ({"topic": {"in": ["pets", "work"]}}, True),
    ({"topic": {"nin": ["pets"]}}, False),
    ({"memory": {"icontains": "CAT"}}, True),
    ({"entities": "Maya"}, True),
    ({"missing_key": {"ne": "x"}}, True),
    ({"missing_key": "*"}, False),
    ({"run_id": "*"}, True),
    ({"created_at": {"gte": "2024-05-01"}}, True),
    ({"created_at": {"lt": "2024-05-01T00:00:00Z"}}, False),
    ({"event_date": {"lte": "2024-05-03"}}, True),
    ({"OR": [{"topic": "work"}, {"user_id": "maya"}]}, True),
    ({"AND": [{"topic": "work"}, {"user_id": "maya"}]}, False),
    ({"NOT": [{"topic": "work"}]}, True),
])
def test_predicates(filters, expected):
    assert compile_filters(filters)(rec()) is expected


@pytest.mark.parametrize("scope", [Scope(user_id="maya"), Scope(user_id="ingrid"), Scope(agent_id="maya"),
                                   Scope(user_id="maya", agent_id="bot", run_id="s1"), Scope()])
def test_a_plain_scope_filter_checks_like_its_operator_form(scope):
    """{"user_id": "maya"} is checked directly (searches run it on hundreds of candidates); it must
    agree with the general {"user_id": {"eq": "maya"}} on every scope, unset keys included."""
    for key in ("user_id", "agent_id", "run_id"):
        for value in ("maya", "s1", "bot"):
            record = rec(scope=scope)
            assert compile_filters({key: value})(record) is compile_filters({key: {"eq": value}})(record) \
                is (getattr(scope, key) == value)


def test_event_date_ranges_compare_by_their_first_day():
    assert compile_filters({"event_date": {"gte": "2024-05-01"}})(rec(event_date="2024-05-01/2024-05-31"))
    assert not compile_filters({"event_date": "2024-05-03"})(rec(event_date=None))


@pytest.mark.parametrize("filters, message", [
    ({"topic": {"like": "x"}}, "Unknown filter operator 'like'"),
    ({"topic": {"in": "pets"}}, "needs a list"),
    ({"OR": "x"}, "takes a list of filter dicts"),
    ({"memory": {"contains": 3}}, "needs a text value"),
])
def test_bad_filters_say_what_to_write(filters, message):
    with pytest.raises(InvalidInputError, match=message):
        compile_filters(filters)


def test_scope_and_chroma_where():
    assert scope_of({"user_id": "maya", "run_id": {"eq": "s1"}, "agent_id": "*", "topic": "x"}) == \
        {"user_id": "maya", "run_id": "s1"}
    assert chroma_where({"user_id": "maya"}) == {"user_id": {"$eq": "maya"}}
    assert chroma_where({"user_id": "maya", "run_id": "s1"}) == \
        {"$and": [{"user_id": {"$eq": "maya"}}, {"run_id": {"$eq": "s1"}}]}
    assert chroma_where({"topic": "x"}) is None and compile_filters(None)(rec())
