"""The facade: mem0-compatible Memory wiring ledger, vectors, embedder and extractor together."""
from __future__ import annotations

import json
import logging
import math
import os
import threading
import unicodedata
import uuid
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .assistant.answer import Answer
from .store.backup import Snapshot, create_snapshot, is_due, schema_version
from .search.collapse import PREFERENCES, collapse
from .config import LociConfig, from_mem0_config, is_mem0_config
from .inference.embeddings import Embedder
from .inference.onnx_embedder import default_embedder
from .search.entities import EntityExtractor, links
from .search.entity_linker import EntityLinker
from .errors import (ConfigError, ExtractionError, InvalidInputError, LociError, NotFoundError,
                     StoreError)
from .store.export import ExportedMemory
from .search.filters import SCOPE_KEYS, Predicate, compile_filters, names_scope, scope_of
from .store.integrity import (IntegrityReport, check_and_repair, ledger_is_missing, missing_ledger_error,
                              reconcile)
from .store.ledger import SCHEMA_VERSION as LEDGER_SCHEMA
from .store.ledger import Ledger, ScopeCount, utcnow
from .paths import default_data_dir
from .records import (EXPIRATION_KEY, content_hash, Entity, HistoryEvent, MemoryRecord, Message, Scope,
                      ScoredMemory)
from .search.retrieval import Retriever, SearchOptions
from .store.vectors import Manifest, VectorStore, WriterLock, vector_meta

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 100_000
MAX_QUERY_CHARS = 10_000
MAX_ID_CHARS = 1_000
MAX_TOP_K = 10_000  # results of one search
MAX_PAGE = 1_000_000_000  # rows or offset of one listing
MAX_NESTING = 16  # depth of metadata lists and dicts
LEDGER_FILE = "loci.sqlite3"
_ROLES = ("user", "assistant", "system", "tool")

Progress = Callable[[int, int], None]
EPISODE = "message"  # memory_type of a message stored as said (an episode)
_UNSET: Any = object()  # "argument not given" where None means "clear it"


