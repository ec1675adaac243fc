"""Hybrid retrieval: oversample each signal (semantic, keyword, entity, time), fuse, filter, hydrate."""
from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Sequence

from ..config import SearchConfig
from ..inference.embeddings import Embedder
from .entities import aliases, normalise
from ..errors import StoreError
from .filters import Predicate, scope_of
from .fusion import Weights, time_score
from .ranking import Gathered, rank, top
from .bm25 import KeywordIndex
from ..store.ledger import Ledger
from ..records import MemoryRecord, Scope, ScoredMemory
from ..store.vectors import VectorStore

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


class EntityIndex:
    """Which memories mention which entity keys, grouped by every scope a search can name.

    A memory is listed under each sub-scope of its own (a memory of user u and session r is
    found by {}, {user_id: u}, {run_id: r} and both), so a search reads its scope's keys
    and memories directly instead of filtering every memory of the store. Short person
    names that stand for one longer name in the same scope ("Mel" for "Melanie", see
    entities.aliases) are read as that name: counts and lookups merge them.

    `save` writes it as one JSON file and `load` reads it back with no loop over memories
    (the per-memory map that writes need is rebuilt on the first write).
    """

    def __init__(self) -> None:
        self._scoped: dict[ScopeTag, dict[str, set[str]]] = {(): {}}  # scope -> key -> memories
        self._by_memory_map: dict[str, tuple[tuple[ScopeTag, ...], tuple[str, ...]]] | None = {}
        self.display: dict[str, tuple[str, str]] = {}  # key -> (text, label)
        self._votes: dict[str, dict[str, int]] = {}  # key -> label -> mentions
        self._lock = threading.RLock()
        self._version = 0
        self._aliases: dict[ScopeTag, tuple[int, dict[str, str]]] = {}
        self._source: Path | None = None  # the snapshot folder this was loaded from, while unchanged

    @property
    def _by_key(self) -> dict[str, set[str]]:
        return self._scoped[()]

    @property
    def _by_memory(self) -> dict[str, tuple[tuple[ScopeTag, ...], tuple[str, ...]]]:
        """memory -> (the scopes it is listed under, its keys); built on first use after a load."""
        if self._by_memory_map is None:
            tags: dict[str, list[ScopeTag]] = {}
            keys: dict[str, list[str]] = {}
            for tag, per_key in self._scoped.items():
                for key, ids in per_key.items():
                    for mid in ids:
                        if tag:
                            tags.setdefault(mid, []).append(tag)
                        else:
                            keys.setdefault(mid, []).append(key)
            self._by_memory_map = {mid: (tuple(dict.fromkeys([(), *tags.get(mid, ())])), tuple(k))
                                   for mid, k in keys.items()}
        return self._by_memory_map

    def put(self, memory_id: str, scope: Scope, mentions: Sequence[tuple[str, str, str]]) -> None:
        with self._lock:
            self.remove(memory_id)
            tags = _sub_scopes(scope)
            keys: dict[str, None] = {}
            for key, text, label in mentions:
                keys[key] = None
                for tag in tags:
                    self._scoped.setdefault(tag, {}).setdefault(key, set()).add(memory_id)
                # the kind shown is the one spaCy gave most often ("Caroline" is a PERSON
                # more often than a bare proper noun)
                votes = self._votes.setdefault(key, {})
                votes[label] = votes.get(label, 0) + 1
                best = max(votes, key=lambda lab: (votes[lab], lab not in ("PROPN", "THING", "EXTRACTED")))
                self.display[key] = (self.display.get(key, (text, label))[0], best)
            self._by_memory[memory_id] = (tags, tuple(keys))
            self._version += 1
            self._source = None

    def remove(self, memory_id: str) -> None:
        with self._lock:
            old = self._by_memory.pop(memory_id, None)
            if old:
                self._version += 1
                self._source = None
                for tag in old[0]:
                    per_key = self._scoped.get(tag)
                    if per_key is None:
                        continue
                    for key in old[1]:
                        ids = per_key.get(key)
                        if ids is not None:
                            ids.discard(memory_id)
                            if not ids:
                                del per_key[key]
                    if tag and not per_key:
                        del self._scoped[tag]

    def _keys(self, scope: dict[str, str]) -> dict[str, set[str]]:
        """key -> memories inside the scope (the index's own sets: do not change them)."""
        return self._scoped.get(_tag(scope), {})

    def _raw(self, key: str, scope: dict[str, str]) -> set[str]:
        return self._keys(scope).get(key, set())

    def aliases(self, scope: dict[str, str]) -> dict[str, str]:
        """alias key -> the key it stands for, among the entities of a scope (cached per write)."""
        with self._lock:
            tag = _tag(scope)
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
            ids = set(self._raw(canonical, scope))
            for alias, target in names.items():
                if target == canonical:
                    ids |= self._raw(alias, scope)
            return ids

    def keys_in(self, scope: dict[str, str]) -> dict[str, int]:
        """Every entity key in a scope with its memory count (aliases merged into their name)."""
        with self._lock:
            per_key = self._keys(scope)
            names = self.aliases(scope)
            counts = {k: len(ids) for k, ids in per_key.items() if k not in names}
            merged: dict[str, set[str]] = {}
            for alias, target in names.items():
                ids = merged.setdefault(target, set(per_key.get(target, ())))
                ids.update(per_key.get(alias, ()))
            counts.update((k, len(ids)) for k, ids in merged.items())
            return counts

    def known(self, key: str) -> bool:
        return key in self._by_key

    # -- snapshot ---------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the index as entities.json (replaced atomically); nothing is written when it is
        unchanged since it was loaded from this folder."""
        with self._lock:
            path = folder / ENTITIES_FILE
            if self._source is not None and self._source == folder and path.is_file():
                return
            data = {"format": ENTITIES_FORMAT,
                    "scoped": [[list(map(list, tag)), {k: list(ids) for k, ids in per_key.items()}]
                               for tag, per_key in self._scoped.items()],
                    "display": self.display, "votes": self._votes}
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / (ENTITIES_FILE + ".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(path)

    @classmethod
    def load(cls, folder: Path) -> "EntityIndex | None":
        """The index saved in a folder, or None when there is none usable."""
        try:
            data = json.loads((folder / ENTITIES_FILE).read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != ENTITIES_FORMAT:
                return None
            index = cls()
            index._scoped = {tuple((str(k), str(v)) for k, v in tag):
                             {str(key): set(ids) for key, ids in per_key.items()}
                             for tag, per_key in data["scoped"]}
            index.display = {str(k): (str(v[0]), str(v[1])) for k, v in data["display"].items()}
            index._votes = {str(k): {str(lab): int(n) for lab, n in v.items()} for k, v in data["votes"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None
        index._scoped.setdefault((), {})
        index._by_memory_map = None
        index._source = folder
        return index


ScopeTag = tuple[tuple[str, str], ...]
ENTITIES_FILE = "entities.json"
ENTITIES_FORMAT = 1


def _tag(scope: dict[str, str]) -> ScopeTag:
    return tuple(sorted(scope.items()))


def _sub_scopes(scope: Scope) -> tuple[ScopeTag, ...]:
    """Every scope filter a memory of this scope matches: each subset of its set keys."""
    items = [(k, v) for k, v in sorted(scope.as_dict().items()) if isinstance(v, str)]
    out: list[ScopeTag] = []
    for mask in range(1 << len(items)):
        out.append(tuple(item for i, item in enumerate(items) if mask >> i & 1))
    return tuple(out)


def _apply(keyword: KeywordIndex, entities: EntityIndex, records: Sequence[MemoryRecord],
           removed: Sequence[str], mentions: dict[str, list[tuple[str, str, str]]]) -> None:
    for mid in removed:
        keyword.remove(mid)
        entities.remove(mid)
    keyword.add_many((r.id, r.memory, r.scope) for r in records)
    for r in records:
        if r.id in mentions:
            entities.put(r.id, r.scope, mentions[r.id])


class Retriever:
    """Finds the memories that best answer a query within a filter, explaining each score."""

    def __init__(self, ledger: Ledger, vectors: VectorStore, embedder: Embedder,
                 config: SearchConfig) -> None:
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._config = config
        self._keyword: KeywordIndex | None = None
        self._entities: EntityIndex | None = None
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
        """Open the vector mirror and the keyword and entity indexes, replaying writes made
        meanwhile. Snapshots are used when the store was closed cleanly and the ledger still
        has the fingerprint it had then (store.IndexState); each index whose snapshot is not
        usable is rebuilt from the ledger (and the vector mirror from Chroma)."""
        with self._log_lock:
            self._log = []
        try:
            folder = self._vectors.state.folder
            clean = self._vectors.state.is_clean(self._ledger.fingerprint())
            self._vectors.open_index(self._embedder.dimension, trusted=clean)
            keyword = KeywordIndex.load(folder) if clean else None
            entities = EntityIndex.load(folder) if clean else None
            if keyword is None or entities is None or not clean:
                rows = self._ledger.index_rows()
                scopes = {mid: Scope(u, a, r) for mid, u, a, r in rows}
                if not clean:
                    self._restore_lost_vectors(rows)
                if keyword is None:
                    keyword = KeywordIndex()
                    for start in range(0, len(rows), 2000):
                        chunk = [mid for mid, *_ in rows[start:start + 2000]]
                        texts = self._ledger.texts(chunk)
                        keyword.add_many((mid, texts[mid], scopes[mid]) for mid in chunk if mid in texts)
                if entities is None:
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
        """Add entity links found after their memories were committed (engine/search/entity_linker.py)."""
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
        with self._build_lock, self._log_lock:
            if self._keyword is None or self._entities is None or self._vectors.index is None \
                    or self._vectors.is_broken:
                return
            try:
                fingerprint = self._ledger.fingerprint()
                self._keyword.save(self._vectors.state.folder)
                self._entities.save(self._vectors.state.folder)
                self._vectors.save_index()
                self._vectors.state.mark_clean(fingerprint)
            except (OSError, StoreError) as exc:
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
        prepared = self.prepare(query, scope, options)  # embed the query and find its entities once
        # Filters on scope alone need only each candidate's scope, times and expiry to rank,
        # so candidates are read as light rows and only the winners in full.
        light = in_scope is not None
        while True:
            found = self.gather(query, n=n, filters=filters, predicate=predicate,
                                reference_date=reference_date, options=options, prepared=prepared,
                                light=light, limit=top_k)
            out = rank(found, weights, top_k)  # hits above a threshold are a prefix
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
        out: dict[str, Any] = {}
        if options.semantic:
            out["vector"] = self._embedder.embed_batch([query])[0]
        if options.entity:
            out["entities"] = self._query_entities(query, scope, self._indexes()[1])
        return out

    def gather(self, query: str, *, n: int, filters: dict[str, Any] | None, predicate: Predicate,
               reference_date: datetime, options: SearchOptions = SearchOptions(),
               prepared: dict[str, Any] | None = None, light: bool = False,
               limit: int | None = None) -> Gathered:
        """Each signal's raw scores for its n best candidates, and the records passing the filter
        (light: records carry only scope, times and expiry; see Ledger.get_many_light).

        With a limit, only the candidates and neighbours that can reach the best `limit`
        (engine/search/ranking.py: top); rank(found, weights, limit) is the same either way.
        """
        rows = self._ledger.get_many_light if light else self._ledger.get_many

        def fetch(ids: list[str]) -> dict[str, MemoryRecord]:
            return {i: r for i, r in rows(ids).items() if predicate(r)}

        keyword_index, entity_index = self._indexes()
        scope = scope_of(filters)
        prepared = prepared if prepared is not None else self.prepare(query, scope, options)
        head: dict[str, dict[str, float]] = {}
        if options.semantic:
            head["semantic"] = dict(self._vectors.search(prepared["vector"], n, scope))
        if options.keyword:
            head["keyword"] = dict(keyword_index.search(query, scope, n))
        entity = None
        if options.entity and prepared["entities"]:
            entity = _entity_scores(prepared["entities"], entity_index, scope, n)
        time_of = None
        if options.time:
            window, wants_date = _time_intent(query, reference_date)
            if window is not None or wants_date:
                def time_of(record: MemoryRecord) -> float:
                    return _time_signal(record, window, wants_date)
        context = options.context and self._config.context_weight > 0
        if limit is not None:
            pruned = top(head, entity, limit=limit, weights=self.weights(options), fetch=fetch,
                         neighbours=self._ledger.neighbours if context else None, time_of=time_of)
            if pruned is not None:
                return pruned
        raw = dict(head) if entity is None else {**head, "entity": entity}
        candidates = set().union(*[set(v) for v in raw.values()]) if raw else set()
        records = fetch(list(candidates))
        if time_of is not None:
            raw["time"] = {i: time_of(r) for i, r in records.items()}
        raw = {name: {i: v for i, v in scores.items() if i in records} for name, scores in raw.items()}
        neighbours: dict[str, list[str]] = {}
        if context and records:
            neighbours = self._ledger.neighbours(list(records))
            records.update(fetch(list({n for ns in neighbours.values() for n in ns} - set(records))))
        return Gathered(raw, records, candidates, neighbours)

    def _query_entities(self, query: str, scope: dict[str, str], index: EntityIndex) -> dict[str, float]:
        """Entity keys the query names that exist in the scope, weighted by idf.

        A query's entities can only score if some memory was linked to them, so the query is
        matched against the names the index knows (every run of up to MAX_NAME_WORDS words,
        in any case: "support group", "caroline's") instead of being parsed: a dictionary
        lookup costs microseconds where running the NER model cost a third of a search.
        """
        keys = {key for key in _name_candidates(query) if index.known(key)}
        total = max(1, self._ledger.count(scope)) if keys else 1
        weighted = {}
        for key in keys:
            df = len(index.memories(key, scope))
            if df:
                weighted[key] = math.log(1 + total / df)
        return weighted


MAX_NAME_WORDS = 4
_WORD = re.compile(r"[\w'\u2019.&-]+")


def _name_candidates(text: str) -> set[str]:
    """Normalised entity keys of every run of 1..MAX_NAME_WORDS words in a text."""
    words = _WORD.findall(text)
    out: set[str] = set()
    for size in range(1, MAX_NAME_WORDS + 1):
        for i in range(len(words) - size + 1):
            key = normalise(" ".join(words[i:i + size]))
            if key:
                out.add(key)
    return out


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
    from ..extraction.temporal import is_when_question, query_window

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
