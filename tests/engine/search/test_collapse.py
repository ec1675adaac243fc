"""engine/search/collapse.py: a fact and its episode share one slot of the top k."""
from datetime import datetime, timezone

import pytest

from engine.search.collapse import collapse
from engine.records import MemoryRecord, Scope, ScoredMemory

T = datetime(2023, 5, 8, tzinfo=timezone.utc)


def hit(i: str, score: float, source: str, kind: str = "message") -> ScoredMemory:
    rec = MemoryRecord(id=i, memory=i, hash=i, scope=Scope(user_id="u"), created_at=T, updated_at=T,
                       timestamp=T, memory_type=kind, source_message_ids=(source,))
    return ScoredMemory(rec, score)


HITS = [hit("fact1", 0.9, "m1", "event"), hit("ep1", 0.8, "m1"), hit("ep2", 0.7, "m2"),
        hit("fact3", 0.6, "m3", "fact"), hit("ep3", 0.5, "m3"), hit("ep4", 0.4, "m4")]


def test_a_fact_and_its_episode_never_both_fill_the_top_k():
    top = collapse(HITS, 3)
    assert [h.record.id for h in top] == ["fact1", "ep2", "fact3"]
    sources = [h.record.source_message_ids[0] for h in top]
    assert len(set(sources)) == len(sources) == 3


def test_preference_picks_the_member_but_not_the_order():
    assert [h.record.id for h in collapse(HITS, 4, prefer="episode")] == ["ep1", "ep2", "ep3", "ep4"]
    shown = collapse(HITS, 4, prefer="episode")[0]
    assert shown.score == 0.9  # the group's best score
    assert [h.record.id for h in collapse(HITS, 4, prefer="fact")] == ["fact1", "ep2", "fact3", "ep4"]


def test_memories_without_a_source_stand_alone_and_bad_preference_fails():
    alone = ScoredMemory(MemoryRecord(id="x", memory="x", hash="x", scope=Scope(user_id="u"), created_at=T,
                                      updated_at=T, timestamp=T), 0.95)
    assert [h.record.id for h in collapse([alone, *HITS], 2)] == ["x", "fact1"]
    with pytest.raises(ValueError):
        collapse(HITS, 2, prefer="newest")
