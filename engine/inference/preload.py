"""Models loaded in a background thread while the caller does other things, each step reported."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

StepProgress = Callable[[str, int, int], None]  # (step name or "ready", steps done, steps)


class Preload:
    """Runs each (name, load) step in order on a daemon thread; `wait` blocks until all ran.

    A failing step ends the run: its error is logged and kept in `error`, and the model is
    loaded again (raising the error to the caller) when it is first used.
    """

    def __init__(self, steps: Sequence[tuple[str, Callable[[], Any]]],
                 progress: StepProgress | None = None, *, start: bool = True) -> None:
        self._steps = list(steps)
        self._progress = progress
        self.error: BaseException | None = None
        self._done = threading.Event()
        if start:
            threading.Thread(target=self._run, daemon=True, name="loci-model-loader").start()
        else:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every step ran (or one failed); False when the timeout passed first."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        steps, progress = self._steps, self._progress
        try:
            for n, (name, load) in enumerate(steps):
                if progress is not None:
                    progress(name, n, len(steps))
                load()
            if progress is not None:
                progress("ready", len(steps), len(steps))
        except Exception as exc:  # noqa: BLE001 - raised again when the model is first used
            self.error = exc
            log.warning("background model load failed: %s", exc)
        finally:
            self._done.set()
