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
    loaded again (raising the error to the caller) when it is first used. `stop` (called by the
    store's close, and at exit through engine/inference/shutdown.py) lets the step under way
    finish and skips the rest, so no thread is inside onnxruntime or spaCy when Python exits.
    """

    def __init__(self, steps: Sequence[tuple[str, Callable[[], Any]]],
                 progress: StepProgress | None = None, *, start: bool = True) -> None:
        self._steps = list(steps)
        self._progress = progress
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, daemon=True, name="loci-model-loader")
            self._thread.start()
        else:
            self._done.set()

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Skip the steps not started yet and wait for the one under way; False if it outlasted timeout."""
        self._stopping.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("a model is still loading after %.0f s", timeout or 0)
            return False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """True once every step ran (or one failed); False when the timeout passed first."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        steps, progress = self._steps, self._progress
        try:
            for n, (name, load) in enumerate(steps):
                if self._stopping.is_set():
                    return  # closing: the rest loads when first used, if ever
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
