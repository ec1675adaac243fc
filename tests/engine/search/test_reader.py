"""engine/search/reader.py on real parts: ranked search, listings, counts, entities, provenance."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import ConfigError, InvalidInputError, NotFoundError
from engine.ingest.messages import to_messages
from engine.records import Scope
from engine.search.entity_linker import EntityLinker
from engine.search.retrieval import SearchOptions

MAYA = Scope(user_id="maya")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SAID = ["My sister Ingrid moved to Bergen last week.", "I drink green tea every morning.",
        "We adopted a dog called Pixel."]


@pytest.fixture
def held(monkeypatch):
    """Keep the linker's thread from starting, so only a read links memories."""
    monkeypatch.setattr(EntityLinker, "_start", lambda self: None)


def remember(rooms, texts, scope=MAYA, *, infer=False, meta=None):
    msgs = to_messages([{"role": "user", "content": t} for t in texts], scope, WHEN)
    out = rooms.adder.add(msgs, scope, dict(meta or {}), infer=infer, memory_type=None, prompt=None,
                          progress=None, cancel=None)
    return [r["id"] for r in out["results"]], out


def search(rooms, query, **kw):
    args = {"top_k": 5, "filters": {"user_id": "maya"}, "threshold": None, "reference_date": None,
            "options": SearchOptions(), "show_expired": False, **kw}
    return rooms.reader.search(query, **args)


def test_the_memory_that_answers_ranks_first_and_other_scopes_stay_out(rooms):
    ids, _ = remember(rooms, SAID)
    remember(rooms, ["My sister lives in Bergen too."], Scope(user_id="bob"))
    hits = search(rooms, "Where does Ingrid live?")
    assert hits[0].record.id == ids[0]
    assert {h.record.scope for h in hits} == {MAYA}


def test_a_fact_and_its_episode_share_one_slot_unless_evidence_is_all(rooms):
    _, out = remember(rooms, ["I met Jean at the pottery class yesterday."], infer=True)
    assert out["results"] and out["episodes"]
    shown = search(rooms, "Who did I meet at the pottery class?")
    assert len(shown) == 1 and shown[0].record.memory_type == "message"  # evidence "episode"
    rooms.config.search.evidence = "fact"
    assert search(rooms, "Who did I meet at the pottery class?")[0].record.memory_type != "message"
    rooms.config.search.evidence = "all"
    assert len(search(rooms, "Who did I meet at the pottery class?")) == 2
    rooms.config.search.evidence = "newest"
    with pytest.raises(ConfigError, match="search.evidence is 'newest'; use episode, fact, best or all"):
        search(rooms, "pottery")


def test_search_arguments_are_checked(rooms):
    with pytest.raises(InvalidInputError, match="The search query is empty"):
        search(rooms, "  ")
    with pytest.raises(InvalidInputError, match="top_k \\(or limit\\) must be a whole number from 1"):
        search(rooms, "tea", top_k=0)
    with pytest.raises(InvalidInputError, match="threshold must be a number"):
        search(rooms, "tea", threshold="high")


def test_a_threshold_drops_weak_hits_and_the_setting_is_its_default(rooms):
    remember(rooms, SAID)
    assert search(rooms, "green tea", threshold=1e6) == []
    rooms.config.search.default_threshold = 1e6
    assert search(rooms, "green tea") == []
    assert search(rooms, "green tea", threshold=-1e6)


def test_expired_memories_are_hidden_unless_asked_for(rooms):
    ids, _ = remember(rooms, ["I have a dentist appointment on Friday."], meta={"expiration_date": "2000-01-01"})
    assert search(rooms, "dentist") == []
    assert [h.record.id for h in search(rooms, "dentist", show_expired=True)] == ids
    listed = rooms.reader.list_records({"user_id": "maya"}, top_k=10, offset=0, oldest_first=False,
                                       show_expired=False)
    assert listed == []
    assert rooms.reader.count({"user_id": "maya"}) == 1  # a count includes them


def test_a_read_links_the_memories_it_shows_first(rooms, held):
    ids, _ = remember(rooms, SAID[:1])
    assert rooms.linker.is_pending(ids[0])
    rec = rooms.reader.get_record(ids[0])
    assert {"Ingrid", "Bergen"} <= set(rec.entities) and not rooms.linker.is_pending(ids[0])
    assert rooms.reader.get("no-such-id") is None
    with pytest.raises(NotFoundError, match="No memory with id 'no-such-id'. It may have been deleted."):
        rooms.reader.get_record("no-such-id")


