"""Keeps the GUI thread's waits short: workers run at a lower CPU priority, and the cyclic GC skips the loaded models.

Measured with `python bench/gui_bench.py --stalls` (BENCHMARKS.md): the event loop stalled while
(1) worker threads, and the onnxruntime, llama.cpp, Chroma and spaCy threads they start, took both
cores of a small machine, so the woken GUI thread waited for one; and (2) a full collection of
the cyclic garbage collector walked the millions of objects spaCy and the other models load,
holding the GIL for 100-220 ms, on whichever thread happened to allocate.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import os
import sys
import threading

from engine import LociConfig

log = logging.getLogger(__name__)

# A worker thread's nice value on Linux: the GUI thread (0) gets a core about ten times as
# readily. Threads a worker starts (model loader, entity linker, inference pools) inherit it.
WORKER_NICE = 10
# Whether the cyclic GC waits until the models are loaded (then skips their objects for good).
HOLD_GC_WHILE_LOADING = True
# Cores the embedder leaves to the GUI thread (unless embedder.threads is set): on two cores an
# import's embedding otherwise takes both, and the woken GUI thread waits for one.
CORES_LEFT = 1

_lowered = threading.local()


def lower_this_thread() -> None:
    """Give the calling worker thread (and the threads it starts from now on) a lower CPU priority."""
    if getattr(_lowered, "done", False) or WORKER_NICE <= 0:
        return
    _lowered.done = True
    if sys.platform.startswith("linux"):  # nice is per thread on Linux (elsewhere a thread id is no pid)
        try:
            tid = threading.get_native_id()
            if os.getpriority(os.PRIO_PROCESS, tid) < WORKER_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, WORKER_NICE)
        except OSError as exc:  # a sandbox may refuse; the app works the same, only less smoothly
            log.debug("could not lower a worker thread's priority: %s", exc)
    else:
        from PySide6.QtCore import QThread

        thread = QThread.currentThread()
        if thread is not None:
            thread.setPriority(QThread.Priority.LowPriority)


def leave_a_core(config: LociConfig) -> LociConfig:
    """The config the GUI opens its store with: the embedder's threads one fewer than the cores
    (at least one, at most its own default of 4) unless set. The saved settings are not changed."""
    if config.embedder.threads is not None or CORES_LEFT <= 0:
        return config
    threads = max(1, min(4, (os.cpu_count() or 1) - CORES_LEFT))
    return dataclasses.replace(config, embedder=dataclasses.replace(config.embedder, threads=threads))


class GcHold:
    """No full collection while the models load (a pass over everything they load holds the GIL
    for 100-220 ms each time the heap has grown by a quarter); once they are loaded their
    objects are frozen, so later full passes walk only what came after.

    Young generations are still collected (cheap); only the oldest waits, by a high threshold
    rather than gc.disable(), which spaCy's loader (srsly) switches back on. The few cycles of
    garbage that reach the oldest generation while loading are kept until thaw() (the store
    closes), when the frozen objects go back to the collector."""

    _NO_FULL_PASS = 1 << 30

    def __init__(self) -> None:
        self.holding = False
        self.froze = False
        self._threshold: tuple[int, int, int] = gc.get_threshold()

    def hold(self) -> None:
        if HOLD_GC_WHILE_LOADING and not self.holding:
            self._threshold = gc.get_threshold()
            gc.set_threshold(self._threshold[0], self._threshold[1], self._NO_FULL_PASS)
            self.holding = True

    def release(self, *, freeze: bool) -> None:
        """Full collections back; freeze=True first moves every object so far out of their reach."""
        if not self.holding:
            return
        self.holding = False
        if freeze:
            gc.freeze()
            self.froze = True
        gc.set_threshold(*self._threshold)

    def thaw(self) -> None:
        """The loaded objects back under the collector (the store they belong to is closing)."""
        self.release(freeze=False)
        if self.froze:
            self.froze = False
            gc.unfreeze()
