"""engine/store/export.py: a lossless export -> restore round trip, merge and replace, progress, cancel."""
from __future__ import annotations

import json

import pytest

from engine import CancelToken, InvalidInputError, Memory
from engine.store import export


@pytest.fixture
def filled(memory):
    """A store with two sessions, an edit, a metadata change and a deleted memory."""
    memory.add([{"role": "user", "content": "My sister Ingrid moved to Bergen last week", "name": "Maya"},
                {"role": "assistant", "content": "How exciting for her!"}],
               user_id="maya", run_id="session_1", timestamp="2024-05-10T09:00:00Z", infer=False,
               metadata={"source": "chat"})
    memory.add("I started a new job at Nordlys Energy", user_id="maya", run_id="session_2",
               timestamp="2024-06-01T12:00:00Z", infer=False)
    rows = {r.memory: r for r in memory.list_records(filters={"user_id": "maya"})}
    memory.update(rows["I started a new job at Nordlys Energy"].id, "I work at Nordlys Energy since June",
                  actor="maya")
    memory.delete(rows["How exciting for her!"].id)
    return memory


def snapshot(mem: Memory) -> dict[str, tuple]:
    """Everything a person can see about each memory, by id."""
    out = {}
    for r in mem.list_records(top_k=1000):
        hist = tuple((e.id, e.event, e.old_memory, e.new_memory, e.actor, e.created_at)
                     for e in mem.history_records(r.id))
        src = tuple((m.id, m.role, m.name, m.content, m.timestamp) for m in mem.source_messages(r.id))
        out[r.id] = (r, hist, src)
    return out


def test_round_trip_keeps_history_provenance_and_every_field(filled, tmp_path, embedder):
    path = tmp_path / "backup.json"
    assert export.export_store(filled, path) == 2
    before = snapshot(filled)
    with Memory(tmp_path / "other", embedder=embedder) as other:
        summary = export.restore(other, path)
        assert (summary.added, summary.skipped) == (2, 0)
        after = snapshot(other)
        assert after == before  # records (ids, times, scopes, metadata, event dates, entities) too
        edited = next(v for v in after.values() if v[0].memory.startswith("I work"))
        assert [h[1] for h in edited[1]] == ["ADD", "UPDATE"]
        assert edited[1][1][2] == "I started a new job at Nordlys Energy" and edited[1][1][4] == "maya"
        ingrid = next(v for v in after.values() if "Ingrid" in v[0].memory)
        assert ingrid[2][0][2:4] == ("Maya", "My sister Ingrid moved to Bergen last week")
        assert ingrid[0].metadata == {"source": "chat"} and ingrid[0].event_date is not None
        assert "Ingrid" in ingrid[0].entities and "Bergen" in ingrid[0].entities
        # restored memories are searchable and linked to their entities
        assert other.search_records("where does Ingrid live?", filters={"user_id": "maya"})[0].record.id == \
            ingrid[0].id
        assert [r.id for r in other.entity_memories("Bergen")] == [ingrid[0].id]


def test_restoring_twice_into_the_same_store_keeps_the_count(filled, tmp_path):
    path = tmp_path / "backup.json"
    export.export_store(filled, path)
    first = export.restore(filled, path)
    second = export.restore(filled, path)
    assert (first.added, first.skipped) == (0, 2) and (second.added, second.skipped) == (0, 2)
    assert filled.count() == 2


def test_merge_skips_the_same_text_in_the_same_scope_under_another_id(filled, tmp_path):
    path = tmp_path / "backup.json"
    export.export_store(filled, path)
    data = json.loads(path.read_text())
    for row in data["memories"]:
        row["id"] = row["id"][::-1]
    data["memories"][0]["user_id"] = "someone-else"
    path.write_text(json.dumps(data))
    summary = export.restore(filled, path)
    assert (summary.added, summary.skipped) == (1, 1)
    assert filled.count({"user_id": "someone-else"}) == 1


def test_replace_empties_the_store_first(filled, tmp_path):
    path = tmp_path / "backup.json"
    export.export_store(filled, path, filled.list_records(top_k=1))
    filled.add("An extra memory", user_id="maya", infer=False)
    summary = export.restore(filled, path, mode="replace")
    assert (summary.added, summary.removed) == (1, 3)
    assert filled.count() == 1


def test_deleted_memory_restored_from_an_export_gets_a_restore_event(filled, tmp_path):
    path = tmp_path / "backup.json"
    export.export_store(filled, path)
    mid = filled.list_records(top_k=1)[0].id
    filled.delete(mid)
    assert export.restore(filled, path).added == 1
    assert [e.event for e in filled.history_records(mid)][-2:] == ["DELETE", "RESTORE"]


def test_progress_is_reported_and_cancel_stops_between_batches(memory, tmp_path, embedder, monkeypatch):
    memory.add([{"role": "user", "content": f"fact number {i}"} for i in range(10)], user_id="u", infer=False)
    path = tmp_path / "backup.json"
    export.export_store(memory, path)
    monkeypatch.setattr(export, "BATCH", 3)
    seen: list[tuple[int, int]] = []
    token = CancelToken()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 6:
            token.cancel()

    with Memory(tmp_path / "other", embedder=embedder) as other:
        summary = export.restore(other, path, progress=progress, cancel=token)
        assert summary.cancelled and summary.added == 6 and other.count() == 6
        assert seen == [(0, 10), (3, 10), (6, 10)]


def test_version_1_export_and_mem0_result_are_read(tmp_path, memory):
    v1 = {"format": "loci-export", "version": 1, "memories": [
        {"id": "a1", "memory": "I like tea", "user_id": "u", "created_at": "2024-01-02T03:04:05Z"}]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(v1))
    assert export.restore(memory, path).added == 1
    rec = memory.get_record("a1")
    assert rec.created_at.isoformat() == "2024-01-02T03:04:05+00:00"
    assert [e.event for e in memory.history_records("a1")] == ["ADD"]
    path.write_text(json.dumps({"results": [{"id": "b2", "memory": "I like coffee", "user_id": "u"}]}))
    assert export.restore(memory, path).added == 1


@pytest.mark.parametrize("content, message", [
    ('{"something": 1}', "no 'memories' list"),
    ("not json", "not readable JSON"),
    ('{"memories": [{"id": "x", "memory": "m"}]}', "belongs to no user, agent or session"),
    ('{"memories": [{"memory": "m"}]}', "has no 'id' and 'memory'"),
    ('{"version": 9, "memories": []}', "newer Loci"),
])
def test_bad_files_are_refused_with_a_message(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        export.read_export(path)


def test_export_to_a_missing_folder_is_a_store_error(memory, tmp_path):
    from engine import StoreError

    with pytest.raises(StoreError, match="Check the folder exists"):
        export.export_store(memory, tmp_path / "no" / "such" / "file.json")
    assert not list(tmp_path.glob("**/*.part"))
