"""Ranking a query's candidates: all of them (rank), or exactly the best k reading only what can reach them (top).

A query whose words are in most memories (a long chat about one topic) matches hundreds of
memories through the entity signal, and every candidate brings its conversational neighbours;
scoring all of them made a search cost grow with how common its words are. The fused score
(engine/search/fusion.py: score = (1 - c) * base + c * context) gives bounds that let `top`
skip most of them and still return exactly what `rank` returns for the best k:

  * a memory found by the entity signal alone has semantic = keyword = 0, so
        base(x) <= b(x) = (w_e * entity(x) + w_t * [the query asks about time]) / sum_i w_i,
    its score is at most (1 - c) * b(x) + c * M (M: the best base any candidate can have), and
    it raises a neighbour y only when b(x) > context(y), to at most (1 - c) * base(y) + c * b(x);
  * a candidate needs its neighbours looked up only when (1 - c) * base + c * M can reach the
    k-th score: otherwise neither it nor a neighbour inheriting from it (c * base) can;
  * a neighbour that is no candidate scores c * context, so only those that reach the k-th score
    are read.

Adding candidates only raises scores, so the k-th score among what has been read, theta, is a
lower bound of the true one; entity-only memories are read best first until every one left is
bounded below theta. tests/engine/search/test_ranking.py checks `top` against `rank` on stores
where most memories share the query's words.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

from ..records import MemoryRecord, ScoredMemory
from .fusion import (SIGNALS, Weights, breakdown, context_share, neighbour_scores, normalise_keyword,
                     normalise_semantic, shares, totals, with_context)

# Bounds are compared with this margin, so that rounding can only make `top` read more.
MARGIN = 1e-9

Fetch = Callable[[list[str]], dict[str, MemoryRecord]]  # the records among ids that pass the filter
Lookup = Callable[[list[str]], dict[str, list[str]]]  # conversational neighbours of ids (none: absent)


@dataclass(frozen=True, slots=True)
class Gathered:
    """Raw per-signal scores of one query's candidates (before normalisation and fusion)."""

    raw: dict[str, dict[str, float]]
    records: dict[str, MemoryRecord]
    candidates: set[str]
    neighbours: dict[str, list[str]]
    base: dict[str, float] | None = None  # fusion.totals of the raw signals, when already computed


def normalised(raw: Mapping[str, Mapping[str, float]], weights: Weights) -> dict[str, dict[str, float]]:
    """Each signal's raw scores scaled to [0, 1] (engine/search/fusion.py)."""
    signals: dict[str, dict[str, float]] = {}
    if "semantic" in raw:
        signals["semantic"] = normalise_semantic(raw["semantic"])
    if "keyword" in raw:
        signals["keyword"] = normalise_keyword(raw["keyword"], weights.bm25_scale)
    for name in ("entity", "time"):
        if name in raw:
            signals[name] = dict(raw[name])
    return signals


