"""Export a store to a JSON file and restore it: memories with their history and source messages.

The file is one JSON object (format "loci-export", version 2):

    {"format": "loci-export", "version": 2, "exported_at": ISO time,
     "memories": [MemoryRecord.to_dict() + {"history": [HistoryEvent.to_dict(), ...]}, ...],
     "messages": [{"id", "role", "content", "timestamp", "name", "user_id", "agent_id",
                   "run_id", "created_at"}, ...]}

Source messages are listed once (several memories can come from one message) and referred to
by each memory's source_message_ids. Version 1 files (memories only) and a mem0 get_all result
({"results": [...]}) are read too. Restoring keeps ids, texts, times, scopes, event dates,
metadata, entities, history and provenance; "merge" skips memories already in the store (same
id, or same text in the same scope) and "replace" empties the store first.
No Qt here: the GUI and the CLI both call these functions.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Protocol, Sequence

from ..errors import InvalidInputError, StoreError
from ..records import HistoryEvent, MemoryRecord, Message, Scope, content_hash

FORMAT = "loci-export"
VERSION = 2
BATCH = 64  # memories embedded and written per step of a restore
PAGE = 1000  # memories read per page while exporting

Mode = Literal["merge", "replace"]
Progress = Callable[[int, int], None]


class Memory(Protocol):
    """What export and restore need of a store; engine.Memory (and its remote client) is one."""

    def list_records(self, *, top_k: int = ..., offset: int = ...) -> list[MemoryRecord]: ...
    def get_record(self, memory_id: str) -> MemoryRecord: ...
    def history_records(self, memory_id: str) -> list[HistoryEvent]: ...
    def source_messages(self, memory_id: str) -> list[Message]: ...
    def count(self) -> int: ...
    def reset(self) -> None: ...
    def restore_exported(self, items: Sequence[ExportedMemory]) -> int: ...


class Cancel(Protocol):
    """Anything with an is_cancelled flag (engine.CancelToken)."""

    @property
    def is_cancelled(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ExportedMemory:
    """One memory as written to an export: the record, its audit log and its source messages."""

    record: MemoryRecord
    history: tuple[HistoryEvent, ...] = ()
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    """What a restore did: memories written, skipped as already present, removed first."""

    added: int
    skipped: int
    removed: int = 0
    cancelled: bool = False
    total: int = 0


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A parsed export: the memories in file order and when the file was written."""

    memories: tuple[ExportedMemory, ...]
    exported_at: datetime | None = None
    version: int = VERSION
    warnings: tuple[str, ...] = field(default_factory=tuple)


# -- export --------------------------------------------------------------------------------
def collect(memory: Memory, records: Sequence[MemoryRecord] | None = None, *,
            progress: Progress | None = None, cancel: Cancel | None = None) -> list[ExportedMemory]:
    """Every memory of the store (or the given records) with its history and source messages."""
    rows = list(records) if records is not None else _all_records(memory)
    out: list[ExportedMemory] = []
    total = len(rows)
    for i, rec in enumerate(rows):
        if cancel is not None and cancel.is_cancelled:
            break
        out.append(ExportedMemory(rec, tuple(memory.history_records(rec.id)),
                                  tuple(memory.source_messages(rec.id))))
        if progress is not None and (i % 50 == 0 or i + 1 == total):
            progress(i + 1, total)
    return out


def to_json(memories: Sequence[ExportedMemory]) -> dict[str, Any]:
    """The export file's JSON object."""
    messages: dict[str, dict[str, Any]] = {}
    rows = []
    for item in memories:
        row = item.record.to_dict()
        row["history"] = [e.to_dict() for e in item.history]
        rows.append(row)
        for m in item.messages:
            messages.setdefault(m.id, _message_to_dict(m))
    return {"format": FORMAT, "version": VERSION,
            "exported_at": datetime.now(timezone.utc).isoformat(),
            "memories": rows, "messages": list(messages.values())}


