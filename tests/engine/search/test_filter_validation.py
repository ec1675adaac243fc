"""Filter dicts: the mem0 operators, AND/OR/NOT (and $-spellings), and clear errors for the rest."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.errors import InvalidInputError
from engine.search.filters import compile_filters, names_scope
from engine.records import MemoryRecord, Scope

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def _rec(user="alice", **meta):
    return MemoryRecord(id="m1", memory="I like tea", hash="h", scope=Scope(user_id=user),
                        created_at=NOW, updated_at=NOW, timestamp=NOW, metadata=meta)


@pytest.mark.parametrize("filters, alice, bob", [
    ({"user_id": "alice"}, True, False),
    ({"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}, True, True),
    ({"$or": [{"user_id": "alice"}, {"user_id": "carol"}]}, True, False),
    ({"$and": [{"user_id": "alice"}, {"tag": "x"}]}, True, False),
    ({"NOT": [{"user_id": "alice"}]}, False, True),
    ({"$not": [{"user_id": "alice"}]}, False, True),
    ({"user_id": {"$in": ["alice", "carol"]}}, True, False),
    ({"user_id": {"$eq": "bob"}}, False, True),
])
def test_logic_and_dollar_spellings(filters, alice, bob):
    pred = compile_filters(filters)
    assert pred(_rec("alice", tag="x")) is alice
    assert pred(_rec("bob")) is bob


@pytest.mark.parametrize("filters, match", [
    ({"user_id": {}}, "empty dict"),
    ({"$regex": "a"}, "Unknown filter key"),
    ({"user_id": {"like": "a"}}, "Unknown filter operator"),
    ({"OR": []}, "list of filter dicts"),
    ({"OR": [{}]}, "list of filter dicts"),
    ({"tag": "\ud800"}, "not valid Unicode"),
    ({"\udc00": 1}, "not valid Unicode"),
    ({"score": {"gt": float("nan")}}, "finite"),
    ({"tag": {"eq": {"nested": 1}}}, "must be text"),
    ({"tag": {"in": [[1]]}}, "must be text"),
    ({"": 1}, "non-empty"),
])
def test_unusable_filters_are_invalid_input(filters, match):
    with pytest.raises(InvalidInputError, match=match):
        compile_filters(filters)


def test_deep_nesting_is_refused_not_a_recursion_error():
    deep = {"user_id": "a"}
    for _ in range(3000):
        deep = {"AND": [deep]}
    with pytest.raises(InvalidInputError, match="nested"):
        compile_filters(deep)
    assert names_scope(deep) is False


@pytest.mark.parametrize("filters, scoped", [
    ({"user_id": "a"}, True),
    ({"user_id": {"in": ["a", "b"]}}, True),
    ({"OR": [{"user_id": "a"}, {"run_id": "r"}]}, True),
    ({"OR": [{"user_id": "a"}, {"tag": "x"}]}, False),
    ({"AND": [{"tag": "x"}, {"agent_id": "g"}]}, True),
    ({"user_id": "*"}, False),
    ({"NOT": [{"user_id": "a"}]}, False),
    ({"user_id": {"ne": "a"}}, False),
    ({}, False),
])
def test_names_scope(filters, scoped):
    assert names_scope(filters) is scoped
