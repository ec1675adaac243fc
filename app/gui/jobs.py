"""The GUI-thread side of workers: thread pools, the jobs in flight, and their results delivered as callbacks."""
from __future__ import annotations

from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from engine import CancelToken

from .messages import Messages
from .workers import Worker


def _reachable(callback: Callable | None) -> bool:
    """False for a method of a widget already deleted (its window closed while the job ran)."""
    if callback is None:
        return False
    owner = getattr(callback, "__self__", None)
    return not isinstance(owner, QObject) or shiboken6.isValid(owner)


class Job(QObject):
    """Lives on the GUI thread so a worker's signals arrive there; calls the callbacks.

    A result is said to the person when tell(result) is given, then goes to on_result. A known
    error goes to on_failed (or to the messages when there is none); a bug is shown as a crash and
    on_failed hears of it too. on_finished(job) runs last, whatever happened. Once the runner
    is closed, results no longer reach callbacks: their widgets may be gone.
    """

    def __init__(self, worker: Worker, messages: Messages, on_result: Callable | None, on_failed: Callable | None,
                 on_progress: Callable | None, on_finished: Callable[[Job], None], parent: QObject,
                 tell: Callable[[Any], str] | None = None, live: Callable[[], bool] = lambda: True) -> None:
        super().__init__(parent)
        self.live = live
        self.worker, self.messages, self.tell = worker, messages, tell
        self.on_result, self.on_failed, self.on_progress = on_result, on_failed, on_progress
        self.on_finished = on_finished
        s = worker.signals
        s.result.connect(self.handle_result)
        s.failed.connect(self.handle_failed)
        s.crashed.connect(self.handle_crashed)
        s.progress.connect(self.handle_progress)
        s.finished.connect(self.handle_finished)

    @Slot(object)
    def handle_result(self, value: object) -> None:
        if not self.live():
            return
        if self.tell:
            self.messages.info(self.tell(value))
        if _reachable(self.on_result):
            self.on_result(value)  # type: ignore[misc]

    @Slot(str)
    def handle_failed(self, text: str) -> None:
        if not self.live():
            return
        if self.on_failed is None:
            self.messages.error(text)
        elif _reachable(self.on_failed):
            self.on_failed(text)

    @Slot(str, str)
    def handle_crashed(self, summary: str, details: str) -> None:
        self.messages.crash(summary, details)
        if _reachable(self.on_failed):
            self.on_failed(f"Something went wrong inside Loci: {summary}")  # type: ignore[misc]

    @Slot(int, int)
    def handle_progress(self, done: int, total: int) -> None:
        if self.live() and _reachable(self.on_progress):
            self.on_progress(done, total)  # type: ignore[misc]

    @Slot()
    def handle_finished(self) -> None:
        self.on_finished(self)


class JobRunner(QObject):
    """Three pools: reads and searches (two threads), writes (one, so an undo never overtakes the
    change it undoes) and ingestion (one: one local LLM must not run two jobs at once), and the
    one import that may run at a time, with its progress and cancel token."""

    jobs_changed = Signal(int)
    import_progressed = Signal(int, int)
    import_finished = Signal(object)  # {"added": int, "cancelled": bool, "error": str | None}

    def __init__(self, messages: Messages, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.messages = messages
        self._jobs: set[Job] = set()
        self.read_pool, self.write_pool, self.ingest_pool = QThreadPool(self), QThreadPool(self), QThreadPool(self)
        self.read_pool.setMaxThreadCount(2)
        self.write_pool.setMaxThreadCount(1)
        self.ingest_pool.setMaxThreadCount(1)
        self.import_token: CancelToken | None = None
        self.closed = False

    @property
    def jobs(self) -> int:
        return len(self._jobs)

    def running(self) -> list[str]:
        """What the jobs in flight do ("open store", "search"...), oldest first."""
        return [job.worker.name for job in self._jobs]

    def submit(self, fn: Callable[..., Any], *args: Any, on_result: Callable | None = None,
               on_failed: Callable | None = None, on_progress: Callable | None = None,
               pool: QThreadPool | None = None, wants_progress: bool = False, name: str = "",
               tell: Callable[[Any], str] | None = None, **kwargs: Any) -> Worker:
        """Run fn(*args, **kwargs) on a pool (the read pool by default); callbacks run on the GUI thread."""
        worker = Worker(fn, *args, wants_progress=wants_progress, name=name, **kwargs)
        self._jobs.add(Job(worker, self.messages, on_result, on_failed, on_progress, self._job_done, self, tell,
                           live=lambda: not self.closed))
        self.jobs_changed.emit(len(self._jobs))
        (pool or self.read_pool).start(worker)
        return worker

    def submit_import(self, run: Callable[..., Any], tell: Callable[[Any], str], name: str,
                      on_done: Callable | None = None) -> CancelToken:
        """Run run(token, progress=...) on the ingestion pool; its result (anything with .added and
        .cancelled) is told to the person and reported by import_finished, as is a failure."""
        token = self.import_token = CancelToken()

        def done(summary: Any) -> None:
            self.import_token = None
            self.import_finished.emit({"added": summary.added, "cancelled": summary.cancelled, "error": None})
            if on_done:
                on_done(summary)

        def failed(text: str) -> None:
            self.import_token = None
            self.messages.error(text)
            self.import_finished.emit({"added": 0, "cancelled": token.is_cancelled, "error": text})
        self.submit(run, token, on_result=done, on_failed=failed, on_progress=self.import_progressed.emit,
                    pool=self.ingest_pool, wants_progress=True, name=name, tell=tell)
        return token

    def cancel_import(self) -> None:
        if self.import_token is not None:
            self.import_token.cancel()
            self.messages.info("Cancelling the import after the current step…")

    def wait_for_jobs(self, timeout_ms: int, *, cancel: bool = False) -> None:
        """Wait for the running jobs (ingestion first); cancel also stops the import and drops queued
        jobs, and from then on results reach no callback (the runner is closing)."""
        self.closed = self.closed or cancel
        if cancel and self.import_token is not None:
            self.import_token.cancel()
        for pool in (self.ingest_pool, self.write_pool, self.read_pool):
            if cancel:
                pool.clear()
            pool.waitForDone(timeout_ms)

    def _job_done(self, job: Job) -> None:
        self._jobs.discard(job)
        job.deleteLater()
        self.jobs_changed.emit(len(self._jobs))


class Relay(QObject):
    """A signal any thread can fire to reach the GUI thread."""

    fired = Signal()

    def emit(self) -> None:
        self.fired.emit()
