"""The Memory facade end to end on a real Chroma + SQLite store and the real embedder."""
from __future__ import annotations

import threading
from pathlib import Path
from datetime import datetime, timezone

import pytest

from engine import InvalidInputError, Memory, NotFoundError, StoreError


def _add(mem, text, **kw):
    kw.setdefault("user_id", "alice")
    return mem.add(text, infer=False, **kw)["results"][0]["id"]


def test_add_returns_mem0_shape_and_stores_each_non_system_message(memory):
    out = memory.add([
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "I live in Lisbon", "name": "Alice"},
        {"role": "assistant", "content": "Lisbon is lovely."},
    ], user_id="alice", infer=False)
    assert [r["event"] for r in out["results"]] == ["ADD", "ADD"]
    assert [r["memory"] for r in out["results"]] == ["I live in Lisbon", "Lisbon is lovely."]
    first = memory.get(out["results"][0]["id"])
    assert first["user_id"] == "alice" and first["role"] == "user" and first["actor_id"] == "Alice"
    for key in ("id", "memory", "hash", "metadata", "created_at", "updated_at", "timestamp"):
        assert key in first


def test_provenance_keeps_the_source_message(memory):
    mid = _add(memory, {"role": "user", "content": "My cat is called Miso", "name": "Alice"})
    sources = memory.source_messages(mid)
    assert [(m.role, m.name, m.content) for m in sources] == [("user", "Alice", "My cat is called Miso")]


def test_timestamp_is_stored_in_every_accepted_form(memory):
    when = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    for value in (when, "2023-05-08T13:56:00Z", when.timestamp()):
        mid = _add(memory, "Went to the support group", timestamp=value)
        assert memory.get(mid)["timestamp"] == when.isoformat()


def test_search_finds_the_semantically_closest_memory(memory):
    _add(memory, "My sister Lena lives in Oslo")
    _add(memory, "I play chess every Tuesday")
    _add(memory, "My favourite food is ramen")
    res = memory.search("Where does my sister live?", top_k=3, filters={"user_id": "alice"})["results"]
    assert res[0]["memory"] == "My sister Lena lives in Oslo"
    assert res[0]["score"] > res[1]["score"]
    for key in ("id", "memory", "score", "metadata", "user_id", "agent_id", "run_id", "created_at", "updated_at"):
        assert key in res[0]


def test_search_threshold_and_explain(memory):
    _add(memory, "My sister Lena lives in Oslo")
    _add(memory, "The quarterly tax form is due soon")
    res = memory.search("sister Oslo", filters={"user_id": "alice"}, threshold=0.3, explain=True)["results"]
    assert [r["memory"] for r in res] == ["My sister Lena lives in Oslo"]
    assert "semantic" in res[0]["explain"]


@pytest.mark.parametrize("scope_a, scope_b", [
    ({"user_id": "a"}, {"user_id": "b"}),
    ({"user_id": "a", "agent_id": "x"}, {"user_id": "a", "agent_id": "y"}),
    ({"user_id": "a", "run_id": "r1"}, {"user_id": "a", "run_id": "r2"}),
    ({"agent_id": "x"}, {"agent_id": "y"}),
])
def test_scopes_never_leak(memory, scope_a, scope_b):
    memory.add("I am allergic to peanuts", infer=False, **scope_a)
    memory.add("I am allergic to peanuts too", infer=False, **scope_b)
    res = memory.search("peanut allergy", filters=scope_a)["results"]
    assert len(res) == 1 and res[0]["memory"] == "I am allergic to peanuts"
    listed = memory.get_all(filters=scope_a)["results"]
    assert [r["memory"] for r in listed] == ["I am allergic to peanuts"]


def test_search_kwargs_scope_like_mem0(memory):
    memory.add("I like tea", user_id="u1", infer=False)
    memory.add("I like coffee", user_id="u2", infer=False)
    assert [r["memory"] for r in memory.search("drink", user_id="u2")["results"]] == ["I like coffee"]