def export_store(memory: Memory, path: str | Path, records: Sequence[MemoryRecord] | None = None, *,
                 progress: Progress | None = None, cancel: Cancel | None = None) -> int:
    """Write the whole store (or the given records) to a JSON file; returns how many memories.

    The file is written beside the target and renamed, so a failed export never leaves half a
    file under the chosen name. A cancelled export writes nothing and returns 0.
    """
    items = collect(memory, records, progress=progress, cancel=cancel)
    if cancel is not None and cancel.is_cancelled:
        return 0
    target = Path(path).expanduser()
    tmp = target.with_name(target.name + ".part")
    try:
        tmp.write_text(json.dumps(to_json(items), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"Cannot write {target}: {exc.strerror or exc}. Check the folder exists, "
                         "that you may write there and that the disk is not full.") from None
    return len(items)


# -- reading ---------------------------------------------------------------------------------
def read_export(path: str | Path) -> ExportFile:
    """Parse a Loci export (version 1 or 2) or a mem0 get_all result; InvalidInputError if not one."""
    p = Path(path).expanduser()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"The file {p} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{p.name} is not a Loci export (not readable JSON: {exc}).") from None
    return parse_export(data, p.name)


def parse_export(data: Any, name: str = "the export") -> ExportFile:
    """An ExportFile from the decoded JSON of an export."""
    rows = data.get("memories", data.get("results")) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise InvalidInputError(f"{name} is not a Loci export: it has no 'memories' list.")
    version = int(data.get("version", 1)) if isinstance(data, dict) else 1
    if version > VERSION:
        raise InvalidInputError(f"{name} was written by a newer Loci (export version {version}); "
                                "update Loci to restore it.")
    messages: dict[str, Message] = {}
    if isinstance(data, dict):
        for i, m in enumerate(data.get("messages") or []):
            msg = _message_from_dict(m, i, name)
            messages[msg.id] = msg
    out = []
    for i, row in enumerate(rows):
        rec = _record_from_dict(row, i, name)
        history = tuple(_event_from_dict(e, rec.id, i, name) for e in (row.get("history") or []))
        sources = tuple(messages[m] for m in rec.source_message_ids if m in messages)
        out.append(ExportedMemory(rec, history, sources))
    exported = data.get("exported_at") if isinstance(data, dict) else None
    return ExportFile(tuple(out), _time(exported, None, "exported_at", 0, name) if exported else None,
                      version)


