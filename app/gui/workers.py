"""QRunnable workers: run one engine call off the event loop and report through signals."""
from __future__ import annotations

import logging
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, Signal

from engine import CancelToken, LociError  # noqa: F401 (CancelToken re-exported for the GUI)

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """What a worker reports; delivered on the GUI thread (queued connections)."""

    progress = Signal(int, int)
    result = Signal(object)
    failed = Signal(str)  # a LociError's user message
    crashed = Signal(str, str)  # summary, traceback: a bug
    finished = Signal()


class Worker(QRunnable):
    """Calls fn(*args, **kwargs); with wants_progress=True also passes progress=callback."""

    def __init__(self, fn: Callable[..., Any], *args: Any, wants_progress: bool = False,
                 name: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the bridge holds it until finished
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = WorkerSignals()
        if wants_progress:
            self.kwargs["progress"] = self.signals.progress.emit

    def run(self) -> None:
        try:
            value = self.fn(*self.args, **self.kwargs)
        except LociError as exc:
            self.signals.failed.emit(exc.user_message)
        except Exception as exc:  # a bug: keep the app alive, show and log it
            self.signals.crashed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()
