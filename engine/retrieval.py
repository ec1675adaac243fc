"""Hybrid retrieval: oversample each signal (semantic, keyword, entity, time), fuse, filter, hydrate."""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Sequence

from .config import SearchConfig
from .embeddings import Embedder
from .entities import EntityExtractor, aliases, normalise
from .filters import Predicate, scope_of
from .fusion import (Weights, fuse, neighbour_scores, normalise_keyword, normalise_semantic, shares,
                     time_score, with_context)
from .bm25 import KeywordIndex
from .ledger import Ledger
from .records import MemoryRecord, Scope, ScoredMemory
from .store import VectorStore

SIGNAL_NAMES = ("semantic", "keyword", "entity", "time")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """Which signals a search uses (the benchmark switches them off one by one)."""

    semantic: bool = True
    keyword: bool = True
    entity: bool = True
    time: bool = True
    context: bool = True


@dataclass(frozen=True, slots=True)
class Gathered:
    """Raw per-signal scores of one query's candidates (before normalisation and fusion)."""

    raw: dict[str, dict[str, float]]
    records: dict[str, MemoryRecord]
    candidates: set[str]
    neighbours: dict[str, list[str]]


def rank(found: Gathered, weights: Weights) -> list[ScoredMemory]:
    """Normalise each signal and fuse them (engine/fusion.py), best first.

    Each hit carries every signal's value in [0, 1] and its share of the score (weights), so
    that sum(weights[s] * signals[s]) == score.
    """
    signals: dict[str, dict[str, float]] = {}
    if "semantic" in found.raw:
        signals["semantic"] = normalise_semantic(found.raw["semantic"])
    if "keyword" in found.raw:
        signals["keyword"] = normalise_keyword(found.raw["keyword"], weights.bm25_scale)
    for name in ("entity", "time"):
        if name in found.raw:
            signals[name] = found.raw[name]
    fused = fuse(signals, weights)
    use_context = weights.context > 0 and bool(found.neighbours)
    part = shares(signals, weights, use_context)
    if not use_context:
        return [ScoredMemory(found.records[i], score, breakdown, part) for i, score, breakdown in fused]
    base = {i: score for i, score, _ in fused}
    context = neighbour_scores(base, found.neighbours)
    parts = {i: breakdown for i, _, breakdown in fused}
    out = []
    for i in set(base) | set(context):
        if i not in found.records:
            continue
        breakdown = dict(parts.get(i) or {name: 0.0 for name in signals})
        breakdown["context"] = context.get(i, 0.0)
        score = with_context(base.get(i, 0.0), breakdown["context"], weights)
        out.append(ScoredMemory(found.records[i], score, breakdown, part))
    out.sort(key=lambda m: (-m.score, m.record.id))
    return out


