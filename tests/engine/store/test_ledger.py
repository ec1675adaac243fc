"""engine/store/ledger.py on a real SQLite file: rows, history, messages, journal, migrations, links."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from engine import StoreError
from engine.store.ledger import SCHEMA_VERSION, Ledger
from engine.records import HistoryEvent, MemoryRecord, Message, Scope

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def rec(i, user="maya", run="s1", when=T0):
    return MemoryRecord(id=f"m{i}", memory=f"memory {i}", hash=f"h{i}", scope=Scope(user_id=user, run_id=run),
                        created_at=when, updated_at=when, timestamp=when, metadata={"n": i},
                        entities=("Maya",))


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "loci.sqlite3")
    yield led
    led.close()


def test_rows_round_trip_and_page_newest_first(ledger):
    with ledger.transaction() as db:
        for i in range(5):
            ledger.insert_memory(db, rec(i, run="s1" if i < 3 else "s2"))
    assert ledger.get("m2") == rec(2, run="s1")
    assert [r.id for r in ledger.page({"user_id": "maya"}, 0, 2)] == ["m4", "m3"]
    assert ledger.count({"run_id": "s1"}) == 3 and ledger.count() == 5
    assert [(s.kind, s.value, s.count) for s in ledger.scope_counts()] == \
        [("user_id", "maya", 5), ("run_id", "s1", 3), ("run_id", "s2", 2)]
    assert ledger.find_hash({"user_id": "maya"}, "h3") == "m3" and ledger.find_hash({"user_id": "x"}, "h3") is None


def test_a_session_is_counted_with_the_conversation_title_its_memories_carry(ledger):
    def titled(i, run, meta):
        return MemoryRecord(id=f"t{i}", memory=f"memory {i}", hash=f"t{i}", scope=Scope("maya", run_id=run),
                            created_at=T0, updated_at=T0, timestamp=T0, metadata=meta)
    with ledger.transaction() as db:
        ledger.insert_memory(db, titled(1, "chatgpt-1", {"source": "chatgpt", "conversation": "Trip to Lisbon"}))
        ledger.insert_memory(db, titled(2, "chatgpt-1", {"source": "chatgpt", "conversation": "Trip to Lisbon"}))
        ledger.insert_memory(db, titled(3, "notes", {"n": 3}))
        ledger.insert_memory(db, titled(4, "odd", {"conversation": 42}))  # not a title
        ledger.insert_memory(db, titled(5, "blank", {"conversation": "  "}))
    runs = {s.value: (s.count, s.title) for s in ledger.scope_counts() if s.kind == "run_id"}
    assert runs == {"chatgpt-1": (2, "Trip to Lisbon"), "notes": (1, None), "odd": (1, None), "blank": (1, None)}
    assert all(s.title is None for s in ledger.scope_counts() if s.kind != "run_id")


def test_a_failed_transaction_leaves_nothing(ledger):
    with pytest.raises(RuntimeError):
        with ledger.transaction() as db:
            ledger.insert_memory(db, rec(1))
            raise RuntimeError("boom")
    assert ledger.get("m1") is None


def test_history_oldest_first_and_restored_rows_keep_ids(ledger):
    with ledger.transaction() as db:
        ledger.add_history(db, "m1", "ADD", None, "a", "maya", "user", T0)
        ledger.add_history(db, "m1", "UPDATE", "a", "b", None, None, T0 + timedelta(hours=1))
        event = HistoryEvent("h-1", "m2", "ADD", None, "x", None, None, T0)
        ledger.restore_history(db, [event, event])  # a known id is kept once
    assert [e.event for e in ledger.history("m1")] == ["ADD", "UPDATE"]
    assert ledger.history("m2") == [event] and ledger.has_history("m2") and not ledger.has_history("m9")


def test_messages_keep_order_and_restored_ones_keep_their_times(ledger):
    msgs = [Message(f"x{i}", "user", f"hello {i}", T0 + timedelta(minutes=i), name="Maya",
                    scope=Scope(user_id="maya")) for i in range(3)]
    with ledger.transaction() as db:
        ledger.insert_messages(db, msgs[:2])
        old = Message("x2", "user", "hello 2", T0, scope=Scope(user_id="maya"), created_at=T0)
        ledger.restore_messages(db, [old, old])
    assert [m.content for m in ledger.messages(["x2", "x0"])] == ["hello 0", "hello 2"]
    assert ledger.messages(["x2"])[0].created_at == T0
    assert [m.id for m in ledger.recent_messages({"user_id": "maya"}, 2)] == ["x1", "x2"]


def test_journal_and_entity_links(ledger):
    ledger.journal_begin(["m1", "m2"])
    assert sorted(ledger.journal_pending()) == ["m1", "m2"]
    with ledger.transaction() as db:
        ledger.journal_clear(db, ["m1"])
        ledger.set_entity_links(db, "m2", [("maya", "Maya", "PERSON"), ("bergen", "Bergen", "GPE")])
    assert ledger.journal_pending() == ["m2"]
    assert sorted(ledger.entity_links()) == [("m2", "bergen", "Bergen", "GPE"), ("m2", "maya", "Maya", "PERSON")]
    with ledger.transaction() as db:
        ledger.drop_entity_links(db, "m2")
    assert ledger.linked_memory_ids() == set()


def test_neighbours_are_adjacent_rows_of_one_add_call(ledger):
    later = T0 + timedelta(days=1)
    with ledger.transaction() as db:
        for i, when in enumerate([T0, T0, T0, later]):
            ledger.insert_memory(db, rec(i, when=when))
    found = ledger.neighbours(["m1", "m2"])
    assert sorted(found["m1"]) == ["m0", "m2"] and found["m2"] == ["m1"]  # m3 was said a day later
    assert sorted(ledger.neighbours(["m2"], max_gap_s=2 * 86400)["m2"]) == ["m1", "m3"]


def test_neighbours_read_again_follow_every_write(ledger):
    with ledger.transaction() as db:
        for i in range(4):
            ledger.insert_memory(db, rec(i))
    assert sorted(ledger.neighbours(["m1", "m2"])["m2"]) == ["m1", "m3"]
    assert sorted(ledger.neighbours(["m2", "m0"])["m2"]) == ["m1", "m3"]  # kept between writes
    with ledger.transaction() as db:  # deleting m1 leaves m0 and m2 apart (seq 1 and 3)
        ledger.delete_memory(db, "m1")
    found = ledger.neighbours(["m2", "m0", "m1"])
    assert found == {"m2": ["m3"]}
    with ledger.transaction() as db:
        ledger.insert_memory(db, rec(4))
    assert sorted(ledger.neighbours(["m3"])["m3"]) == ["m2", "m4"]


def test_light_rows_and_counts_follow_every_write(ledger):
    with ledger.transaction() as db:
        for i in range(3):
            ledger.insert_memory(db, rec(i))
    assert set(ledger.get_many_light(["m0", "m1", "m9"])) == {"m0", "m1"} and ledger.count() == 3
    with ledger.transaction() as db:  # read again after a write: not the rows cached before it
        ledger.delete_memory(db, "m1")
        ledger.insert_memory(db, rec(7, user="ola"))
    assert set(ledger.get_many_light(["m0", "m1", "m7"])) == {"m0", "m7"}
    assert ledger.get_many_light(["m7"])["m7"].scope.user_id == "ola"
    assert ledger.count() == 3 and ledger.count({"user_id": "ola"}) == 1


def test_rows_read_inside_a_rolled_back_write_are_not_kept(ledger):
    with pytest.raises(RuntimeError):
        with ledger.transaction() as db:
            ledger.insert_memory(db, rec(1))
            assert "m1" in ledger.get_many_light(["m1"]) and ledger.count() == 1
            raise RuntimeError("boom")
    assert ledger.get_many_light(["m1"]) == {} and ledger.count() == 0


def test_schema_is_migrated_and_a_newer_one_is_refused(tmp_path):
    path = tmp_path / "db.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer Loci"):
        Ledger(path)


def test_wipe_empties_every_table(ledger):
    with ledger.transaction() as db:
        ledger.insert_memory(db, rec(1))
        ledger.add_history(db, "m1", "ADD", None, "a")
    ledger.wipe()
    assert ledger.count() == 0 and ledger.history("m1") == []


def test_entity_queue_links_only_what_is_still_queued_with_the_same_text(ledger):
    with ledger.transaction() as db:
        ledger.insert_memories(db, [rec(1), rec(2), rec(3), rec(4)])
        ledger.queue_entities(db, ["m1", "m2", "m3", "m4"])
    assert ledger.entities_pending() == ["m1", "m2", "m3", "m4"] and ledger.entities_pending(2) == ["m1", "m2"]
    with ledger.transaction() as db:
        ledger.delete_memory(db, "m2")  # a deleted memory leaves the queue
        ledger.set_entity_links(db, "m3", [("oslo", "Oslo", "GPE")])  # so does one an update linked
    assert ledger.entities_pending() == ["m1", "m4"]
    bergen = [("bergen", "Bergen", "GPE")]
    with ledger.transaction() as db:
        done = ledger.link_entities(db, [("m1", "h1", ("Maya", "Bergen"), bergen),
                                         ("m3", "h3", ("Bergen",), bergen),  # no longer queued
                                         ("m4", "stale hash", ("Bergen",), bergen)])
    assert done == ["m1"]
    assert ledger.get("m1").entities == ("Maya", "Bergen") and ledger.get("m4").entities == ("Maya",)
    assert sorted(ledger.entity_links()) == [("m1", "bergen", "Bergen", "GPE"), ("m3", "oslo", "Oslo", "GPE")]
    assert ledger.entities_pending() == ["m4"]  # parsed from another text: parsed again later


def test_a_version_3_store_gains_the_entity_queue(tmp_path):
    path = tmp_path / "db.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE entity_queue")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    led = Ledger(path)
    try:
        assert led.entities_pending() == []
    finally:
        led.close()
