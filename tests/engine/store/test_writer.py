"""engine/store/writer.py on a real ledger and Chroma: the write order, its repair and its listeners."""
from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from engine import StoreError
from engine.records import MemoryRecord, Message, Scope, content_hash
from engine.store.export import ExportedMemory
from engine.store.ledger import Ledger
from engine.store.vectors import VectorStore
from engine.store.writer import Writer, recover

ALICE = Scope(user_id="alice")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class Indexes:
    """Records what search would be told (the Indexes protocol)."""

    def __init__(self) -> None:
        self.refreshed: list[tuple[list[str], list[str], dict]] = []
        self.resets = 0

    def refresh(self, records, removed, mentions) -> None:
        self.refreshed.append(([r.id for r in records], list(removed), dict(mentions)))

    def reset(self) -> None:
        self.resets += 1


class Links:
    """Records what the entity linker would be told (the LinkQueue protocol)."""

    def __init__(self) -> None:
        self.notified: list[list[str]] = []
        self.forgotten = 0

    def notify(self, memory_ids) -> None:
        self.notified.append(list(memory_ids))

    def forget(self) -> None:
        self.forgotten += 1


@pytest.fixture
def store(tmp_path, embedder):
    ledger = Ledger(tmp_path / "loci.sqlite3")
    vectors = VectorStore(tmp_path)
    indexes, links = Indexes(), Links()
    writer = Writer(ledger, vectors, embedder, threading.RLock(), indexes, links)
    yield writer, ledger, vectors, indexes, links
    vectors.close()
    ledger.close()


def record(text: str, scope: Scope = ALICE, memory_id: str | None = None) -> MemoryRecord:
    return MemoryRecord(id=memory_id or str(uuid.uuid4()), memory=text, hash=content_hash(text), scope=scope,
                        created_at=WHEN, updated_at=WHEN, timestamp=WHEN, role="user")


def commit(writer, embedder, *texts, messages=()):
    records = [record(t) for t in texts]
    writer.commit(records, embedder.embed_batch(texts), messages)
    return records


def test_commit_writes_rows_history_messages_and_vectors_then_tells_search(store, embedder):
    writer, ledger, vectors, indexes, links = store
    msg = Message(id="m1", role="user", content="I live in Oslo", timestamp=WHEN, scope=ALICE)
    rec, = commit(writer, embedder, "I live in Oslo", messages=[msg])
    assert ledger.get(rec.id).memory == "I live in Oslo"
    assert [e.event for e in ledger.history(rec.id)] == ["ADD"]
    assert [m.content for m in ledger.messages(["m1"])] == ["I live in Oslo"]
    assert set(vectors.ids()) == {rec.id}
    assert ledger.entities_pending() == [rec.id] and ledger.journal_pending() == []
    assert indexes.refreshed == [([rec.id], [], {})] and links.notified == [[rec.id]]


def test_a_commit_whose_sqlite_transaction_fails_leaves_no_stray_vector(store, embedder, monkeypatch):
    writer, ledger, vectors, indexes, links = store
    kept, = commit(writer, embedder, "I play chess on Tuesdays")

    def full(db, records):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Ledger, "insert_memories", staticmethod(full))
    with pytest.raises(StoreError, match="disk full"):
        commit(writer, embedder, "I like green tea")
    monkeypatch.undo()
    assert ledger.count() == 1 and set(vectors.ids()) == {kept.id}
    assert ledger.journal_pending() == []
    assert len(indexes.refreshed) == 1 and len(links.notified) == 1  # the failed write told no one


def test_replace_with_new_text_reembeds_and_relinks(store, embedder):
    writer, ledger, vectors, indexes, _ = store
    old, = commit(writer, embedder, "I live in Lisbon")
    before = vectors.vectors([old.id])[old.id]
    new = record("I live in Porto", memory_id=old.id)
    mentions = {old.id: [("porto", "Porto", "GPE")]}
    writer.replace(old, new, embedder.embed_batch(["I live in Porto"]), mentions, "maya")
    assert ledger.get(old.id).memory == "I live in Porto"
    history = ledger.history(old.id)
    assert [(e.event, e.old_memory, e.new_memory, e.actor) for e in history][-1] == \
        ("UPDATE", "I live in Lisbon", "I live in Porto", "maya")
    assert float(vectors.vectors([old.id])[old.id] @ before) < 0.99
    assert ("porto", "Porto", "GPE") in [(k, t, lb) for mid, k, t, lb in ledger.entity_links() if mid == old.id]
    assert indexes.refreshed[-1] == ([old.id], [old.id], mentions)


