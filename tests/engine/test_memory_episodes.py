"""Episodes and facts in one store: every message kept as said, facts on top, linked and collapsed."""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from engine import Memory

DATA = Path(__file__).parent / "data"
WHEN = "2023-05-08T13:56:00Z"
TURNS = [
    {"role": "user", "name": "John", "content": "Hey Maria! How are you?", "metadata": {"dia_id": "D1:1"}},
    {"role": "user", "name": "Maria", "content": "Great, thanks! I met Jean at the pottery class yesterday.",
     "metadata": {"dia_id": "D1:2"}},
    {"role": "user", "name": "John", "content": "I failed the military aptitude test and I've been "
     "feeling stuck since then.", "metadata": {"dia_id": "D1:3"}},
    {"role": "system", "content": "You are a helpful assistant."},
]


@pytest.fixture
def store(tmp_path, embedder):
    with Memory(tmp_path / "store", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        yield mem


def test_infer_false_keeps_every_message_as_an_episode(store):
    out = store.add(TURNS, user_id="u", timestamp=WHEN, infer=False)
    assert [r["memory_type"] for r in out["results"]] == ["message"] * 3  # the system message is not kept
    rec = store.get_record(out["results"][1]["id"])
    assert rec.memory == TURNS[1]["content"] and rec.actor == "Maria" and rec.metadata == {"dia_id": "D1:2"}
    assert rec.timestamp.isoformat().startswith("2023-05-08")


def test_infer_true_adds_facts_on_top_of_the_episodes_and_links_them(store):
    out = store.add(TURNS, user_id="u", timestamp=WHEN)
    facts, episodes = out["results"], out["episodes"]
    assert len(episodes) == 3 and all(e["memory_type"] == "message" for e in episodes)
    assert facts and all(f["memory_type"] != "message" for f in facts)  # mem0's shape: only facts
    met = next(f for f in facts if "Jean" in f["memory"])
    assert "7 May 2023" in met["memory"] and met["memory"].startswith("Maria")
    (episode_id,) = met["episode_ids"]
    assert store.get_record(episode_id).memory == TURNS[1]["content"]
    assert [r.id for r in store.linked_records(met["id"])] == [episode_id]
    assert met["id"] in [r.id for r in store.linked_records(episode_id)]
    assert store.get_record(met["id"]).metadata == {"dia_id": "D1:2"}


def test_memory_type_filters_on_get_all_and_search(store):
    store.add(TURNS, user_id="u", timestamp=WHEN)
    everything = store.get_all(user_id="u")["results"]
    episodes = store.get_all(user_id="u", filters={"memory_type": "message"})["results"]
    facts = store.get_all(user_id="u", filters={"memory_type": {"ne": "message"}})["results"]
    assert len(episodes) == 3 and facts and len(everything) == len(episodes) + len(facts)
    hits = store.search("Who did Maria meet?", user_id="u", filters={"memory_type": {"ne": "message"}})
    assert hits["results"] and all(h["memory_type"] != "message" for h in hits["results"])
    hits = store.search("Who did Maria meet?", user_id="u", filters={"memory_type": "message"})
    assert hits["results"] and all(h["memory_type"] == "message" for h in hits["results"])


def test_a_fact_and_its_episode_never_both_fill_the_top_k(store):
    store.add(TURNS, user_id="u", timestamp=WHEN)
    hits = store.search_records("Maria met Jean at the pottery class", filters={"user_id": "u"}, top_k=3)
    sources = [h.record.source_message_ids[0] for h in hits]
    assert len(sources) == len(set(sources)) == 3
    assert "Jean" in hits[0].record.memory


def test_an_answer_spanning_two_clauses_of_one_turn_is_one_memory(store):
    store.add(TURNS, user_id="u", timestamp=WHEN)
    top = store.search_records("Why has John been feeling stuck?", filters={
        "user_id": "u", "memory_type": {"ne": "message"}}, top_k=1)[0].record
    assert "military aptitude test" in top.memory and "stuck" in top.memory


def test_a_store_made_by_the_previous_version_opens_and_its_raw_memories_become_episodes(tmp_path, embedder):
    # store_v2.tar.gz: made by Loci at commit a374218 (schema 2): three add(infer=False) memories
    with tarfile.open(DATA / "store_v2.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    with Memory(tmp_path / "store_v2", embedder=embedder) as mem:
        old = mem.get_all(user_id="u1")["results"]
        assert len(old) == 2 and {r["memory_type"] for r in old} == {"message"}
        assert mem.count({"memory_type": "message"}) == 3
        hit = mem.search_records("support group", filters={"user_id": "u1"}, top_k=1)[0]
        assert hit.record.metadata == {"dia_id": "D1:3"}
        mem.add("I moved to Lisbon.", user_id="u1", infer=False)
        assert mem.count({"user_id": "u1", "memory_type": "message"}) == 3
    shutil.rmtree(tmp_path / "store_v2")


def test_evidence_setting_all_keeps_both_and_a_wrong_value_is_a_config_error(store):
    from engine import ConfigError

    store.add(TURNS, user_id="u", timestamp=WHEN)
    store.config.search.evidence = "all"
    hits = store.search_records("Maria met Jean at the pottery class", filters={"user_id": "u"}, top_k=2)
    assert hits[0].record.source_message_ids == hits[1].record.source_message_ids
    store.config.search.evidence = "newest"
    with pytest.raises(ConfigError, match="search.evidence"):
        store.search_records("Jean", filters={"user_id": "u"})
