"""Work-arounds for known bugs of the Qt binding, each checked before it is applied."""
from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_BALLAST = 1 << 40
_applied = False


def none_refcount_leaks() -> bool:
    """True when calling a void Qt method drops a reference to None (PySide6 6.12.0 on Python 3.11).

    Python 3.12+ makes None immortal, so the missing incref is harmless there; on 3.11 the
    count of None falls by one per call and the process aborts with "Fatal Python error:
    none_dealloc" after some thousands of calls (seen in bench/gui_bench.py).
    """
    if sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import QTimer

    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(50):
        timer.stop()
    return sys.getrefcount(None) < before - 25


def keep_none_alive() -> bool:
    """Give None a huge reference count when the binding leaks it (what 3.12's immortality does).

    Returns whether the work-around was applied. Remove once PySide6 is pinned to a release
    without the leak or Loci requires Python 3.12.
    """
    global _applied
    if _applied:
        return True
    if not none_refcount_leaks():
        return False
    ctypes.c_ssize_t.from_address(id(None)).value += _BALLAST
    _applied = True
    log.warning("PySide6 %s drops references to None on Python %d.%d; applied the work-around",
                _pyside_version(), *sys.version_info[:2])
    return True


def _pyside_version() -> str:
    import PySide6

    return PySide6.__version__
