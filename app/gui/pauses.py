"""Keeps the GUI thread's waits short: the embedder leaves it a core, and the cyclic GC skips the loaded models.

Measured with `python bench/gui_bench.py --stalls --rounds N` (BENCHMARKS.md): the event loop
stalled while (1) the embedder's threads took both cores of a small machine during an import, so
the woken GUI thread waited for one, and (2) full collections of the cyclic garbage collector,
while spaCy loaded, walked everything loaded so far with the GIL held for 100-220 ms each.
Lowering the workers' CPU priority (nice) was measured too and left out: a low-priority thread
holding the GIL made the GUI thread wait longer on a busy machine.
"""
from __future__ import annotations

import dataclasses
import gc
import os

from engine import LociConfig

# Whether the cyclic GC waits until the models are loaded (then skips their objects for good).
HOLD_GC_WHILE_LOADING = True
# Cores the embedder leaves to the GUI thread (unless embedder.threads is set): on two cores an
# import's embedding otherwise takes both, and the woken GUI thread waits for one.
CORES_LEFT = 1


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
