"""Owns the one engine.Memory of the GUI; runs slow calls in worker pools and reports by signals.

Fast reads (SQLite paging, counts, one record, its history and sources) are plain methods
that take a few milliseconds. Everything that embeds, searches, scans the whole store or
writes runs in a worker: reads and searches on a small general pool, edits and deletes on a
one-thread write pool (so an undo never overtakes the change it undoes) and imports on a
one-thread ingestion pool (one local LLM must not run two jobs at once).
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from engine import (Entity, InvalidInputError, LociConfig, LociError, MemoryRecord, ModelError,
                    Scope, StoreError)

from ..importers import Conversation
from .messages import Messages
from .workers import CancelToken, Worker

log = logging.getLogger(__name__)

MODEL_NOT_LOADED, MODEL_LOADING, MODEL_READY, MODEL_ERROR = "not loaded", "loading", "ready", "error"
EXPORT_FORMAT = "loci-export"
RAW_CHUNK = 25  # messages per add() when storing without the model
IMPORT_REFRESH_MS = 2000  # how often the table refreshes while an import stores memories
SCAN_LIMIT = 20_000  # records scanned for entity/timeline views when the engine has no index


class _Job(QObject):
    """Lives on the GUI thread so the worker's signals arrive there; calls the callbacks."""

    def __init__(self, bridge: "EngineBridge", worker: Worker, on_result: Callable | None,
                 on_failed: Callable | None, on_progress: Callable | None) -> None:
        super().__init__(bridge)
        self.bridge, self.worker = bridge, worker
        self.on_result, self.on_failed, self.on_progress = on_result, on_failed, on_progress
        s = worker.signals
        s.result.connect(self.handle_result)
        s.failed.connect(self.handle_failed)
        s.crashed.connect(self.handle_crashed)
        s.progress.connect(self.handle_progress)
        s.finished.connect(self.handle_finished)

    @Slot(object)
    def handle_result(self, value: object) -> None:
        if self.on_result:
            self.on_result(value)

    @Slot(str)
    def handle_failed(self, text: str) -> None:
        if self.on_failed:
            self.on_failed(text)
        else:
            self.bridge.messages.error(text)

    @Slot(str, str)
    def handle_crashed(self, summary: str, details: str) -> None:
        self.bridge.messages.crash(summary, details)
        if self.on_failed:
            self.on_failed(f"Something went wrong inside Loci: {summary}")

    @Slot(int, int)
    def handle_progress(self, done: int, total: int) -> None:
        if self.on_progress:
            self.on_progress(done, total)

    @Slot()
    def handle_finished(self) -> None:
        self.bridge._job_done(self)