class Memory:
    """A persistent, offline memory store with mem0's API.

    Write order (one write path, `_commit`): (1) the ids about to change are recorded in the
    ledger's journal and committed; (2) the vectors are written to Chroma; (3) the memory rows,
    their history rows and the source messages are written and the journal entries cleared in
    ONE SQLite transaction. SQLite is the source of truth: a memory exists when its row exists,
    and its row never exists without its history row. A crash after (1) or (2) leaves only
    journal entries and stray vectors, which `_recover` repairs the next time the store opens.
    Updates and deletes follow the same order (journal, vectors, one SQLite transaction), and
    a write that fails after step (1) is repaired at once from the journal, so a caller told
    "failed" never finds the change committed.

    Entities are found after the commit (engine/search/entity_linker.py): step (3) also queues the
    memories for linking, a background thread links the queue in batches once writes pause,
    and a store opened after a crash links what was left. Until linked, a memory is found by
    meaning and keywords but not by the entities it names; get(), get_all() and the entity
    views link what they are about to show first.

    Opening checks the store (`engine/store/integrity.py`): missing vectors are rebuilt from SQLite
    (`open_report` says what was repaired; `progress` sees the rebuild), a lost SQLite file
    beside surviving vectors is refused, and a schema migration is preceded by a backup.
    """

    def __init__(self, data_dir: str | Path | None = None,
                 config: LociConfig | Mapping[str, Any] | None = None, *,
                 embedder: Embedder | None = None, llm: Any = None,
                 progress: Progress | None = None, preload: bool = True,
                 load_progress: Callable[[str, int, int], None] | None = None) -> None:
        if data_dir is not None and (not isinstance(data_dir, (str, os.PathLike))
                                     or not str(data_dir).strip()):
            raise InvalidInputError(f"data_dir must be a folder path, not {data_dir!r}.")
        self.config = config if isinstance(config, LociConfig) else LociConfig.from_dict(config)
        self.config.validate()
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            raise StoreError(f"Cannot create the data folder {self.data_dir}: {exc}") from exc
        self._lock = WriterLock(self.data_dir)
        self._lock.acquire()
        try:
            self.embedder: Embedder = embedder or default_embedder(self.config.embedder)
            if not self.embedder.dimension:
                load = getattr(self.embedder, "load", None)
                if load:
                    load()
            _check_dimension(self.config, self.embedder)
            Manifest(self.data_dir).check_or_write(self.embedder.name, self.embedder.dimension)
            store = self.config.store
            self._vectors = VectorStore(self.data_dir, store.collection_name, host=store.chroma_host,
                                        port=store.chroma_port, ssl=store.chroma_ssl)
            ledger_path = (Path(store.history_db_path).expanduser() if store.history_db_path
                           else self.data_dir / LEDGER_FILE)
            if ledger_is_missing(ledger_path) and self._vectors.count() > 0:
                raise missing_ledger_error(self.data_dir)
            if 0 < schema_version(ledger_path) < LEDGER_SCHEMA:
                create_snapshot(self.data_dir, reason="pre-migration")
            self._ledger = Ledger(ledger_path)
        except BaseException:
            self._release_files()
            raise
        self._write_lock = threading.RLock()
        self._llm_given = llm  # a caller's model is kept; else one is built from config.llm
        self._llm: Any = None
        self._llm_config: Any = None
        self._llm_lock = threading.Lock()
        self._extractor: Any = None
        self._entity_extractor = EntityExtractor()
        self._retriever = Retriever(self._ledger, self._vectors, self.embedder, self.config.search)
        self._closed = False
        try:
            self._recover()
            self.open_report: IntegrityReport = reconcile(self._ledger, self._vectors, self.embedder,
                                                          progress=progress)
        except BaseException:
            self._release_files()
            raise
        if self.open_report.repairs:
            log.warning("store %s repaired on open: %s", self.data_dir,
                        "; ".join(self.open_report.repairs))
        # starts linking at once when a previous session left memories queued
        self._linker = EntityLinker(self._ledger, self._entity_extractor, self._write_lock,
                                    self._retriever.link)
        self._models_ready = threading.Event()
        self._load_error: BaseException | None = None
        if preload:  # models load while the caller does other things (no stall on the first write)
            threading.Thread(target=self._load_models, args=(load_progress,), daemon=True,
                             name="loci-model-loader").start()
        else:
            self._models_ready.set()

    def _load_models(self, progress: Callable[[str, int, int], None] | None) -> None:
        """Load the embedding model and the spaCy pipeline in the background, reporting each step."""
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("embedding model", getattr(self.embedder, "load", None) or (lambda: None)),
            ("entity model", self._entity_extractor.load)]
        try:
            for n, (name, load) in enumerate(steps):
                if progress is not None:
                    progress(name, n, len(steps))
                load()
            if progress is not None:
                progress("ready", len(steps), len(steps))
        except Exception as exc:  # noqa: BLE001 - raised again when the model is first used
            self._load_error = exc
            log.warning("background model load failed: %s", exc)
        finally:
            self._models_ready.set()

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Block until the background model load is done (True) or the timeout passes (False)."""
        return self._models_ready.wait(timeout)

    def wait_for_entities(self, timeout: float | None = None) -> bool:
        """Link every memory still waiting for its entities, in this thread (True when none is left).

        Writes return before spaCy has read the new memories; a background thread links them
        within moments. Call this when the entity signal of search must see every memory.
        """
        self._check_open()
        return self._linker.drain(timeout)

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> "Memory":
        """mem0-style constructor: a mem0 config dict (mapped, see config.from_mem0_config) or
        Loci's own settings; a 'data_dir' key picks the folder."""
        data = dict(config_dict or {})
        if is_mem0_config(data):
            data_dir, config = from_mem0_config(data)
            return cls(data_dir, config, **kwargs)
        data_dir = data.pop("data_dir", None)
        return cls(data_dir, data, **kwargs)

    # -- context manager / lifecycle -------------------------------------------------
    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the store; the object cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        try:
            try:
                self._linker.close()  # links for up to 2 s; the rest is linked after the next open
            except LociError as exc:  # the queue keeps them: the next open tries again
                log.warning("entities not linked on close: %s", exc)
            with self._write_lock:  # snapshot the indexes: a clean close opens faster next time
                self._retriever.save()
        finally:
            self._release_files()

    def _release_files(self) -> None:
        vectors = getattr(self, "_vectors", None)  # None while __init__ has not opened it yet
        ledger = getattr(self, "_ledger", None)
        try:
            if vectors is not None:
                vectors.close()
            if ledger is not None:
                ledger.close()
        finally:
            self._lock.release()

    def check_integrity(self, *, full: bool = True, progress: Progress | None = None) -> IntegrityReport:
        """Compare the memories with their vectors (every id when full) and repair the vectors."""
        self._check_open()
        with self._write_lock:
            report = reconcile(self._ledger, self._vectors, self.embedder, full=full,
                               progress=progress)
            if report.repairs:
                self._retriever.reset()
        return report

    def backup(self, reason: str = "manual", *, keep: int | None = None) -> Snapshot:
        """A consistent snapshot of this store under <data_dir>/backups, keeping the newest N."""
        self._check_open()
        if not isinstance(reason, str) or not reason.isidentifier() or not reason.isascii():
            raise InvalidInputError(f"A backup reason is one word, not {reason!r}.")
        if keep is not None:
            _check_count(keep, "keep", 1, 10_000)
        with self._write_lock:
            return create_snapshot(self.data_dir, reason=reason,
                                   **({"keep": keep} if keep is not None else {}))

    def backup_if_due(self, max_age_hours: float = 24.0) -> Snapshot | None:
        """The daily backup: a snapshot when the newest is older than max_age_hours (GUI timer)."""
        from datetime import timedelta

        self._check_open()
        if isinstance(max_age_hours, bool) or not isinstance(max_age_hours, (int, float)) or \
                not 0 <= max_age_hours <= 24 * 365 * 100:
            raise InvalidInputError(f"max_age_hours must be a number of hours, not {max_age_hours!r}.")
        if is_due(self.data_dir, timedelta(hours=max_age_hours)):
            return self.backup("daily")
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("This memory store has been closed; open it again to use it.")

    # -- add -------------------------------------------------------------------------
    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: Mapping[str, Any] | None = None,
            timestamp: Any = None, infer: bool = True, memory_type: str | None = None,
            prompt: str | None = None, progress: Progress | None = None,
            cancel: Any = None, expiration_date: Any = None) -> dict[str, Any]:
        """Store messages as memories.

        Every non-system message is kept as said, as a memory of type "message" (an episode),
        whatever `infer` is. With infer=True, facts extracted from the messages are added on top,
        each linked to its episodes through their messages (see linked_records); "results" then
        lists the new facts only (mem0's shape) and "episodes" the messages stored.
        expiration_date (YYYY-MM-DD) hides the memories from search and get_all after that day.
        """
        self._check_open()
        scope = _scope(user_id, agent_id, run_id)
        _check_flag(infer, "infer")
        if prompt is not None:
            _check_text(prompt, "prompt", MAX_MESSAGE_CHARS)
        meta = _drop_scope_keys(_check_metadata(metadata), "add()")
        if expiration_date is not None:
            meta[EXPIRATION_KEY] = _expiration_day(expiration_date)
        if isinstance(messages, (list, tuple)) and not messages:
            return {"results": []}  # mem0: an empty message list stores nothing
        when = _parse_time(timestamp)
        msgs = _to_messages(messages, scope, when)
        if memory_type not in (None, "procedural_memory"):
            raise InvalidInputError(f"Unknown memory_type '{memory_type}'. Use None or 'procedural_memory'.")
        with self._linker.writing():  # entity linking waits for a pause in writes
            if not infer and memory_type is None:
                return self._add_raw(msgs, scope, meta)
            return self._add_inferred(msgs, scope, meta, memory_type, prompt, progress, cancel)

    def _episodes(self, msgs: list[Message], scope: Scope, meta: dict[str, Any]) -> list[MemoryRecord]:
        """Every non-system message as a searchable memory of type "message", text as said."""
        return [self._new_record(m.content, scope, {**meta, **m.metadata}, m.timestamp, m.role, m.name,
                                 EPISODE, None, (m.id,), ()) for m in msgs if m.role != "system"]

    def _add_raw(self, msgs: list[Message], scope: Scope, meta: dict[str, Any]) -> dict[str, Any]:
        records = self._episodes(msgs, scope, meta)
        vectors = self.embedder.embed_batch([r.memory for r in records])  # no lock: writers embed at once
        with self._write_lock:
            self._commit(records, vectors, msgs)
        return {"results": [_event(r, "ADD") for r in records]}

    def _add_inferred(self, msgs: list[Message], scope: Scope, meta: dict[str, Any],
                      memory_type: str | None, prompt: str | None, progress: Progress | None,
                      cancel: Any) -> dict[str, Any]:
        """Episodes (every message as said) plus the facts extracted from them, linked by message id.

        Returns mem0's shape: "results" holds the new facts only; the episodes stored alongside
        are listed under "episodes", and each fact names its episodes under "episode_ids".
        """
        extractor = self._get_extractor()
        new = [m for m in msgs if m.role != "system"]
        last = new[-1] if new else msgs[-1]
        if memory_type == "procedural_memory":
            summary = extractor.summarize_procedure(msgs, prompt=prompt)
            record = self._new_record(summary, scope, meta, last.timestamp, "assistant", None,
                                      "procedural_memory", None, tuple(m.id for m in msgs), ())
            with self._write_lock:
                self._commit([record], self.embedder.embed_batch([summary]), msgs)
            return {"results": [_event(record, "ADD")]}
        context = self._ledger.recent_messages(scope.as_dict(), self.config.extraction.context_messages)
        existing: list[str] = []
        if new and extractor.wants_existing:
            existing = [s.record.memory for s in self.search_records(
                " ".join(m.content for m in new)[:2000], top_k=self.config.extraction.similar_memories,
                filters={**scope.as_dict(), "memory_type": {"ne": EPISODE}})]
        result = extractor.extract(new, context=context, existing=existing, prompt=prompt,
                                   progress=progress, cancel=cancel)
        episodes = self._episodes(msgs, scope, meta)
        facts: list[MemoryRecord] = []
        for cand in result.candidates:
            sources = tuple(new[i] for i in cand.source_indices if 0 <= i < len(new)) or (last,)
            head = sources[0]
            facts.append(self._new_record(cand.text, scope, {**meta, **head.metadata}, head.timestamp,
                                          head.role, head.name, cand.memory_type, cand.event_date,
                                          tuple(m.id for m in sources), tuple(cand.entities)))
        if cancel is not None and getattr(cancel, "is_cancelled", False):
            raise ExtractionError("The import was cancelled; nothing was stored.")
        with self._write_lock:
            vectors = self.embedder.embed_batch([r.memory for r in episodes + facts])
            fact_vectors = vectors[len(episodes):]
            keep, events = self._dedupe(facts, fact_vectors, scope)
            kept = [facts[i] for i in keep]
            rows = np.concatenate([vectors[:len(episodes)], fact_vectors[keep]]) if keep else vectors[:len(episodes)]
            self._commit(episodes + kept, rows, msgs)
        episode_of = {r.source_message_ids[0]: r.id for r in episodes}
        for fact, event in zip(facts, events):
            event["episode_ids"] = [episode_of[m] for m in fact.source_message_ids if m in episode_of]
        out: dict[str, Any] = {"results": events, "episodes": [_event(r, "ADD") for r in episodes]}
        if result.dropped:
            out["dropped"] = list(result.dropped)
        if result.uncovered:
            out["uncovered_messages"] = [new[i].id for i in result.uncovered if 0 <= i < len(new)]
        return out

    def _dedupe(self, records: list[MemoryRecord], vectors: np.ndarray,
                scope: Scope) -> tuple[list[int], list[dict[str, Any]]]:
        """ADD-only: drop exact or near duplicates of known facts (reported as NONE).

        Episodes are never duplicates: a fact that repeats its own message still adds the
        speaker's name and absolute dates, and the search collapses the two (engine/search/collapse.py).
        """
        keep: list[int] = []
        events: list[dict[str, Any]] = []
        threshold = self.config.extraction.duplicate_threshold
        where = scope.as_dict()
        from .search.filters import chroma_where

        for i, rec in enumerate(records):
            same = self._ledger.find_hash(where, rec.hash, exclude_type=EPISODE)
            if same is None:
                for j in keep:
                    if float(vectors[i] @ vectors[j]) >= threshold or records[j].hash == rec.hash:
                        same = records[j].id
                        break
            if same is None:
                hits = [h for h in self._vectors.query(vectors[i], 4, chroma_where(where)) if h[1] >= threshold]
                known = self._ledger.get_many([h[0] for h in hits]) if hits else {}
                same = next((h[0] for h in hits if h[0] in known and known[h[0]].memory_type != EPISODE),
                            None)
            if same is None:
                keep.append(i)
                events.append(_event(rec, "ADD"))
            else:
                events.append({"id": same, "memory": rec.memory, "event": "NONE"})
        return keep, events

    def _new_record(self, text: str, scope: Scope, meta: Mapping[str, Any], when: datetime,
                    role: str | None, actor: str | None, memory_type: str | None,
                    event_date: str | None, sources: tuple[str, ...],
                    entities: tuple[str, ...]) -> MemoryRecord:
        now = utcnow()
        if event_date is None:
            event_date = _event_date(text, when)
        return MemoryRecord(id=str(uuid.uuid4()), memory=text, hash=content_hash(text), scope=scope,
                            created_at=now, updated_at=now, timestamp=when, metadata=dict(meta),
                            role=role, actor=actor, memory_type=memory_type, event_date=event_date,
                            source_message_ids=sources, entities=entities)

    def _commit(self, records: Sequence[MemoryRecord], vectors: np.ndarray,
                messages: Sequence[Message] = (), event: str = "ADD", actor: str | None = None) -> None:
        """The one write path for new memories (see the class docstring for the order).

        Entities are not looked for here: the memories are queued in the same transaction and
        the entity linker links them in batches (engine/search/entity_linker.py).
        """
        ids = [r.id for r in records]
        self._ledger.journal_begin(ids)
        try:
            self._vectors.upsert(ids, vectors, [_vector_meta(r) for r in records])
            with self._ledger.transaction() as db:
                self._ledger.insert_messages(db, messages)
                self._ledger.insert_memories(db, records)
                if event == "ADD":
                    self._ledger.add_histories(db, [(r.id, "ADD", None, r.memory, r.actor, r.role,
                                                     r.created_at) for r in records])
                else:  # RESTORE (undo of a delete): now, by whoever undid it
                    self._ledger.add_histories(db, [(r.id, event, None, r.memory, actor, None, None)
                                                    for r in records])
                self._ledger.queue_entities(db, ids)
                self._ledger.journal_clear(db, ids)
        except StoreError:
            self._repair_after_failure()
            raise
        self._retriever.refresh(records, (), {})
        self._linker.notify(ids)

    def _repair_after_failure(self) -> None:
        """Undo a write that failed after its journal entry: the vectors follow SQLite again.

        When that fails too (disk still full, vector store hung), the journal keeps the ids
        and the next open finishes the repair.
        """
        try:
            self._recover()
        except StoreError as exc:
            log.warning("repair after a failed write postponed to the next open: %s", exc)

    def _with_entities(self, records: Sequence[MemoryRecord]
                       ) -> tuple[list[MemoryRecord], dict[str, list[tuple[str, str, str]]]]:
        """Find the entities each memory mentions (spaCy) merged with those the extractor gave
        (an update links its new text at once; new memories go through the entity linker)."""
        found = self._entity_extractor.extract_many([r.memory for r in records])
        out: list[MemoryRecord] = []
        mentions: dict[str, list[tuple[str, str, str]]] = {}
        for rec, ms in zip(records, found):
            mentions[rec.id] = links(ms, rec.entities)
            out.append(replace(rec, entities=tuple(t for _, t, _ in mentions[rec.id])))
        return out, mentions

    def _linked(self, records: list[MemoryRecord]) -> list[MemoryRecord]:
        """The records with their entity links, linking any still queued first (a read shows them)."""
        waiting = [r.id for r in records if self._linker.is_pending(r.id)]
        if not waiting:
            return records
        self._linker.link_now(waiting)
        fresh = self._ledger.get_many(waiting)
        return [fresh.get(r.id, r) for r in records]

    def _recover(self) -> None:
        """Finish or undo writes a crash interrupted (journal entries left behind)."""
        pending = self._ledger.journal_pending()
        if not pending:
            return
        rows = self._ledger.get_many(pending)
        alive = [rows[i] for i in pending if i in rows]
        self._vectors.delete([i for i in pending if i not in rows])
        if alive:
            vectors = self.embedder.embed_batch([r.memory for r in alive])
            self._vectors.upsert([r.id for r in alive], vectors, [_vector_meta(r) for r in alive])
        with self._ledger.transaction() as db:
            self._ledger.journal_clear(db, pending)
        log.warning("recovered %d interrupted writes", len(pending))

    # -- read ------------------------------------------------------------------------
    def search(self, query: str, *, top_k: int = 20, filters: Mapping[str, Any] | None = None,
               threshold: float | None = None, rerank: bool = False, explain: bool = False,
               reference_date: Any = None, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, limit: int | None = None,
               all_scopes: bool = False, show_expired: bool = False) -> dict[str, Any]:
        """Memories that best match the query, best first, within the filters.

        Ranking fuses semantic similarity, BM25 keywords, entity matches and time (see
        engine/search/fusion.py); explain=True adds every signal's score to each result. rerank is
        accepted for mem0 compatibility and does nothing: no local cross-encoder ships on PyPI.
        Like mem0, a search names whose memories it looks in (user_id, agent_id or run_id, as
        keywords or in filters); all_scopes=True searches every user's memories instead.
        """
        self._check_open()
        top_k = top_k if limit is None else limit
        nothing = top_k == 0 and isinstance(top_k, int) and not isinstance(top_k, bool)
        if not nothing:
            _check_count(top_k, "top_k (or limit)", 1, MAX_TOP_K)
        merged = _merge_scope(filters, user_id, agent_id, run_id)
        _require_scope(merged, all_scopes, "search")
        _check_flag(explain, "explain")
        _check_flag(rerank, "rerank")
        _check_flag(show_expired, "show_expired")
        if nothing:
            return {"results": []}  # mem0: top_k=0 returns no results
        hits = self.search_records(query, top_k=top_k, filters=merged, threshold=threshold,
                                   reference_date=reference_date, show_expired=show_expired)
        return {"results": [h.to_dict(explain=explain, threshold=threshold) for h in hits]}

    def search_records(self, query: str, *, top_k: int = 20, filters: Mapping[str, Any] | None = None,
                       threshold: float | None = None, reference_date: Any = None,
                       options: SearchOptions = SearchOptions(),
                       show_expired: bool = False) -> list[ScoredMemory]:
        """search() returning typed records (for front ends); expired memories only when asked."""
        self._check_open()
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The search query is empty; type what you are looking for.")
        _check_text(query, "query", MAX_QUERY_CHARS)
        _check_count(top_k, "top_k (or limit)", 1, MAX_TOP_K)
        predicate = _unexpired(compile_filters(filters), show_expired)
        ref = _parse_time(reference_date)
        if threshold is None:
            threshold = self.config.search.default_threshold
        elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
                not math.isfinite(threshold):
            raise InvalidInputError(f"threshold must be a number (a minimum score such as 0.3), "
                                    f"not {threshold!r}.")
        evidence = self.config.search.evidence
        if evidence not in ("all", *PREFERENCES):
            raise ConfigError(f"search.evidence is {evidence!r}; use episode, fact, best or all.")
        hits = self._retriever.search(query, top_k=top_k if evidence == "all" else top_k * 3,
                                      filters=dict(filters or {}), predicate=predicate,
                                      threshold=threshold, reference_date=ref, options=options)
        return hits if evidence == "all" else collapse(hits, top_k, prefer=evidence)

    def answer(self, question: str, *, filters: Mapping[str, Any] | None = None,
               user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
               budget_words: int = 300, reference_date: Any = None, llm: Any = None) -> Answer:
        """Answer a question from the memories: search, a context of `budget_words` words, the LLM.

        `llm` is anything with `complete(messages, *, max_tokens, stop)`; default: the local model.
        """
        from .assistant.answer import answer
        from .inference.llm import LlamaCppLLM

        if not isinstance(budget_words, int) or isinstance(budget_words, bool) or budget_words < 1:
            raise InvalidInputError(f"budget_words must be a positive whole number, not {budget_words!r}.")
        if llm is None:
            llm = self.language_model()
            if not hasattr(llm, "complete"):  # a given extraction-only model cannot answer
                llm = LlamaCppLLM(self.config.llm)
        return answer(self, llm, question, filters=_merge_scope(filters, user_id, agent_id, run_id),
                      budget_words=budget_words, reference_date=reference_date)

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or None when there is none (as mem0); get_record() raises instead."""
        self._check_open()
        _check_id(memory_id)
        rec = self._ledger.get(memory_id)
        if rec is None:
            return None
        return {**self._linked([rec])[0].to_dict(), "score": None}

    def get_record(self, memory_id: str) -> MemoryRecord:
        self._check_open()
        _check_id(memory_id)
        rec = self._ledger.get(memory_id)
        if rec is None:
            raise NotFoundError(f"No memory with id '{memory_id}'. It may have been deleted.")
        return self._linked([rec])[0]

    def get_all(self, *, filters: Mapping[str, Any] | None = None, top_k: int = 20, offset: int = 0,
                user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                limit: int | None = None, all_scopes: bool = False,
                show_expired: bool = False) -> dict[str, Any]:
        """Memories matching the filters, oldest first (as mem0), 20 by default; page with offset.

        Like search(), it needs a scope (user_id, agent_id or run_id) unless all_scopes=True.
        """
        self._check_open()
        top_k = top_k if limit is None else limit
        _check_count(top_k, "top_k (or limit)", 1, MAX_PAGE)
        merged = _merge_scope(filters, user_id, agent_id, run_id)
        _require_scope(merged, all_scopes, "list")
        _check_flag(show_expired, "show_expired")
        records = self.list_records(filters=merged, top_k=top_k, offset=offset, oldest_first=True,
                                    show_expired=show_expired)
        return {"results": [r.to_dict() for r in records]}

    def list_records(self, *, filters: Mapping[str, Any] | None = None, top_k: int = 100,
                     offset: int = 0, oldest_first: bool = False,
                     show_expired: bool = False) -> list[MemoryRecord]:
        """Memories matching the filters, newest first unless oldest_first; expired ones only when asked."""
        self._check_open()
        _check_count(top_k, "top_k", 0, MAX_PAGE)
        _check_count(offset, "offset", 0, MAX_PAGE)
        filters = _filter_dict(filters)
        scope = scope_of(filters)
        if set(filters) <= set(scope):  # only literal scope keys: let SQLite page
            return self._linked(self._ledger.page(scope, offset, top_k, oldest_first=oldest_first,
                                                  unexpired_on=None if show_expired else _today()))
        if _names_entities(filters):
            self._linker.drain()
        predicate = _unexpired(compile_filters(filters), show_expired)
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
        return self._linked(out)

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        """How many memories match the filters."""
        self._check_open()
        filters = _filter_dict(filters)
        scope = scope_of(filters)
        if set(filters) <= set(scope):
            return self._ledger.count(scope)
        if _names_entities(filters):
            self._linker.drain()
        predicate = compile_filters(filters)
        return sum(1 for r in self._ledger.iter_scope(scope) if predicate(r))

    def scopes(self) -> list[ScopeCount]:
        """Every user, agent and session with its memory count."""
        self._check_open()
        return self._ledger.scope_counts()

    def entities(self, filters: Mapping[str, Any] | None = None) -> list[Entity]:
        """The people, places and things memories mention, with how many memories mention each."""
        self._check_open()
        scope = scope_of(_filter_dict(filters))
        self._linker.drain()  # counts include every memory stored so far
        return [Entity(name=text, label=label, memory_count=n)
                for _key, text, label, n in self._retriever.entity_counts(scope)]

    def entity_memories(self, name: str, filters: Mapping[str, Any] | None = None) -> list[MemoryRecord]:
        """Memories linked to an entity (matched by its normalised name), newest first."""
        self._check_open()
        _check_text(name, "entity name", MAX_QUERY_CHARS)
        filters = _filter_dict(filters)
        predicate = compile_filters(filters)
        self._linker.drain()
        ids = self._retriever.entity_memory_ids(name, scope_of(filters))
        rows = self._ledger.get_many(list(ids))
        out = [r for r in rows.values() if predicate(r)]
        out.sort(key=lambda r: r.created_at, reverse=True)
        return out

    def messages(self, filters: Mapping[str, Any] | None = None, *, limit: int = 200) -> list[Message]:
        """The last stored conversation messages of a user, agent or session, oldest first."""
        self._check_open()
        return self._ledger.recent_messages(scope_of(dict(filters or {})), limit)

    def warm_up(self) -> None:
        """Load the embedding model and build the search indexes now (front ends call this)."""
        load = getattr(self.embedder, "load", None)
        if load:
            load()
        self._retriever.warm_up()

    def disk_usage(self) -> int:
        """Bytes the store takes on disk, measured as after a restart (the SQLite log is folded in)."""
        self._check_open()
        self._ledger.checkpoint()
        total = 0
        for path in self.data_dir.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except OSError:
                continue
        return total

    def source_messages(self, memory_id: str) -> list[Message]:
        """Provenance: the stored messages a memory came from."""
        return self._ledger.messages(list(self.get_record(memory_id).source_message_ids))

    def linked_records(self, memory_id: str) -> list[MemoryRecord]:
        """The episodes a fact came from, or the facts drawn from an episode (shared messages)."""
        rec = self.get_record(memory_id)
        return [r for r in self._ledger.from_messages(list(rec.source_message_ids))
                if r.id != rec.id and (r.memory_type == EPISODE) != (rec.memory_type == EPISODE)]

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """The audit log of one memory, oldest first; [] for an unknown id (as mem0)."""
        self._check_open()
        _check_id(memory_id)
        return [e.to_dict() for e in self._ledger.history(memory_id)]

    def history_records(self, memory_id: str) -> list[HistoryEvent]:
        self._check_open()
        _check_id(memory_id)
        events = self._ledger.history(memory_id)
        if not events:
            raise NotFoundError(f"No memory with id '{memory_id}' and no history for it.")
        return events

    # -- change ----------------------------------------------------------------------
    def update(self, memory_id: str, text: str | None = None,
               metadata: Mapping[str, Any] | None = None, expiration_date: Any = _UNSET, *,
               data: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """Change a memory's text and/or merge keys into its metadata (as mem0); in history.

        expiration_date sets (YYYY-MM-DD) or clears (None) the expiry. Scope keys inside
        metadata are dropped with a warning: a memory's owner does not change. A missing id
        raises NotFoundError, which is also a ValueError (mem0 raises ValueError).
        """
        text = text if text is not None else data
        if text is None and metadata is None and expiration_date is _UNSET:
            raise InvalidInputError("Nothing to update: give new text, new metadata or both.")
        meta = _check_metadata(metadata) if metadata is not None else None
        with self._write_lock:
            merged: dict[str, Any] | None = None
            if meta is not None or expiration_date is not _UNSET:
                old = self.get_record(memory_id)
                merged = {**old.metadata, **_drop_scope_keys(meta or {}, "update()", old.scope)}
                if expiration_date is not _UNSET:
                    merged.pop(EXPIRATION_KEY, None)
                    if expiration_date is not None:
                        merged[EXPIRATION_KEY] = _expiration_day(expiration_date)
            self.update_record(memory_id, text, merged, actor=actor)
        return {"message": "Memory updated successfully!"}

    def update_record(self, memory_id: str, text: str | None = None,
                      metadata: Mapping[str, Any] | None = None, *,
                      actor: str | None = None) -> MemoryRecord:
        self._check_open()
        if text is None and metadata is None:
            raise InvalidInputError("Nothing to update: give new text, new metadata or both.")
        _check_actor(actor)
        if text is not None:
            _check_text(text, "memory text", MAX_MESSAGE_CHARS)
            if _is_blank(text):
                raise InvalidInputError("A memory's text cannot be empty; delete the memory instead.")
        meta = _check_metadata(metadata) if metadata is not None else None
        with self._write_lock:
            old = self.get_record(memory_id)
            new_text = text if text is not None else old.memory
            new_hash = content_hash(new_text)
            new = replace(old, memory=new_text, hash=new_hash,
                          metadata=meta if meta is not None else old.metadata, updated_at=utcnow())
            reembed = new_hash != old.hash
            mentions: dict[str, list[tuple[str, str, str]]] = {}
            if reembed:
                (new,), mentions = self._with_entities([replace(new, entities=())])
                vector = self.embedder.embed_batch([new_text])
                self._ledger.journal_begin([memory_id])
            try:
                if reembed:
                    self._vectors.upsert([memory_id], vector, [_vector_meta(new)])
                with self._ledger.transaction() as db:
                    self._ledger.replace_memory(db, new)
                    if reembed:
                        self._ledger.set_entity_links(db, memory_id, mentions[memory_id])
                    self._ledger.add_history(db, memory_id, "UPDATE", old.memory, new.memory, actor,
                                             None, new.updated_at)
                    self._ledger.journal_clear(db, [memory_id])
            except StoreError:
                if reembed:
                    self._repair_after_failure()
                raise
            if reembed:
                self._retriever.refresh([new], [memory_id], mentions)
        return new

    def delete(self, memory_id: str, *, actor: str | None = None) -> dict[str, Any]:
        """Remove one memory (its history stays)."""
        self.delete_records([self.get_record(memory_id).id], actor=actor)
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, Any]:
        """Remove every memory of a user, agent or session (delete_all("alice") is user_id, as mem0)."""
        scope = _scope(user_id, agent_id, run_id)
        self._check_open()
        ids = [r.id for r in self._ledger.iter_scope(scope.as_dict())]
        self.delete_records(ids)
        return {"message": "Memories deleted successfully!"}

    def delete_records(self, memory_ids: Sequence[str], *, actor: str | None = None) -> int:
        """Delete several memories at once; returns how many were removed."""
        self._check_open()
        _check_actor(actor)
        if isinstance(memory_ids, (str, bytes)) or not isinstance(memory_ids, Sequence):
            raise InvalidInputError("memory_ids must be a list of memory ids.")
        for memory_id in memory_ids:
            _check_id(memory_id)
        with self._write_lock:
            rows = self._ledger.get_many(list(memory_ids))
            ids = [i for i in memory_ids if i in rows]
            if not ids:
                return 0
            # Same order as add: journal, vectors, then rows + history + journal in one
            # transaction. A failure or crash before that commit leaves the memories in place
            # and their vectors are re-embedded from the journal (now, or when the store opens).
            self._ledger.journal_begin(ids)
            try:
                self._vectors.delete(ids)
                with self._ledger.transaction() as db:
                    for i in ids:
                        self._ledger.delete_memory(db, i)
                        self._ledger.drop_entity_links(db, i)
                        self._ledger.add_history(db, i, "DELETE", rows[i].memory, None, actor, None)
                    self._ledger.journal_clear(db, ids)
            except StoreError:
                self._repair_after_failure()
                raise
            self._retriever.refresh((), ids, {})
        return len(ids)

    def restore_record(self, record: MemoryRecord, *, actor: str | None = None) -> MemoryRecord:
        """Put a deleted memory back with its id (undo of delete); recorded as RESTORE in history."""
        self._check_open()
        if not isinstance(record, MemoryRecord):
            raise InvalidInputError(f"restore_record takes a MemoryRecord, not {type(record).__name__}.")
        with self._write_lock:
            if self._ledger.get(record.id) is not None:
                return record
            vectors = self.embedder.embed_batch([record.memory])
            event = "RESTORE" if self._ledger.has_history(record.id) else "ADD"
            self._commit([record], vectors, event=event, actor=actor)
        return record

    def restore_exported(self, items: Sequence[ExportedMemory], *,
                         actor: str | None = "restored from export") -> int:
        """Write exported memories back as they were (engine/store/export.py); returns how many.

        Ids, texts, times, scopes, metadata, entities, history rows and source messages are kept.
        A memory already present (same id, or the same text in the same scope) is skipped, so a
        second restore of one file adds nothing. A memory whose id has history here already
        (it was deleted) gets a RESTORE event after its exported history.
        """
        self._check_open()
        with self._write_lock:
            fresh: list[ExportedMemory] = []
            taken: set[tuple[Scope, str]] = set()
            for item in items:
                rec = item.record
                if (rec.scope, rec.hash) in taken or self._ledger.get(rec.id) is not None:
                    continue
                same = self._ledger.find_hash(rec.scope.as_dict(), rec.hash)
                if same is not None and (found := self._ledger.get(same)) is not None \
                        and found.scope == rec.scope:
                    continue
                taken.add((rec.scope, rec.hash))
                fresh.append(item)
            if not fresh:
                return 0
            records = [item.record for item in fresh]
            vectors = self.embedder.embed_batch([r.memory for r in records])
            ids = [r.id for r in records]
            known = {i for i in ids if self._ledger.has_history(i)}
            self._ledger.journal_begin(ids)
            self._vectors.upsert(ids, vectors, [_vector_meta(r) for r in records])
            with self._ledger.transaction() as db:
                self._ledger.restore_messages(db, [m for item in fresh for m in item.messages])
                for item in fresh:
                    r = item.record
                    self._ledger.insert_memory(db, r)
                    if item.history:
                        self._ledger.restore_history(db, item.history)
                    else:
                        self._ledger.add_history(db, r.id, "ADD", None, r.memory, r.actor, r.role,
                                                 r.created_at)
                    if r.id in known:
                        self._ledger.add_history(db, r.id, "RESTORE", None, r.memory, actor, None)
                self._ledger.queue_entities(db, ids)  # linked by the entity linker, as new memories
                self._ledger.journal_clear(db, ids)
            self._retriever.refresh(records, (), {})
            self._linker.notify(ids)
        return len(fresh)

    def reset(self) -> None:
        """Delete every memory, message and history row in this store."""
        self._check_open()
        with self._write_lock:
            self._ledger.journal_begin(self._ledger.ids())
            try:
                self._vectors.wipe()
                self._ledger.wipe()  # clears the journal and the entity queue in the same transaction
                self._linker.forget()
            except StoreError:
                self._repair_after_failure()
                raise
            finally:
                self._retriever.reset()

    # -- extraction ------------------------------------------------------------------
    def language_model(self) -> Any:
        """The local LLM that extraction and chat use, built from the current `config.llm`.

        Changing `config.llm` (model file, threads, GPU layers...) takes effect on the next call:
        a new adapter is made, and llama.cpp reloads because its cache is keyed by those
        settings. A model passed to the constructor is always used as given.
        """
        from .inference.llm import LlamaCppLLM

        if self._llm_given is not None:
            return self._llm_given
        with self._llm_lock:
            if self._llm is None or self._llm_config != self.config.llm:
                self._llm_config = replace(self.config.llm)
                self._llm = LlamaCppLLM(self._llm_config)
                self._extractor = None
            return self._llm

    def _get_extractor(self) -> Any:
        from .extraction import Extractor, Scaffold

        mode = self.config.extraction.mode
        if mode not in ("off", "type", "select", "extract"):
            raise ConfigError(f"extraction.mode is {mode!r}; use off, type, select or extract.")
        llm = self.language_model()  # lazy: a model file loads on its first call only
        with self._llm_lock:
            if self._extractor is None or self._extractor.llm is not llm \
                    or self._extractor.config != self.config.extraction \
                    or self._extractor.scaffold.model != mode:
                self._extractor = Extractor(llm, self.config.extraction, scaffold=Scaffold(model=mode))
            return self._extractor


def doctor(data_dir: str | Path, *, config: Any = None, embedder: Embedder | None = None,
           progress: Progress | None = None) -> IntegrityReport:
    """`loci doctor`: check a closed store fully and repair what can be (engine/store/integrity.py)."""
    return check_and_repair(Path(data_dir), lambda: Memory(data_dir, config, embedder=embedder, progress=progress),
                            progress=progress)


def _check_dimension(config: LociConfig, embedder: Embedder) -> None:
    wanted = config.embedder.dimension
    if wanted and embedder.dimension and wanted != embedder.dimension:
        raise ConfigError(f"embedding_dims is {wanted}, but the embedding model '{embedder.name}' makes "
                          f"{embedder.dimension}-dimensional vectors. Set it to {embedder.dimension} "
                          "or leave it out.")


# -- input checking --------------------------------------------------------------------
def _check_id(memory_id: Any) -> None:
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise InvalidInputError(f"A memory id must be a non-empty string, not {memory_id!r}.")
    _check_text(memory_id, "memory id", MAX_ID_CHARS)


def _filter_dict(filters: Any) -> dict[str, Any]:
    """A copy of a filter dict, checked (InvalidInputError when it cannot be used)."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}.")
    compile_filters(filters)
    return dict(filters or {})