def test_every_filter_operator(memory):
    ids = {}
    for text, meta in ([
        ("Booked a flight to Rome", {"category": "travel", "priority": 1, "tags": ["trip", "italy"]}),
        ("Dentist appointment on Friday", {"category": "health", "priority": 3}),
        ("Buy oat milk", {"category": "shopping", "priority": 2}),
    ]):
        ids[text] = _add(memory, text, metadata=meta)

    def found(filters):
        return {r["memory"] for r in memory.get_all(filters={"user_id": "alice", **filters})["results"]}

    assert found({"category": "travel"}) == {"Booked a flight to Rome"}
    assert found({"category": {"eq": "health"}}) == {"Dentist appointment on Friday"}
    assert found({"category": {"ne": "health"}}) == {"Booked a flight to Rome", "Buy oat milk"}
    assert found({"priority": {"gt": 1}}) == {"Dentist appointment on Friday", "Buy oat milk"}
    assert found({"priority": {"gte": 2, "lt": 3}}) == {"Buy oat milk"}
    assert found({"priority": {"lte": 1}}) == {"Booked a flight to Rome"}
    assert found({"category": {"in": ["travel", "shopping"]}}) == {"Booked a flight to Rome", "Buy oat milk"}
    assert found({"category": {"nin": ["travel", "shopping"]}}) == {"Dentist appointment on Friday"}
    assert found({"tags": {"contains": "ital"}}) == {"Booked a flight to Rome"}
    assert found({"memory": {"icontains": "OAT"}}) == {"Buy oat milk"}
    assert found({"tags": "*"}) == {"Booked a flight to Rome"}
    assert found({"OR": [{"category": "travel"}, {"priority": 3}]}) == {
        "Booked a flight to Rome", "Dentist appointment on Friday"}
    assert found({"AND": [{"priority": {"gte": 2}}, {"category": "health"}]}) == {"Dentist appointment on Friday"}
    assert found({"NOT": [{"category": "travel"}]}) == {"Dentist appointment on Friday", "Buy oat milk"}
    hits = memory.search("trip", filters={"user_id": "alice", "category": {"in": ["health", "shopping"]}})
    assert {r["memory"] for r in hits["results"]} == {"Dentist appointment on Friday", "Buy oat milk"}


def test_time_filters(memory):
    _add(memory, "Old news", timestamp="2020-01-01T00:00:00Z")
    _add(memory, "New news", timestamp="2024-06-01T00:00:00Z")
    got = memory.get_all(filters={"user_id": "alice", "timestamp": {"gte": "2023-01-01"}})["results"]
    assert [r["memory"] for r in got] == ["New news"]


def test_unknown_operator_is_a_clear_error(memory):
    _add(memory, "x")
    with pytest.raises(InvalidInputError, match="Unknown filter operator 'like'"):
        memory.get_all(filters={"user_id": "alice", "memory": {"like": "x"}})
    with pytest.raises(InvalidInputError, match="Unknown filter operator"):
        memory.search("x", filters={"user_id": {"regex": "a.*"}})


def test_update_reembeds_and_is_in_history(memory):
    mid = _add(memory, "I live in Bergen")
    assert memory.update(mid, "I live in Oslo") == {"message": "Memory updated successfully!"}
    assert memory.get(mid)["memory"] == "I live in Oslo"
    top = memory.search("Oslo", filters={"user_id": "alice"}, explain=True)["results"][0]
    assert top["id"] == mid and top["explain"]["semantic"] > 0.5
    events = memory.history(mid)
    assert [e["event"] for e in events] == ["ADD", "UPDATE"]
    assert (events[1]["old_memory"], events[1]["new_memory"]) == ("I live in Bergen", "I live in Oslo")


def test_metadata_only_update_does_not_reembed(memory, monkeypatch):
    mid = _add(memory, "Likes jazz")
    calls = []
    real = memory.embedder.embed_batch
    monkeypatch.setattr(memory.embedder, "embed_batch", lambda texts: calls.append(texts) or real(texts))
    memory.update(mid, metadata={"source": "manual"})
    assert calls == [] and memory.get(mid)["metadata"] == {"source": "manual"}


def test_delete_removes_from_search_and_records_history(memory):
    mid = _add(memory, "My locker code is 4711")
    assert memory.delete(mid) == {"message": "Memory deleted successfully!"}
    assert memory.search("locker code", filters={"user_id": "alice"})["results"] == []
    assert memory.get(mid) is None  # mem0's contract; get_record raises
    with pytest.raises(NotFoundError):
        memory.get_record(mid)
    assert [e["event"] for e in memory.history(mid)] == ["ADD", "DELETE"]


def test_delete_all_is_scoped(memory):
    _add(memory, "a1", user_id="a")
    _add(memory, "a2", user_id="a", run_id="r")
    _add(memory, "b1", user_id="b")
    memory.delete_all(user_id="a")
    assert memory.count() == 1 and memory.get_all(filters={"user_id": "b"})["results"][0]["memory"] == "b1"
    with pytest.raises(InvalidInputError, match="at least one of user_id"):
        memory.delete_all()


