"""The facade: mem0's Memory API; it checks public arguments and delegates to the engine's rooms."""
from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .arguments import (MAX_MESSAGE_CHARS, MAX_PAGE, MAX_QUERY_CHARS, MAX_TOP_K, UNSET, check_actor, check_count,
                        check_flag, check_hours, check_id, check_metadata, check_reason, check_scope, check_text,
                        drop_scope_keys, expiration_day, is_blank, updated_metadata)
from .assistant.answer import Answer
from .config import LociConfig, from_mem0_config, is_mem0_config
from .errors import InvalidInputError, LociError, StoreError
from .extraction.temporal import timestamp_or_now
from .inference.embeddings import Embedder
from .inference.onnx_embedder import default_embedder
from .inference.preload import Preload
from .inference.shutdown import STORE, install_sigterm_exit, on_exit
from .ingest.adder import Adder
from .ingest.editor import Editor
from .ingest.messages import to_messages
from .ingest.model_owner import Models
from .paths import default_data_dir
from .records import (EPISODE, EXPIRATION_KEY, Entity, HistoryEvent, MemoryRecord, Message, ScoredMemory,
                      content_hash)
from .search.entities import EntityExtractor
from .search.entity_linker import EntityLinker
from .search.reader import Reader
from .search.retrieval import Retriever, SearchOptions
from .search.scoping import merge_scope, require_scope
from .store.backup import Snapshot, create_snapshot, is_due
from .store.export import ExportedMemory
from .store.integrity import IntegrityReport, check_and_repair, reconcile
from .store.ledger import ScopeCount
from .store.folder import disk_usage, lock_folder, make_private, open_store
from .store.reembed import Reembed, ReembedStatus, Watch, open_embedder
from .store.writer import Writer, recover

