"""engine/ingest/editor.py on real parts: new text re-embedded and re-linked at once, metadata alone not."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import NotFoundError
from engine.ingest.adder import new_record
from engine.ingest.messages import to_messages
from engine.records import Scope
from engine.search.entity_linker import EntityLinker
from engine.search.retrieval import SearchOptions

MAYA = Scope(user_id="maya")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def held(monkeypatch):
    """Keep the linker's thread from starting: links come only from the editor or a read."""
    monkeypatch.setattr(EntityLinker, "_start", lambda self: None)


def remember(rooms, text):
    msgs = to_messages(text, MAYA, WHEN)
    out = rooms.adder.add(msgs, MAYA, {"topic": "family"}, infer=False, memory_type=None, prompt=None,
                          progress=None, cancel=None)
    return out["results"][0]["id"]


def top(rooms, query):
    hits = rooms.reader.search(query, top_k=3, filters={"user_id": "maya"}, threshold=None,
                               reference_date=None, options=SearchOptions(), show_expired=False)
    return hits[0].record


def test_new_text_is_found_by_meaning_and_by_its_new_entities_at_once(rooms, held):
    remember(rooms, "We adopted a dog called Pixel.")
    mid = remember(rooms, "My sister Ingrid lives in Lisbon.")
    new = rooms.editor.update(mid, "My sister Ingrid moved to Bergen.", None, "maya")
    assert new.memory == "My sister Ingrid moved to Bergen." and new.metadata == {"topic": "family"}
    assert "Bergen" in new.entities and "Lisbon" not in new.entities
    assert ("bergen", "Bergen") in {(k, t) for m, k, t, _ in rooms.ledger.entity_links() if m == mid}
    assert top(rooms, "Who lives in Bergen?").id == mid
    last = rooms.ledger.history(mid)[-1]
    assert (last.event, last.old_memory, last.new_memory, last.actor) == \
        ("UPDATE", "My sister Ingrid lives in Lisbon.", "My sister Ingrid moved to Bergen.", "maya")


def test_metadata_alone_keeps_the_vector_and_the_links(rooms):
    mid = remember(rooms, "My sister Ingrid lives in Lisbon.")
    before = rooms.vectors.vectors([mid])[mid]
    new = rooms.editor.update(mid, None, {"topic": "travel"}, None)
    assert new.memory == "My sister Ingrid lives in Lisbon." and rooms.ledger.get(mid).metadata == {"topic": "travel"}
    assert float(rooms.vectors.vectors([mid])[mid] @ before) > 0.999


def test_the_same_text_in_other_spacing_is_not_re_embedded(rooms, embedder, monkeypatch):
    mid = remember(rooms, "My sister Ingrid lives in Lisbon.")
    calls: list[list[str]] = []
    real = embedder.embed_batch
    monkeypatch.setattr(embedder, "embed_batch", lambda texts: calls.append(list(texts)) or real(texts))
    rooms.editor.update(mid, "My  sister Ingrid lives in Lisbon.", None, None)
    assert calls == []  # the content hash ignores spacing and case


def test_an_unknown_id_is_not_found(rooms):
    with pytest.raises(NotFoundError, match="No memory with id 'nope'"):
        rooms.editor.update("nope", "text", None, None)


def test_entities_found_by_spacy_are_merged_with_the_names_the_extractor_gave(rooms):
    rec = new_record("Mel booked the cabin.", MAYA, {}, WHEN, "user", None, "event", None, (), ("Skaftafell",))
    (linked,), mentions = rooms.editor.with_entities([rec])
    assert {"Mel", "Skaftafell"} <= set(linked.entities)
    assert ("skaftafell", "Skaftafell", "EXTRACTED") in mentions[rec.id]