def test_get_all_pages_through_everything(memory):
    memory.add([{"role": "user", "content": f"fact number {i}"} for i in range(25)], user_id="p", infer=False)
    seen = []
    offset = 0
    while page := memory.get_all(filters={"user_id": "p"}, top_k=10, offset=offset)["results"]:
        seen += [r["memory"] for r in page]
        offset += len(page)
    assert sorted(seen) == sorted(f"fact number {i}" for i in range(25))
    assert len(memory.get_all(filters={"user_id": "p", "memory": {"contains": "number 1"}},
                              top_k=100, offset=3)["results"]) == 11 - 3


def test_reset_empties_the_store(memory):
    _add(memory, "something")
    memory.reset()
    assert memory.count() == 0 and memory.search("something", filters={"user_id": "alice"})["results"] == []


def test_persistence_across_reopen(tmp_path, embedder):
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mid = _add(mem, "I have two daughters", metadata={"k": 1})
        mem.update(mid, "I have two daughters and a son")
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        assert mem.get(mid)["memory"] == "I have two daughters and a son"
        assert mem.search("children", filters={"user_id": "alice"})["results"][0]["id"] == mid
        assert len(mem.history(mid)) == 2


def test_from_config_and_context_manager(tmp_path, embedder):
    with Memory.from_config({"data_dir": str(tmp_path / "c"), "search": {"oversample": 3}},
                            embedder=embedder) as mem:
        assert mem.config.search.oversample == 3
        _add(mem, "x")
    with pytest.raises(StoreError, match="closed"):
        mem.get_all()


@pytest.mark.parametrize("messages, error", [
    ("", "nothing to remember"),
    ("   ", "nothing to remember"),
    (42, "must be a string"),
    ([{"role": "user", "content": 5}], "must be text"),
    ([{"role": "robot", "content": "hi"}], "role"),
    (["just a string in a list"], "must be a dict"),
    ("x" * 1_000_001, "limit is 100,000"),
    ("bad \ud800 surrogate", "not valid Unicode"),
])
def test_bad_inputs_raise_clear_errors_and_leave_the_store_intact(memory, messages, error):
    _add(memory, "keep me")
    with pytest.raises(InvalidInputError, match=error):
        memory.add(messages, user_id="alice", infer=False)
    assert [r["memory"] for r in memory.get_all(filters={"user_id": "alice"})["results"]] == ["keep me"]


def test_empty_message_list_stores_nothing_as_mem0_does(memory):
    assert memory.add([], user_id="alice", infer=False) == {"results": []}
    assert memory.count() == 0


def test_other_bad_inputs(memory):
    with pytest.raises(InvalidInputError, match="at least one of user_id"):
        memory.add("hello", infer=False)
    with pytest.raises(InvalidInputError, match="metadata"):
        memory.add("hello", user_id="a", infer=False, metadata={"f": object()})
    with pytest.raises(InvalidInputError, match="date/time|Could not read"):
        memory.add("hello", user_id="a", infer=False, timestamp="not a date")
    for bad in ("no-such-id", ):
        with pytest.raises(NotFoundError, match="No memory with id"):
            memory.get_record(bad)
        assert memory.get(bad) is None and memory.history(bad) == []
        with pytest.raises(NotFoundError):
            memory.update(bad, "x")
        with pytest.raises(ValueError):  # mem0 code catches ValueError
            memory.delete(bad)
        with pytest.raises(NotFoundError):
            memory.history_records(bad)
    with pytest.raises(InvalidInputError, match="query is empty"):
        memory.search("  ", filters={"user_id": "a"})
    with pytest.raises(InvalidInputError, match="top_k"):
        memory.search("x", top_k=-1)
    assert memory.search("x", top_k=0, filters={"user_id": "a"}) == {"results": []}  # as mem0
    assert memory.count() == 0


