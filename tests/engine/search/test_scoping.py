"""engine/search/scoping.py: scope keywords merged into filters, and a read that names no scope refused."""
from __future__ import annotations

import pytest

from engine import InvalidInputError
from engine.search.scoping import filter_dict, merge_scope, names_entities, require_scope


def test_scope_keywords_join_the_filters_and_integer_ids_become_text():
    assert merge_scope({"topic": "tea"}, 7, None, "r1") == {"topic": "tea", "user_id": "7", "run_id": "r1"}
    assert merge_scope({"user_id": 7}, None, None, None) == {"user_id": "7"}
    assert merge_scope({"user_id": {"eq": "alice"}}, "alice", None, None) == {"user_id": "alice"}


def test_a_keyword_that_contradicts_the_filters_is_refused():
    with pytest.raises(InvalidInputError, match="user_id='bob' conflicts with user_id 'alice' in filters"):
        merge_scope({"user_id": "alice"}, "bob", None, None)
    with pytest.raises(InvalidInputError, match="filters must be a dict, not list"):
        merge_scope([("user_id", "a")], None, None, None)  # type: ignore[arg-type]


def test_a_read_must_name_whose_memories_it_reads_unless_all_scopes():
    with pytest.raises(InvalidInputError, match="Say whose memories to search: give user_id"):
        require_scope({"topic": "tea"}, False, "search")
    with pytest.raises(InvalidInputError, match="To list every user's memories on purpose"):
        require_scope({"user_id": "*"}, False, "list")
    require_scope({"topic": "tea"}, True, "search")
    require_scope({"OR": [{"user_id": "a"}, {"agent_id": "b"}]}, False, "search")
    with pytest.raises(InvalidInputError, match="all_scopes must be True or False"):
        require_scope({"user_id": "a"}, "yes", "search")


def test_a_malformed_filter_is_the_message_before_the_missing_scope():
    with pytest.raises(InvalidInputError, match="Unknown filter key '\\$where'"):
        require_scope({"$where": 1}, False, "search")


def test_filter_dicts_are_checked_and_copied():
    given = {"user_id": "a", "score": {"gte": 2}}
    copy = filter_dict(given)
    assert copy == given and copy is not given
    assert filter_dict(None) == {}
    with pytest.raises(InvalidInputError, match="filters must be a dict, not str"):
        filter_dict("user_id=a")


def test_entity_filters_are_found_at_any_depth():
    assert names_entities({"AND": [{"user_id": "a"}, {"OR": [{"entity": "Oslo"}]}]})
    assert names_entities({"entities": {"contains": "Oslo"}})
    assert not names_entities({"user_id": "a", "topic": "entities"})
