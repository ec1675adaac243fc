"""Records and errors survive the trip to another process unchanged."""
import json
from datetime import datetime, timezone

from engine import NotFoundError
from engine.store.ledger import ScopeCount
from engine.records import HistoryEvent, MemoryRecord, Scope, ScoredMemory
from engine.service.codec import decode, decode_error, encode, encode_error


def test_records_round_trip_through_json():
    now = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    rec = MemoryRecord(id="m1", memory="Oslo", hash="h", scope=Scope(user_id="u"), created_at=now, updated_at=now,
                       timestamp=now, metadata={"k": [1, 2]}, source_message_ids=("a", "b"), entities=("Oslo",))
    value = {"hits": [ScoredMemory(rec, 0.5, {"bm25": 0.1})], "counts": [ScopeCount("user_id", "u", 1)],
             "history": (HistoryEvent("h1", "m1", "ADD", None, "Oslo", None, "user", now),)}
    assert decode(json.loads(json.dumps(encode(value)))) == value


def test_errors_keep_their_class_and_message():
    err = decode_error(encode_error(NotFoundError("No memory with id 'x'.")))
    assert isinstance(err, NotFoundError) and str(err) == "No memory with id 'x'."
