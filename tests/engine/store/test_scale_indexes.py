"""The search indexes at scale: vector mirror, snapshots, repair after a crash, and the build race."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import Memory
from engine.search.bm25 import KeywordIndex
from engine.records import Scope
from engine.search.retrieval import SearchOptions
from engine.store.vector_index import VectorIndex, similarities

KEYWORD_ONLY = SearchOptions(semantic=False, entity=False, time=False, context=False)


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_vector_index_matches_brute_force_within_each_scope(tmp_path):
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 3000)
    ids = [f"m{i}" for i in range(3000)]
    scopes = [{"user_id": f"u{i % 30}", "run_id": "r" if i % 2 else None} for i in range(3000)]
    index = VectorIndex(16)
    index.add(ids, vectors, scopes)
    index.remove(ids[:1000:3])
    alive = [i for i in range(3000) if not (i < 1000 and i % 3 == 0)]
    query = _unit(rng, 1)[0]
    for scope in ({"user_id": "u7"}, {"user_id": "u9", "run_id": "r"}, {}):
        rows = [i for i in alive if all(scopes[i].get(k) == v for k, v in scope.items())]
        want = sorted(rows, key=lambda i: -float(vectors[i] @ query))[:10]
        got = index.search(query, scope, 10)
        assert [g[0] for g in got] == [ids[i] for i in want]
        assert got[0][1] == pytest.approx(float(vectors[want[0]] @ query), abs=1e-5)
    assert index.search(query, {"user_id": "nobody"}, 5) == []
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, 16)
    assert loaded is not None and len(loaded) == len(alive)
    for scope in ({"user_id": "u7"}, {"user_id": "u9", "run_id": "r"}):
        assert loaded.search(query, scope, 10) == index.search(query, scope, 10)
    assert VectorIndex.load(tmp_path, 32) is None  # another embedder's snapshot is not used


def test_similarities_match_the_exact_product_whatever_the_matrix_layout(tmp_path):
    """The product runs without BLAS threads: its sums agree with float64 to 1e-6, and a row's
    similarity is the same whether the matrix is mapped from a file, gathered or unaligned."""
    rng = np.random.default_rng(5)
    matrix = _unit(rng, 5000, 384)
    query = _unit(rng, 1, 384)[0]
    sims = similarities(matrix, query)
    assert sims.dtype == np.float32 and sims.shape == (5000,)
    assert np.abs(sims - matrix.astype(np.float64) @ query.astype(np.float64)).max() < 1e-6
    np.save(tmp_path / "m.npy", matrix)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")
    rows = np.flatnonzero(rng.random(5000) < 0.3)
    unaligned = np.empty(matrix.size + 1, dtype=np.float32)[1:].reshape(matrix.shape)
    unaligned[:] = matrix
    assert np.array_equal(similarities(mapped, query), sims)
    assert np.array_equal(similarities(matrix[rows], query), sims[rows])
    assert np.array_equal(similarities(unaligned, query), sims)


def test_keyword_snapshot_gives_the_same_results_as_a_rebuild(tmp_path):
    texts = {f"m{i}": f"{w} went hiking near {p} on day {i}"
             for i, (w, p) in enumerate(zip(["Anna", "Bo", "Cy"] * 40, ["Oslo", "Bergen", "Lisbon", "Kyoto"] * 30))}
    scopes = {mid: Scope(user_id="u" if i % 3 else "v") for i, mid in enumerate(texts)}
    built = KeywordIndex()
    built.add_many((mid, text, scopes[mid]) for mid, text in texts.items())
    built.remove("m4")
    built.save(tmp_path)
    del scopes["m4"], texts["m4"]
    loaded = KeywordIndex.load(tmp_path)
    assert loaded is not None and len(loaded) == len(texts) and "m4" not in loaded
    fresh = KeywordIndex()
    fresh.add_many((mid, text, scopes[mid]) for mid, text in texts.items())
    _assert_same_keyword_results(loaded, fresh)
    loaded.add_many([("new", "Anna skied in Oslo", Scope(user_id="u"))])  # writes after a load
    assert loaded.search("skied", {"user_id": "u"}, 5)[0][0] == "new"
    # a snapshot of the loaded index with writes on top (replaced, removed, added) reads back the same
    changes = [("m7", "Bo went sailing near Oslo", Scope(user_id="u")),
               ("extra", "Cy skied near Kyoto on day 3", Scope(user_id="v"))]
    for index in (loaded, fresh):
        index.add_many(changes)
        index.remove("m10")
    fresh.add_many([("new", "Anna skied in Oslo", Scope(user_id="u"))])
    loaded.save(tmp_path / "again")
    again = KeywordIndex.load(tmp_path / "again")
    assert again is not None and len(again) == len(fresh)
    _assert_same_keyword_results(again, fresh, ("skied Oslo", "sailing", "hiking Oslo", "day 3"))
    assert KeywordIndex.load(tmp_path / "missing") is None


def _assert_same_keyword_results(got_index: KeywordIndex, want_index: KeywordIndex,
                                 queries: tuple[str, ...] = ("hiking Oslo", "Anna Kyoto", "day 17")) -> None:
    for query in queries:
        for scope in ({"user_id": "u"}, {"user_id": "v"}):
            got, want = got_index.search(query, scope, 10), want_index.search(query, scope, 10)
            assert [g[0] for g in got] == [w[0] for w in want]
            assert [g[1] for g in got] == pytest.approx([w[1] for w in want])


def test_writes_made_while_the_indexes_are_built_are_not_lost(tmp_path, embedder, monkeypatch):
    """The race of issue #13: the first build reads the ledger while another thread writes."""
    mem = Memory(tmp_path / "s", embedder=embedder, preload=False)
    old = mem.add("The aardvark lives at the zoo", user_id="u", infer=False)["results"][0]["id"]
    mem.add("Tea with lemon in the morning", user_id="u", infer=False)
    reading, release = threading.Event(), threading.Event()
    real_links = mem._ledger.entity_links

    def slow_links():  # the build has read the memory rows and is now reading entity links
        reading.set()
        assert release.wait(30)
        return real_links()

    monkeypatch.setattr(mem._ledger, "entity_links", slow_links)
    builder = threading.Thread(target=mem.warm_up)
    builder.start()
    assert reading.wait(30)
    new = mem.add("A zebra crossing near the station", user_id="u", infer=False)["results"][0]["id"]
    mem.delete(old)
    release.set()
    builder.join(30)
    assert not builder.is_alive()
    ids = [h.record.id for h in mem.search_records("zebra station", filters={"user_id": "u"},
                                                    options=KEYWORD_ONLY)]
    assert ids == [new]
    assert mem.search_records("aardvark zoo", filters={"user_id": "u"}, options=KEYWORD_ONLY) == []
    mem.close()


