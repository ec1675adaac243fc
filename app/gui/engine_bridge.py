"""Owns the one engine.Memory of the GUI; runs slow calls in worker pools and reports by signals.

Fast reads (SQLite paging, counts, one record, its history and sources) are plain methods
that take a few milliseconds. Everything that embeds, searches, scans the whole store or
writes runs in a worker: reads and searches on a small general pool, edits and deletes on a
one-thread write pool (so an undo never overtakes the change it undoes) and imports on a
one-thread ingestion pool (one local LLM must not run two jobs at once).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, cast

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from engine import (CancelToken, Entity, HistoryEvent, LociConfig, LociError, Memory, MemoryRecord, Message, Scope,
                    ScoredMemory, StoreError)
from engine.store import export
from engine.store.ledger import ScopeCount
from engine.inference.models import check_gguf

from ..importers import Conversation
from .messages import Messages, plural
from .workers import Worker

log = logging.getLogger(__name__)

MODEL_NOT_LOADED, MODEL_LOADING, MODEL_READY, MODEL_ERROR = "not loaded", "loading", "ready", "error"
RAW_CHUNK = 25  # messages per add() when storing without the model
IMPORT_REFRESH_MS = 2000  # how often the table refreshes while an import stores memories
BACKUP_CHECK_MS = 3_600_000  # hourly check whether the daily backup is due
SCAN_LIMIT = 20_000  # records listed for the timeline view


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

    def __init__(self, messages: Messages, memory: Memory | None = None, *, data_dir: str | Path | None = None,
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
        self._backup_timer = QTimer(self, interval=BACKUP_CHECK_MS)  # the daily backup
        self._backup_timer.timeout.connect(self.backup_if_due)

    # -- lifecycle ---------------------------------------------------------------
    @property
    def memory(self) -> Memory | None:
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

        def open_it() -> Memory:
            # the owner, or a client of the program that owns it (RemoteMemory has Memory's methods)
            return cast(Memory, open_memory(data_dir, config))

        def opened(mem: Memory) -> None:
            self._memory, self._owns_memory = mem, True
            self._follow_changes(mem)
            self.data_dir = mem.data_dir
            self.store_opened.emit()
            if mem.open_report.repairs:
                self.messages.info("The store was checked and repaired when it opened: "
                                   + "; ".join(mem.open_report.repairs) + ".")
            self.backup_if_due()
            self._backup_timer.start()
            self.load_model()

        def failed(text: str) -> None:
            self.messages.error(text)
            self.store_failed.emit(text)

        self.submit(open_it, on_result=opened, on_failed=failed, name="open store")

    def backup_if_due(self) -> None:
        """Take the daily snapshot in the background when the last one is a day old."""
        if self._memory is not None and self._owns_memory:
            self.submit(self._memory.backup_if_due, on_failed=self.messages.error,
                        pool=self.write_pool, name="daily backup")

    def load_model(self) -> None:
        """Load the embedding model (and warm the search indexes) in the background."""
        mem = self._memory
        if mem is None:
            return
        load = mem.warm_up
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
        self._backup_timer.stop()
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

    def _need_memory(self) -> Memory:
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

    def scopes(self) -> list[ScopeCount]:
        return self._memory.scopes() if self._memory is not None else []

    def get_record(self, memory_id: str) -> MemoryRecord:
        return self._need_memory().get_record(memory_id)

    def history(self, memory_id: str) -> list[HistoryEvent]:
        return self._need_memory().history_records(memory_id)

    def sources(self, memory_id: str) -> list[Message]:
        return self._need_memory().source_messages(memory_id)

    # -- background reads ----------------------------------------------------------
    def search(self, query: str, filters: Mapping[str, Any] | None, on_result: Callable,
               top_k: int = 100, on_failed: Callable | None = None) -> Worker:
        def run() -> list[ScoredMemory]:
            return self._need_memory().search_records(query, top_k=top_k, filters=dict(filters or {}))
        return self.submit(run, on_result=on_result, on_failed=on_failed, name="search")

    def list_filtered(self, filters: Mapping[str, Any], on_result: Callable, limit: int = 10_000) -> Worker:
        def run() -> list[MemoryRecord]:
            return self._need_memory().list_records(filters=dict(filters), top_k=limit)
        return self.submit(run, on_result=on_result, name="filter")

    def entities(self, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        """Entities with how many memories mention each."""
        def run() -> list[Entity]:
            return self._need_memory().entities(filters=dict(filters or {}) or None)
        return self.submit(run, on_result=on_result, name="entities")

    def entity_memories(self, name: str, filters: Mapping[str, Any] | None, on_result: Callable) -> Worker:
        def run() -> list[MemoryRecord]:
            return self._need_memory().entity_memories(name, filters=dict(filters or {}) or None)
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
            return mem.count(), mem.disk_usage()
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
            return self._need_memory().add([{"role": "user", "content": text}], infer=infer, user_id=scope.user_id,
                                           agent_id=scope.agent_id, run_id=scope.run_id)

        def done(result: dict[str, Any]) -> None:
            self._changed()
            added = sum(1 for r in result.get("results", []) if r.get("event") == "ADD")
            self.messages.info(f"Added {plural(added, 'memory')}.")
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
            what = plural(n, "memory")
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

    # -- export / restore of the store (the format lives in engine/store/export.py) ------------------
    def export_json(self, path: str | Path, records: Sequence[MemoryRecord] | None = None,
                    on_done: Callable | None = None) -> Worker:
        """Write the whole store (records=None) or the given records to a JSON file."""
        def run() -> int:
            return export.export_store(self._need_memory(), path, records)

        def done(n: int) -> None:
            self.messages.info(f"Exported {_memories(n)} to {Path(path).name}.")
            if on_done:
                on_done(n)
        return self.submit(run, on_result=done, pool=self.read_pool, name="export")

    def import_json(self, source: str | Path | export.ExportFile, mode: export.Mode = "merge",
                    on_done: Callable | None = None) -> CancelToken:
        """Restore an export (merge: skip memories already here; replace: empty the store first).

        Runs on the ingestion pool with progress and Cancel in the status bar, like an import.
        """
        token = CancelToken()
        self.import_token = token
        name = Path(source).name if isinstance(source, (str, Path)) else "the export"

        def run(progress: Callable[[int, int], None]) -> export.RestoreSummary:
            return export.restore(self._need_memory(), source, mode=mode, progress=progress, cancel=token)

        def done(summary: export.RestoreSummary) -> None:
            self.import_token = None
            self._changed()
            text = f"Restored {_memories(summary.added)} from {name}"
            if summary.skipped:
                text += f"; {summary.skipped:,} already here were skipped"
            if summary.removed:
                text += f"; {_memories(summary.removed)} removed first"
            self.messages.info(text + (" (cancelled)." if summary.cancelled else "."))
            self.import_finished.emit({"added": summary.added, "cancelled": summary.cancelled, "error": None})
            if on_done:
                on_done(summary)

        def failed(text: str) -> None:
            self.import_token = None
            self._changed()
            self.messages.error(text)
            self.import_finished.emit({"added": 0, "cancelled": token.is_cancelled, "error": text})

        self.submit(run, on_result=done, on_failed=failed, on_progress=self.import_progressed.emit,
                    pool=self.ingest_pool, wants_progress=True, name="restore export")
        return token

    # -- settings ------------------------------------------------------------------------
    @staticmethod
    def check_model_file(path: str) -> str | None:
        """None when the GGUF file looks loadable, else a message naming the file."""
        if not path:
            return None
        try:
            check_gguf(path)
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


def _memories(n: int) -> str:
    return plural(n, "memory")
