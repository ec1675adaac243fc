"""The one write path: journal -> vectors -> one SQLite transaction, and its crash recovery.

Every change follows the same order: (1) the ids about to change are recorded in the ledger's
journal and committed; (2) the vectors are written to (or deleted from) Chroma; (3) the memory
rows, their history rows and the source messages are written and the journal entries cleared
in ONE SQLite transaction. SQLite is the source of truth: a memory exists when its row exists,
and its row never exists without its history row. A crash after (1) or (2) leaves only journal
entries and stray vectors, which `recover` repairs the next time the store opens; a write that
fails after (1) is repaired at once, so a caller told "failed" never finds the change committed.

What search keeps in memory (its indexes, the entity-link queue) hears of each commit through
the `Indexes` and `LinkQueue` given to the Writer: the store does not import search.
"""
from __future__ import annotations

import logging
import threading
from typing import Protocol, Sequence

import numpy as np

from ..errors import StoreError
from ..inference.embeddings import Embedder
from ..records import MemoryRecord, Message, Scope
from .export import ExportedMemory
from .ledger import Ledger
from .vectors import VectorStore, vector_meta

log = logging.getLogger(__name__)

Mentions = dict[str, list[tuple[str, str, str]]]  # memory id -> (key, text, label) of each entity


class Indexes(Protocol):
    """Search's in-memory indexes, kept in step with each committed write."""

    def refresh(self, records: Sequence[MemoryRecord], removed: Sequence[str], mentions: Mentions) -> None: ...

    def reset(self) -> None: ...


class LinkQueue(Protocol):
    """The entity linker: told of memories queued for linking, and of a wiped store."""

    def notify(self, memory_ids: Sequence[str]) -> None: ...

    def forget(self) -> None: ...


def recover(ledger: Ledger, vectors: VectorStore, embedder: Embedder) -> None:
    """Finish or undo writes a crash interrupted (journal entries left behind)."""
    pending = ledger.journal_pending()
    if not pending:
        return
    rows = ledger.get_many(pending)
    alive = [rows[i] for i in pending if i in rows]
    vectors.delete([i for i in pending if i not in rows])
    if alive:
        embedded = embedder.embed_batch([r.memory for r in alive])
        vectors.upsert([r.id for r in alive], embedded, [vector_meta(r) for r in alive])
    with ledger.transaction() as db:
        ledger.journal_clear(db, pending)
    log.warning("recovered %d interrupted writes", len(pending))


