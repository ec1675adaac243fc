"""engine/search/ranking.py: `top` reads only what can reach the best k and ranks them as `rank` ranks everything."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from engine.records import MemoryRecord, Scope
from engine.search.fusion import Weights
from engine.search.ranking import Gathered, rank, top

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
WEIGHTS = Weights(semantic=1.0, keyword=1.0, entity=0.3, time=0.3, context=0.5)


def record(mid: str) -> MemoryRecord:
    return MemoryRecord(id=mid, memory="", hash="", scope=Scope(user_id="u"), created_at=T0, updated_at=T0,
                        timestamp=T0)


class Store:
    """Memories stored in add() calls of random length (neighbours inside a call), some filtered
    out, with the signals of a query whose words are in most of them."""

    def __init__(self, seed: int, size: int = 400, calls: bool = True, with_time: bool = False,
                 entity_values: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)) -> None:
        rnd = random.Random(seed)
        self.ids = [f"m{i:04d}" for i in range(size)]
        self.passes = {i for i in self.ids if rnd.random() > 0.1}  # the filter drops a tenth
        self.near: dict[str, list[str]] = {}
        start = 0
        while calls and start < size:
            length = rnd.randint(1, 12)
            chunk = self.ids[start:start + length]
            for a, b in zip(chunk, chunk[1:]):
                self.near.setdefault(a, []).append(b)
                self.near.setdefault(b, []).append(a)
            start += length
        sample = lambda k: rnd.sample(self.ids, k)  # noqa: E731
        self.head = {"semantic": {i: rnd.uniform(0.1, 0.9) for i in sample(60)},
                     "keyword": {i: rnd.uniform(0.5, 6.0) for i in sample(60)}}
        # most memories share the query's entities: few distinct values, many ties
        self.entity = {i: rnd.choice(entity_values) for i in sample(size * 3 // 4)}
        self.time = {i: rnd.choice((0.0, 0.4, 1.0)) for i in self.ids} if with_time else None
        self.fetched: list[str] = []
        self.looked: list[str] = []

    def fetch(self, ids: list[str]) -> dict[str, MemoryRecord]:
        self.fetched += ids
        return {i: record(i) for i in ids if i in self.passes}

    def lookup(self, ids: list[str]) -> dict[str, list[str]]:
        self.looked += ids
        return {i: list(self.near[i]) for i in ids if self.near.get(i)}

    def time_of(self, rec: MemoryRecord) -> float:
        assert self.time is not None
        return self.time[rec.id]

    def everything(self, entity: bool, context: bool) -> Gathered:
        """What gather reads without a limit: every candidate and every neighbour."""
        raw = {name: dict(scores) for name, scores in self.head.items()}
        if entity:
            raw["entity"] = dict(self.entity)
        candidates = set().union(*map(set, raw.values()))
        records = {i: record(i) for i in candidates if i in self.passes}
        if self.time is not None:
            raw["time"] = {i: self.time[i] for i in records}
        raw = {name: {i: v for i, v in scores.items() if i in records} for name, scores in raw.items()}
        neighbours = {i: list(self.near[i]) for i in records if self.near.get(i)} if context else {}
        records.update({n: record(n) for ns in neighbours.values() for n in ns if n in self.passes})
        return Gathered(raw, records, candidates, neighbours)

    def top(self, limit: int, entity: bool, context: bool) -> Gathered | None:
        return top(self.head, self.entity if entity else None, limit=limit, weights=self.weights(context),
                   fetch=self.fetch, neighbours=self.lookup if context else None,
                   time_of=self.time_of if self.time is not None else None)

    @staticmethod
    def weights(context: bool) -> Weights:
        return WEIGHTS if context else Weights(context=0.0)


def view(hits):
    return [(h.record.id, h.score, h.signals, h.weights) for h in hits]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limit", [1, 10, 30])
@pytest.mark.parametrize("entity,context,with_time", [(True, True, False), (True, True, True),
                                                     (True, False, False), (False, True, False)])
def test_top_ranks_exactly_as_ranking_everything(seed, limit, entity, context, with_time):
    store = Store(seed, with_time=with_time)
    pruned = store.top(limit, entity, context)
    assert pruned is not None
    weights = store.weights(context)
    assert view(rank(pruned, weights, limit)) == view(rank(store.everything(entity, context), weights, limit))


def test_top_reads_a_fraction_of_the_memories_the_entity_signal_matches():
    """As in a long chat about one topic: the query's names are in most memories, each weakly."""
    store = Store(3, size=2000, entity_values=(0.05, 0.1, 0.15))
    pruned = store.top(30, entity=True, context=True)
    assert pruned is not None
    everything = store.everything(entity=True, context=True)
    assert len(set(store.fetched)) < len(everything.records) / 3
    assert len(set(store.looked)) < len(everything.raw["entity"]) / 3


def test_a_limit_above_the_candidates_reads_everything_and_still_ranks_alike():
    store = Store(5, size=60)
    pruned = store.top(500, entity=True, context=True)
    assert pruned is not None
    everything = store.everything(entity=True, context=True)
    assert view(rank(pruned, WEIGHTS, 500)) == view(rank(everything, WEIGHTS, 500))
    assert set(pruned.records) == set(everything.records)


def test_without_any_neighbour_top_leaves_the_ranking_to_rank():
    """Whether context applies depends on every candidate having no neighbour: top cannot tell."""
    store = Store(1, calls=False)
    assert store.top(10, entity=True, context=True) is None
    pruned = store.top(10, entity=True, context=False)
    assert pruned is not None
    weights = store.weights(False)
    assert view(rank(pruned, weights, 10)) == view(rank(store.everything(True, False), weights, 10))