__all__ = ["Memory", "doctor", "content_hash", "EPISODE"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class Memory:
    """A persistent, offline memory store with mem0's API: checked arguments, work done in the rooms.

    Writes take one path (engine/store/writer.py: journal, vectors, one SQLite transaction; a
    failed or interrupted write is repaired). Entities are linked after the commit by a
    background thread (engine/search/entity_linker.py); reads link what they show first
    (engine/search/reader.py). Opening checks the store (engine/store/integrity.py): missing
    vectors are rebuilt (`open_report` says what was repaired; `progress` sees the rebuild), a
    lost SQLite file beside surviving vectors is refused, a schema migration is backed up first.
    """

    def __init__(self, data_dir: str | Path | None = None,
                 config: LociConfig | Mapping[str, Any] | None = None, *,
                 embedder: Embedder | None = None, llm: Any = None,
                 progress: Progress | None = None, preload: bool = True,
                 load_progress: Callable[[str, int, int], None] | None = None) -> None:
        if data_dir is not None and (not isinstance(data_dir, (str, os.PathLike)) or not str(data_dir).strip()):
            raise InvalidInputError(f"data_dir must be a folder path, not {data_dir!r}.")
        self.config = config if isinstance(config, LociConfig) else LociConfig.from_dict(config)
        self.config.validate()
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self._lock = lock_folder(self.data_dir)
        try:
            self.embedder: Embedder = open_embedder(self.data_dir, self.config, embedder, default_embedder)
            self._vectors, self._ledger = open_store(self.data_dir, self.config, self.embedder)
        except BaseException:
            self._release_files()
            raise
        self._open_indexes(progress)
        self._wire_rooms(llm)
        self._reembed = Reembed(self.data_dir, self.config, self._ledger, self._vectors, self.embedder,
                                self._write_lock, default_embedder)  # vectors moving to the configured precision
        # models load while the caller does other things (no stall on the first write)
        self._preload = Preload([("embedding model", getattr(self.embedder, "load", None) or (lambda: None)),
                                 ("entity model", self._entity_extractor.load)], load_progress, start=preload)
        # closed (threads stopped, indexes saved) when the program ends without close(), too
        self._unregister_exit = on_exit(lambda: self.close(), STORE)
        install_sigterm_exit()

    def _open_indexes(self, progress: Progress | None) -> None:
        """Finish writes a crash interrupted, check the vectors, and start the search indexes."""
        self._write_lock = threading.RLock()
        self._entity_extractor = EntityExtractor()
        self._retriever = Retriever(self._ledger, self._vectors, self.embedder, self.config.search)
        self._closed = False
        try:
            recover(self._ledger, self._vectors, self.embedder)
            self.open_report: IntegrityReport = reconcile(self._ledger, self._vectors, self.embedder,
                                                          progress=progress)
        except BaseException:
            self._release_files()
            raise
        if self.open_report.repairs:
            log.warning("store %s repaired on open: %s", self.data_dir, "; ".join(self.open_report.repairs))
        # starts linking at once when a previous session left memories queued
        self._linker = EntityLinker(self._ledger, self._entity_extractor, self._write_lock, self._linked)

    def _linked(self, records: Sequence[MemoryRecord], mentions: dict[str, list[tuple[str, str, str]]]) -> None:
        """The entity linker wrote these memories' links: search takes them, then _entities_linked."""
        self._retriever.link(records, mentions)
        if records:
            self._entities_linked([r.id for r in records])

    def _entities_linked(self, memory_ids: list[str]) -> None:
        """After a batch of memories got their entity links (a served store tells its clients)."""

    def _wire_rooms(self, llm: Any) -> None:
        """The write path, the read side and the write side built on the open store."""
        self._writer = Writer(self._ledger, self._vectors, self.embedder, self._write_lock,
                              self._retriever, self._linker)
        self._reader = Reader(self._ledger, self._retriever, self._linker, self.config)
        self._models = Models(self.config, llm)  # a caller's model is kept; else built from config.llm
        self._adder = Adder(self._ledger, self._vectors, self.embedder, self._writer, self._reader,
                            self._models, self.config)
        self._editor = Editor(self._reader, self._writer, self.embedder, self._entity_extractor)

    def migration_status(self, watch: Watch | None = None, wait: float | None = 0.0) -> ReembedStatus:
        """The move to the configured embedder precision (store/reembed.py): `watch` hears each step, `wait` blocks."""
        return self._reembed.status(watch, wait)

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Block until the background model load is done (True) or the timeout passes (False)."""
        return self._preload.wait(timeout)

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
        self._unregister_exit()
        try:
            self._reembed.stop()  # after the batch under way: the next open resumes
            self._preload.stop()  # no model may still be loading once the files are released
            try:
                self._linker.close()  # links for up to 2 s; the rest is linked after the next open
            except LociError as exc:  # the queue keeps them: the next open tries again
                log.warning("entities not linked on close: %s", exc)
            with self._write_lock:  # snapshot the indexes: a clean close opens faster next time
                self._retriever.save()
        finally:
            self._release_files()

    def _release_files(self) -> None:
        vectors, ledger = getattr(self, "_vectors", None), getattr(self, "_ledger", None)  # None until opened
        try:
            if vectors is not None:
                vectors.close()
            if ledger is not None:
                ledger.close()
                make_private(self.data_dir)  # what this session created (segments, backups) too
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
        check_reason(reason)
        if keep is not None:
            check_count(keep, "keep", 1, 10_000)
        with self._write_lock:
            return create_snapshot(self.data_dir, reason=reason,
                                   **({"keep": keep} if keep is not None else {}))

    def backup_if_due(self, max_age_hours: float = 24.0) -> Snapshot | None:
        """The daily backup: a snapshot when the newest is older than max_age_hours (GUI timer)."""
        self._check_open()
        check_hours(max_age_hours)
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
        scope = check_scope(user_id, agent_id, run_id)
        check_flag(infer, "infer")
        if prompt is not None:
            check_text(prompt, "prompt", MAX_MESSAGE_CHARS)
        meta = drop_scope_keys(check_metadata(metadata), "add()")
        if expiration_date is not None:
            meta[EXPIRATION_KEY] = expiration_day(expiration_date)
        if isinstance(messages, (list, tuple)) and not messages:
            return {"results": []}  # mem0: an empty message list stores nothing
        msgs = to_messages(messages, scope, timestamp_or_now(timestamp))
        if memory_type not in (None, "procedural_memory"):
            raise InvalidInputError(f"Unknown memory_type '{memory_type}'. Use None or 'procedural_memory'.")
        with self._linker.writing():  # entity linking waits for a pause in writes
            return self._adder.add(msgs, scope, meta, infer=infer, memory_type=memory_type,
                                   prompt=prompt, progress=progress, cancel=cancel)

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
            check_count(top_k, "top_k (or limit)", 1, MAX_TOP_K)
        merged = merge_scope(filters, user_id, agent_id, run_id)
        require_scope(merged, all_scopes, "search")
        check_flag(explain, "explain")
        check_flag(rerank, "rerank")
        check_flag(show_expired, "show_expired")
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
        return self._reader.search(query, top_k=top_k, filters=filters, threshold=threshold,
                                   reference_date=reference_date, options=options,
                                   show_expired=show_expired)

    def answer(self, question: str, *, filters: Mapping[str, Any] | None = None,
               user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
               budget_words: int = 300, reference_date: Any = None, llm: Any = None) -> Answer:
        """Answer a question from the memories: search, a context of `budget_words` words, the LLM.

        `llm` is anything with `complete(messages, *, max_tokens, stop)`; default: the local model.
        """
        from .assistant.answer import answer

        if not isinstance(budget_words, int) or isinstance(budget_words, bool) or budget_words < 1:
            raise InvalidInputError(f"budget_words must be a positive whole number, not {budget_words!r}.")
        llm = llm if llm is not None else self._models.answering_model()
        return answer(self, llm, question, filters=merge_scope(filters, user_id, agent_id, run_id),
                      budget_words=budget_words, reference_date=reference_date)

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or None when there is none (as mem0); get_record() raises instead."""
        self._check_open()
        check_id(memory_id)
        rec = self._reader.get(memory_id)
        return None if rec is None else {**rec.to_dict(), "score": None}

    def get_record(self, memory_id: str, *, link: bool = True) -> MemoryRecord:
        """One memory; link=False returns at once, without waiting for the entity linker (a
        memory still queued for it shows no entities yet)."""
        self._check_open()
        check_id(memory_id)
        check_flag(link, "link")
        return self._reader.get_record(memory_id, link)

    def get_all(self, *, filters: Mapping[str, Any] | None = None, top_k: int = 20, offset: int = 0,
                user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                limit: int | None = None, all_scopes: bool = False,
                show_expired: bool = False) -> dict[str, Any]:
        """Memories matching the filters, oldest first (as mem0), 20 by default; page with offset.

        Like search(), it needs a scope (user_id, agent_id or run_id) unless all_scopes=True.
        """
        self._check_open()
        top_k = top_k if limit is None else limit
        check_count(top_k, "top_k (or limit)", 1, MAX_PAGE)
        merged = merge_scope(filters, user_id, agent_id, run_id)
        require_scope(merged, all_scopes, "list")
        check_flag(show_expired, "show_expired")
        records = self.list_records(filters=merged, top_k=top_k, offset=offset, oldest_first=True,
                                    show_expired=show_expired)
        return {"results": [r.to_dict() for r in records]}

    def list_records(self, *, filters: Mapping[str, Any] | None = None, top_k: int = 100,
                     offset: int = 0, oldest_first: bool = False,
                     show_expired: bool = False, link: bool = True) -> list[MemoryRecord]:
        """Memories matching the filters, newest first unless oldest_first; expired ones only when asked.
        link=False: at once, without waiting for the entity linker (as get_record)."""
        self._check_open()
        check_count(top_k, "top_k", 0, MAX_PAGE)
        check_count(offset, "offset", 0, MAX_PAGE)
        check_flag(link, "link")
        return self._reader.list_records(filters, top_k=top_k, offset=offset, oldest_first=oldest_first,
                                         show_expired=show_expired, link=link)

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        """How many memories match the filters."""
        self._check_open()
        return self._reader.count(filters)

    def scopes(self) -> list[ScopeCount]:
        """Every user, agent and session with its memory count."""
        self._check_open()
        return self._reader.scopes()

    def entities(self, filters: Mapping[str, Any] | None = None) -> list[Entity]:
        """The people, places and things memories mention, with how many memories mention each."""
        self._check_open()
        return self._reader.entities(filters)

    def entity_memories(self, name: str, filters: Mapping[str, Any] | None = None) -> list[MemoryRecord]:
        """Memories linked to an entity (matched by its normalised name), newest first."""
        self._check_open()
        check_text(name, "entity name", MAX_QUERY_CHARS)
        return self._reader.entity_memories(name, filters)

    def messages(self, filters: Mapping[str, Any] | None = None, *, limit: int = 200) -> list[Message]:
        """The last stored conversation messages of a user, agent or session, oldest first."""
        self._check_open()
        return self._reader.messages(filters, limit)

    def warm_up(self) -> None:
        """Load the embedding model and build the search indexes now (front ends call this)."""
        getattr(self.embedder, "load", lambda: None)()
        self._retriever.warm_up()

    def disk_usage(self) -> int:
        """Bytes the store takes on disk, measured as after a restart (the SQLite log is folded in)."""
        self._check_open()
        return disk_usage(self.data_dir, self._ledger)

    def source_messages(self, memory_id: str) -> list[Message]:
        """Provenance: the stored messages a memory came from."""
        return self._reader.source_messages(self.get_record(memory_id, link=False))

    def linked_records(self, memory_id: str) -> list[MemoryRecord]:
        """The episodes a fact came from, or the facts drawn from an episode (shared messages)."""
        return self._reader.linked_records(self.get_record(memory_id))

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """The audit log of one memory, oldest first; [] for an unknown id (as mem0)."""
        self._check_open()
        check_id(memory_id)
        return [e.to_dict() for e in self._reader.history(memory_id)]

    def history_records(self, memory_id: str) -> list[HistoryEvent]:
        self._check_open()
        check_id(memory_id)
        return self._reader.history_records(memory_id)

    # -- change ----------------------------------------------------------------------
    def update(self, memory_id: str, text: str | None = None,
               metadata: Mapping[str, Any] | None = None, expiration_date: Any = UNSET, *,
               data: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """Change a memory's text and/or merge keys into its metadata (as mem0); in history.

        expiration_date sets (YYYY-MM-DD) or clears (None) the expiry. Scope keys inside
        metadata are dropped with a warning: a memory's owner does not change. A missing id
        raises NotFoundError, which is also a ValueError (mem0 raises ValueError).
        """
        text = text if text is not None else data
        if text is None and metadata is None and expiration_date is UNSET:
            raise InvalidInputError("Nothing to update: give new text, new metadata or both.")
        meta = check_metadata(metadata) if metadata is not None else None
        with self._write_lock:
            merged: dict[str, Any] | None = None
            if meta is not None or expiration_date is not UNSET:
                old = self.get_record(memory_id)
                merged = updated_metadata(old.metadata, meta, old.scope, expiration_date)
            self.update_record(memory_id, text, merged, actor=actor)
        return {"message": "Memory updated successfully!"}

    def update_record(self, memory_id: str, text: str | None = None,
                      metadata: Mapping[str, Any] | None = None, *,
                      actor: str | None = None) -> MemoryRecord:
        self._check_open()
        if text is None and metadata is None:
            raise InvalidInputError("Nothing to update: give new text, new metadata or both.")
        check_actor(actor)
        if text is not None:
            check_text(text, "memory text", MAX_MESSAGE_CHARS)
            if is_blank(text):
                raise InvalidInputError("A memory's text cannot be empty; delete the memory instead.")
        meta = check_metadata(metadata) if metadata is not None else None
        check_id(memory_id)
        return self._editor.update(memory_id, text, meta, actor)

    def delete(self, memory_id: str, *, actor: str | None = None) -> dict[str, Any]:
        """Remove one memory (its history stays)."""
        self.delete_records([self.get_record(memory_id).id], actor=actor)
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, Any]:
        """Remove every memory of a user, agent or session (delete_all("alice") is user_id, as mem0)."""
        scope = check_scope(user_id, agent_id, run_id)
        self._check_open()
        ids = [r.id for r in self._ledger.iter_scope(scope.as_dict())]
        self.delete_records(ids)
        return {"message": "Memories deleted successfully!"}

    def delete_records(self, memory_ids: Sequence[str], *, actor: str | None = None) -> int:
        """Delete several memories at once; returns how many were removed."""
        self._check_open()
        check_actor(actor)
        if isinstance(memory_ids, (str, bytes)) or not isinstance(memory_ids, Sequence):
            raise InvalidInputError("memory_ids must be a list of memory ids.")
        for memory_id in memory_ids:
            check_id(memory_id)
        return self._writer.delete(memory_ids, actor)

    def restore_record(self, record: MemoryRecord, *, actor: str | None = None) -> MemoryRecord:
        """Put a deleted memory back with its id (undo of delete); recorded as RESTORE in history."""
        self._check_open()
        if not isinstance(record, MemoryRecord):
            raise InvalidInputError(f"restore_record takes a MemoryRecord, not {type(record).__name__}.")
        self._writer.restore(record, actor)
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
        return self._writer.restore_exported(items, actor)

    def reset(self) -> None:
        """Delete every memory, message and history row in this store."""
        self._check_open()
        self._writer.reset()

    # -- extraction ------------------------------------------------------------------
    def language_model(self) -> Any:
        """The local LLM that extraction and chat use, built from the current `config.llm`.

        Changing `config.llm` (model file, threads, GPU layers...) takes effect on the next call:
        a new adapter is made, and llama.cpp reloads because its cache is keyed by those
        settings. A model passed to the constructor is always used as given.
        """
        return self._models.language_model()


def doctor(data_dir: str | Path, *, config: Any = None, embedder: Embedder | None = None,
           progress: Progress | None = None) -> IntegrityReport:
    """`loci doctor`: check a closed store fully and repair what can be (engine/store/integrity.py)."""
    return check_and_repair(Path(data_dir), lambda: Memory(data_dir, config, embedder=embedder, progress=progress),
                            progress=progress)

