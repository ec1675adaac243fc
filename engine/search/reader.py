"""The read side: ranked search, listings, counts, entities and provenance, linked before shown.

Memories are written before spaCy has read them (engine/search/entity_linker.py); whatever a
read is about to show is linked first, and views built on entities link the whole queue.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Mapping

from ..arguments import MAX_QUERY_CHARS, MAX_TOP_K, check_count, check_text, check_threshold
from ..config import LociConfig
from ..errors import ConfigError, InvalidInputError, NotFoundError
from ..extraction.temporal import timestamp_or_now
from ..records import EPISODE, Entity, HistoryEvent, MemoryRecord, Message, ScoredMemory
from ..store.ledger import Ledger, ScopeCount
from .collapse import PREFERENCES, collapse
from .entity_linker import EntityLinker
from .filters import Predicate, compile_filters, scope_of
from .retrieval import Retriever, SearchOptions
from .scoping import filter_dict, names_entities


def today() -> date:
    return datetime.now(timezone.utc).date()


def unexpired(predicate: Predicate, show_expired: bool) -> Predicate:
    """The predicate, narrowed to memories not past their expiration date unless show_expired."""
    if show_expired:
        return predicate
    day = today()
    return lambda r: predicate(r) and not r.is_expired(day)


class Reader:
    """Everything the facade reads, over the ledger, the search indexes and the entity linker."""

    def __init__(self, ledger: Ledger, retriever: Retriever, linker: EntityLinker,
                 config: LociConfig) -> None:
        self._ledger = ledger
        self._retriever = retriever
        self._linker = linker
        self._config = config  # read at each call: settings changed in place take effect

    def search(self, query: str, *, top_k: int, filters: Mapping[str, Any] | None,
               threshold: float | None, reference_date: Any, options: SearchOptions,
               show_expired: bool) -> list[ScoredMemory]:
        """The best matches, one per piece of evidence as `search.evidence` says (all: no collapse)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The search query is empty; type what you are looking for.")
        check_text(query, "query", MAX_QUERY_CHARS)
        check_count(top_k, "top_k (or limit)", 1, MAX_TOP_K)
        predicate = unexpired(compile_filters(filters), show_expired)
        ref = timestamp_or_now(reference_date)
        if threshold is None:
            threshold = self._config.search.default_threshold
        else:
            check_threshold(threshold)
        evidence = self._config.search.evidence
        if evidence not in ("all", *PREFERENCES):
            raise ConfigError(f"search.evidence is {evidence!r}; use episode, fact, best or all.")
        hits = self._retriever.search(query, top_k=top_k if evidence == "all" else top_k * 3,
                                      filters=dict(filters or {}), predicate=predicate,
                                      threshold=threshold, reference_date=ref, options=options)
        return hits if evidence == "all" else collapse(hits, top_k, prefer=evidence)

    def get(self, memory_id: str, link: bool = True) -> MemoryRecord | None:
        """One memory, linked (unless link=False), or None."""
        rec = self._ledger.get(memory_id)
        return None if rec is None else self.linked([rec])[0] if link else rec

    def get_record(self, memory_id: str, link: bool = True) -> MemoryRecord:
        """One memory, linked (unless link=False); NotFoundError when there is none."""
        rec = self.get(memory_id, link)
        if rec is None:
            raise NotFoundError(f"No memory with id '{memory_id}'. It may have been deleted.")
        return rec

    def linked(self, records: list[MemoryRecord]) -> list[MemoryRecord]:
        """The records with their entity links, linking any still queued first (a read shows them)."""
        waiting = [r.id for r in records if self._linker.is_pending(r.id)]
        if not waiting:
            return records
        self._linker.link_now(waiting)
        fresh = self._ledger.get_many(waiting)
        return [fresh.get(r.id, r) for r in records]

    def list_records(self, filters: Any, *, top_k: int, offset: int, oldest_first: bool,
             show_expired: bool, link: bool = True) -> list[MemoryRecord]:
        """A page of the memories matching the filters, newest first unless oldest_first (linked
        unless link=False: then a memory still queued for the entity linker shows no entities yet)."""
        filters = filter_dict(filters)
        scope = scope_of(filters)
        if set(filters) <= set(scope):  # only literal scope keys: let SQLite page
            page = self._ledger.page(scope, offset, top_k, oldest_first=oldest_first,
                                     unexpired_on=None if show_expired else today())
            return self.linked(page) if link else page
        if names_entities(filters):
            self._linker.drain()
        predicate = unexpired(compile_filters(filters), show_expired)
        out: list[MemoryRecord] = []
        skipped = 0
        for rec in self._ledger.iter_scope(scope, newest_first=not oldest_first):
            if predicate(rec):
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(rec)
                if len(out) >= top_k:
                    break
        return self.linked(out) if link else out

    def count(self, filters: Any) -> int:
        """How many memories match the filters (expired ones included)."""
        filters = filter_dict(filters)
        scope = scope_of(filters)
        if set(filters) <= set(scope):
            return self._ledger.count(scope)
        if names_entities(filters):
            self._linker.drain()
        predicate = compile_filters(filters)
        return sum(1 for r in self._ledger.iter_scope(scope) if predicate(r))

    def scopes(self) -> list[ScopeCount]:
        return self._ledger.scope_counts()

    def entities(self, filters: Any) -> list[Entity]:
        """Entities of the memories in the filters' scope, with how many memories mention each."""
        scope = scope_of(filter_dict(filters))
        self._linker.drain()  # counts include every memory stored so far
        return [Entity(name=text, label=label, memory_count=n)
                for _key, text, label, n in self._retriever.entity_counts(scope)]

    def entity_memories(self, name: str, filters: Any) -> list[MemoryRecord]:
        """Memories linked to an entity (matched by its normalised name), newest first."""
        filters = filter_dict(filters)
        predicate = compile_filters(filters)
        self._linker.drain()
        ids = self._retriever.entity_memory_ids(name, scope_of(filters))
        rows = self._ledger.get_many(list(ids))
        out = [r for r in rows.values() if predicate(r)]
        out.sort(key=lambda r: r.created_at, reverse=True)
        return out

    def messages(self, filters: Mapping[str, Any] | None, limit: int) -> list[Message]:
        """The last stored messages in the filters' scope, oldest first."""
        return self._ledger.recent_messages(scope_of(dict(filters or {})), limit)

    def source_messages(self, record: MemoryRecord) -> list[Message]:
        return self._ledger.messages(list(record.source_message_ids))

    def linked_records(self, record: MemoryRecord) -> list[MemoryRecord]:
        """The episodes a fact came from, or the facts drawn from an episode (shared messages)."""
        return [r for r in self._ledger.from_messages(list(record.source_message_ids))
                if r.id != record.id and (r.memory_type == EPISODE) != (record.memory_type == EPISODE)]

    def history(self, memory_id: str) -> list[HistoryEvent]:
        return self._ledger.history(memory_id)

    def history_records(self, memory_id: str) -> list[HistoryEvent]:
        """The audit log of one memory; NotFoundError when it has none."""
        events = self._ledger.history(memory_id)
        if not events:
            raise NotFoundError(f"No memory with id '{memory_id}' and no history for it.")
        return events