def test_a_clean_close_saves_snapshots_that_the_next_open_uses(tmp_path, embedder):
    texts = ["I moved to Oslo in May", "My sister plays the cello", "Bergen is rainy",
             "The cat is called Miso", "I run on Tuesdays"]
    with Memory(tmp_path / "s", embedder=embedder, preload=False) as mem:
        mem.add([{"role": "user", "content": t} for t in texts], user_id="u", infer=False)
        before = [h["id"] for h in mem.search("where did I move?", user_id="u")["results"]]
    index_dir = tmp_path / "s" / "index"
    assert (index_dir / "clean").is_file() and (index_dir / "vectors.npy").is_file()
    with Memory(tmp_path / "s", embedder=embedder, preload=False) as mem:
        after = [h["id"] for h in mem.search("where did I move?", user_id="u")["results"]]
        assert after == before
        mem.add("A new memory makes the snapshot stale", user_id="u", infer=False)
        assert not (index_dir / "clean").exists()  # a crash from here on means a rebuild
        assert mem.search("stale snapshot", user_id="u")["results"][0]["memory"].startswith("A new")


def test_a_vector_lost_in_a_crash_is_restored_on_the_next_open(tmp_path, embedder):
    mem = Memory(tmp_path / "s", embedder=embedder, preload=False)
    mid = mem.add("The spare key is under the blue flowerpot", user_id="u", infer=False)["results"][0]["id"]
    mem._vectors._collection.delete(ids=[mid])  # Chroma lost the vector the ledger has
    mem._closed = True
    mem._ledger.close()
    mem._vectors.close()
    mem._lock.release()  # the process "died" without a clean close
    with Memory(tmp_path / "s", embedder=embedder, preload=False) as again:
        hits = again.search_records("where is the spare key?", filters={"user_id": "u"},
                                    options=SearchOptions(keyword=False, entity=False, time=False))
        assert [h.record.memory for h in hits] == ["The spare key is under the blue flowerpot"]
        assert hits[0].signals["semantic"] > 0.3