# -- restoring --------------------------------------------------------------------------------
def restore(memory: Memory, source: str | Path | ExportFile | Sequence[ExportedMemory], *,
            mode: Mode = "merge", progress: Progress | None = None,
            cancel: Cancel | None = None) -> RestoreSummary:
    """Put the memories of an export back into a store.

    merge: memories already present (same id, or the same text in the same scope) are skipped,
    so restoring one file twice changes nothing the second time. replace: every memory of the
    store is removed first (after the file has been read and checked), then all are written.
    Progress counts memories; a cancel stops between batches and keeps what was written.
    """
    if mode not in ("merge", "replace"):
        raise InvalidInputError(f"Unknown restore mode '{mode}'. Use 'merge' or 'replace'.")
    if isinstance(source, (str, Path)):
        items: Sequence[ExportedMemory] = read_export(source).memories
    elif isinstance(source, ExportFile):
        items = source.memories
    else:
        items = list(source)
    total = len(items)
    removed = 0
    if cancel is not None and cancel.is_cancelled:
        return RestoreSummary(0, 0, 0, True, total)
    if mode == "replace":
        removed = memory.count()
        memory.reset()
    added = 0
    done = 0
    if progress is not None:
        progress(0, total)
    for start in range(0, total, BATCH):
        if cancel is not None and cancel.is_cancelled:
            return RestoreSummary(added, done - added, removed, True, total)
        batch = items[start:start + BATCH]
        added += memory.restore_exported(batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return RestoreSummary(added, total - added, removed, False, total)


def count_new(memory: Memory, items: Iterable[ExportedMemory]) -> int:
    """How many of these memories a merge would add (ids not yet in the store)."""
    from ..errors import NotFoundError

    n = 0
    for item in items:
        try:
            memory.get_record(item.record.id)
        except NotFoundError:
            n += 1
    return n


# -- helpers ----------------------------------------------------------------------------------
def _all_records(memory: Memory) -> list[MemoryRecord]:
    out: list[MemoryRecord] = []
    while True:
        rows = memory.list_records(top_k=PAGE, offset=len(out))
        out.extend(rows)
        if len(rows) < PAGE:
            return out


def _message_to_dict(m: Message) -> dict[str, Any]:
    return {"id": m.id, "role": m.role, "content": m.content, "timestamp": m.timestamp.isoformat(),
            "name": m.name, "user_id": m.scope.user_id, "agent_id": m.scope.agent_id,
            "run_id": m.scope.run_id,
            "created_at": m.created_at.isoformat() if m.created_at else None}


def _time(value: Any, default: datetime | None, key: str, i: int, name: str) -> datetime:
    if not value:
        if default is None:
            raise InvalidInputError(f"Entry {i + 1} of {name} has no {key}.")
        return default
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"Entry {i + 1} of {name} has an unreadable {key} '{value}'.") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _text(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    return None if value is None else str(value)


def _record_from_dict(d: Any, i: int, name: str) -> MemoryRecord:
    if not isinstance(d, dict) or not isinstance(d.get("memory"), str) or not d.get("id"):
        raise InvalidInputError(f"Entry {i + 1} of {name} has no 'id' and 'memory'.")
    if not d["memory"].strip():
        raise InvalidInputError(f"Entry {i + 1} of {name} has an empty memory text.")
    now = datetime.now(timezone.utc)
    created = _time(d.get("created_at"), now, "created_at", i, name)
    scope = Scope(_text(d, "user_id"), _text(d, "agent_id"), _text(d, "run_id"))
    if scope.is_empty:
        raise InvalidInputError(f"Entry {i + 1} of {name} belongs to no user, agent or session.")
    metadata = d.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"Entry {i + 1} of {name} has metadata that is not an object.")
    return MemoryRecord(id=str(d["id"]), memory=d["memory"], hash=content_hash(d["memory"]),
                        scope=scope, created_at=created,
                        updated_at=_time(d.get("updated_at"), created, "updated_at", i, name),
                        timestamp=_time(d.get("timestamp"), created, "timestamp", i, name),
                        metadata=dict(metadata), role=_text(d, "role"), actor=_text(d, "actor_id"),
                        memory_type=_text(d, "memory_type"), event_date=_text(d, "event_date"),
                        source_message_ids=tuple(str(s) for s in d.get("source_message_ids") or ()),
                        entities=tuple(str(e) for e in d.get("entities") or ()))


def _event_from_dict(e: Any, memory_id: str, i: int, name: str) -> HistoryEvent:
    if not isinstance(e, dict) or not e.get("id") or not e.get("event"):
        raise InvalidInputError(f"Entry {i + 1} of {name} has a history event without 'id' and 'event'.")
    return HistoryEvent(id=str(e["id"]), memory_id=memory_id, event=str(e["event"]),
                        old_memory=_text(e, "old_memory"), new_memory=_text(e, "new_memory"),
                        actor=_text(e, "actor_id"), role=_text(e, "role"),
                        created_at=_time(e.get("created_at"), None, "history created_at", i, name))


def _message_from_dict(m: Any, i: int, name: str) -> Message:
    if not isinstance(m, dict) or not m.get("id") or not isinstance(m.get("content"), str):
        raise InvalidInputError(f"Message {i + 1} of {name} has no 'id' and 'content'.")
    when = _time(m.get("timestamp"), None, "message timestamp", i, name)
    created = m.get("created_at")
    return Message(id=str(m["id"]), role=str(m.get("role") or "user"), content=m["content"],
                   timestamp=when, name=_text(m, "name"),
                   scope=Scope(_text(m, "user_id"), _text(m, "agent_id"), _text(m, "run_id")),
                   created_at=_time(created, None, "message created_at", i, name) if created else None)
