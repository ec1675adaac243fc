"""engine/search/retrieval.py on a real store: each signal finds what it should, scores explain themselves."""
from __future__ import annotations

import random

import pytest

from engine.search.retrieval import EntityIndex, SearchOptions, rank
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


def test_entity_names_in_a_query_match_in_any_case_and_up_to_four_words(memory):
    memory.add("Maya: We met at the Bergen Jazz Festival Society last spring", user_id="maya",
               infer=False)
    memory.add("Maya: My sister Ingrid moved to Bergen", user_id="maya", infer=False)
    memory.wait_for_entities()  # linked in the background after add() returns
    lower = top(memory, "when did maya meet people at the bergen jazz festival society?")
    society = next(h for h in lower if "Society" in h.record.memory)
    assert society.signals.get("entity", 0.0) > 0
    ingrid = next(h for h in top(memory, "where does ingrid's family live?") if "Ingrid" in h.record.memory)
    assert ingrid.signals.get("entity", 0.0) > 0


def test_rank_limit_keeps_the_same_best_hits_in_order(store):
    retriever = store._retriever
    found = retriever.gather("Ingrid piano Bergen", n=50, filters={"user_id": "maya"},
                             predicate=lambda r: True, reference_date=store_time(), light=False)
    weights = retriever.weights()
    everything = rank(found, weights)
    assert len(everything) > 2
    assert [(h.record.id, h.score) for h in rank(found, weights, 2)] == \
        [(h.record.id, h.score) for h in everything[:2]]


def store_time():
    from datetime import datetime, timezone

    return datetime(2024, 6, 1, tzinfo=timezone.utc)


def _entity_view(index: EntityIndex) -> dict:
    scopes = ({}, {"user_id": "u"}, {"user_id": "v"}, {"run_id": "r1"}, {"user_id": "u", "run_id": "r1"})
    return {str(s): (index.keys_in(s), {k: index.memories(k, s) for k in ("melanie", "mel", "oslo", "bo")})
            for s in scopes}


def test_entity_index_lists_each_memory_under_every_scope_it_matches():
    index = EntityIndex()
    index.put("a", Scope(user_id="u", run_id="r1"), [("oslo", "Oslo", "GPE"), ("bo", "Bo", "PERSON")])
    index.put("b", Scope(user_id="u"), [("oslo", "Oslo", "GPE")])
    index.put("c", Scope(agent_id="x", run_id="r1"), [("oslo", "Oslo", "GPE")])
    assert index.memories("oslo", {}) == {"a", "b", "c"}
    assert index.memories("oslo", {"user_id": "u"}) == {"a", "b"}
    assert index.memories("oslo", {"run_id": "r1"}) == {"a", "c"}
    assert index.memories("oslo", {"user_id": "u", "run_id": "r1"}) == {"a"}
    assert index.memories("oslo", {"user_id": "u", "agent_id": "x"}) == set()
    assert index.keys_in({"agent_id": "x"}) == {"oslo": 1}
    index.put("a", Scope(user_id="u", run_id="r1"), [("bo", "Bo", "PERSON")])  # a rewrite drops "oslo"
    assert index.memories("oslo", {"run_id": "r1"}) == {"c"}
    index.remove("c")
    assert index.keys_in({"run_id": "r1"}) == {"bo": 1} and index.keys_in({"agent_id": "x"}) == {}


def test_entity_index_snapshot_reads_back_the_same_and_takes_writes(tmp_path):
    index = EntityIndex()
    index.put("a", Scope(user_id="u", run_id="r1"), [("melanie", "Melanie", "PERSON"), ("oslo", "Oslo", "GPE")])
    index.put("b", Scope(user_id="u"), [("mel", "Mel", "PERSON")])
    index.put("c", Scope(user_id="v"), [("mel", "Mel", "PERSON"), ("bo", "Bo", "PERSON")])
    index.put("d", Scope(user_id="u", run_id="r1"), [("oslo", "Oslo", "PROPN")])
    index.put("e", Scope(user_id="v"), [("oslo", "Oslo", "GPE")])
    index.save(tmp_path)
    loaded = EntityIndex.load(tmp_path)
    assert loaded is not None
    assert _entity_view(loaded) == _entity_view(index)
    assert loaded.display == index.display and loaded.known("bo") and not loaded.known("nobody")
    for each in (index, loaded):  # writes after a load reach the same state as on the original
        each.remove("a")
        each.put("b", Scope(user_id="u"), [("bo", "Bo", "PERSON")])
        each.put("f", Scope(user_id="u", run_id="r1"), [("melanie", "Melanie", "PERSON")])
    assert _entity_view(loaded) == _entity_view(index)
    assert loaded.memories("bo", {"user_id": "u"}) == {"b"}
    (tmp_path / "entities.json").write_text('{"format": 0}', encoding="utf-8")
    assert EntityIndex.load(tmp_path) is None  # another layout is rebuilt, not misread
    assert EntityIndex.load(tmp_path / "missing") is None


VOCAB = "garden tomato soil water seed plant compost sunlight shade rain harvest basil pepper weed root leaf".split()


@pytest.fixture
def small_vocabulary(memory):
    """A long chat about one topic: 300 memories of 12 words out of 16, stored 50 per add()."""
    rnd = random.Random(4)
    texts = [" ".join(rnd.sample(VOCAB, 12)) for _ in range(300)]
    for start in range(0, len(texts), 50):
        memory.add([{"role": "user", "content": t} for t in texts[start:start + 50]], user_id="u", infer=False)
    memory.wait_for_entities()
    return memory


def test_small_vocabulary_search_returns_what_scoring_every_match_returns(small_vocabulary):
    retriever = small_vocabulary._retriever
    rnd = random.Random(8)
    queries = [" ".join(rnd.sample(VOCAB, 5)) for _ in range(6)]
    read = []
    for query in queries:
        for options in (SearchOptions(), SearchOptions(context=False), SearchOptions(semantic=False)):
            weights = retriever.weights(options)
            args = dict(n=50, filters={"user_id": "u"}, predicate=lambda r: True, reference_date=store_time(),
                        options=options, light=True)
            everything = retriever.gather(query, **args)
            assert everything.raw.get("entity")  # spaCy read some word runs as names
            for k in (1, 10, 30):
                pruned = retriever.gather(query, limit=k, **args)
                assert [(h.record.id, h.score, h.signals) for h in rank(pruned, weights, k)] == \
                    [(h.record.id, h.score, h.signals) for h in rank(everything, weights, k)]
                read.append(len(pruned.records) / len(everything.records))
        hits = small_vocabulary.search_records(query, top_k=10, filters={"user_id": "u"})
        assert len(hits) == 10 and len({h.record.id for h in hits}) == 10
    assert sum(read) / len(read) < 0.8  # fewer memories read than ranking every match reads