def test_models_load_in_the_background_with_progress(tmp_path):
    steps: list[tuple[str, int, int]] = []
    with Memory(tmp_path / "s", load_progress=lambda *a: steps.append(a)) as mem:
        assert mem.wait_until_ready(120)
        assert steps[-1] == ("ready", 2, 2) and steps[0][0] == "embedding model"
        assert mem.add("ready to write", user_id="u", infer=False)["results"][0]["event"] == "ADD"


@pytest.fixture
def chroma_server(tmp_path):
    """`chroma run` (from the chromadb package) on a free loopback port; stopped afterwards."""
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert proc.poll() is None, "chroma run exited"
                time.sleep(0.2)
        else:
            pytest.fail("the Chroma server did not start within 60 s")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_chroma_server_can_hold_the_vectors(tmp_path, embedder, chroma_server):
    config = {"store": {"chroma_host": "127.0.0.1", "chroma_port": chroma_server,
                        "collection_name": "team"}}
    with Memory(tmp_path / "local", config, embedder=embedder, preload=False) as mem:
        keep = mem.add("The build server lives in rack 4", user_id="team", infer=False)["results"][0]["id"]
        gone = mem.add("Lunch is at noon", user_id="team", infer=False)["results"][0]["id"]
        mem.delete(gone)
        hits = mem.search("where is the build server?", filters={"user_id": "team"})["results"]
        assert hits[0]["id"] == keep and hits[0]["score"] > 0
        assert mem._vectors.index is None  # other clients write there: always ask the server
    import chromadb
    from chromadb.config import Settings

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server,
                                 settings=Settings(anonymized_telemetry=False))
    assert client.get_collection("team").get()["ids"] == [keep]
    assert not (tmp_path / "local" / "chroma").exists()  # nothing went to the embedded store
    again = Memory.from_config(
        {"vector_store": {"provider": "chroma", "config": {"host": "127.0.0.1", "port": chroma_server,
                                                           "collection_name": "team"}},
         "history_db_path": str(tmp_path / "local" / "loci.sqlite3"),
         "data_dir": str(tmp_path / "local")}, embedder=embedder, preload=False)
    with again:
        assert again.search("build server", user_id="team")["results"][0]["id"] == keep


def test_a_loaded_vector_snapshot_takes_writes_and_is_rewritten_only_when_changed(tmp_path):
    rng = np.random.default_rng(5)
    vectors = _unit(rng, 300)
    ids = [f"m{i}" for i in range(300)]
    scopes = [{"user_id": f"u{i % 3}", "agent_id": "a" if i % 2 else None} for i in range(300)]
    built = VectorIndex(16)
    built.add(ids, vectors, scopes)
    built.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, 16)
    assert loaded is not None and len(loaded) == 300 and "m7" in loaded
    written = (tmp_path / "vectors.npy").stat().st_mtime_ns
    loaded.save(tmp_path)  # unchanged since the load: the files stay as they are
    assert (tmp_path / "vectors.npy").stat().st_mtime_ns == written
    extra = _unit(rng, 2)
    for index in (built, loaded):
        index.add(["m3", "new"], extra, [{"user_id": "u0"}, {"user_id": "u9", "agent_id": "a"}])
        index.remove(["m10", "m11"])
    query = _unit(rng, 1)[0]
    for scope in ({"user_id": "u0"}, {"user_id": "u1", "agent_id": "a"}, {"user_id": "u9"}, {}):
        assert loaded.search(query, scope, 20) == built.search(query, scope, 20)
    loaded.save(tmp_path)
    again = VectorIndex.load(tmp_path, 16)
    assert again is not None and len(again) == len(built) == 299
    for scope in ({"user_id": "u0"}, {"agent_id": "a"}, {"user_id": "u9", "agent_id": "a"}):
        assert again.search(query, scope, 20) == built.search(query, scope, 20)
    (tmp_path / "vector_scopes.npy").unlink()  # a snapshot of the older layout (no scope array)
    assert VectorIndex.load(tmp_path, 16) is None