def test_a_read_without_linking_returns_at_once_and_leaves_the_memory_queued(rooms, held):
    # the GUI reads pages and details this way: never waiting for spaCy or the write lock
    ids, _ = remember(rooms, SAID[:1])
    with _held_elsewhere(rooms.writer.lock):
        rec = rooms.reader.get_record(ids[0], link=False)
        page = rooms.reader.list_records({"user_id": "maya"}, top_k=10, offset=0, oldest_first=True,
                                         show_expired=False, link=False)
    assert rec.entities == () and [r.id for r in page] == ids and page[0].entities == ()
    assert rooms.linker.is_pending(ids[0])
    assert {"Ingrid", "Bergen"} <= set(rooms.reader.list_records({"user_id": "maya"}, top_k=10, offset=0,
                                                                 oldest_first=True, show_expired=False)[0].entities)


def _held_elsewhere(lock):
    """The write lock held by another thread (an import's add) for the duration of the block."""
    import contextlib
    import threading

    @contextlib.contextmanager
    def held():
        taken, release = threading.Event(), threading.Event()

        def hold():
            with lock:
                taken.set()
                release.wait(30)
        thread = threading.Thread(target=hold)
        thread.start()
        taken.wait(30)
        try:
            yield
        finally:
            release.set()
            thread.join(30)
    return held()


def test_listing_pages_in_either_order_with_any_filter(rooms):
    ids, _ = remember(rooms, SAID)
    remember(rooms, ["Note for later."], meta={"topic": "misc"})
    page = rooms.reader.list_records

    def listed(filters, **kw):
        args = {"top_k": 10, "offset": 0, "oldest_first": True, "show_expired": False, **kw}
        return [r.id for r in page(filters, **args)]

    everything = listed({"user_id": "maya"})
    assert everything[:3] == ids and len(everything) == 4
    assert listed({"user_id": "maya"}, oldest_first=False) == everything[::-1]
    assert listed({"user_id": "maya"}, offset=1, top_k=2) == ids[1:3]
    assert listed({"user_id": "maya", "topic": {"ne": "misc"}}, offset=1) == ids[1:]
    assert rooms.reader.count({"user_id": "maya", "topic": "misc"}) == 1
    with pytest.raises(InvalidInputError, match="filters must be a dict"):
        listed("user_id=maya")


def test_entities_are_counted_and_lead_to_their_memories(rooms, held):
    ids, _ = remember(rooms, SAID + ["Ingrid loves the rain in Bergen."])
    found = {e.name: e.memory_count for e in rooms.reader.entities({"user_id": "maya"})}
    assert found["Bergen"] == 2 and found["Pixel"] == 1
    assert [r.id for r in rooms.reader.entity_memories("bergen", {"user_id": "maya"})] == [ids[3], ids[0]]
    assert rooms.reader.entity_memories("Bergen", {"user_id": "bob"}) == []
    listed = rooms.reader.list_records({"user_id": "maya", "entities": {"contains": "Pixel"}}, top_k=5,
                                       offset=0, oldest_first=True, show_expired=False)
    assert [r.id for r in listed] == [ids[2]]


def test_provenance_leads_from_a_fact_to_its_episode_and_messages(rooms):
    _, out = remember(rooms, ["I met Jean at the pottery class yesterday."], infer=True)
    episode = rooms.reader.get_record(out["episodes"][0]["id"])
    fact = rooms.reader.get_record(out["results"][0]["id"])
    assert [r.id for r in rooms.reader.linked_records(fact)] == [episode.id]
    assert [r.id for r in rooms.reader.linked_records(episode)] == [fact.id]
    assert [m.content for m in rooms.reader.source_messages(fact)] == [episode.memory]
    assert [m.content for m in rooms.reader.messages({"user_id": "maya"}, 10)] == [episode.memory]


def test_history_of_an_unknown_id_is_empty_or_not_found(rooms):
    ids, _ = remember(rooms, SAID[:1])
    assert [e.event for e in rooms.reader.history_records(ids[0])] == ["ADD"]
    assert rooms.reader.history("nope") == []
    with pytest.raises(NotFoundError, match="No memory with id 'nope' and no history for it."):
        rooms.reader.history_records("nope")
    assert [(s.kind, s.value, s.count) for s in rooms.reader.scopes()] == [("user_id", "maya", 1)]
