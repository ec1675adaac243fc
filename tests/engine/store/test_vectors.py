"""The vector store, manifest and writer lock: bounded writes, clear errors, bugs left visible."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from engine.errors import StoreError
from engine.store.vectors import Manifest, VectorStore, WriterLock


def _vecs(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_vectors_round_trip(tmp_path):
    store = VectorStore(tmp_path)
    vecs = _vecs(3)
    store.upsert(["a", "b", "c"], vecs, [{"user_id": "u"}, {"user_id": "u"}, {"user_id": "v"}])
    assert store.count() == 3 and sorted(store.ids()) == ["a", "b", "c"]
    assert store.query(vecs[1], 1)[0][0] == "b"
    assert [i for i, _ in store.query(vecs[2], 3, {"user_id": {"$eq": "u"}})] != ["c"]
    store.delete(["b"])
    assert sorted(store.ids()) == ["a", "c"]
    store.probe()
    store.close()


def test_a_write_without_enough_free_space_is_refused_before_chroma_sees_it(tmp_path):
    VectorStore(tmp_path).close()
    store = VectorStore(tmp_path, min_free_bytes=1 << 60)  # more than any disk has; opening works
    with pytest.raises(StoreError, match="Not enough free disk space .* nothing was changed"):
        store.upsert(["a"], _vecs(1), [{"user_id": "u"}])
    assert store.count() == 0


def test_a_hung_chroma_write_is_abandoned_and_later_calls_fail_at_once(tmp_path, monkeypatch):
    store = VectorStore(tmp_path, write_timeout=0.3)
    release = threading.Event()

    def hang(**kwargs):
        release.wait(30)

    monkeypatch.setattr(store._collection, "upsert", hang)
    with pytest.raises(StoreError, match="stopped responding.*restart Loci"):
        store.upsert(["a"], _vecs(1), [{"user_id": "u"}])
    assert store.is_broken
    with pytest.raises(StoreError, match="stopped responding"):
        store.count()  # no queueing behind the stuck call
    release.set()


def test_chroma_errors_become_store_errors(tmp_path):
    store = VectorStore(tmp_path)
    store.upsert(["a"], _vecs(1, dim=8), [{"user_id": "u"}])
    with pytest.raises(StoreError, match="Could not save memory vectors"):
        store.upsert(["b"], _vecs(1, dim=5), [{"user_id": "u"}])  # wrong dimension: Chroma refuses


def test_bugs_are_not_dressed_up_as_store_errors(tmp_path, monkeypatch):
    store = VectorStore(tmp_path)

    def bug(**kwargs):
        raise KeyError("a mistake in Loci, not a fault of the disk")

    monkeypatch.setattr(store._collection, "upsert", bug)
    with pytest.raises(KeyError):
        store.upsert(["a"], _vecs(1), [{"user_id": "u"}])
    monkeypatch.setattr(store._collection, "count", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        store.count()


def test_a_damaged_chroma_database_is_a_store_error_naming_doctor(tmp_path):
    VectorStore(tmp_path).close()
    (tmp_path / "chroma" / "chroma.sqlite3").write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="loci doctor"):
        VectorStore(tmp_path)


def test_manifest_refuses_another_embedder_and_a_damaged_file(tmp_path):
    Manifest(tmp_path).check_or_write("model-a", 8)
    Manifest(tmp_path).check_or_write("model-a", 8)
    with pytest.raises(StoreError, match="model-b"):
        Manifest(tmp_path).check_or_write("model-b", 8)
    (tmp_path / "manifest.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(StoreError, match="unreadable"):
        Manifest(tmp_path).check_or_write("model-a", 8)
    (tmp_path / "manifest.json").write_text(json.dumps([1]), encoding="utf-8")
    with pytest.raises(StoreError, match="damaged"):
        Manifest(tmp_path).check_or_write("model-a", 8)
    assert not list(tmp_path.glob("*.tmp"))


def test_writer_lock_names_its_holder_and_is_released(tmp_path):
    first = WriterLock(tmp_path)
    first.acquire()
    with pytest.raises(StoreError, match="already open for writing by .*process"):
        WriterLock(tmp_path).acquire()
    first.release()
    second = WriterLock(tmp_path)
    second.acquire()
    second.release()


def test_a_lock_file_that_cannot_be_opened_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="Cannot open the lock file"):
        WriterLock(tmp_path / "no" / "such" / "folder").acquire()


def test_the_search_mirror_follows_only_the_writes_chroma_accepted(tmp_path):
    store = VectorStore(tmp_path)
    vecs = _vecs(3)
    store.upsert(["a", "b"], vecs[:2], [{"user_id": "u"}, {"user_id": "u"}])
    index = store.open_index(8)
    assert index is not None and len(index) == 2
    assert [i for i, _ in store.search(vecs[1], 1, {"user_id": "u"})] == ["b"]
    store.min_free_bytes = 1 << 60  # the disk is "full" from here on
    with pytest.raises(StoreError, match="Not enough free disk space"):
        store.upsert(["c"], vecs[2:], [{"user_id": "u"}])
    assert sorted(store.ids()) == ["a", "b"] and "c" not in index and "a" in index
    store.delete(["a"])  # a delete frees space: not refused on a full disk
    assert sorted(store.ids()) == ["b"]
    assert "a" not in index and [i for i, _ in store.search(vecs[0], 3, {"user_id": "u"})] == ["b"]
    assert not store.state.is_clean()  # written since the last snapshot: the next open rebuilds
    store.close()


def test_index_state_trusts_only_a_clean_marker_with_the_same_fingerprint(tmp_path):
    from engine.store.vectors import IndexState

    state = IndexState(tmp_path / "index")
    assert not state.is_clean()
    state.mark_clean("3:3:5:2")
    again = IndexState(tmp_path / "index")
    assert again.is_clean() and again.is_clean("3:3:5:2") and not again.is_clean("4:4:6:2")
    again.mark_dirty()
    assert not again.is_clean("3:3:5:2") and not IndexState(tmp_path / "index").is_clean()
    (tmp_path / "index" / "clean").write_text("snapshots match the store\n", encoding="utf-8")
    assert not IndexState(tmp_path / "index").is_clean("3:3:5:2")  # an older marker has no fingerprint


def test_the_vector_count_follows_every_write(tmp_path):
    store = VectorStore(tmp_path)
    vecs = _vecs(4)
    assert store.count() == 0
    store.upsert(["a", "b"], vecs[:2], [{"user_id": "u"}] * 2)
    assert store.count() == 2 and store.count() == 2
    store.upsert(["b", "c"], vecs[2:], [{"user_id": "u"}] * 2)  # one replaced, one new
    assert store.count() == 3
    store.delete(["a", "zz"])
    assert store.count() == 2
    store.close()


def test_a_big_write_reaches_chroma_in_short_calls_and_keeps_every_vector(tmp_path, monkeypatch):
    from engine.store.vectors import UPSERT_SLICE

    store = VectorStore(tmp_path)
    calls: list[int] = []
    real = store._collection.upsert

    def counted(**kwargs):
        calls.append(len(kwargs["ids"]))
        return real(**kwargs)

    monkeypatch.setattr(store._collection, "upsert", counted)
    n = 3 * UPSERT_SLICE + 5
    vecs = _vecs(n)
    ids = [f"m{i}" for i in range(n)]
    store.upsert(ids, vecs, [{"user_id": "u"}] * n)
    # Chroma holds the GIL for a whole call: no call carries more than a slice
    assert calls == [UPSERT_SLICE] * 3 + [5]
    assert store.count() == n and sorted(store.ids()) == sorted(ids)
    assert store.query(vecs[n - 1], 1)[0][0] == f"m{n - 1}"
    store.close()


def test_a_side_collection_is_filled_apart_then_adopted_and_the_old_one_dropped(tmp_path):
    from engine.store.vector_index import VectorIndex

    store = VectorStore(tmp_path)
    try:
        store.upsert(["a", "b"], _vecs(2), [{"user_id": "u"}, {"user_id": "u"}])
        with pytest.raises(StoreError, match="in use"):
            store.side("memories")
        side = store.side("memories-int8")
        fresh = _vecs(3, seed=1)
        side.upsert(["a", "b", "c"], fresh, [{"user_id": "u", "text_hash": h} for h in "xyz"])
        side.delete(["c"])
        assert store.count() == 2 and sorted(store.collection_names()) == ["memories", "memories-int8"]
        pages = list(side.pages())
        assert [sorted(p[0]) for p in pages] == [["a", "b"]] and pages[0][2][0]["text_hash"] in "xy"
        index = VectorIndex(8)
        index.add(["a", "b"], fresh[:2], [{"user_id": "u"}, {"user_id": "u"}])
        assert store.adopt(side, index) == "memories"
        assert store.collection_name == "memories-int8" and store.index is index
        assert np.allclose(store.vectors(["a"])["a"], fresh[0], atol=1e-6)
        assert store.search(fresh[1], 1, {"user_id": "u"})[0][0] == "b"
        with pytest.raises(StoreError, match="in use"):
            store.drop("memories-int8")
        store.drop("memories")
        assert store.collection_names() == ["memories-int8"]
    finally:
        store.close()


def test_the_manifest_records_a_switch_atomically(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.check_or_write("model", 8)
    assert manifest.recorded_collection() is None
    manifest.switch("model@int8", 8, "memories-int8")
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["embedder"] == "model@int8" and data["collection"] == "memories-int8" and "created_at" in data
    assert manifest.recorded_collection() == "memories-int8" and not (tmp_path / "manifest.tmp").exists()
    manifest.check_or_write("model@int8", 8)  # the switched store opens with its new embedder
