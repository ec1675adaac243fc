"""Entity linking off the write path: queued memories are linked in batches by a background thread."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator, Sequence

from .entities import EntityExtractor, links
from ..store.ledger import Ledger
from ..records import MemoryRecord

log = logging.getLogger(__name__)

BATCH = 64  # memories parsed per spaCy call (nlp.pipe) and written per transaction
IDLE_S = 0.2  # the thread starts linking once no write ran for this long ...
BACKLOG = 2000  # ... or once this many memories wait (a long import is linked as it goes)
CLOSE_BUDGET_S = 2.0  # closing links what it can in this time; the rest after the next open
Links = dict[str, list[tuple[str, str, str]]]


class EntityLinker:
    """Finds the entities of memories committed without them and writes their links.

    A memory is stored with a row in the ledger's entity queue (same transaction), so a
    crash before it is linked loses nothing: the queue is read again when the store opens.
    Linking a batch: read the queued rows, run spaCy over their texts at once (no lock held
    but the pipeline's), then, under the store's write lock, write links, the `entities`
    column and the queue removal in one transaction and hand the links to the search
    indexes (`on_linked`). A memory that was updated or deleted meanwhile is skipped (see
    Ledger.link_entities). Until then a memory is found by meaning and keywords, not by
    the entities it names.

    The thread starts on the first `notify` (a commit) or at once when the queue is not
    empty. It links when no write has run for IDLE_S (so a burst of adds does not share the
    CPU with spaCy; `writing` marks a write call from its start, embedding included) or when
    BACKLOG memories wait. `link_now` and `drain` link in the caller's
    thread (for reads that need the links, and for tests); `close` links for CLOSE_BUDGET_S.
    The thread and a `drain` each claim their batch, so they link different memories side by
    side instead of both parsing the oldest ones.
    Errors in the thread (a missing spaCy model) are logged and the memories stay queued:
    the next `drain` raises the error to its caller.
    """

    def __init__(self, ledger: Ledger, extractor: EntityExtractor, write_lock: ContextManager[Any],
                 on_linked: Callable[[Sequence[MemoryRecord], Links], None], *,
                 batch_size: int = BATCH, idle_s: float = IDLE_S, backlog: int = BACKLOG) -> None:
        self._ledger = ledger
        self._extractor = extractor
        self._write_lock = write_lock
        self._on_linked = on_linked
        self._batch_size = batch_size
        self._idle_s = idle_s
        self._backlog = backlog
        self._last_write = 0.0
        self._active = 0  # write calls under way
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._pending: set[str] = set(ledger.entities_pending())
        self._claimed: set[str] = set()  # ids a thread is linking now (the queue's next batch for the others)
        if self._pending:
            self._start()

    # -- who calls what ------------------------------------------------------------------
    def notify(self, memory_ids: Sequence[str]) -> None:
        """Memories were just committed to the queue: link them soon."""
        with self._state_lock:
            if self._stopped:
                return
            self._pending.update(memory_ids)
            self._last_write = time.monotonic()
        self._start()
        self._wake.set()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write call: the thread does not start a batch while one runs, nor IDLE_S after."""
        with self._state_lock:
            self._active += 1
        try:
            yield
        finally:
            with self._state_lock:
                self._active -= 1
                self._last_write = time.monotonic()

    def is_pending(self, memory_id: str) -> bool:
        """True while the memory may still wait for its links (an id deleted or re-linked by an
        update meanwhile stays here until the next read of it finds nothing to do)."""
        return memory_id in self._pending

    def link_now(self, memory_ids: Sequence[str]) -> None:
        """Link these memories (those still queued) now, in the caller's thread."""
        wanted = [i for i in memory_ids if i in self._pending]
        for start in range(0, len(wanted), self._batch_size):
            self._link(wanted[start:start + self._batch_size])

    def drain(self, timeout: float | None = None) -> bool:
        """Link every queued memory in the caller's thread; False when the timeout passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ids = self._claim(self._batch_size)
            # Nothing unclaimed: what is left is the thread's batch. It is linked here too rather
            # than waited for (the caller may hold the write lock the thread needs); the ledger
            # writes each memory once.
            theirs = [] if ids else self._ledger.entities_pending(self._batch_size)
            if not ids and not theirs:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                self._release(ids)
                return False
            if ids:
                self._link_claimed(ids)
            else:
                self._link(theirs)

    def close(self) -> None:
        """Stop the thread, then link what CLOSE_BUDGET_S allows (a batch may run over it);
        whatever is still queued is linked after the next open."""
        self.stop()
        self.drain(CLOSE_BUDGET_S)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current batch; what is still queued is linked after the next open."""
        with self._state_lock:
            self._stopped = True
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("entity linker still busy after %.0f s; the rest is linked on the next open",
                            timeout)

    def forget(self) -> None:
        """The store was wiped: nothing is queued any more."""
        with self._state_lock:
            self._pending.clear()

    # -- the work --------------------------------------------------------------------------
    def _start(self) -> None:
        with self._state_lock:
            if self._thread is not None or self._stopped:
                return
            self._thread = threading.Thread(target=self._run, name="loci-entity-linker", daemon=True)
            self._thread.start()
        self._wake.set()

    def _quiet(self) -> bool:
        """Wait for a pause in writes (or a large backlog); False when the store is closing."""
        while not self._stopped:
            if len(self._pending) >= self._backlog:
                return True
            left = self._last_write + self._idle_s - time.monotonic()
            if left <= 0 and not self._active:
                return True
            self._stopping.wait(max(left, self._idle_s / 4))
        return False

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                while self._quiet():
                    ids = self._claim(self._batch_size)
                    if not ids:
                        break
                    self._link_claimed(ids)
            except Exception as exc:  # noqa: BLE001 - the memories stay queued; drain() raises it
                if not self._stopped:
                    log.warning("entity linking paused until the next write or open: %s", exc)
            if self._stopped:
                return

    def _claim(self, limit: int) -> list[str]:
        """Up to `limit` of the oldest queued ids that no other thread is linking, now claimed."""
        with self._state_lock:
            others = len(self._claimed)
        ids = self._ledger.entities_pending(limit + others)
        with self._state_lock:
            mine = [i for i in ids if i not in self._claimed][:limit]
            self._claimed.update(mine)
        return mine

    def _release(self, ids: Sequence[str]) -> None:
        with self._state_lock:
            self._claimed.difference_update(ids)

    def _link_claimed(self, ids: Sequence[str]) -> None:
        try:
            self._link(ids)
        finally:
            self._release(ids)

    def _link(self, ids: Sequence[str]) -> None:
        # No lock of ours is held while spaCy runs, and the write lock is taken last, so a
        # reader that links from inside a write (update -> get_record) cannot deadlock with
        # the thread. Two linkers may parse the same memory; the ledger writes it once.
        rows = self._ledger.get_many(ids)
        records = [rows[i] for i in ids if i in rows]
        background = threading.current_thread() is self._thread  # a caller's link_now goes first
        texts = [r.memory for r in records]
        found = self._extractor.extract_many(texts, background=background) if records else []
        mentions = {r.id: links(ms, r.entities) for r, ms in zip(records, found)}
        linked = [(r.id, r.hash, tuple(t for _, t, _ in mentions[r.id]), mentions[r.id])
                  for r in records]
        with self._write_lock:
            if self._stopped and threading.current_thread() is self._thread:
                return  # closing: the store's files are about to go; the queue keeps these
            with self._ledger.transaction() as db:
                done = set(self._ledger.link_entities(db, linked))
            self._on_linked([r for r in records if r.id in done],
                            {i: m for i, m in mentions.items() if i in done})
        with self._state_lock:
            self._pending.difference_update(ids)
