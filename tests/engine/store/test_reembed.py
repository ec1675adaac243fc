"""Moving an fp32 store to int8 in the background: search throughout, writes kept, resumable, kill-safe."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import engine.store.reembed as reembed
from engine import Memory
from engine.config import EmbedderConfig
from engine.inference.embeddings import DEFAULT_EMBEDDER
from engine.inference.onnx_embedder import default_embedder
from engine.store.reembed import ReembedStatus

ROOT = Path(__file__).resolve().parents[3]
NAMES = ["Ingrid", "Tomas", "Aiko", "Priya", "Mateo", "Olga", "Kwame", "Lena", "Farid", "Noor"]
PLACES = ["Bergen", "Lisbon", "Osaka", "Nairobi", "Quito", "Tallinn", "Hanoi", "Porto", "Cusco", "Oslo"]
THINGS = ["a red kayak", "a sourdough starter", "an old violin", "a telescope", "a bonsai tree"]
TEXTS = [f"{n} moved to {p} and bought {t}" for n in NAMES for p in PLACES for t in THINGS][:230]
INT8 = f"{DEFAULT_EMBEDDER}@int8"


@pytest.fixture(autouse=True)
def no_delay(monkeypatch):
    monkeypatch.setattr(reembed, "START_DELAY_S", 0.0)


@pytest.fixture(scope="module")
def int8():
    embedder = default_embedder(EmbedderConfig(precision="int8"))
    embedder.load()
    return embedder


def fp32_store(path: Path, embedder, texts=TEXTS) -> Path:
    """A store built before int8 was the default: fp32 vectors in the 'memories' collection."""
    with Memory(path, embedder=embedder) as mem:
        mem.add([{"role": "user", "content": t} for t in texts], user_id="maya", infer=False)
    assert json.loads((path / "manifest.json").read_text())["embedder"] == DEFAULT_EMBEDDER
    return path


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def top(mem: Memory, query: str, k: int = 1) -> list[str]:
    return [r.record.memory for r in mem.search_records(query, top_k=k, filters={"user_id": "maya"})]


def semantic(mem: Memory, text: str) -> float:
    """The semantic signal of a memory searched by its own text (1.0 when query and vector match)."""
    hit = mem.search_records(text, top_k=1, filters={"user_id": "maya"})[0]
    assert hit.record.memory == text
    return float(hit.signals["semantic"])


class Pause:
    """A progress watcher that holds the re-embed thread once it has done `at` memories."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.reached = threading.Event()
        self.go = threading.Event()
        self.seen: list[ReembedStatus] = []

    def __call__(self, status: ReembedStatus) -> None:
        self.seen.append(status)
        if status.state == "running" and status.done >= self.at and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(60)


def test_an_fp32_store_moves_to_int8_while_search_and_writes_go_on(tmp_path, embedder, int8):
    path = fp32_store(tmp_path / "s", embedder)
    pause = Pause(at=64)
    reembed_watch = pause
    with Memory(path) as mem:
        mem.migration_status(watch=reembed_watch)
        assert pause.reached.wait(120), mem.migration_status()
        # mid-way: the old vectors answer, the manifest still says fp32, writes go through
        status = mem.migration_status()
        assert status.state == "running" and 64 <= status.done < status.total == len(TEXTS)
        assert "in the background" in status.describe()
        assert mem.embedder.name == DEFAULT_EMBEDDER and manifest(path)["embedder"] == DEFAULT_EMBEDDER
        assert top(mem, TEXTS[5]) == [TEXTS[5]] and top(mem, TEXTS[200]) == [TEXTS[200]]
        before = {q: top(mem, q, 5) for q in ("Who moved to Osaka?", "Who bought a telescope in Quito?")}
        added = mem.add("Zeynep learned to sail on the lake in Geneva", user_id="maya", infer=False)
        new_id = added["results"][0]["id"]
        early = mem.search_records(TEXTS[3], top_k=1, filters={"user_id": "maya"})[0].record
        late = mem.search_records(TEXTS[220], top_k=1, filters={"user_id": "maya"})[0].record
        mem.update(early.id, "Ingrid sold her red kayak to a fisherman in Tromso")  # already re-embedded
        mem.update(late.id, "Noor planted cherry trees behind the school in Kyoto")  # not yet
        gone = mem.search_records(TEXTS[10], top_k=1, filters={"user_id": "maya"})[0].record
        mem.delete(gone.id)
        pause.go.set()
        done = mem.migration_status(wait=120)
        assert done.state == "done" and done.done == done.total == len(TEXTS), done
        assert "re-embedded" in done.describe()
        # after the switch: int8 queries on int8 vectors, every write of the move included
        assert mem.embedder.name == INT8
        assert manifest(path)["embedder"] == INT8 and manifest(path)["collection"] == "memories-int8"
        for text in ("Zeynep learned to sail on the lake in Geneva",
                     "Ingrid sold her red kayak to a fisherman in Tromso",
                     "Noor planted cherry trees behind the school in Kyoto", TEXTS[0], TEXTS[150]):
            assert semantic(mem, text) > 0.9999, text  # the stored vector is the int8 one of this text
        assert mem.get(new_id) is not None and mem.count() == len(TEXTS)
        assert TEXTS[10] not in top(mem, TEXTS[10], 3)
        for query, hits in before.items():  # the same memories answer, at most reordered a little
            assert hits[0] in top(mem, query, 5) and len(set(hits) & set(top(mem, query, 5))) >= 3
        # every memory has its vector, none is left over, and a sample matches its text re-embedded
        # (Chroma's approximate self-search among these near-identical sentences is not judged here)
        report = mem.check_integrity()
        assert (report.rebuilt, report.removed) == (0, 0), report
        assert not [p for p in report.problems if "did not match" in p], report
    with Memory(path) as mem:  # reopens at int8 with nothing left to move
        assert mem.embedder.name == INT8 and mem.migration_status(wait=0.2).state == "none"
        assert top(mem, "Who learned to sail in Geneva?") == ["Zeynep learned to sail on the lake in Geneva"]
        assert mem._vectors.collection_names() == ["memories-int8"]  # the fp32 collection is gone


