"""The GUI process's cyclic GC: no full pass over the models while they load, and none over them after.

Measured with `python bench/gui_bench.py --stalls --rounds N` (BENCHMARKS.md): while spaCy
loaded in the background (often during a newcomer's first import), full collections walked
everything loaded so far with the GIL held, 100-220 ms each, on whichever thread allocated.
Also measured and left out: lowering the workers' CPU priority (a low-priority thread holding
the GIL made the GUI thread wait longer on a busy machine) and leaving the GUI thread a core by
giving the embedder one thread fewer (no difference on a machine busy with other programs).
"""
from __future__ import annotations

import gc

# Whether the cyclic GC waits until the models are loaded (then skips their objects for good).
HOLD_GC_WHILE_LOADING = True


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