TEXTS = ["I moved to Oslo in May", "My sister Ingrid plays the cello", "Bergen is rainy in autumn",
         "The cat is called Miso", "I run along the river on Tuesdays", "Ingrid visited Oslo last week",
         "My manager Tomas loves sourdough", "The cello lessons are on Fridays"]
QUERIES = ["where did I move?", "cello", "Ingrid", "what is the cat called?", "Oslo", "sourdough bread"]


def _results(mem, users=("u", "v")):
    return [[(h.record.id, round(h.score, 5)) for h in mem.search_records(q, top_k=5, filters={"user_id": u})]
            for q in QUERIES for u in users]


def test_a_store_opened_from_snapshots_searches_like_one_rebuilt_from_scratch(tmp_path, embedder):
    import shutil

    folder = tmp_path / "s"
    with Memory(folder, embedder=embedder, preload=False) as mem:
        for n, text in enumerate(TEXTS):
            mem.add(text, user_id="u" if n % 3 else "v", infer=False)
        gone = mem.add("Ingrid sold the old cello", user_id="u", infer=False)["results"][0]["id"]
        mem.delete(gone)
        mem.wait_for_entities()  # links are made in the background after add() returns
        first = _results(mem)
    index_dir = folder / "index"
    assert {"clean", "vectors.npy", "bm25.npz", "entities.json"} <= {p.name for p in index_dir.iterdir()}
    with Memory(folder, embedder=embedder, preload=False) as mem:
        assert mem._vectors.state.is_clean(mem._ledger.fingerprint())
        from_snapshots = _results(mem)
        assert mem._retriever._keyword._source == index_dir  # really loaded, not rebuilt
    shutil.rmtree(index_dir)
    with Memory(folder, embedder=embedder, preload=False) as mem:
        rebuilt = _results(mem)
    assert from_snapshots == rebuilt == first


def test_snapshots_of_a_store_changed_behind_their_back_are_not_used(tmp_path, embedder):
    """A restored backup brings back older memories under the same ids: the snapshots saved
    after the update no longer describe the store and must be ignored."""
    from engine.store.backup import restore_snapshot

    folder = tmp_path / "s"
    keyword = SearchOptions(semantic=False, entity=False, time=False, context=False)
    with Memory(folder, embedder=embedder, preload=False) as mem:
        mid = mem.add("Ingrid plays the cello", user_id="u", infer=False)["results"][0]["id"]
        mem.add("Bergen is rainy", user_id="u", infer=False)
        backup = mem.backup("manual")
        mem.update(mid, "Ingrid plays the violin")
        assert mem.search_records("violin", filters={"user_id": "u"}, options=keyword)[0].record.id == mid
    assert (folder / "index" / "clean").is_file()
    restore_snapshot(folder, backup.name)
    with Memory(folder, embedder=embedder, preload=False) as mem:
        assert mem.search_records("violin", filters={"user_id": "u"}, options=keyword) == []
        hits = mem.search_records("cello", filters={"user_id": "u"}, options=keyword)
        assert [h.record.memory for h in hits] == ["Ingrid plays the cello"]
        semantic = mem.search_records("which instrument does Ingrid play?", filters={"user_id": "u"},
                                      options=SearchOptions(keyword=False, entity=False, time=False))
        assert semantic[0].record.id == mid
        assert semantic[0].signals["semantic"] > 0.3
