"""Orderly exit: background work stops before the interpreter finalizes the native libraries it runs.

onnxruntime, llama.cpp and spaCy's BLIS abort the process (SIGSEGV, "terminate called without
an active exception", "libblis: Aborting") when a thread is still inside them while Python
tears itself down. Whatever starts such work registers a stop function here; they are called
in stage order (front ends' work first, then stores, then models) when the main thread ends:
on a normal exit, after an uncaught exception, on `sys.exit`, and on SIGTERM (which
`install_sigterm_exit` turns into `SystemExit(143)` so the same path runs). A stop function
that is registered with `on_exit` and unregistered by its owner's own `close()` runs once at most.
"""
from __future__ import annotations

import logging
import signal
import threading
import weakref
from typing import Any, Callable

log = logging.getLogger(__name__)

FRONT, STORE, MODELS = 0, 1, 2  # the order stages stop in: work that uses a store, the store, models
SIGTERM_EXIT = 128 + signal.SIGTERM  # the status a shell shows for a terminated process

_lock = threading.Lock()
_stops: dict[int, tuple[int, Callable[[], Callable[[], None] | None]]] = {}
_next = 0
_exiting = False
_sigterm_installed = False


def on_exit(stop: Callable[[], None], stage: int = STORE) -> Callable[[], None]:
    """Call `stop` when the program ends (bound methods are held weakly); returns the unregister function."""
    global _next
    ref: Callable[[], Callable[[], None] | None]
    if hasattr(stop, "__self__") and hasattr(stop, "__func__"):
        ref = weakref.WeakMethod(stop)
    else:
        ref = lambda: stop  # noqa: E731 - a plain function lives as long as its module
    with _lock:
        key = _next
        _next += 1
        _stops[key] = (stage, ref)

    def unregister() -> None:
        with _lock:
            _stops.pop(key, None)
    return unregister


def is_exiting() -> bool:
    """True once the program's end has begun (background loops stop taking new work)."""
    return _exiting


def stop_all() -> None:
    """Run every registered stop function, stage by stage, newest first within a stage.

    Between the FRONT stage and the stores, the program's own threads are waited for as Python
    would (its non-daemon threads and executors' queued work finish first), so a thread that
    still writes to a store is not cut short by closing it.
    """
    global _exiting
    _exiting = True
    with _lock:
        pending = sorted(_stops.items(), key=lambda kv: (kv[1][0], -kv[0]))
        _stops.clear()
    waited = False
    for _key, (stage, ref) in pending:
        if stage > FRONT and not waited:
            _wait_for_program_threads()
            waited = True
        stop = ref()
        if stop is None:
            continue
        try:
            stop()
        except Exception:  # noqa: BLE001 - one failing stop must not keep the others from running
            log.exception("stopping background work at exit failed")


def _wait_for_program_threads() -> None:
    """What the interpreter does right after this hook, done first: executors finish their queued
    work, then every other non-daemon thread is joined."""
    import sys

    executors = sys.modules.get("concurrent.futures.thread")
    python_exit = getattr(executors, "_python_exit", None)
    if python_exit is not None:
        python_exit()  # wakes idle workers and joins them (it runs again, harmlessly, later)
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and thread is not threading.main_thread() and not thread.daemon:
            thread.join()


def install_sigterm_exit() -> None:
    """SIGTERM ends the program through SystemExit(143) (so every stop function runs) instead of
    killing it mid-way; only from the main thread, and only while nobody else handles SIGTERM."""
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the program handles SIGTERM itself
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no SIGTERM on this platform
        return
    _sigterm_installed = True


def _on_sigterm(_signum: int, _frame: Any) -> None:
    if _exiting:
        return  # already on the way out: let the stop functions finish
    raise SystemExit(SIGTERM_EXIT)


def _register() -> None:
    # threading's own exit hooks run when the main thread ends, before non-daemon threads are
    # joined and before atexit handlers (concurrent.futures uses the same hook); atexit otherwise.
    hook = getattr(threading, "_register_atexit", None)
    if hook is not None:
        try:
            hook(stop_all)
            return
        except RuntimeError:  # imported while the interpreter is already shutting down
            pass
    import atexit

    atexit.register(stop_all)


_register()