class Writer:
    """Owns every change to a store, in the order the module docstring gives, under one lock."""

    def __init__(self, ledger: Ledger, vectors: VectorStore, embedder: Embedder,
                 lock: threading.RLock, indexes: Indexes, links: LinkQueue) -> None:
        self.lock = lock  # the facade's write lock: a caller may hold it around a read-then-write
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._indexes = indexes
        self._links = links

    def current_vectors(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        """`vectors`, or the texts embedded again when this thread made them before a re-embed
        switched models (engine/store/reembed.py); call it holding the lock."""
        stale = getattr(self._embedder, "is_stale", None)
        return self._embedder.embed_batch(list(texts)) if stale is not None and stale() else vectors

    def commit(self, records: Sequence[MemoryRecord], vectors: np.ndarray,
               messages: Sequence[Message] = (), event: str = "ADD", actor: str | None = None) -> None:
        """Write new memories (event ADD) or deleted ones put back (RESTORE) with their messages.

        Entities are not looked for here: the memories are queued in the same transaction and
        the entity linker links them in batches (engine/search/entity_linker.py).
        """
        ids = [r.id for r in records]
        with self.lock:
            vectors = self.current_vectors([r.memory for r in records], vectors)
            self._ledger.journal_begin(ids)
            try:
                self._vectors.upsert(ids, vectors, [vector_meta(r) for r in records])
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
                self.repair_after_failure()
                raise
            self._indexes.refresh(records, (), {})
            self._links.notify(ids)

    def replace(self, old: MemoryRecord, new: MemoryRecord, vector: np.ndarray | None,
                mentions: Mentions, actor: str | None) -> None:
        """Write an edited memory; `vector` (with its entity `mentions`) only when the text changed."""
        reembed = vector is not None
        memory_id = new.id
        with self.lock:
            if vector is not None:
                self._ledger.journal_begin([memory_id])
            try:
                if vector is not None:
                    self._vectors.upsert([memory_id], vector, [vector_meta(new)])
                with self._ledger.transaction() as db:
                    self._ledger.replace_memory(db, new)
                    if reembed:
                        self._ledger.set_entity_links(db, memory_id, mentions[memory_id])
                    self._ledger.add_history(db, memory_id, "UPDATE", old.memory, new.memory, actor,
                                             None, new.updated_at)
                    self._ledger.journal_clear(db, [memory_id])
            except StoreError:
                if reembed:
                    self.repair_after_failure()
                raise
            if reembed:
                self._indexes.refresh([new], [memory_id], mentions)

    def delete(self, memory_ids: Sequence[str], actor: str | None) -> int:
        """Delete the memories that exist among these ids (their history stays); how many were."""
        with self.lock:
            rows = self._ledger.get_many(list(memory_ids))
            ids = [i for i in memory_ids if i in rows]
            if not ids:
                return 0
            # A failure or crash before the SQLite commit leaves the memories in place and
            # their vectors are re-embedded from the journal (now, or when the store opens).
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
                self.repair_after_failure()
                raise
            self._indexes.refresh((), ids, {})
        return len(ids)

    def restore(self, record: MemoryRecord, actor: str | None) -> None:
        """Put a deleted memory back with its id: RESTORE in its history (ADD when it has none)."""
        with self.lock:
            if self._ledger.get(record.id) is not None:
                return
            vectors = self._embedder.embed_batch([record.memory])
            event = "RESTORE" if self._ledger.has_history(record.id) else "ADD"
            self.commit([record], vectors, event=event, actor=actor)

    def restore_exported(self, items: Sequence[ExportedMemory], actor: str | None) -> int:
        """Write exported memories back as they were (engine/store/export.py); returns how many.

        A memory already present (same id, or the same text in the same scope) is skipped. A
        memory whose id has history here already (it was deleted) gets a RESTORE event after
        its exported history.
        """
        with self.lock:
            fresh = self._not_present(items)
            if not fresh:
                return 0
            records = [item.record for item in fresh]
            vectors = self._embedder.embed_batch([r.memory for r in records])
            ids = [r.id for r in records]
            known = {i for i in ids if self._ledger.has_history(i)}
            self._ledger.journal_begin(ids)
            self._vectors.upsert(ids, vectors, [vector_meta(r) for r in records])
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
            self._indexes.refresh(records, (), {})
            self._links.notify(ids)
        return len(fresh)

    def _not_present(self, items: Sequence[ExportedMemory]) -> list[ExportedMemory]:
        """The exported memories this store lacks (by id, and by text within their scope)."""
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
        return fresh

    def reset(self) -> None:
        """Delete every memory, message and history row."""
        with self.lock:
            self._ledger.journal_begin(self._ledger.ids())
            try:
                self._vectors.wipe()
                self._ledger.wipe()  # clears the journal and the entity queue in the same transaction
                self._links.forget()
            except StoreError:
                self.repair_after_failure()
                raise
            finally:
                self._indexes.reset()

    def recover(self) -> None:
        """Finish or undo writes a crash interrupted (see `recover`)."""
        recover(self._ledger, self._vectors, self._embedder)

    def repair_after_failure(self) -> None:
        """Undo a write that failed after its journal entry: the vectors follow SQLite again.

        When that fails too (disk still full, vector store hung), the journal keeps the ids
        and the next open finishes the repair.
        """
        try:
            self.recover()
        except StoreError as exc:
            log.warning("repair after a failed write postponed to the next open: %s", exc)
