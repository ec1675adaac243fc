"""engine/retrieval.py on a real store: each signal finds what it should, scores explain themselves."""
from __future__ import annotations

import pytest

from engine.retrieval import EntityIndex, SearchOptions
from engine.records import Scope

TURNS = ["Maya: My sister Ingrid moved to Bergen last week",
         "Maya: She teaches piano at a music school there",
         "Maya: I adopted a grey cat called Pixel",
         "Maya: Work at Nordlys Energy is busy this month",
         "Maya: I bought a road bike to cycle to work"]


@pytest.fixture
def store(memory):
    memory.add([{"role": "user", "content": t, "name": "Maya"} for t in TURNS], user_id="maya",
               timestamp="2024-05-10T09:00:00Z", infer=False)
    memory.add("Tomas: I ran the Oslo marathon", user_id="tomas", timestamp="2023-09-17T10:00:00Z",
               infer=False)
    memory.wait_for_entities()  # entities are linked after add returns
    return memory


def top(mem, query, **kw):
    return mem.search_records(query, top_k=5, filters={"user_id": "maya"}, **kw)


def test_keyword_only_finds_an_exact_name(store):
    hits = top(store, "Pixel", options=SearchOptions(semantic=False, entity=False, time=False, context=False))
    assert [h.record.memory for h in hits] == [TURNS[2]]
    assert set(hits[0].signals) == {"keyword"}


def test_semantic_only_finds_a_paraphrase(store):
    hits = top(store, "which pet does she have?", options=SearchOptions(keyword=False, entity=False,
                                                                        time=False, context=False))
    assert hits[0].record.memory == TURNS[2]


def test_entity_signal_links_the_query_name_to_memories(store):
    hits = top(store, "What does Ingrid do?")
    ingrid = next(h for h in hits if "Ingrid" in h.record.memory)
    assert ingrid.signals["entity"] == pytest.approx(1.0)


def test_context_lifts_the_answer_next_to_the_match(store):
    """'She teaches piano' never names Ingrid; its neighbour does."""
    with_context = top(store, "What does Ingrid teach?")
    piano = next(h for h in with_context if "piano" in h.record.memory)
    assert piano.signals["context"] > 0.3
    without = top(store, "What does Ingrid teach?", options=SearchOptions(context=False))
    assert "context" not in next(h for h in without if "piano" in h.record.memory).signals


def test_time_signal_prefers_memories_in_the_asked_period(store):
    hits = store.search_records("what happened in September 2023?", top_k=5, filters={"user_id": "tomas"},
                                reference_date="2024-06-01T00:00:00Z")
    assert hits[0].signals["time"] == 1.0


def test_scores_are_in_zero_one_and_weighted_parts_add_up(store):
    for query in ["What does Ingrid teach?", "Pixel", "bike", "when did Maya adopt a cat?"]:
        for hit in top(store, query):
            assert 0.0 <= hit.score <= 1.0
            assert sum(hit.weights.values()) == pytest.approx(1.0)
            assert sum(hit.weights[n] * hit.signals.get(n, 0.0) for n in hit.weights) == pytest.approx(hit.score)


def test_filters_keep_other_scopes_out_and_threshold_gates(store):
    assert all(h.record.scope.user_id == "maya" for h in top(store, "marathon"))
    hits = top(store, "Pixel the cat", threshold=0.3)
    assert hits and all(h.score >= 0.3 for h in hits)


def test_writes_update_the_indexes_at_once(store):
    store.warm_up()
    mid = store.add("Maya: I play the cello on Sundays", user_id="maya", infer=False)["results"][0]["id"]
    assert top(store, "cello")[0].record.id == mid
    store.delete(mid)
    assert all(h.record.id != mid for h in top(store, "cello"))


def test_entity_index_merges_aliases_in_a_scope():
    index = EntityIndex()
    index.put("a", Scope(user_id="u"), [("melanie", "Melanie", "PERSON")])
    index.put("b", Scope(user_id="u"), [("mel", "Mel", "PERSON")])
    index.put("c", Scope(user_id="v"), [("mel", "Mel", "PERSON")])
    assert index.keys_in({"user_id": "u"}) == {"melanie": 2}
    assert index.memories("mel", {"user_id": "u"}) == {"a", "b"}
    assert index.keys_in({"user_id": "v"}) == {"mel": 1}  # no Melanie in that scope
    index.remove("a")
    assert index.keys_in({"user_id": "u"}) == {"mel": 1}