def test_replace_of_metadata_only_keeps_the_vector_and_tells_search_nothing(store, embedder):
    writer, ledger, vectors, indexes, _ = store
    old, = commit(writer, embedder, "I live in Lisbon")
    before = vectors.vectors([old.id])[old.id]
    calls = len(indexes.refreshed)
    new = replace(old, metadata={"source": "chat"})
    writer.replace(old, new, None, {}, None)
    assert ledger.get(old.id).metadata == {"source": "chat"}
    assert float(vectors.vectors([old.id])[old.id] @ before) > 0.999
    assert len(indexes.refreshed) == calls and ledger.journal_pending() == []


def test_delete_removes_what_exists_and_counts_it(store, embedder):
    writer, ledger, vectors, indexes, _ = store
    a, b = commit(writer, embedder, "I live in Oslo", "I like tea")
    assert writer.delete([a.id, "no-such-id"], "maya") == 1
    assert ledger.get(a.id) is None and set(vectors.ids()) == {b.id}
    assert [(e.event, e.actor) for e in ledger.history(a.id)] == [("ADD", None), ("DELETE", "maya")]
    assert indexes.refreshed[-1] == ([], [a.id], {})
    assert writer.delete(["no-such-id"], None) == 0


def test_restore_puts_a_deleted_memory_back_with_a_restore_event(store, embedder):
    writer, ledger, vectors, _, links = store
    rec, = commit(writer, embedder, "I live in Oslo")
    writer.delete([rec.id], None)
    writer.restore(rec, "you")
    assert ledger.get(rec.id).memory == "I live in Oslo" and set(vectors.ids()) == {rec.id}
    assert [(e.event, e.actor) for e in ledger.history(rec.id)][-1] == ("RESTORE", "you")
    assert links.notified[-1] == [rec.id]
    writer.restore(rec, "you")  # already there: nothing happens
    assert [e.event for e in ledger.history(rec.id)] == ["ADD", "DELETE", "RESTORE"]


def test_restore_exported_skips_what_is_present_and_keeps_history(store, embedder):
    writer, ledger, vectors, _, _ = store
    present, = commit(writer, embedder, "I like tea")
    gone, = commit(writer, embedder, "I live in Oslo")
    writer.delete([gone.id], None)
    same_text = record("I like tea")  # another id, the same text in the same scope
    elsewhere = record("I like tea", Scope(user_id="bob"))
    items = [ExportedMemory(present), ExportedMemory(same_text), ExportedMemory(gone), ExportedMemory(elsewhere)]
    assert writer.restore_exported(items, "restored from export") == 2
    assert ledger.get(same_text.id) is None and ledger.get(elsewhere.id).scope == Scope(user_id="bob")
    events = [e.event for e in ledger.history(gone.id)]  # the exported ADD keeps its old time
    assert sorted(events) == ["ADD", "ADD", "DELETE", "RESTORE"] and events[-1] == "RESTORE"
    assert set(vectors.ids()) == {present.id, gone.id, elsewhere.id}
    assert writer.restore_exported(items, None) == 0  # a second restore adds nothing


def test_reset_wipes_everything_and_tells_search(store, embedder):
    writer, ledger, vectors, indexes, links = store
    commit(writer, embedder, "I live in Oslo", "I like tea")
    writer.reset()
    assert ledger.count() == 0 and vectors.ids() == [] and ledger.journal_pending() == []
    assert links.forgotten == 1 and indexes.resets == 1


def test_reset_whose_vector_wipe_fails_still_resets_the_indexes(store, embedder, monkeypatch):
    writer, ledger, vectors, indexes, links = store
    rec, = commit(writer, embedder, "I live in Oslo")

    def broken() -> None:
        raise StoreError("The vector store is damaged")

    monkeypatch.setattr(vectors, "wipe", broken)
    with pytest.raises(StoreError, match="damaged"):
        writer.reset()
    assert ledger.get(rec.id) is not None and ledger.journal_pending() == []  # repaired at once
    assert indexes.resets == 1 and links.forgotten == 0


def test_recover_finishes_what_a_crash_interrupted(store, embedder):
    writer, ledger, vectors, _, _ = store
    alive, = commit(writer, embedder, "I live in Oslo")
    stray = str(uuid.uuid4())
    # a crash after steps (1) and (2) of a new memory, and after step (1) of an update
    ledger.journal_begin([stray, alive.id])
    vectors.upsert([stray], embedder.embed_batch(["half-written"]), [{"user_id": "alice", "ts": 0}])
    vectors.delete([alive.id])
    recover(ledger, vectors, embedder)
    assert set(vectors.ids()) == {alive.id} and ledger.journal_pending() == []
    assert float(vectors.vectors([alive.id])[alive.id] @ embedder.embed_batch(["I live in Oslo"])[0]) > 0.999
