"""The browser's reads of the store, each in a worker: a read waits while a write or the linker holds the store."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from engine import Memory, MemoryRecord, StoreError

from .browser_reads import Details, Overview, read_details, read_overview
from .jobs import JobRunner
from .workers import Worker

SCAN_LIMIT = 20_000  # records listed for the timeline view


class ReadJobs(JobRunner):
    """What the browser reads (counts, pages, details, searches, entities, the timeline), run on the
    read pool with results delivered on the GUI thread; EngineBridge adds opening, writes and imports."""

    memory: Memory | None

    def _need_memory(self) -> Memory:
        if self.memory is None:
            raise StoreError("No memory store is open. Check the message above or pick another "
                             "data folder in Settings.")
        return self.memory

    # -- reads for the browser: in a worker too (a read waits while a write holds the store) ----
    def overview(self, scope: Mapping[str, str], around: int, on_result: Callable[[Overview], None],
                 on_failed: Callable[[str], None] | None = None) -> Worker | None:
        """Counts, scopes and the browsed scope's first rows (browser_reads.read_overview), in a worker."""
        if (mem := self.memory) is None:
            return None
        wanted = dict(scope)
        return self.submit(lambda: read_overview(mem, wanted, around), on_result=on_result, on_failed=on_failed,
                           name="refresh")

    def page(self, scope: Mapping[str, str], offset: int, limit: int,
             on_result: Callable[[list[MemoryRecord]], None]) -> Worker | None:
        """More rows of a long list, read in a worker (link=False: never waits for the entity linker)."""
        if (mem := self.memory) is None:
            return None
        wanted = dict(scope)
        return self.submit(lambda: mem.list_records(filters=wanted, top_k=limit, offset=offset, link=False),
                           on_result=on_result, name="page")

    def details(self, memory_id: str, on_result: Callable[[Details], None],
                on_failed: Callable[[str], None] | None = None) -> Worker:
        """One memory fresh from the store, with its history and source messages (in a worker)."""
        return self.submit(lambda: read_details(self._need_memory(), memory_id), on_result=on_result,
                           on_failed=on_failed or (lambda _t: None), name="details")

    def user_counts(self, on_result: Callable[[dict[str, int]], None]) -> Worker | None:
        """Every user with how many memories they have (in a worker)."""
        if (mem := self.memory) is None:
            return None
        return self.submit(lambda: {s.value: s.count for s in mem.scopes() if s.kind == "user_id"},
                           on_result=on_result, on_failed=lambda _t: None, name="users")

    def linked_record(self, memory_id: str, on_result: Callable[[MemoryRecord], None]) -> Worker:
        """The memory with its entities, linking it first if the linker has not yet (in a worker)."""
        return self.submit(lambda: self._need_memory().get_record(memory_id), on_result=on_result,
                           on_failed=lambda _text: None, name="entities of a memory")

    def search(self, query: str, filters: Mapping[str, Any] | None, on_result: Callable,
               top_k: int = 100, on_failed: Callable | None = None) -> Worker:
        return self.submit(lambda: self._need_memory().search_records(query, top_k=top_k, filters=dict(filters or {})),
                           on_result=on_result, on_failed=on_failed, name="search")

    def list_filtered(self, filters: Mapping[str, Any], on_result: Callable, limit: int = 10_000) -> Worker:
        return self.submit(lambda: self._need_memory().list_records(filters=dict(filters), top_k=limit),
                           on_result=on_result, name="filter")

    def entities(self, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        """Entities with how many memories mention each."""
        return self.submit(lambda: self._need_memory().entities(filters=dict(filters or {}) or None),
                           on_result=on_result, name="entities")

    def entity_memories(self, name: str, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        return self.submit(lambda: self._need_memory().entity_memories(name, filters=dict(filters or {}) or None),
                           on_result=on_result, name="entity memories")

    def timeline(self, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        return self.submit(lambda: self._need_memory().list_records(filters=dict(filters or {}), top_k=SCAN_LIMIT),
                           on_result=on_result, name="timeline")