def rank(found: Gathered, weights: Weights, limit: int | None = None) -> list[ScoredMemory]:
    """Normalise each signal and fuse them (engine/search/fusion.py), best first (the best `limit`).

    Each hit carries every signal's value in [0, 1] and its share of the score (weights), so
    that sum(weights[s] * signals[s]) == score.
    """
    signals = normalised(found.raw, weights)
    base = found.base if found.base is not None else totals(signals, weights)
    use_context = weights.context > 0 and bool(found.neighbours)
    part = shares(signals, weights, use_context)
    if not use_context:
        best = sorted(base.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [ScoredMemory(found.records[i], score, breakdown(signals, i), part) for i, score in best]
    context = neighbour_scores(base, found.neighbours)
    scored = sorted(((with_context(base.get(i, 0.0), context.get(i, 0.0), weights), i)
                     for i in set(base) | set(context) if i in found.records),
                    key=lambda item: (-item[0], item[1]))
    out = []
    for score, i in scored[:limit]:  # records and parts only for the hits returned
        parts = breakdown(signals, i)
        parts["context"] = context.get(i, 0.0)
        out.append(ScoredMemory(found.records[i], score, parts, part))
    return out


def top(head: Mapping[str, Mapping[str, float]], entity: Mapping[str, float] | None, *, limit: int,
        weights: Weights, fetch: Fetch, neighbours: Lookup | None,
        time_of: Callable[[MemoryRecord], float] | None) -> Gathered | None:
    """The candidates, neighbours and records whose `rank(..., limit)` equals that of all of them.

    head: the semantic and keyword signals' raw scores (their n best each); entity: the entity
    signal's score of every memory it matches (None when the query names no known entity);
    fetch: the records among ids that pass the filter; neighbours: the lookup of conversational
    neighbours (None when context is off); time_of: the time signal of a record (None when
    the query does not ask about time). None when it cannot tell whether any candidate has a
    neighbour (then context may or may not apply: rank everything instead).
    """
    state = _Pruning(head, entity, limit, weights, fetch, neighbours, time_of)
    while True:
        state.score_pool()
        if state.c > 0:
            state.look_up_live()
            if not state.has_context():
                return None
        promote = state.promotions()
        if not promote:
            return state.result()
        state.admit(promote)


class _Pruning:
    """The state of one `top` call: the candidates read so far (the pool) and those left.

    A pool member's base never changes once computed (the keyword signal is normalised by the
    best keyword score among the semantic and keyword candidates, which are read first, and
    entity-only memories add no keyword score), so bases are computed once per memory, with
    the expression of fusion.totals, and each candidate's context and final score once per
    round (they change only when a round admits new memories).
    """

    def __init__(self, head: Mapping[str, Mapping[str, float]], entity: Mapping[str, float] | None,
                 limit: int, weights: Weights, fetch: Fetch, neighbours: Lookup | None,
                 time_of: Callable[[MemoryRecord], float] | None) -> None:
        self.head = head
        self.entity = entity
        self.limit = limit
        self.weights = weights
        self.fetch = fetch
        self.lookup = neighbours
        self.time_of = time_of
        self.c = context_share(weights) if neighbours is not None else 0.0
        active = [*head, *(["entity"] if entity is not None else []), *(["time"] if time_of else [])]
        denom = sum(weights.get(name) for name in SIGNALS if name in active) or 1.0
        top_time = weights.time if time_of is not None else 0.0
        ids = set().union(*map(set, head.values())) if head else set()
        self.candidates = ids | set(entity or ())
        # entity-only memories, best bound first, with their bound b(x)
        rest = sorted((i for i in entity or () if i not in ids), key=lambda i: (-(entity or {})[i], i))
        self.rest = {i: (weights.entity * (entity or {})[i] + top_time) / denom for i in rest}
        self.records = fetch(list(ids))
        self.times: dict[str, float] = {}
        self.base: dict[str, float] = {}
        self.looked: dict[str, list[str]] = {}  # neighbours of the candidates looked up
        self.theta = -math.inf
        self.best = 0.0  # M: no candidate's base, read or not, is above it
        # the normalised signals, in fusion.SIGNALS order as fusion.totals reads them; the time
        # signal's dict fills as records are read
        head_raw = {name: {i: v for i, v in scores.items() if i in self.records} for name, scores in head.items()}
        signals: dict[str, Mapping[str, float]] = dict(normalised(head_raw, weights))
        if entity is not None:
            signals["entity"] = entity  # read only for pool members, whose raw value it is
        if time_of is not None:
            signals["time"] = self.times
        self._signals = [(weights.get(name), signals[name]) for name in SIGNALS if name in signals]
        self._denom = sum(w for w, _ in self._signals) or 1.0
        self._context: dict[str, float] = {}  # per round: context(i) of looked-up candidates
        self._final: dict[str, float] = {}  # per round: final(i)

    def raw(self) -> dict[str, dict[str, float]]:
        """The raw signals of the pool, as `gather` gives them for its records."""
        raw = {name: {i: v for i, v in scores.items() if i in self.records} for name, scores in self.head.items()}
        if self.entity is not None:
            raw["entity"] = {i: self.entity[i] for i in self.records if i in self.entity}
        if self.time_of is not None:
            raw["time"] = dict(self.times)
        return raw

    def score_pool(self) -> None:
        """Bases of the records read since the last round (fusion.totals, memory by memory)."""
        fresh = [i for i in self.records if i not in self.base]
        if self.time_of is not None:
            for i in fresh:
                self.times[i] = self.time_of(self.records[i])
        signals, denom = self._signals, self._denom
        for i in fresh:
            self.base[i] = sum(w * float(scores.get(i, 0.0)) for w, scores in signals) / denom
        self.best = max([*self.base.values(), next(iter(self.rest.values()), 0.0), 0.0])
        self._context.clear()
        self._final.clear()

    def context(self, i: str) -> float:
        value = self._context.get(i)
        if value is None:
            base = self.base
            value = self._context[i] = max((base[n] for n in self.looked.get(i, ()) if n in base), default=0.0)
        return value

    def final(self, i: str) -> float:
        value = self._final.get(i)
        if value is None:
            value = self._final[i] = with_context(self.base[i], self.context(i), self.weights) \
                if self.c > 0 else self.base[i]
        return value

    def kth(self, ids: list[str]) -> float:
        """The limit-th best final score among ids (-inf when there are fewer)."""
        if len(ids) < self.limit:
            return -math.inf
        return sorted(map(self.final, ids), reverse=True)[self.limit - 1]

    def reaches(self, bound: float) -> bool:
        return bound >= self.theta - MARGIN

    def look_up_live(self) -> None:
        """Look up the neighbours of every candidate whose score could reach the k-th one."""
        assert self.lookup is not None
        c = self.c
        if not self.looked:  # start with the best bases: they set a first theta
            first = sorted(self.base, key=lambda i: (-self.base[i], i))[:self.limit]
            self._look(first)
        while True:
            self.theta = self.kth([i for i in self.looked if i in self.base])
            floor, best, looked = self.theta - MARGIN, self.best, self.looked  # reaches(), inlined
            live = [i for i, b in self.base.items() if i not in looked and (1 - c) * b + c * best >= floor]
            if not live:
                return
            self._look(live)

    def _look(self, ids: list[str]) -> None:
        assert self.lookup is not None
        found = self.lookup(ids)
        for i in ids:
            self.looked[i] = list(found.get(i, ()))
            self._context.pop(i, None)  # looked up now: its context is no longer 0
            self._final.pop(i, None)

    def has_context(self) -> bool:
        return any(self.looked.values())

    def promotions(self) -> list[str]:
        """Entity-only memories that might reach the top k or raise a score that does."""
        if self.c == 0:
            self.theta = self.kth(list(self.base))
        c = self.c
        out = []
        for x, b in self.rest.items():  # best bound first
            if not self.reaches((1 - c) * b + c * self.best):
                break
            out.append(x)
        if c > 0:
            chosen = set(out)
            rest, base = self.rest, self.base
            for y, near in self.looked.items():
                if y not in base or not near:
                    continue
                context = self.context(y)
                for x in near:
                    bound = rest.get(x)
                    if bound is not None and x not in chosen and bound > context - MARGIN \
                            and self.reaches((1 - c) * base[y] + c * bound):
                        out.append(x)
                        chosen.add(x)
        return out

    def admit(self, ids: list[str]) -> None:
        self.records.update(self.fetch(ids))
        for i in ids:
            del self.rest[i]

    def result(self) -> Gathered:
        """The pool, its neighbour map and the neighbours that can reach the top k."""
        raw = self.raw()
        if self.c == 0:
            return Gathered(raw, dict(self.records), self.candidates, {}, self.base)
        links = {y: list(near) for y, near in self.looked.items() if y in self.base and near}
        for y in list(links):
            for n in links[y]:  # a candidate not looked up still takes context from its looked-up pair
                if n in self.base and n not in self.looked:
                    links.setdefault(n, []).append(y)
        records = dict(self.records)
        outside = {n for near in links.values() for n in near if n not in self.base}
        inherited = neighbour_scores(self.base, links)
        wanted = [n for n in sorted(outside) if self.reaches(self.c * inherited.get(n, 0.0))]
        records.update(self.fetch(wanted))
        return Gathered(raw, records, self.candidates, links, self.base)
