"""engine/search/entity_linker.py through the facade: memories are linked after the write, also after a kill."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import engine.search.entity_linker
from engine import Memory
from engine.search.entity_linker import EntityLinker

ROOT = Path(__file__).resolve().parents[3]
INGRID = "My sister Ingrid moved to Bergen last week"


@pytest.fixture
def held(monkeypatch):
    """Keep the background thread from starting, so a test decides when linking happens."""
    monkeypatch.setattr(EntityLinker, "_start", lambda self: None)


def _hit(mem, query, mid):
    hits = mem.search_records(query, top_k=5, filters={"user_id": "maya"})
    return next(h for h in hits if h.record.id == mid)


def test_a_new_memory_is_linked_by_the_worker_and_then_found_by_entity(memory):
    mid = memory.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
    assert memory.wait_for_entities(timeout=60)
    assert memory._ledger.entities_pending() == []
    assert {("ingrid", "Ingrid"), ("bergen", "Bergen")} <= {(k, t) for m, k, t, _ in memory._ledger.entity_links()
                                                            if m == mid}
    assert {"Ingrid", "Bergen"} <= set(memory.get(mid)["entities"])
    assert [r.id for r in memory.entity_memories("Ingrid", filters={"user_id": "maya"})] == [mid]
    assert _hit(memory, "What does Ingrid do?", mid).signals["entity"] == pytest.approx(1.0)


def test_a_queued_memory_is_found_by_meaning_at_once_and_by_entity_only_once_linked(tmp_path, embedder, held):
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mid = mem.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
        mem.add("I adopted a grey cat called Pixel", user_id="maya", infer=False)
        assert mem._ledger.entities_pending() != []
        before = _hit(mem, "What does Ingrid do?", mid)
        assert before.signals.get("semantic", 0) > 0 and not before.signals.get("entity")
        assert mem.wait_for_entities()
        assert _hit(mem, "What does Ingrid do?", mid).signals["entity"] == pytest.approx(1.0)


def test_reads_show_the_entities_of_a_memory_still_queued(tmp_path, embedder, held):
    """get(), get_all() and the entity views link what they show: results are as if linked at add."""
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        first = mem.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
        assert {"Ingrid", "Bergen"} <= set(mem.get(first)["entities"])
        second = mem.add("Tomas ran the Oslo marathon", user_id="maya", infer=False)["results"][0]["id"]
        listed = {r["id"]: r["entities"] for r in mem.get_all(user_id="maya")["results"]}
        assert "Tomas" in listed[second]
        third = mem.add("Ingrid teaches piano in Bergen", user_id="maya", infer=False)["results"][0]["id"]
        counts = {e.name: e.memory_count for e in mem.entities(filters={"user_id": "maya"})}
        assert counts["Ingrid"] == 2 and counts["Bergen"] == 2
        assert {r.id for r in mem.entity_memories("Bergen")} == {first, third}
        assert mem.count(filters={"user_id": "maya", "entities": {"contains": "Tomas"}}) == 1


def test_close_links_what_its_budget_allows(tmp_path, embedder, held):
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mid = mem.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
        ledger = mem._ledger
        assert ledger.entities_pending() == [mid]
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        assert mem._ledger.entities_pending() == []
        assert {"Ingrid", "Bergen"} <= set(mem._ledger.get(mid).entities)


def test_memories_left_queued_at_close_are_linked_after_the_next_open(tmp_path, embedder, held, monkeypatch):
    monkeypatch.setattr(engine.search.entity_linker, "CLOSE_BUDGET_S", 0.0)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mid = mem.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
    monkeypatch.undo()  # the next session runs its thread
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        assert mem.wait_for_entities(timeout=60)
        assert {"Ingrid", "Bergen"} <= set(mem._ledger.get(mid).entities)
        assert [r.id for r in mem.entity_memories("Ingrid")] == [mid]


def test_an_update_or_delete_while_queued_wins_over_the_linker(tmp_path, embedder, held):
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        changed = mem.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
        gone = mem.add("Tomas ran the Oslo marathon", user_id="maya", infer=False)["results"][0]["id"]
        mem.update(changed, "Astrid lives in Tromso now")
        mem.delete(gone)
        assert mem._ledger.entities_pending() == []
        assert mem.wait_for_entities()
        assert "Astrid" in mem.get(changed)["entities"] and "Ingrid" not in mem.get(changed)["entities"]
        assert mem.entity_memories("Ingrid") == [] and mem.entity_memories("Tomas") == []


class HashEmbedder:
    """A deterministic embedder for the child process (these tests are about entities, not vectors)."""

    name, dimension = "test-hash", 16

    def embed_batch(self, texts):
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(16)
            out[i] = vec / np.linalg.norm(vec)
        return out


CHILD = textwrap.dedent("""
    import json, os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from test_entity_linker import HashEmbedder
    from engine import Memory
    from engine.search.entity_linker import EntityLinker

    EntityLinker._start = lambda self: None  # killed before its entities are linked
    mem = Memory(sys.argv[2], embedder=HashEmbedder(), preload=False)
    ids = [r["id"] for r in mem.add([{"role": "user", "content": t} for t in sys.argv[3:]],
                                    user_id="maya", infer=False)["results"]]
    print(json.dumps(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_memories_of_a_killed_process_are_linked_on_the_next_open(tmp_path, monkeypatch):
    store = tmp_path / "s"
    texts = [INGRID, "Tomas ran the Oslo marathon"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(store), *texts],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    monkeypatch.setattr(EntityLinker, "_start", lambda self: None)
    monkeypatch.setattr(engine.search.entity_linker, "CLOSE_BUDGET_S", 0.0)
    with Memory(store, embedder=HashEmbedder(), preload=False) as mem:
        assert mem._ledger.entities_pending() == ids  # committed, not linked: the kill came first
    monkeypatch.undo()
    with Memory(store, embedder=HashEmbedder(), preload=False) as mem:
        assert mem.wait_for_entities(timeout=60)
        assert mem._ledger.entities_pending() == []
        assert [r.id for r in mem.entity_memories("Ingrid")] == [ids[0]]
        assert [r.id for r in mem.entity_memories("Oslo")] == [ids[1]]
        assert {"Ingrid", "Bergen"} <= set(mem.get(ids[0])["entities"])


def test_add_does_not_need_the_entity_model(tmp_path, embedder, monkeypatch):
    """The first write after open waits for the embedder only: spaCy is not on the write path."""
    import engine.inference.nlp
    from engine import ModelError

    def missing(model=engine.inference.nlp.SPACY_MODEL):
        raise ModelError("spaCy is not here")

    monkeypatch.setattr(engine.inference.nlp, "spacy_pipeline", missing)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mid = mem.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
        assert mem._ledger.get(mid).memory == INGRID
        with pytest.raises(ModelError):
            mem.wait_for_entities()
        monkeypatch.undo()
        assert mem.wait_for_entities()
        assert {"Ingrid", "Bergen"} <= set(mem.get(mid)["entities"])


def test_the_thread_links_once_writes_pause_without_being_asked(memory):
    import time

    mid = memory.add(INGRID, user_id="maya", infer=False)["results"][0]["id"]
    deadline = time.monotonic() + 60
    while memory._ledger.entities_pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert memory._ledger.entities_pending() == []
    assert {"Ingrid", "Bergen"} <= set(memory._ledger.get(mid).entities)
    assert memory._retriever.entity_memory_ids("Ingrid", {"user_id": "maya"}) == {mid}


def test_a_drain_links_what_the_thread_has_not_claimed_first(tmp_path, embedder, held, monkeypatch):
    """The thread and wait_for_entities() link different memories side by side, not the oldest twice."""
    texts = ["Ingrid moved to Bergen", "Tomas ran in Oslo", "Lena paints in Kyoto", "Omar sails near Split"]
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        ids = [mem.add(t, user_id="maya", infer=False)["results"][0]["id"] for t in texts]
        linker = mem._linker
        linker._batch_size = 2
        parsed: list[list[str]] = []
        real = linker._extractor.extract_many

        def spy(batch, **kw):
            parsed.append(list(batch))
            return real(batch, **kw)

        monkeypatch.setattr(linker._extractor, "extract_many", spy)
        assert linker._claim(2) == ids[:2]  # the thread took the oldest batch
        assert mem.wait_for_entities()
        assert parsed == [texts[2:], texts[:2]]  # the rest first; the thread's batch only when nothing else is left
        assert mem._ledger.entities_pending() == []
        assert "Bergen" in mem.get(ids[0])["entities"]
