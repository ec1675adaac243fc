"""ScopedMemory over a real store: another user's memories do not exist for it, whatever is asked."""
from __future__ import annotations

import pytest

from engine import AccessDeniedError, NotFoundError
from engine.service.keys import KeyScope
from engine.service.scoped import ScopedMemory, view_for


@pytest.fixture
def two_users(memory):
    ids = {}
    for user, agent, text in (("alice", "planner", "Alice flies to Rome in May"),
                              ("alice", "coach", "Alice runs 5 km on Sundays"),
                              ("bob", "planner", "Bob's bank PIN is 4321")):
        ids[text] = memory.add(text, user_id=user, agent_id=agent, infer=False)["results"][0]["id"]
    return memory, ids


def test_other_users_ids_are_missing_not_forbidden(two_users):
    memory, ids = two_users
    alice = ScopedMemory(memory, KeyScope("alice"))
    bob = ids["Bob's bank PIN is 4321"]
    assert alice.get(bob) is None
    for call in (lambda: alice.get_record(bob), lambda: alice.history(bob), lambda: alice.update(bob, "0000"),
                 lambda: alice.delete(bob), lambda: alice.delete_records([bob]), lambda: alice.source_messages(bob)):
        with pytest.raises(NotFoundError, match="No memory with id"):
            call()
    assert memory.get(bob)["memory"] == "Bob's bank PIN is 4321"
    assert alice.get(ids["Alice flies to Rome in May"])["user_id"] == "alice"


def test_lists_and_searches_are_confined_whatever_the_filters(two_users):
    memory, _ = two_users
    alice = ScopedMemory(memory, KeyScope("alice"))
    for filters in (None, {"user_id": "bob"}, {"OR": [{"user_id": "bob"}, {"user_id": "alice"}]},
                    {"user_id": "*"}, {"NOT": {"user_id": "alice"}}):
        assert {r["user_id"] for r in alice.search("PIN", filters=filters)["results"]} <= {"alice"}
        assert {r["user_id"] for r in alice.get_all(filters=filters)["results"]} <= {"alice"}
        assert alice.count(filters) <= 2
    assert alice.count() == 2 and [s.value for s in alice.scopes()] == ["alice"]
    coach = ScopedMemory(memory, KeyScope("alice", "coach"))
    assert [r["memory"] for r in coach.get_all()["results"]] == ["Alice runs 5 km on Sundays"]
    with pytest.raises(AccessDeniedError, match="limited to user 'alice'"):
        alice.search("PIN", user_id="bob")


def test_writes_stay_in_scope_and_store_wide_deletes_need_the_owner(two_users):
    memory, _ = two_users
    alice = ScopedMemory(memory, KeyScope("alice"))
    new = alice.add("Alice likes figs", infer=False)["results"][0]["id"]
    assert memory.get(new)["user_id"] == "alice"
    with pytest.raises(AccessDeniedError, match="limited to user 'alice'"):
        alice.add("x", user_id="bob", infer=False)
    with pytest.raises(AccessDeniedError, match="owner"):
        alice.delete_all(user_id="alice")
    with pytest.raises(AccessDeniedError, match="owner"):
        alice.reset()
    reader = ScopedMemory(memory, KeyScope("alice", read_only=True))
    with pytest.raises(AccessDeniedError, match="read-only"):
        reader.delete(new)
    confined = ScopedMemory(memory, KeyScope("alice"), may_delete_all=True)  # a confined MCP server
    with pytest.raises(AccessDeniedError):
        confined.delete_all(user_id="bob")
    confined.delete_all()
    assert memory.count({"user_id": "alice"}) == 0 and memory.count({"user_id": "bob"}) == 1
    assert view_for(memory, None) is memory