def _names_entities(filters: Any) -> bool:
    """True when a filter (at any depth) tests a memory's entities."""
    if isinstance(filters, Mapping):
        return any(k in ("entities", "entity") or _names_entities(v) for k, v in filters.items())
    if isinstance(filters, (list, tuple)):
        return any(_names_entities(v) for v in filters)
    return False


def _check_flag(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, not {value!r}.")


def _check_count(value: Any, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be a whole number from {low} to {high:,}, not {value!r}.")


def _check_actor(actor: Any) -> None:
    if actor is not None:
        _check_text(actor, "actor", 200)


def _is_blank(text: str) -> bool:
    """Nothing a person could read: only spaces, control characters or format marks."""
    return all(unicodedata.category(ch)[0] in "CZ" for ch in text)


def _require_scope(filters: Mapping[str, Any], all_scopes: Any, doing: str) -> None:
    _check_flag(all_scopes, "all_scopes")
    compile_filters(filters)  # a malformed filter is the more useful message
    if not all_scopes and not names_scope(filters):
        raise InvalidInputError(
            f"Say whose memories to {doing}: give user_id, agent_id or run_id (or the same keys in "
            f"filters). To {doing} every user's memories on purpose, pass all_scopes=True.")


def _check_text(text: Any, what: str, limit: int) -> None:
    if not isinstance(text, str):
        raise InvalidInputError(f"The {what} must be text, not {type(text).__name__}.")
    if len(text) > limit:
        raise InvalidInputError(f"The {what} is {len(text):,} characters long; the limit is {limit:,}. "
                                "Split it into smaller messages.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"The {what} contains characters that are not valid Unicode "
                                f"(position {exc.start}); fix the encoding and try again.") from exc
    if "\x00" in text:
        raise InvalidInputError(f"The {what} contains a NUL character (\\x00); remove it and try again.")


def _scope_value(value: Any) -> Any:
    """mem0 turns integer ids (a database key, say) into text; so does Loci."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _scope(user_id: Any, agent_id: Any, run_id: Any) -> Scope:
    user_id, agent_id, run_id = _scope_value(user_id), _scope_value(agent_id), _scope_value(run_id)
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
        if value is not None and (not isinstance(value, str) or not value.strip() or value == "*"):
            raise InvalidInputError(f"{name} must be a non-empty string, not {value!r}.")
        if value is not None:
            _check_text(value, name, 200)
    scope = Scope(user_id, agent_id, run_id)
    if scope.is_empty:
        raise InvalidInputError("Say whose memory this is: give at least one of user_id, agent_id "
                                "or run_id.")
    return scope


def _merge_scope(filters: Mapping[str, Any] | None, user_id: str | None, agent_id: str | None,
                 run_id: str | None) -> dict[str, Any]:
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}.")
    merged = dict(filters or {})
    for key in SCOPE_KEYS:
        if key in merged:
            merged[key] = _scope_value(merged[key])
    for key, value in zip(SCOPE_KEYS, (user_id, agent_id, run_id)):
        if value is not None:
            value = _scope_value(value)
            if key in merged and scope_of({key: merged[key]}).get(key) != value:
                raise InvalidInputError(f"{key}={value!r} conflicts with {key} {merged[key]!r} in "
                                        "filters; give the scope once.")
            merged[key] = value
    return merged


def _drop_scope_keys(meta: dict[str, Any], where: str, scope: Scope | None = None) -> dict[str, Any]:
    """mem0's rule: who a memory belongs to is set by user_id/agent_id/run_id, never by metadata.

    A scope key inside metadata is dropped, with a warning unless it repeats the memory's scope.
    """
    clean: dict[str, Any] = {}
    for key, value in meta.items():
        if key not in (*SCOPE_KEYS, "actor_id"):
            clean[key] = value
        elif scope is None or value != getattr(scope, key, None):
            log.warning("%s: ignoring metadata['%s']; set the owner with user_id, agent_id or run_id",
                        where, key)
    return clean


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _unexpired(predicate: Predicate, show_expired: bool) -> Predicate:
    if show_expired:
        return predicate
    today = _today()
    return lambda r: predicate(r) and not r.is_expired(today)


def _expiration_day(value: Any) -> str:
    """A YYYY-MM-DD text from a date, datetime or ISO date text (mem0's accepted forms)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise InvalidInputError(f"expiration_date must be a date like '2025-12-31', not {value!r}.")


def _check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, not {type(metadata).__name__}.")
    _check_json_value(metadata, "metadata", 0)
    text = json.dumps(dict(metadata), allow_nan=False)
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(f"metadata is {len(text):,} characters long as JSON; the limit is "
                                f"{MAX_MESSAGE_CHARS:,}.")
    return dict(metadata)


def _check_json_value(value: Any, where: str, depth: int) -> None:
    """Text (valid Unicode), finite numbers, booleans, None, and lists or dicts of them."""
    if depth > MAX_NESTING:
        raise InvalidInputError(f"metadata is nested more than {MAX_NESTING} levels deep at {where}.")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, f"value of {where}", MAX_MESSAGE_CHARS)
    elif isinstance(value, int):
        if abs(value) >= 2**63:
            raise InvalidInputError(f"The number at {where} is too large to store.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"The number at {where} is {value}; use a finite number.")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"metadata keys must be strings, not {key!r} (in {where}).")
            _check_text(key, f"key in {where}", 200)
            _check_json_value(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            _check_json_value(item, f"{where}[{n}]", depth + 1)
    else:
        raise InvalidInputError(f"metadata must hold only text, numbers, booleans, lists and dicts; "
                                f"{where} is a {type(value).__name__}.")


def _parse_time(value: Any) -> datetime:
    if value is None:
        return utcnow()
    from .extraction.temporal import parse_timestamp

    return parse_timestamp(value)


def _event_date(text: str, when: datetime) -> str | None:
    from .extraction.temporal import resolve_event_date

    window = resolve_event_date(text, when)
    return window.iso() if window else None


def _to_messages(messages: Any, scope: Scope, when: datetime) -> list[Message]:
    if isinstance(messages, str):
        items: list[Any] = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        items = [messages]
    elif isinstance(messages, (list, tuple)):
        items = list(messages)
    else:
        raise InvalidInputError("messages must be a string, a message dict or a list of "
                                f"{{'role', 'content'}} dicts, not {type(messages).__name__}.")
    if not items:
        raise InvalidInputError("There is nothing to remember: the message list is empty.")
    out: list[Message] = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"Message {n + 1} must be a dict with 'role' and 'content', "
                                    f"not {type(item).__name__}.")
        role = item.get("role", "user")
        content = item.get("content")
        name = item.get("name")
        if role not in _ROLES:
            raise InvalidInputError(f"Message {n + 1} has role {role!r}; use one of {', '.join(_ROLES)}.")
        _check_text(content, f"content of message {n + 1}", MAX_MESSAGE_CHARS)
        if name is not None:
            _check_text(name, f"name of message {n + 1}", 200)
        msg_time = _parse_time(item["timestamp"]) if item.get("timestamp") is not None else when
        out.append(Message(id=str(uuid.uuid4()), role=role, content=str(content), timestamp=msg_time,
                           name=name or None, scope=scope,
                           metadata=_check_metadata(item.get("metadata"))))
    if all(_is_blank(m.content) for m in out if m.role != "system"):
        raise InvalidInputError("There is nothing to remember: every message is empty.")
    return [m for m in out if not _is_blank(m.content)]


_vector_meta = vector_meta


def _event(rec: MemoryRecord, event: str) -> dict[str, Any]:
    return {"id": rec.id, "memory": rec.memory, "event": event, "actor_id": rec.actor, "role": rec.role,
            "memory_type": rec.memory_type, "event_date": rec.event_date}
