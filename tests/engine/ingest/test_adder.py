"""engine/ingest/adder.py on real parts: episodes, facts linked to them, ADD-only dedupe, procedures."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import pytest

from engine import CancelToken, ExtractionError, LociConfig
from engine.ingest.adder import new_record
from engine.ingest.messages import to_messages
from engine.records import Scope

MAYA = Scope(user_id="maya")
WHEN = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
TURNS = [{"role": "user", "name": "Maria", "content": "I met Jean at the pottery class yesterday."},
         {"role": "assistant", "content": "That sounds lovely!"},
         {"role": "system", "content": "You are a helpful assistant."}]


class ReplayLLM:
    """The LLM protocol, replaying one raw output per call and keeping the prompts it got."""

    name = "replay"

    def __init__(self, *outputs: str) -> None:
        self.outputs = list(outputs)
        self.calls: list[list[dict[str, str]]] = []

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        self.calls.append(messages)
        return self.outputs[min(len(self.calls), len(self.outputs)) - 1]


def add(rooms, turns=TURNS, *, infer=True, memory_type=None, cancel=None, meta=None):
    msgs = to_messages(turns, MAYA, WHEN)
    return rooms.adder.add(msgs, MAYA, dict(meta or {}), infer=infer, memory_type=memory_type, prompt=None,
                           progress=None, cancel=cancel)


def test_without_inference_every_message_but_the_system_one_is_an_episode(rooms):
    out = add(rooms, infer=False, meta={"source": "chat"})
    assert [(r["event"], r["memory_type"], r["role"]) for r in out["results"]] == \
        [("ADD", "message", "user"), ("ADD", "message", "assistant")]
    first = rooms.ledger.get(out["results"][0]["id"])
    assert first.memory == TURNS[0]["content"] and first.actor == "Maria"
    assert first.metadata == {"source": "chat"} and first.event_date == "2023-05-07"
    assert len(rooms.ledger.messages(list(first.source_message_ids))) == 1
    assert set(rooms.vectors.ids()) == {r["id"] for r in out["results"]}


def test_facts_come_on_top_of_the_episodes_and_name_them(rooms):
    out = add(rooms)
    episodes, facts = out["episodes"], out["results"]
    assert [e["memory_type"] for e in episodes] == ["message", "message"]
    met = next(f for f in facts if "Jean" in f["memory"])
    assert met["memory"].startswith("Maria") and "7 May 2023" in met["memory"]
    assert met["episode_ids"] == [episodes[0]["id"]]
    assert rooms.ledger.count() == len(episodes) + len(facts)


def test_a_known_fact_is_not_stored_again_and_is_reported_as_none(rooms):
    first = add(rooms)
    again = add(rooms)
    known = {f["id"] for f in first["results"]}
    assert again["results"] and all(f["event"] == "NONE" and f["id"] in known for f in again["results"])
    assert rooms.ledger.count() == 2 * len(first["episodes"]) + len(first["results"])  # episodes are kept


def test_two_adds_at_once_of_the_same_fact_store_it_once(rooms):
    # each embeds outside the write lock; the duplicate check and the commit are done under it
    start = threading.Barrier(2)
    outs: list[dict] = []

    def one() -> None:
        start.wait(10)
        outs.append(add(rooms))
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outs) == 2
    events = sorted((f["event"], f["memory"]) for out in outs for f in out["results"])
    added = [memory for event, memory in events if event == "ADD"]
    assert added and len(added) == len(set(added))  # no fact stored twice
    assert sorted(e for e, _ in events) == ["ADD"] * len(added) + ["NONE"] * len(added)
    assert rooms.ledger.count() == 4 + len(added)  # two episodes per add, each fact once


def test_near_duplicates_within_one_batch_keep_the_first_and_episodes_never_count(rooms, embedder):
    said = add(rooms, [{"role": "user", "content": "Maya loves green tea."}], infer=False)["results"]
    facts = [new_record(t, MAYA, {}, WHEN, "user", None, "preference", None, ("m1",), ())
             for t in ("Maya loves green tea.", "Maya loves green tea!", "Maya lives in Oslo.")]
    keep, events = rooms.adder.dedupe(facts, embedder.embed_batch([f.memory for f in facts]), MAYA)
    assert keep == [0, 2] and [e["event"] for e in events] == ["ADD", "NONE", "ADD"]
    assert events[1]["id"] == facts[0].id and said[0]["id"] not in {e["id"] for e in events}


def test_a_cancelled_add_stores_nothing(rooms):
    token = CancelToken()
    token.cancel()
    with pytest.raises(ExtractionError, match="cancelled"):
        add(rooms, cancel=token)
    assert rooms.ledger.count() == 0 and rooms.vectors.ids() == []


def test_the_model_is_shown_the_known_facts_it_should_not_repeat(make_rooms):
    reply = json.dumps({"memories": [{"text": "Maria met Jean at the pottery class", "type": "event",
                                      "sources": [1]}]})
    llm = ReplayLLM(reply)
    wired = make_rooms(LociConfig.from_dict({"extraction": {"mode": "extract"}}), llm)
    first = add(wired)
    assert [f["memory"] for f in first["results"]] == ["Maria met Jean at the pottery class."]
    assert len(llm.calls) == 1 and "Already known" not in llm.calls[0][-1]["content"]
    add(wired, [{"role": "user", "name": "Maria", "content": "Jean and I go to the pottery class."}])
    prompt = llm.calls[-1][-1]["content"]
    assert "Already known (do not repeat):\n- Maria met Jean at the pottery class." in prompt


def test_a_procedure_is_one_summary_of_the_whole_run(make_rooms):
    llm = ReplayLLM(json.dumps({"summary": "Searched flights to Oslo, then booked the cheapest one."}))
    wired = make_rooms(llm=llm)
    out = add(wired, memory_type="procedural_memory")
    (result,) = out["results"]
    assert result["memory_type"] == "procedural_memory" and result["role"] == "assistant"
    rec = wired.ledger.get(result["id"])
    assert rec.memory.startswith("Searched flights") and len(rec.source_message_ids) == 3
    assert wired.ledger.count() == 1 and len(llm.calls) == 1
