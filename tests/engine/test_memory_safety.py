"""Memory's write path under failures, its input checks and scope isolation (issue 13)."""
from __future__ import annotations

import sqlite3

import pytest
from chromadb.errors import InternalError

from engine import ConfigError, InvalidInputError, Memory, NotFoundError, StoreError


def _add(mem, text, user="alice", **kw):
    return mem.add(text, user_id=user, infer=False, **kw)["results"][0]["id"]


def _vector_ids(mem):
    return set(mem._vectors.ids())


# -- a failed write is never half-committed ------------------------------------------------
def test_delete_whose_vector_delete_fails_leaves_the_memory_whole(memory, monkeypatch):
    mid = _add(memory, "My sister lives in Oslo")

    def full_disk(**kwargs):
        raise InternalError("Failed to apply logs to the metadata segment")

    monkeypatch.setattr(memory._vectors._collection, "delete", full_disk)
    with pytest.raises(StoreError):
        memory.delete(mid)
    monkeypatch.undo()
    assert memory.get(mid)["memory"] == "My sister lives in Oslo"
    assert [e["event"] for e in memory.history(mid)] == ["ADD"]
    assert _vector_ids(memory) == {mid}
    assert memory._ledger.journal_pending() == []
    hits = memory.search("where does my sister live", user_id="alice")["results"]
    assert hits[0]["id"] == mid


def test_add_whose_sql_commit_fails_leaves_no_stray_vector(memory, monkeypatch):
    keep = _add(memory, "I play chess on Tuesdays")
    from engine.store.ledger import Ledger

    def full(db, records):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Ledger, "insert_memories", staticmethod(full))
    with pytest.raises(StoreError, match="disk full"):
        _add(memory, "I like green tea")
    monkeypatch.undo()
    assert memory.count() == 1 and _vector_ids(memory) == {keep}
    assert memory._ledger.journal_pending() == []


def test_update_whose_sql_commit_fails_keeps_the_old_text_and_vector(memory, monkeypatch):
    mid = _add(memory, "I live in Lisbon")
    before = memory._vectors.vectors([mid])[mid]
    from engine.store.ledger import Ledger

    def full(db, rec):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Ledger, "replace_memory", staticmethod(full))
    with pytest.raises(StoreError):
        memory.update(mid, "I live in Porto")
    monkeypatch.undo()
    assert memory.get(mid)["memory"] == "I live in Lisbon"
    assert float(memory._vectors.vectors([mid])[mid] @ before) > 0.999


# -- integrity on open -----------------------------------------------------------------------
def test_a_deleted_vector_folder_is_rebuilt_on_open_with_progress(tmp_path, embedder):
    import shutil

    with Memory(tmp_path / "s", embedder=embedder) as mem:
        ids = {_add(mem, f"fact number {i} about tea") for i in range(5)}
    shutil.rmtree(tmp_path / "s" / "chroma")
    seen = []
    with Memory(tmp_path / "s", embedder=embedder, progress=lambda d, t: seen.append((d, t))) as mem:
        assert mem.open_report.rebuilt == 5 and "rebuilt 5 vectors" in mem.open_report.repairs[0]
        assert seen[-1] == (5, 5)
        assert _vector_ids(mem) == ids
        assert mem.search("tea", user_id="alice")["results"]


def test_a_missing_database_beside_vectors_is_refused_naming_restore(tmp_path, embedder):
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        _add(mem, "I like tea")
        mem.backup()
    (tmp_path / "s" / "loci.sqlite3").unlink()
    with pytest.raises(StoreError, match="loci restore"):
        Memory(tmp_path / "s", embedder=embedder)
    assert not (tmp_path / "s" / "loci.sqlite3").exists()  # nothing created over the vectors


def test_daily_backup_runs_once_a_day(memory):
    _add(memory, "I like tea")
    first = memory.backup_if_due()
    assert first is not None and first.memories == 1 and first.reason == "daily"
    assert memory.backup_if_due() is None
    assert memory.backup_if_due(max_age_hours=0) is not None


# -- isolation ------------------------------------------------------------------------------
def test_search_and_get_all_need_a_scope_or_all_scopes(memory):
    _add(memory, "Alice likes tea", user="alice")
    _add(memory, "Bob likes coffee", user="bob")
    for call in (lambda: memory.search("likes"), lambda: memory.get_all(),
                 lambda: memory.get_all(filters={"user_id": "*"}),
                 lambda: memory.search("likes", filters={"NOT": [{"user_id": "bob"}]})):
        with pytest.raises(InvalidInputError, match="all_scopes=True"):
            call()
    assert len(memory.get_all(all_scopes=True)["results"]) == 2
    assert len(memory.search("likes", all_scopes=True)["results"]) == 2
    either = {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}
    assert len(memory.get_all(filters=either)["results"]) == 2
    assert len(memory.get_all(filters={"$or": [{"user_id": "alice"}, {"user_id": "bob"}]})["results"]) == 2