class EngineBridge(QObject):
    """The GUI's only door to the engine."""

    store_opened = Signal()
    store_failed = Signal(str)
    store_changed = Signal()
    model_state_changed = Signal(str)
    jobs_changed = Signal(int)
    import_progressed = Signal(int, int)
    import_finished = Signal(object)  # {"added": int, "cancelled": bool, "error": str | None}
    store_size_known = Signal(int, int)  # memories, bytes on disk

    def __init__(self, messages: Messages, memory: Any = None, *, data_dir: str | Path | None = None,
                 config: LociConfig | None = None, config_path: str | Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.messages = messages
        self._memory = memory
        self._owns_memory = memory is None
        self.data_dir = Path(data_dir) if data_dir else (memory.data_dir if memory is not None else None)
        self.config = config or (memory.config if memory is not None else LociConfig())
        self.config_path = Path(config_path) if config_path else None
        self.model_state = MODEL_NOT_LOADED
        self.model_error = ""
        self._jobs: set[_Job] = set()
        self.read_pool = QThreadPool(self)
        self.read_pool.setMaxThreadCount(2)
        self.write_pool = QThreadPool(self)
        self.write_pool.setMaxThreadCount(1)
        self.ingest_pool = QThreadPool(self)
        self.ingest_pool.setMaxThreadCount(1)
        self.import_token: CancelToken | None = None
        self._unsubscribe: Callable[[], None] | None = None  # stops following other programs' changes
        self._changed_timer = QTimer(self, singleShot=True, interval=150)
        self._changed_timer.timeout.connect(self.store_changed)

    # -- lifecycle ---------------------------------------------------------------
    @property
    def memory(self) -> Any:
        return self._memory

    @property
    def is_open(self) -> bool:
        return self._memory is not None

    @property
    def jobs(self) -> int:
        return len(self._jobs)

    def start(self) -> None:
        """Open the store (in a worker unless one was given), then load the model."""
        if self._memory is not None:
            self._follow_changes(self._memory)
            self.store_opened.emit()
            self.load_model()
        else:
            self.open_store(self.data_dir)

    def open_store(self, data_dir: str | Path | None = None) -> None:
        from engine.service import open_memory

        config = self.config

        def open_it() -> Any:
            return open_memory(data_dir, config)  # the owner, or a client of the program that owns it

        def opened(mem: Any) -> None:
            self._memory, self._owns_memory = mem, True
            self._follow_changes(mem)
            self.data_dir = mem.data_dir
            self.store_opened.emit()
            self.load_model()

        def failed(text: str) -> None:
            self.messages.error(text)
            self.store_failed.emit(text)

        self.submit(open_it, on_result=opened, on_failed=failed, name="open store")

    def load_model(self) -> None:
        """Load the embedding model (and warm the search indexes) in the background."""
        mem = self._memory
        load = getattr(mem, "warm_up", None) or getattr(getattr(mem, "embedder", None), "load", None)
        if load is None:
            self._set_model_state(MODEL_READY)
            return
        self._set_model_state(MODEL_LOADING)

        def failed(text: str) -> None:
            self.model_error = text
            self._set_model_state(MODEL_ERROR)
            self.messages.error(text)

        self.submit(load, on_result=lambda _: self._set_model_state(MODEL_READY), on_failed=failed,
                    name="load embedding model")

    def _set_model_state(self, state: str) -> None:
        self.model_state = state
        self.model_state_changed.emit(state)

    def close(self, timeout_ms: int = 10_000) -> None:
        """Cancel imports, wait for running jobs, release the store."""
        if self.import_token is not None:
            self.import_token.cancel()
        for pool in (self.ingest_pool, self.write_pool, self.read_pool):
            pool.clear()
            pool.waitForDone(timeout_ms)
        self._stop_following()
        if self._memory is not None and self._owns_memory:
            self._memory.close()
        self._memory = None

    def _follow_changes(self, mem: Any) -> None:
        """Refresh when other programs (REST API, MCP, CLI) change the store: live, no restart."""
        self._stop_following()
        subscribe = getattr(mem, "subscribe", None)  # a plain engine.Memory has no other writers
        if subscribe is not None:
            relay = _Relay(self)
            relay.fired.connect(self._changed)
            self._unsubscribe = subscribe(lambda _event: relay.emit())

    def _stop_following(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    # -- job plumbing --------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, on_result: Callable | None = None,
               on_failed: Callable | None = None, on_progress: Callable | None = None,
               pool: QThreadPool | None = None, wants_progress: bool = False, name: str = "",
               **kwargs: Any) -> Worker:
        worker = Worker(fn, *args, wants_progress=wants_progress, name=name, **kwargs)
        job = _Job(self, worker, on_result, on_failed, on_progress)
        self._jobs.add(job)
        self.jobs_changed.emit(len(self._jobs))
        (pool or self.read_pool).start(worker)
        return worker

    def _job_done(self, job: _Job) -> None:
        self._jobs.discard(job)
        job.deleteLater()
        self.jobs_changed.emit(len(self._jobs))

    def _need_memory(self) -> Any:
        if self._memory is None:
            raise StoreError("No memory store is open. Check the message above or pick another "
                             "data folder in Settings.")
        return self._memory

    def _changed(self) -> None:
        """Coalesce bursts of writes into one store_changed (at most one per 2 s while importing,
        so the GUI thread rarely waits on the store while the import worker writes)."""
        if self.import_token is not None:
            if not self._changed_timer.isActive():
                self._changed_timer.start(IMPORT_REFRESH_MS)
        else:
            self._changed_timer.start(150)

    # -- fast reads (milliseconds: SQLite) -----------------------------------------------
    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        return self._memory.count(filters) if self._memory is not None else 0

    def page(self, filters: Mapping[str, Any] | None, offset: int, limit: int) -> list[MemoryRecord]:
        if self._memory is None:
            return []
        return self._memory.list_records(filters=filters, top_k=limit, offset=offset)

    def scopes(self) -> list[Any]:
        return self._memory.scopes() if self._memory is not None else []

    def get_record(self, memory_id: str) -> MemoryRecord:
        return self._need_memory().get_record(memory_id)

    def history(self, memory_id: str) -> list[Any]:
        return self._need_memory().history_records(memory_id)

    def sources(self, memory_id: str) -> list[Any]:
        return self._need_memory().source_messages(memory_id)

    # -- background reads ----------------------------------------------------------
    def search(self, query: str, filters: Mapping[str, Any] | None, on_result: Callable,
               top_k: int = 100, on_failed: Callable | None = None) -> Worker:
        def run() -> list[Any]:
            return self._need_memory().search_records(query, top_k=top_k, filters=dict(filters or {}))
        return self.submit(run, on_result=on_result, on_failed=on_failed, name="search")

    def list_filtered(self, filters: Mapping[str, Any], on_result: Callable, limit: int = 10_000) -> Worker:
        def run() -> list[MemoryRecord]:
            return self._need_memory().list_records(filters=dict(filters), top_k=limit)
        return self.submit(run, on_result=on_result, name="filter")

    def entities(self, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        """Entities with memory counts: the engine's index when it has one, else counted here."""
        def run() -> list[Entity]:
            mem = self._need_memory()
            if hasattr(mem, "entities"):
                return list(mem.entities(filters=dict(filters or {}) or None))
            counts: Counter[str] = Counter()
            names: dict[str, str] = {}
            for rec in mem.list_records(filters=dict(filters or {}), top_k=SCAN_LIMIT):
                for name in set(rec.entities):
                    key = name.casefold()
                    names.setdefault(key, name)
                    counts[key] += 1
            return [Entity(names[k], "", n) for k, n in counts.most_common()]
        return self.submit(run, on_result=on_result, name="entities")

    def entity_memories(self, name: str, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        def run() -> list[MemoryRecord]:
            mem = self._need_memory()
            if hasattr(mem, "entity_memories"):
                return list(mem.entity_memories(name, filters=dict(filters or {}) or None))
            return [r for r in mem.list_records(filters=dict(filters or {}), top_k=SCAN_LIMIT)
                    if any(e.casefold() == name.casefold() for e in r.entities)]
        return self.submit(run, on_result=on_result, name="entity memories")

    def timeline(self, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        def run() -> list[MemoryRecord]:
            return self._need_memory().list_records(filters=dict(filters or {}), top_k=SCAN_LIMIT)
        return self.submit(run, on_result=on_result, name="timeline")

    def measure_store(self) -> None:
        """Count memories and bytes on disk in the background; emits store_size_known."""
        if self._memory is None:
            return
        mem = self._memory

        def run() -> tuple[int, int]:
            total = 0
            for root, _dirs, files in os.walk(mem.data_dir):
                for f in files:
                    try:
                        total += os.path.getsize(os.path.join(root, f))
                    except OSError:
                        pass
            return mem.count(), total
        self.submit(run, on_result=lambda v: self.store_size_known.emit(*v), on_failed=lambda _t: None,
                    name="store size")

    # -- writes ---------------------------------------------------------------------
    def update_text(self, memory_id: str, text: str, on_done: Callable | None = None) -> Worker:
        def done(rec: MemoryRecord) -> None:
            self._changed()
            if on_done:
                on_done(rec)
        return self.submit(lambda: self._need_memory().update_record(memory_id, text, actor="you (Loci app)"),
                           on_result=done, pool=self.write_pool, name="save memory")

    def delete(self, records: Sequence[MemoryRecord], on_done: Callable | None = None) -> Worker:
        ids = [r.id for r in records]

        def done(n: int) -> None:
            self._changed()
            if on_done:
                on_done(n)
        return self.submit(lambda: self._need_memory().delete_records(ids, actor="you (Loci app)"),
                           on_result=done, pool=self.write_pool, name="delete")

    def restore(self, records: Sequence[MemoryRecord], on_done: Callable | None = None) -> Worker:
        def run() -> int:
            mem = self._need_memory()
            for rec in records:
                mem.restore_record(rec)
            return len(records)

        def done(n: int) -> None:
            self._changed()
            if on_done:
                on_done(n)
        return self.submit(run, on_result=done, pool=self.write_pool, name="restore")

    def add_note(self, text: str, scope: Scope, infer: bool, on_done: Callable | None = None) -> Worker:
        def run() -> dict[str, Any]:
            return self._need_memory().add([{"role": "user", "content": text}], infer=infer, **scope.as_dict())

        def done(result: dict[str, Any]) -> None:
            self._changed()
            added = sum(1 for r in result.get("results", []) if r.get("event") == "ADD")
            self.messages.info(f"Added {added} memor{'y' if added == 1 else 'ies'}.")
            if on_done:
                on_done(result)
        return self.submit(run, on_result=done, pool=self.ingest_pool, name="add note")

    def import_conversation(self, conv: Conversation, scope: Scope, infer: bool) -> CancelToken:
        """Store every session of a conversation in the ingestion worker; one add per session.

        Progress counts messages; the table refreshes after each session (memories land as
        they are stored). Emits import_finished with the number added and whether it was
        cancelled; errors go to the messages object.
        """
        token = CancelToken()
        self.import_token = token
        total = max(conv.message_count, 1)

        def run(progress: Callable[[int, int], None]) -> dict[str, Any]:
            mem = self._need_memory()
            added, done = 0, 0
            progress(0, total)
            for i, session in enumerate(conv.sessions):
                if token.is_cancelled:
                    return {"added": added, "cancelled": True}
                run_id = scope.run_id or session.run_id or None
                if scope.run_id and len(conv.sessions) > 1:
                    run_id = f"{scope.run_id}-{session.run_id or i + 1}"
                # Raw messages go in small chunks: each add holds the GIL in Chroma for a while,
                # and short chunks keep the GUI thread's heartbeat regular.
                size = len(session.messages) if infer else RAW_CHUNK
                for start in range(0, len(session.messages), size or 1):
                    if token.is_cancelled:
                        return {"added": added, "cancelled": True}
                    chunk = list(session.messages[start:start + size])
                    base = done

                    def step(d: int, t: int, base: int = base, n: int = len(chunk)) -> None:
                        progress(base + (min(d, t) * n // t if t else 0), total)
                    result = mem.add(chunk, user_id=scope.user_id, agent_id=scope.agent_id, run_id=run_id,
                                     timestamp=session.timestamp, infer=infer,
                                     progress=step if infer else None, cancel=token if infer else None)
                    added += sum(1 for r in result.get("results", []) if r.get("event") == "ADD")
                    done += len(chunk)
                    progress(done, total)
                    session_stored.emit()
            return {"added": added, "cancelled": token.is_cancelled}

        session_stored = _Relay(self)
        session_stored.fired.connect(self._changed)

        def finished(summary: dict[str, Any]) -> None:
            self.import_token = None
            self._changed()
            n = summary["added"]
            what = f"{n} memor{'y' if n == 1 else 'ies'}"
            self.messages.info(f"Import cancelled after storing {what}." if summary["cancelled"]
                               else f"Imported {what}.")
            self.import_finished.emit({**summary, "error": None})

        def failed(text: str) -> None:
            self.import_token = None
            self._changed()
            self.messages.error(text)
            self.import_finished.emit({"added": 0, "cancelled": token.is_cancelled, "error": text})

        self.submit(run, on_result=finished, on_failed=failed, on_progress=self.import_progressed.emit,
                    pool=self.ingest_pool, wants_progress=True, name="import conversation")
        return token

    def cancel_import(self) -> None:
        if self.import_token is not None:
            self.import_token.cancel()
            self.messages.info("Cancelling the import after the current step…")

    # -- export / import of the store -------------------------------------------------
    def export_json(self, path: str | Path, records: Sequence[MemoryRecord] | None = None,
                    on_done: Callable | None = None) -> Worker:
        """Write the whole store (records=None) or the given records to a JSON file."""
        def run() -> int:
            mem = self._need_memory()
            rows = list(records) if records is not None else _all_records(mem)
            data = {"format": EXPORT_FORMAT, "version": 1,
                    "exported_at": datetime.now(timezone.utc).isoformat(),
                    "memories": [r.to_dict() for r in rows]}
            target = Path(path)
            tmp = target.with_name(target.name + ".part")
            try:
                tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
                tmp.replace(target)
            except OSError as exc:
                raise StoreError(f"Cannot write {target}: {exc.strerror or exc}. Is the disk full?") from None
            return len(rows)

        def done(n: int) -> None:
            self.messages.info(f"Exported {n} memor{'y' if n == 1 else 'ies'} to {Path(path).name}.")
            if on_done:
                on_done(n)
        return self.submit(run, on_result=done, pool=self.read_pool, name="export")

    def import_json(self, path: str | Path, on_done: Callable | None = None) -> Worker:
        """Put back the memories of an export file (same ids; ones already present are kept)."""
        def run() -> int:
            mem = self._need_memory()
            records = read_export(path)
            added = 0
            for rec in records:
                try:
                    mem.get_record(rec.id)
                except LociError:
                    mem.restore_record(rec)
                    added += 1
            return added

        def done(n: int) -> None:
            self._changed()
            self.messages.info(f"Restored {n} memor{'y' if n == 1 else 'ies'} from {Path(path).name}.")
            if on_done:
                on_done(n)
        return self.submit(run, on_result=done, pool=self.ingest_pool, name="import backup")

    # -- settings ------------------------------------------------------------------------
    @staticmethod
    def check_model_file(path: str) -> str | None:
        """None when the GGUF file looks loadable, else a message naming the file."""
        if not path:
            return None
        try:
            from engine.models import check_gguf  # type: ignore[import-not-found]
        except ImportError:
            check_gguf = None
        try:
            if check_gguf is not None:
                check_gguf(path)
                return None
            p = Path(path).expanduser()
            if not p.is_file():
                raise ModelError(f"The model file {p} does not exist. Pick a .gguf file.")
            with p.open("rb") as fh:
                if fh.read(4) != b"GGUF":
                    raise ModelError(f"{p.name} is not a GGUF model file (it does not start with 'GGUF'). "
                                     "Pick a .gguf file made for llama.cpp.")
        except LociError as exc:
            return exc.user_message
        except OSError as exc:
            return f"Cannot read the model file {path}: {exc.strerror or exc}."
        return None

    def apply_settings(self, config: LociConfig, data_dir: str | Path | None) -> None:
        """Save the settings; LLM changes apply at once, a new data folder or embedder reopens the store."""
        old = self.config
        self.config = config
        if self.config_path is not None:
            try:
                config.save(self.config_path)
            except OSError as exc:
                self.messages.error(f"Cannot save the settings to {self.config_path}: {exc.strerror or exc}.")
        mem = self._memory
        if mem is not None:
            mem.config.llm = config.llm  # used when the model is first loaded
            mem.config.extraction = config.extraction
            mem.config.search = config.search
        new_dir = Path(data_dir).expanduser() if data_dir else self.data_dir
        reopen = (new_dir != self.data_dir) or (config.embedder != old.embedder)
        if reopen and self._owns_memory:
            self.messages.info(f"Opening the store in {new_dir}…")
            for pool in (self.ingest_pool, self.write_pool, self.read_pool):
                pool.waitForDone(10_000)
            self._stop_following()
            if mem is not None:
                mem.close()
            self._memory = None
            self.data_dir = new_dir
            self._set_model_state(MODEL_NOT_LOADED)
            self.store_changed.emit()
            self.open_store(new_dir)
        else:
            self.messages.info("Settings saved.")


class _Relay(QObject):
    """A signal a worker thread can fire to reach the GUI thread."""

    fired = Signal()

    def emit(self) -> None:
        self.fired.emit()


def _all_records(mem: Any, page: int = 1000) -> list[MemoryRecord]:
    out: list[MemoryRecord] = []
    while True:
        rows = mem.list_records(top_k=page, offset=len(out))
        out.extend(rows)
        if len(rows) < page:
            return out


def read_export(path: str | Path) -> list[MemoryRecord]:
    """MemoryRecords from a Loci export file (or a mem0 get_all result)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"The file {p} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{p.name} is not a Loci export (not readable JSON: {exc}).") from None
    rows = data.get("memories", data.get("results")) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise InvalidInputError(f"{p.name} is not a Loci export: it has no 'memories' list.")
    return [_record_from_dict(r, i, p.name) for i, r in enumerate(rows)]


def _record_from_dict(d: Any, i: int, name: str) -> MemoryRecord:
    if not isinstance(d, dict) or not isinstance(d.get("memory"), str) or not d.get("id"):
        raise InvalidInputError(f"Entry {i + 1} of {name} has no 'id' and 'memory'.")
    now = datetime.now(timezone.utc)

    def when(key: str, default: datetime) -> datetime:
        value = d.get(key)
        if not value:
            return default
        try:
            t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"Entry {i + 1} of {name} has an unreadable {key} '{value}'.") from None
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    created = when("created_at", now)
    scope = Scope(d.get("user_id"), d.get("agent_id"), d.get("run_id"))
    if scope.is_empty:
        raise InvalidInputError(f"Entry {i + 1} of {name} belongs to no user, agent or session.")
    rec = MemoryRecord(id=str(d["id"]), memory=d["memory"], hash=d.get("hash") or content_hash(d["memory"]),
                       scope=scope, created_at=created, updated_at=when("updated_at", created),
                       timestamp=when("timestamp", created), metadata=dict(d.get("metadata") or {}),
                       role=d.get("role"), actor=d.get("actor_id"), memory_type=d.get("memory_type"),
                       event_date=d.get("event_date"),
                       source_message_ids=tuple(d.get("source_message_ids") or ()),
                       entities=tuple(d.get("entities") or ()))
    return rec


def content_hash(text: str) -> str:
    """The engine's content hash (same formula as engine.memory.content_hash) for old exports."""
    import hashlib

    return hashlib.md5(" ".join(text.split()).casefold().encode("utf-8")).hexdigest()
