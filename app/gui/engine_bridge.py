"""Owns the one engine.Memory of the GUI: runs its calls on worker pools (jobs.py) and reports by signals.

Every call into the store runs in a worker, reads too: a read waits while a write or the entity
linker holds the store, and the event loop must not. What an import, a restore or new settings do is the
engine's to decide (engine.service.importing, engine.store.export, engine.service.settings).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Collection, Sequence, cast

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from engine import (CancelToken, LociConfig, LociError, Memory, MemoryRecord, Scope, open_memory)
from engine.service import settings
from engine.paths import default_data_dir
from engine.service.importing import added_count, import_resumable, import_sessions
from engine.service.owner_process import OwnerProcess
from engine.store import export

from ..chat_exports import read_conversations
from ..importers import Conversation
from .read_jobs import ReadJobs
from .messages import Messages, imported, memories, repaired, restored
from .pauses import GcHold
from .store_changes import StoreChanges
from .workers import Worker

MODEL_NOT_LOADED, MODEL_LOADING, MODEL_READY, MODEL_ERROR = "not loaded", "loading", "ready", "error"
BACKUP_CHECK_MS = 3_600_000  # hourly check whether the daily backup is due
LOADED_CHECK_S = 0.25  # how often the loading worker looks whether the bridge is closing
ME = "you (Loci app)"  # the actor of edits made in the window
OnDone = Callable[[Any], None] | None  # called with a write's result once it landed
OnFailed = Callable[[str], None] | None  # called with the message when the store refused (default: shown)


class EngineBridge(ReadJobs):
    """The GUI's only door to the engine."""

    store_opened = Signal()
    store_failed = Signal(str)
    store_changed = Signal()
    model_state_changed = Signal(str)
    store_size_known = Signal(int, int)  # memories, bytes on disk
    reembed_progressed = Signal(object)  # a ReembedStatus, from the store's background move to int8

    def __init__(self, messages: Messages, memory: Memory | None = None, *, data_dir: str | Path | None = None,
                 config: LociConfig | None = None, config_path: str | Path | None = None,
                 store_process: bool = False, parent: QObject | None = None) -> None:
        super().__init__(messages, parent)
        self.memory: Memory | None = memory
        self._owns_memory = memory is None
        self.data_dir = Path(data_dir) if data_dir else (memory.data_dir if memory is not None else None)
        self.config = config or (memory.config if memory is not None else LociConfig())
        self.config_path = Path(config_path) if config_path else None
        self.model_state, self.model_error = MODEL_NOT_LOADED, ""
        self.changes = StoreChanges(lambda: self.import_token is not None, self)
        self.changes.changed.connect(self.store_changed)
        self.import_finished.connect(lambda _summary: self.changes.note())
        self._backup_timer = QTimer(self, interval=BACKUP_CHECK_MS, timeout=self.backup_if_due)  # the daily backup
        self.gc_hold = GcHold()  # no collection over the models while they load (pauses.py)
        # store_process: the store's owner runs in a child process and this one is its client, so the
        # engine's heavy work (Chroma's writes keep the GIL for a whole call) never stalls the window
        self.store_process = store_process and memory is None
        self.owner: OwnerProcess | None = None

    # -- lifecycle ---------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.memory is not None

    def start(self) -> None:
        """Open the store (in a worker unless one was given), then load the model."""
        self.gc_hold.hold()
        if self.memory is not None:
            self._opened(self.memory)
        else:
            self.open_store(self.data_dir)

    def open_store(self, data_dir: str | Path | None = None) -> None:
        """The owner's store, or a client of the program that owns it (RemoteMemory has Memory's methods)."""
        def failed(text: str) -> None:
            self.gc_hold.release(freeze=False)
            self.messages.error(text)
            self.store_failed.emit(text)
        def run(config: LociConfig = self.config) -> Memory:
            if self.store_process:
                self._start_owner(data_dir, config)
            mem = cast(Memory, open_memory(data_dir, config))
            status = getattr(mem, "migration_status", None)  # a client of another program has none
            if status is not None:
                status(watch=self.reembed_progressed.emit)  # emitted from the move's thread, queued here
            return mem
        self.submit(run, on_result=self._opened, on_failed=failed, name="open store")

    def _start_owner(self, data_dir: str | Path | None, config: LociConfig) -> None:
        """(In the opening worker) stop a previous owner process, start one for data_dir."""
        if self.owner is not None:
            self.owner.stop()
        self.owner = OwnerProcess(Path(data_dir) if data_dir else default_data_dir(), config)
        if self.owner.start() is None:  # another program owns the store, or the child could not start
            self.owner = None

    def _opened(self, mem: Memory) -> None:
        if mem is not self.memory:  # opened here, not given
            self.memory, self._owns_memory, self.data_dir = mem, True, mem.data_dir
        self.changes.follow(mem)
        self.store_opened.emit()
        if self._owns_memory:
            ready = self.owner.ready if self.owner is not None else None  # the owner process reports its own
            repairs = ready.repairs if ready is not None else mem.open_report.repairs
            if repairs:
                self.messages.info(repaired(repairs))
            self.backup_if_due()
            self._backup_timer.start()
        self.load_model()

    def backup_if_due(self) -> None:
        """Take the daily snapshot in the background when the last one is a day old."""
        if self.memory is not None and self._owns_memory:
            self.submit(self.memory.backup_if_due, on_failed=self.messages.error, pool=self.write_pool,
                        name="daily backup")

    def load_model(self) -> None:
        """Load the embedding model (and warm the search indexes) in the background; the worker then
        waits for the store's own background load (the entity model) to let the GC back in."""
        if (mem := self.memory) is None:
            return
        self._set_model_state(MODEL_LOADING)

        def load(progress: Callable[[int, int], None]) -> bool:
            mem.warm_up()
            progress(1, 2)  # the embedder is ready: searches can run
            ready = getattr(mem, "wait_until_ready", None)  # a client of another process loads nothing here
            while ready is not None and not ready(LOADED_CHECK_S):
                if self.closed:
                    return False
            return True

        def failed(text: str) -> None:
            self.gc_hold.release(freeze=False)
            self.model_error = text
            self._set_model_state(MODEL_ERROR)
            self.messages.error(text)
        self.submit(load, on_progress=self._embedder_loaded, on_result=self._models_loaded, on_failed=failed,
                    wants_progress=True, name="load models")

    def _embedder_loaded(self, _done: int = 0, _total: int = 0) -> None:
        if self.model_state != MODEL_READY:
            self._set_model_state(MODEL_READY)

    def _models_loaded(self, loaded: bool) -> None:
        """Every model is in: the GC back, with their objects frozen (pauses.GcHold)."""
        self._embedder_loaded()
        self.gc_hold.release(freeze=loaded)

    def _set_model_state(self, state: str) -> None:
        self.model_state = state
        self.model_state_changed.emit(state)

    def close(self, timeout_ms: int = 10_000) -> None:
        """Cancel imports, wait for running jobs, release the store."""
        self._backup_timer.stop()
        self.wait_for_jobs(timeout_ms, cancel=True)
        self._release()
        if self.owner is not None:  # the app is quitting: its store owner closes the store and exits
            self.owner.stop()
            self.owner = None

    def _release(self) -> None:
        """Stop using the store (a store owner process is stopped by close() or the next opening)."""
        self.gc_hold.thaw()  # the models' objects may be freed with the store
        self.changes.stop()
        if self.memory is not None and self._owns_memory:
            self.memory.close()
        self.memory = None

    def measure_store(self) -> None:
        """Count memories and bytes on disk in the background; emits store_size_known."""
        if (mem := self.memory) is not None:
            self.submit(lambda: (mem.count(), mem.disk_usage()), on_result=lambda v: self.store_size_known.emit(*v),
                        on_failed=lambda _t: None, name="store size")

    # -- writes ---------------------------------------------------------------------
    def _write(self, fn: Callable[[], Any], on_done: OnDone, name: str, *, pool: QThreadPool | None = None,
               tell: Callable[[Any], str] | None = None, on_failed: OnFailed = None) -> Worker:
        """Run a write; when it lands, say what it did (tell), refresh and call on_done."""
        def done(value: Any) -> None:
            self.changes.note()
            if on_done:
                on_done(value)
        def failed(text: str) -> None:
            self.changes.note()  # show what the store really holds
            (on_failed or self.messages.error)(text)
        return self.submit(fn, on_result=done, on_failed=failed, pool=pool or self.write_pool, name=name, tell=tell)

    def update_text(self, memory_id: str, text: str, on_done: OnDone = None, *, on_failed: OnFailed = None) -> Worker:
        return self._write(lambda: self._need_memory().update_record(memory_id, text, actor=ME), on_done,
                           "save memory", on_failed=on_failed)

    def delete(self, records: Sequence[MemoryRecord], on_done: OnDone = None, *, on_failed: OnFailed = None) -> Worker:
        ids = [r.id for r in records]
        return self._write(lambda: self._need_memory().delete_records(ids, actor=ME), on_done, "delete",
                           on_failed=on_failed)

    def restore(self, records: Sequence[MemoryRecord], on_done: OnDone = None, *, on_failed: OnFailed = None) -> Worker:
        """Undo of delete: the records back with their ids; the worker's result is how many."""
        return self._write(lambda: len([self._need_memory().restore_record(r) for r in records]), on_done, "restore",
                           on_failed=on_failed)

    def add_note(self, text: str, scope: Scope, infer: bool, on_done: Callable | None = None) -> Worker:
        def run() -> dict[str, Any]:
            return self._need_memory().add([{"role": "user", "content": text}], infer=infer, user_id=scope.user_id,
                                           agent_id=scope.agent_id, run_id=scope.run_id)
        return self._write(run, on_done, "add note", pool=self.ingest_pool,
                           tell=lambda result: f"Added {memories(added_count(result))}.")

    # -- imports: one at a time on the ingestion pool, with progress and Cancel ------------
    def import_conversation(self, conv: Conversation, scope: Scope, infer: bool) -> CancelToken:
        """Store every session of a conversation; progress counts messages, the table refreshes as they land."""
        def run(token: CancelToken, progress: Callable[[int, int], None]) -> Any:
            return import_sessions(self._need_memory(), conv.sessions, scope, infer=infer, progress=progress,
                                   cancel=token, stored=self.changes.note_from_any_thread)
        return self.submit_import(run, imported, "import conversation")

    def import_chat_export(self, path: Path, ids: Collection[str], messages: int, scope: Scope,
                           infer: bool) -> CancelToken:
        """The chosen conversations of a ChatGPT/Claude export, streamed; a re-import adds nothing twice."""
        def run(token: CancelToken, progress: Callable[[int, int], None]) -> Any:
            return import_resumable(self._need_memory(), read_conversations(path, only=ids), scope, total=messages,
                                    infer=infer, progress=progress, cancel=token,
                                    stored=self.changes.note_from_any_thread)
        return self.submit_import(run, imported, "import chat export")

    def import_json(self, source: str | Path | export.ExportFile, mode: export.Mode = "merge",
                    on_done: Callable | None = None) -> CancelToken:
        """Restore an export (merge: skip memories already here; replace: empty the store first)."""
        def run(token: CancelToken, progress: Callable[[int, int], None]) -> export.RestoreSummary:
            return export.restore(self._need_memory(), source, mode=mode, progress=progress, cancel=token)
        return self.submit_import(run, lambda summary: restored(summary, source), "restore export", on_done)

    def export_json(self, path: str | Path, records: Sequence[MemoryRecord] | None = None,
                    on_done: Callable | None = None) -> Worker:
        """Write the whole store (records=None) or the given records to a JSON file."""
        return self.submit(lambda: export.export_store(self._need_memory(), path, records), on_result=on_done,
                           name="export", tell=lambda n: f"Exported {memories(n)} to {Path(path).name}.")

    # -- settings ------------------------------------------------------------------------
    def apply_settings(self, config: LociConfig, data_dir: str | Path | None) -> None:
        """Save the settings; LLM changes apply at once, a new data folder or embedder reopens the store."""
        old, self.config = self.config, config
        if self.config_path is not None:
            try:
                settings.save_settings(config, self.config_path)
            except LociError as exc:
                self.messages.error(exc.user_message)
        change = settings.apply_settings(self.memory, old, config, self.data_dir, data_dir,
                                         owner_process=self.owner is not None)
        if not (change.reopen and self._owns_memory):
            self.messages.info("Settings saved.")
            return
        self.messages.info(f"Opening the store in {change.data_dir}…")
        self.wait_for_jobs(10_000)
        self._release()
        self.data_dir = change.data_dir
        self._set_model_state(MODEL_NOT_LOADED)
        self.store_changed.emit()
        self.open_store(change.data_dir)