def test_a_scope_keyword_conflicting_with_filters_is_rejected(memory):
    _add(memory, "Alice likes tea", user="alice")
    with pytest.raises(InvalidInputError, match="conflicts"):
        memory.search("tea", user_id="alice", filters={"user_id": "bob"})
    with pytest.raises(InvalidInputError, match="conflicts"):
        memory.get_all(user_id="alice", filters={"user_id": {"in": ["alice", "bob"]}})
    assert memory.get_all(user_id="alice", filters={"user_id": "alice"})["results"]


# -- input validation (every case of the issue) ------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda m: m.get("id-\ud800"), "not valid Unicode"),
    (lambda m: m.delete("\x00"), "NUL"),
    (lambda m: m.get_all(filters={"user_id": "a", "tag": "\udfff"}), "not valid Unicode"),
    (lambda m: m.get_all(filters={"user_id": "a", "\ud800": 1}), "not valid Unicode"),
    (lambda m: m.add("x", user_id="a", infer=False, metadata=_deep(5000)), "nested"),
    (lambda m: m.get_all(filters=_deep(5000)), "nested"),
    (lambda m: m.search("x", user_id="a", filters=_deep(5000)), "nested"),
    (lambda m: m.search("x", user_id="a", threshold="x"), "threshold"),
    (lambda m: m.search("x", user_id="a", threshold=float("nan")), "threshold"),
    (lambda m: m.search("x", user_id="a", top_k=2**63), "top_k"),
    (lambda m: m.get_all(user_id="a", top_k=2**63), "top_k"),
    (lambda m: m.get_all(user_id="a", offset=2**63), "offset"),
    (lambda m: m.search("x", user_id="a", limit=-1), "limit"),  # limit=0: no results (mem0)
    (lambda m: m.get_all(user_id="a", limit=0), "limit"),
    (lambda m: m.add("x", user_id="a", infer="no"), "infer must be True or False"),
    (lambda m: m.get_all(filters={"user_id": {}}), "empty dict"),
    (lambda m: m.get_all(filters={"user_id": "a", "$regex": "x"}), "Unknown filter key"),
    (lambda m: m.add("x", user_id="a", infer=False, metadata={"score": float("nan")}), "finite"),
    (lambda m: m.add("x", user_id="a", infer=False, metadata={"score": float("inf")}), "finite"),
    (lambda m: m.add("\x00", user_id="a", infer=False), "NUL|nothing to remember"),
    (lambda m: m.add("\u200b \u0007", user_id="a", infer=False), "nothing to remember"),
    (lambda m: m.add("x", user_id="a", infer=False, metadata={"k": "\ud800"}), "not valid Unicode"),
    (lambda m: m.add("x", user_id="a", infer=False, metadata={"k": ["ok", {"\udc00": 1}]}), "Unicode"),
    (lambda m: m.update("x", "new text", actor="\ud800"), "not valid Unicode"),
    (lambda m: m.delete_records("abc"), "list"),
])
def test_bad_input_is_a_clear_invalid_input_error(memory, call, match):
    _add(memory, "keep me", user="a")
    with pytest.raises(InvalidInputError, match=match):
        call(memory)
    assert [r["memory"] for r in memory.get_all(user_id="a")["results"]] == ["keep me"]


def _deep(depth):
    value = {"user_id": "a"}
    for _ in range(depth):
        value = {"AND": [value]}
    return value


def test_a_data_dir_that_is_not_a_path_is_rejected(embedder):
    for bad in (123, b"bytes", "", ["x"]):
        with pytest.raises(InvalidInputError, match="data_dir"):
            Memory(bad, embedder=embedder)


def test_out_of_range_settings_are_config_errors(tmp_path, embedder):
    with pytest.raises(ConfigError, match="search.oversample"):
        Memory(tmp_path, {"search": {"oversample": -5}}, embedder=embedder)
    from engine import LociConfig, SearchConfig

    with pytest.raises(ConfigError, match="search.semantic_weight"):
        Memory(tmp_path, LociConfig(search=SearchConfig(semantic_weight=float("nan"))), embedder=embedder)


def test_a_memory_that_is_gone_stays_a_not_found_error(memory):
    with pytest.raises(NotFoundError):
        memory.get_record("no-such-id")
    assert memory.get("no-such-id") is None  # mem0's get() returns None instead