def test_close_mid_move_stops_soon_and_the_next_open_resumes(tmp_path, embedder, int8):
    path = fp32_store(tmp_path / "s", embedder)
    pause = Pause(at=64)
    mem = Memory(path)
    mem.migration_status(watch=pause)
    assert pause.reached.wait(120)
    pause.go.set()
    mem.close()  # stops after the batch under way
    stopped = pause.seen[-1]
    assert stopped.state == "stopped" and stopped.done < stopped.total, stopped
    assert manifest(path)["embedder"] == DEFAULT_EMBEDDER and "collection" not in manifest(path)
    seen: list[ReembedStatus] = []
    with Memory(path) as mem:
        assert top(mem, TEXTS[7]) == [TEXTS[7]]  # the fp32 vectors answer until the switch
        mem.migration_status(watch=seen.append)
        done = mem.migration_status(wait=120)
        assert done.state == "done" and mem.embedder.name == INT8
        first = next(s for s in seen if s.state == "running" and s.total)
        assert first.done >= stopped.done  # resumed: what was built before the close was kept
        assert semantic(mem, TEXTS[7]) > 0.9999 and mem.count() == len(TEXTS)


CHILD = """
import os, signal, sys
import engine.store.reembed as reembed
from engine import Memory
reembed.START_DELAY_S = 0.0
mode = sys.argv[2]
if mode == "switch":  # killed right after the switch was recorded, before the old collection is dropped
    from engine.store.vectors import VectorStore
    VectorStore.drop = lambda self, name: os.kill(os.getpid(), signal.SIGKILL)
mem = Memory(sys.argv[1])
def watch(status):
    if mode == "build" and status.state == "running" and status.done >= 64:
        print("midway", status.done, flush=True)
        signal.pause()
mem.migration_status(watch=watch, wait=None)
"""


@pytest.mark.parametrize("mode", ["build", "switch"])
def test_a_process_killed_mid_move_leaves_a_store_that_opens_and_searches(tmp_path, embedder, int8, mode):
    path = fp32_store(tmp_path / "s", embedder)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], env=env, cwd=str(ROOT),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if mode == "build":
            line = child.stdout.readline() if child.stdout else ""
            assert line.startswith("midway"), child.stderr.read() if child.stderr else ""
            child.send_signal(signal.SIGKILL)
        child.wait(180)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL
    expected = DEFAULT_EMBEDDER if mode == "build" else INT8  # the switch is durable once recorded
    assert manifest(path)["embedder"] == expected
    with Memory(path) as mem:
        assert mem.embedder.name == expected
        assert top(mem, TEXTS[42]) == [TEXTS[42]] and mem.count() == len(TEXTS)
        done = mem.migration_status(wait=120)
        assert done.state == ("done" if mode == "build" else "none"), done
        assert mem.embedder.name == INT8 and semantic(mem, TEXTS[42]) > 0.9999
        assert top(mem, "Who moved to Hanoi and bought a telescope?", 5)
    with Memory(path) as mem:
        assert mem._vectors.collection_names() == ["memories-int8"]  # leftovers dropped
        report = mem.check_integrity()
        assert (report.rebuilt, report.removed) == (0, 0), report
        assert not [p for p in report.problems if "did not match" in p], report


def test_an_fp32_setting_keeps_an_fp32_store_as_it_is(tmp_path, embedder):
    path = fp32_store(tmp_path / "s", embedder, TEXTS[:40])
    before = (path / "manifest.json").read_text()
    with Memory(path, {"embedder": {"precision": "fp32"}}) as mem:
        status = mem.migration_status(wait=1.0)
        assert status.state == "none" and "match" in status.describe()
        assert mem.embedder.name == DEFAULT_EMBEDDER and top(mem, TEXTS[3]) == [TEXTS[3]]
        assert mem._vectors.collection_names() == ["memories"]
    assert (path / "manifest.json").read_text() == before


def test_an_add_embedded_before_the_switch_and_committed_after_it_stores_int8(tmp_path, embedder, monkeypatch):
    # adds embed outside the write lock: vectors made on fp32 that reach the store after the
    # switch would sit among int8 ones; the write path embeds them again
    from engine.store.writer import Writer

    path = fp32_store(tmp_path / "s", embedder, TEXTS[:100])
    pause = Pause(at=32)
    commit = Writer.commit
    with Memory(path) as mem:
        def late_commit(self, *args, **kwargs):
            pause.go.set()  # the move goes on and switches between this add's embed and its commit
            assert mem.migration_status(wait=120).state == "done"
            return commit(self, *args, **kwargs)

        mem.migration_status(watch=pause)
        assert pause.reached.wait(120)
        monkeypatch.setattr(Writer, "commit", late_commit)
        mem.add("Zeynep learned to sail on the lake in Geneva", user_id="maya", infer=False)
        monkeypatch.setattr(Writer, "commit", commit)
        assert mem.embedder.name == INT8
        assert semantic(mem, "Zeynep learned to sail on the lake in Geneva") > 0.9999