class EntityIndex:
    """Which memories mention which entity keys, with each memory's scope.

    Short person names that stand for one longer name in the same scope ("Mel" for
    "Melanie", see entities.aliases) are read as that name: counts and lookups merge them.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = {}
        self._by_memory: dict[str, tuple[Scope, set[str]]] = {}
        self.display: dict[str, tuple[str, str]] = {}  # key -> (text, label)
        self._votes: dict[str, dict[str, int]] = {}  # key -> label -> mentions
        self._lock = threading.RLock()
        self._version = 0
        self._aliases: dict[tuple[tuple[str, str], ...], tuple[int, dict[str, str]]] = {}

    def put(self, memory_id: str, scope: Scope, mentions: Sequence[tuple[str, str, str]]) -> None:
        with self._lock:
            self.remove(memory_id)
            keys = set()
            for key, text, label in mentions:
                keys.add(key)
                self._by_key.setdefault(key, set()).add(memory_id)
                # the kind shown is the one spaCy gave most often ("Caroline" is a PERSON
                # more often than a bare proper noun)
                votes = self._votes.setdefault(key, {})
                votes[label] = votes.get(label, 0) + 1
                best = max(votes, key=lambda lab: (votes[lab], lab not in ("PROPN", "THING", "EXTRACTED")))
                self.display[key] = (self.display.get(key, (text, label))[0], best)
            self._by_memory[memory_id] = (scope, keys)
            self._version += 1

    def remove(self, memory_id: str) -> None:
        with self._lock:
            old = self._by_memory.pop(memory_id, None)
            if old:
                self._version += 1
                for key in old[1]:
                    ids = self._by_key.get(key)
                    if ids is not None:
                        ids.discard(memory_id)
                        if not ids:
                            del self._by_key[key]

    def _raw(self, key: str, scope: dict[str, str]) -> set[str]:
        ids = self._by_key.get(key, set())
        if not scope:
            return set(ids)
        return {i for i in ids if _in_scope(self._by_memory[i][0], scope)}

    def aliases(self, scope: dict[str, str]) -> dict[str, str]:
        """alias key -> the key it stands for, among the entities of a scope (cached per write)."""
        with self._lock:
            tag = tuple(sorted(scope.items()))
            cached = self._aliases.get(tag)
            if cached is not None and cached[0] == self._version:
                return cached[1]
            keys = self._keys(scope)
            found = aliases({k: self.display.get(k, (k, ""))[1] for k in keys},
                            {k: len(ids) for k, ids in keys.items()})
            if len(self._aliases) > 64:
                self._aliases.clear()
            self._aliases[tag] = (self._version, found)
            return found

    def memories(self, key: str, scope: dict[str, str]) -> set[str]:
        """Memories that mention the entity (or one of its aliases) within the scope."""
        with self._lock:
            if key not in self._by_key:
                return set()
            names = self.aliases(scope)
            canonical = names.get(key, key)
            ids = self._raw(canonical, scope)
            for alias, target in names.items():
                if target == canonical:
                    ids |= self._raw(alias, scope)
            return ids

    def _keys(self, scope: dict[str, str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for mid, (mscope, keys) in self._by_memory.items():
            if _in_scope(mscope, scope):
                for k in keys:
                    out.setdefault(k, set()).add(mid)
        return out

    def keys_in(self, scope: dict[str, str]) -> dict[str, int]:
        """Every entity key in a scope with its memory count (aliases merged into their name)."""
        with self._lock:
            per_key = self._keys(scope)
            for alias, target in self.aliases(scope).items():
                per_key.setdefault(target, set()).update(per_key.pop(alias, set()))
            return {k: len(ids) for k, ids in per_key.items()}

    def known(self, key: str) -> bool:
        return key in self._by_key


def _apply(keyword: KeywordIndex, entities: EntityIndex, records: Sequence[MemoryRecord],
           removed: Sequence[str], mentions: dict[str, list[tuple[str, str, str]]]) -> None:
    for mid in removed:
        keyword.remove(mid)
        entities.remove(mid)
    keyword.add_many((r.id, r.memory, r.scope) for r in records)
    for r in records:
        if r.id in mentions:
            entities.put(r.id, r.scope, mentions[r.id])


def _in_scope(scope: Scope, wanted: dict[str, str]) -> bool:
    return all(getattr(scope, k) == v for k, v in wanted.items())


class Retriever:
    """Finds the memories that best answer a query within a filter, explaining each score."""

    def __init__(self, ledger: Ledger, vectors: VectorStore, embedder: Embedder,
                 config: SearchConfig, entities: EntityExtractor) -> None:
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._config = config
        self._extractor = entities
        self._keyword: KeywordIndex | None = None
        self._entities: EntityIndex | None = None
        self._executor: Any = None
        self._build_lock = threading.Lock()
        # Writes that land while the indexes are being built are logged here and replayed
        # onto them before they are published (None when no build is running).
        self._log_lock = threading.Lock()
        self._log: list[tuple[list[MemoryRecord], list[str], dict[str, list[tuple[str, str, str]]]]] | None = None

    # -- derived indexes -------------------------------------------------------------
    def _indexes(self) -> tuple[KeywordIndex, EntityIndex]:
        keyword, entities = self._keyword, self._entities
        if keyword is not None and entities is not None:
            return keyword, entities
        with self._build_lock:
            if self._keyword is None or self._entities is None:
                self._build()
        assert self._keyword is not None and self._entities is not None
        return self._keyword, self._entities

    def _build(self) -> None:
        """Open the vector mirror and the keyword and entity indexes (from snapshots when the
        store was closed cleanly, else from the ledger), replaying writes made meanwhile."""
        with self._log_lock:
            self._log = []
        try:
            clean = self._vectors.state.is_clean()
            self._vectors.open_index(self._embedder.dimension)
            rows = self._ledger.index_rows()
            scopes = {mid: Scope(u, a, r) for mid, u, a, r in rows}
            if not clean:
                self._restore_lost_vectors(rows)
            keyword = KeywordIndex.load(self._vectors.state.folder, scopes) if clean else None
            if keyword is None:
                keyword = KeywordIndex()
            missing = [mid for mid, *_ in rows if mid not in keyword]
            for start in range(0, len(missing), 2000):
                chunk = missing[start:start + 2000]
                texts = self._ledger.texts(chunk)
                keyword.add_many((mid, texts[mid], scopes[mid]) for mid in chunk if mid in texts)
            entities = EntityIndex()
            grouped: dict[str, list[tuple[str, str, str]]] = {}
            for mid, key, text, label in self._ledger.entity_links():
                grouped.setdefault(mid, []).append((key, text, label))
            for mid, found in grouped.items():
                if mid in scopes:
                    entities.put(mid, scopes[mid], found)
        except BaseException:
            with self._log_lock:
                self._log = None
            raise
        with self._log_lock:
            for records, removed, mentions in self._log or []:
                _apply(keyword, entities, records, removed, mentions)
            self._log = None
            self._entities = entities
            self._keyword = keyword

    def _restore_lost_vectors(self, rows: Sequence[tuple[str, str | None, str | None, str | None]]) -> None:
        """After an unclean close: re-embed memories whose vector is missing from Chroma."""
        index = self._vectors.index
        if index is None:
            return
        lost = [row for row in rows if row[0] not in index]
        for start in range(0, len(lost), 256):
            chunk = lost[start:start + 256]
            texts = self._ledger.texts([row[0] for row in chunk])
            chunk = [row for row in chunk if row[0] in texts]
            if chunk:
                vectors = self._embedder.embed_batch([texts[row[0]] for row in chunk])
                self._vectors.upsert([row[0] for row in chunk], vectors,
                                     [Scope(*row[1:]).as_dict() for row in chunk])
        if lost:
            log.warning("re-embedded %d memories whose vectors were lost in an unclean close", len(lost))

    def warm_up(self) -> None:
        """Build the keyword and entity indexes now rather than on the first search."""
        self._indexes()

    def refresh(self, records: Sequence[MemoryRecord], removed: Sequence[str],
                mentions: dict[str, list[tuple[str, str, str]]]) -> None:
        """Apply a committed write to the in-memory indexes (logged while they are built)."""
        with self._log_lock:
            if self._log is not None:
                self._log.append((list(records), list(removed), dict(mentions)))
            elif self._keyword is not None and self._entities is not None:
                _apply(self._keyword, self._entities, records, removed, mentions)

    def link(self, records: Sequence[MemoryRecord], mentions: dict[str, list[tuple[str, str, str]]]) -> None:
        """Add entity links found after their memories were committed (engine/entity_linker.py)."""
        with self._log_lock:
            if self._log is not None:  # replayed after the build (the keyword re-add is a no-op)
                self._log.append((list(records), [], dict(mentions)))
            elif self._entities is not None:
                for r in records:
                    self._entities.put(r.id, r.scope, mentions.get(r.id, []))

    def save(self) -> None:
        """Snapshot the indexes so the next open skips rebuilding them (called on close).

        Nothing is marked clean when the vector store failed or a snapshot cannot be written
        (a full disk): the next open then rebuilds the indexes from the ledger and Chroma.
        """
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._build_lock, self._log_lock:
            if self._keyword is None or self._vectors.index is None or self._vectors.is_broken:
                return
            try:
                self._keyword.save(self._vectors.state.folder)
                self._vectors.save_index()
                self._vectors.state.mark_clean()
            except OSError as exc:
                log.warning("index snapshots not saved (they are rebuilt on the next open): %s", exc)

    def reset(self) -> None:
        with self._log_lock:
            self._keyword = None
            self._entities = None

    # -- entities API ----------------------------------------------------------------
    def entity_counts(self, scope: dict[str, str]) -> list[tuple[str, str, str, int]]:
        """(key, display text, label, memory count) for every entity of a scope."""
        _, entities = self._indexes()
        out = []
        for key, n in entities.keys_in(scope).items():
            text, label = entities.display.get(key, (key, ""))
            out.append((key, text, label, n))
        out.sort(key=lambda e: (-e[3], e[1].casefold()))
        return out

    def entity_memory_ids(self, name: str, scope: dict[str, str]) -> set[str]:
        _, entities = self._indexes()
        return entities.memories(normalise(name), scope)

    # -- search ----------------------------------------------------------------------
    def weights(self, options: SearchOptions = SearchOptions()) -> Weights:
        cfg = self._config
        return Weights(semantic=cfg.semantic_weight if options.semantic else 0.0,
                       keyword=cfg.keyword_weight if options.keyword else 0.0,
                       entity=cfg.entity_weight if options.entity else 0.0,
                       time=cfg.time_weight if options.time else 0.0,
                       context=cfg.context_weight if options.context else 0.0,
                       bm25_scale=cfg.bm25_scale)

    def search(self, query: str, *, top_k: int, filters: dict[str, Any] | None, predicate: Predicate,
               threshold: float | None, reference_date: datetime,
               options: SearchOptions = SearchOptions()) -> list[ScoredMemory]:
        weights = self.weights(options)
        scope = scope_of(filters)
        in_scope = self._ledger.count(scope) if len(scope) == len(filters or {}) else None
        n = max(top_k * self._config.oversample, 50)
        prepared = self.prepare(query, scope, options)  # embed and parse the query once
        # Filters on scope alone need only each candidate's scope, times and expiry to rank,
        # so candidates are read as light rows and only the winners in full.
        light = in_scope is not None
        while True:
            found = self.gather(query, n=n, filters=filters, predicate=predicate,
                                reference_date=reference_date, options=options, prepared=prepared,
                                light=light)
            out = rank(found, weights)
            if threshold is not None:
                out = [m for m in out if m.score >= threshold]
            exhausted = in_scope is not None and n >= in_scope
            if len(out) >= top_k or exhausted or n >= 20_000 or not found.candidates:
                return self._hydrate(out[:top_k]) if light else out[:top_k]
            n *= 4

    def _hydrate(self, hits: list[ScoredMemory]) -> list[ScoredMemory]:
        full = self._ledger.get_many([h.record.id for h in hits])
        return [ScoredMemory(full[h.record.id], h.score, h.signals, h.weights) for h in hits
                if h.record.id in full]

    def prepare(self, query: str, scope: dict[str, str],
                options: SearchOptions = SearchOptions()) -> dict[str, Any]:
        """What a query needs once per search: its vector and the entities it names."""
        _, entity_index = self._indexes()
        out: dict[str, Any] = {}
        if options.semantic and options.entity:
            # The embedder (onnxruntime) releases the GIL: embed on a helper thread while
            # spaCy parses the query here, so the two cost the longer of them, not the sum.
            pending = self._pool().submit(self._embedder.embed_batch, [query])
            try:
                out["entities"] = self._query_entities(query, scope, entity_index)
            finally:
                out["vector"] = pending.result()[0]
            return out
        if options.semantic:
            out["vector"] = self._embedder.embed_batch([query])[0]
        if options.entity:
            out["entities"] = self._query_entities(query, scope, entity_index)
        return out

    def _pool(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loci-query-embed")
        return self._executor

    def gather(self, query: str, *, n: int, filters: dict[str, Any] | None, predicate: Predicate,
               reference_date: datetime, options: SearchOptions = SearchOptions(),
               prepared: dict[str, Any] | None = None, light: bool = False) -> "Gathered":
        """Each signal's raw scores for its n best candidates, and the records passing the filter
        (light: records carry only scope, times and expiry; see Ledger.get_many_light)."""
        fetch = self._ledger.get_many_light if light else self._ledger.get_many
        keyword_index, entity_index = self._indexes()
        scope = scope_of(filters)
        prepared = prepared if prepared is not None else self.prepare(query, scope, options)
        raw: dict[str, dict[str, float]] = {}
        if options.semantic:
            raw["semantic"] = dict(self._vectors.search(prepared["vector"], n, scope))
        if options.keyword:
            raw["keyword"] = dict(keyword_index.search(query, scope, n))
        if options.entity:
            query_entities = prepared["entities"]
            if query_entities:
                raw["entity"] = _entity_scores(query_entities, entity_index, scope, n)
        candidates = set().union(*[set(v) for v in raw.values()]) if raw else set()
        records = {i: r for i, r in fetch(list(candidates)).items() if predicate(r)}
        if options.time:
            window, wants_date = _time_intent(query, reference_date)
            if window is not None or wants_date:
                raw["time"] = {i: _time_signal(r, window, wants_date) for i, r in records.items()}
        raw = {name: {i: v for i, v in scores.items() if i in records} for name, scores in raw.items()}
        neighbours: dict[str, list[str]] = {}
        if options.context and self._config.context_weight > 0 and records:
            neighbours = self._ledger.neighbours(list(records))
            extra = {n for ns in neighbours.values() for n in ns} - set(records)
            records.update({i: r for i, r in fetch(list(extra)).items() if predicate(r)})
        return Gathered(raw, records, candidates, neighbours)

    def _query_entities(self, query: str, scope: dict[str, str], index: EntityIndex) -> dict[str, float]:
        """Entity keys the query mentions that exist in the scope, weighted by idf."""
        keys = {m.key for m in self._extractor.extract(query)}
        words = [w for w in _words(query)]
        for size in (3, 2, 1):  # known entity names written in lower case ("support group")
            for i in range(len(words) - size + 1):
                key = normalise(" ".join(words[i:i + size]))
                if index.known(key):
                    keys.add(key)
        total = max(1, self._ledger.count(scope)) if keys else 1
        weighted = {}
        for key in keys:
            df = len(index.memories(key, scope))
            if df:
                weighted[key] = math.log(1 + total / df)
        return weighted


def _words(text: str) -> list[str]:
    import re

    return [w for w in re.findall(r"[\w']+", text.casefold())]


def _entity_scores(query_entities: dict[str, float], index: EntityIndex, scope: dict[str, str],
                   cap: int) -> dict[str, float]:
    total = sum(query_entities.values()) or 1.0
    scores: dict[str, float] = {}
    for key, weight in query_entities.items():
        ids = index.memories(key, scope)
        if len(ids) > cap * 4:  # too common to pull in candidates; it still scores via others
            continue
        for mid in ids:
            scores[mid] = scores.get(mid, 0.0) + weight / total
    return scores


def _time_intent(query: str, reference: datetime) -> tuple[Any, bool]:
    from .temporal import is_when_question, query_window

    return query_window(query, reference), is_when_question(query)


def _time_signal(record: MemoryRecord, window: Any, wants_date: bool) -> float:
    if window is None:
        return 1.0 if (wants_date and record.event_date) else 0.0
    days = [_days_outside(_parse_date(record.event_date.split("/")[0]), window)] if record.event_date else []
    days.append(_days_outside(record.timestamp.date(), window))
    return time_score(min(days))


def _parse_date(text: str) -> date:
    return date.fromisoformat(text[:10])


def _days_outside(day: date, window: Any) -> float:
    if day < window.start:
        return float((window.start - day).days)
    if day > window.end:
        return float((day - window.end).days)
    return 0.0
