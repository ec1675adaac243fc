"""What the browser reads from the store in one go (in a worker): a refresh's counts and rows, one memory's details."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from engine import HistoryEvent, Memory, MemoryRecord, Message
from engine.store.ledger import ScopeCount

PAGE_ROWS = 200  # rows read at a time for a long list (MemoryTableModel.PAGE)
PRELOAD_ROWS = 5_000  # a scope up to this size is read whole (sortable in the table)


@dataclass(frozen=True, slots=True)
class Overview:
    """What a refresh of the browser shows: counts, scopes and the browsed scope's rows by first row."""

    total: int
    scopes: list[ScopeCount]
    scope: dict[str, str]
    scope_total: int
    rows: dict[int, list[MemoryRecord]]


@dataclass(frozen=True, slots=True)
class Details:
    """One memory as the details pane shows it."""

    record: MemoryRecord
    history: list[HistoryEvent]
    sources: list[Message]


def read_overview(mem: Memory, scope: Mapping[str, str], around: int) -> Overview:
    """Counts, scopes and the scope's rows: all of them up to PRELOAD_ROWS, else the first page and
    the page around row `around` (link=False: never waits for the entity linker)."""
    wanted = dict(scope)
    total, scopes = mem.count(), mem.scopes()
    scoped = mem.count(wanted) if wanted else total
    rows: dict[int, list[MemoryRecord]] = {}
    if scoped <= PRELOAD_ROWS:
        rows[0] = mem.list_records(filters=wanted, top_k=max(scoped, 1), link=False) if scoped else []
    else:
        for first in sorted({0, max(0, around - around % PAGE_ROWS)}):
            rows[first] = mem.list_records(filters=wanted, top_k=2 * PAGE_ROWS, offset=first, link=False)
    return Overview(total, scopes, wanted, scoped, rows)


def read_details(mem: Memory, memory_id: str) -> Details:
    """One memory fresh from the store, with its history and the messages it came from."""
    return Details(mem.get_record(memory_id, link=False), mem.history_records(memory_id),
                   mem.source_messages(memory_id))