def test_a_failure_between_the_two_writes_leaves_no_memory_without_history(tmp_path, embedder, monkeypatch):
    """Crash simulated after Chroma got the vector but before SQLite committed the row."""
    from engine.store.ledger import Ledger

    mem = Memory(tmp_path / "s", embedder=embedder)
    keep = _add(mem, "survivor")

    def boom(db, records):
        raise OSError("simulated power cut")

    monkeypatch.setattr(Ledger, "insert_memories", staticmethod(boom))
    with pytest.raises(OSError):
        mem.add("I will be lost", user_id="alice", infer=False)
    monkeypatch.undo()
    # the half-written memory is invisible: no row, so no search hit and no orphan history
    assert [r["memory"] for r in mem.search("lost", filters={"user_id": "alice"})["results"]] == ["survivor"]
    assert mem._vectors.count() == 2  # the stray vector is still in Chroma ...
    mem.close()
    with Memory(tmp_path / "s", embedder=embedder) as mem2:  # ... until the store reopens
        assert mem2._vectors.count() == 1
        assert [r["id"] for r in mem2.get_all(filters={"user_id": "alice"})["results"]] == [keep]
        for rid in mem2._ledger.ids():
            assert mem2._ledger.has_history(rid)


def test_manifest_refuses_another_embedder(tmp_path, embedder):
    with Memory(tmp_path / "s", embedder=embedder):
        pass

    class Other:
        name = "some/other-model"
        dimension = 768

        def embed_batch(self, texts):
            raise AssertionError("not called")

    with pytest.raises(StoreError, match="built with the embedding model"):
        Memory(tmp_path / "s", embedder=Other())
    with Memory(tmp_path / "s", embedder=embedder):  # the failed open released the lock
        pass


def test_second_writer_gets_a_clear_error_naming_the_holder(tmp_path, embedder):
    import subprocess
    import sys
    import textwrap

    with Memory(tmp_path / "s", embedder=embedder):
        code = textwrap.dedent(f"""
            from engine.store.vectors import WriterLock
            from engine.errors import StoreError
            from pathlib import Path
            try:
                WriterLock(Path({str(tmp_path / 's')!r})).acquire()
            except StoreError as e:
                print("ERR", e)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "ERR" in out.stdout and "already open for writing" in out.stdout
        assert "process" in out.stdout and "Close that program" in out.stdout
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ERR" not in out.stdout


def test_concurrent_add_and_search_from_four_threads(memory):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(8):
                memory.add(f"thread {n} remembers item {i}", user_id=f"t{n}", infer=False)
                memory.search(f"item {i}", filters={"user_id": f"t{n}"}, top_k=3)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert memory.count() == 32
    assert all(memory.count({"user_id": f"t{n}"}) == 8 for n in range(4))
    assert memory._vectors.count() == 32


def test_scopes_lists_counts(memory):
    memory.add("a", user_id="u1", agent_id="bot", infer=False)
    memory.add("b", user_id="u1", run_id="s1", infer=False)
    got = {(s.kind, s.value, s.count) for s in memory.scopes()}
    assert got == {("user_id", "u1", 2), ("agent_id", "bot", 1), ("run_id", "s1", 1)}


def test_disk_usage_is_the_same_before_and_after_reopening(tmp_path, embedder):
    from engine import Memory

    path = tmp_path / "s"
    with Memory(path, embedder=embedder) as mem:
        for i in range(20):
            mem.add([{"role": "user", "content": f"fact {i} " + "word " * 50} for _ in range(10)],
                    user_id="u", infer=False)
        mem.wait_for_entities()  # links are written after add() returns
        before = mem.disk_usage()
    with Memory(path, embedder=embedder) as mem:
        after = mem.disk_usage()
    assert abs(after - before) <= 0.05 * before


def test_changed_llm_settings_are_used_by_the_next_extraction(tmp_path: Path, embedder) -> None:
    import shutil

    from engine.config import LLMConfig
    from engine.inference.llm import ModelKey, loaded_model
    from engine.inference.models import default_llm_path

    mem = Memory(tmp_path / "s", embedder=embedder)
    mem.config.extraction.mode = "select"  # a mode in which the model takes part
    talk = [{"role": "user", "content": "My sister Ingrid moved to Bergen in March.", "name": "Maya"}]
    mem.add(talk, user_id="maya", infer=True)
    first = mem.language_model()
    assert loaded_model().key.path == default_llm_path().resolve()
    copy = tmp_path / "picked-in-settings.gguf"
    shutil.copy(default_llm_path(), copy)
    mem.config.llm = LLMConfig(model_path=str(copy), n_threads=1, n_ctx=2048)  # what Settings does
    mem.add(talk, user_id="maya", infer=True)
    used = mem.language_model()
    assert used is not first and used.last_usage is not None  # the new adapter ran the extraction
    assert loaded_model().key == ModelKey(copy.resolve(), 2048, 1, 0)
    mem.config.llm.n_threads = 2  # changed in place: still noticed
    mem.add(talk, user_id="maya", infer=True)
    assert loaded_model().key.n_threads == 2
    mem.close()
