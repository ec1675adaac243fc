"""Fewer malloc arenas for a process that holds a store (glibc only): less memory, same speed.

glibc gives each new thread an arena of its own, up to eight per core. The threads of a store
(import lanes, embedder workers, the entity linker, Chroma's and onnxruntime's pools) then each
keep freed memory in their own arena, so a long import leaves the heap fragmented: capping the
arenas at two cut the peak RSS of a 40,000-message import from 829 to 700 MiB with no change in
its time (BENCHMARKS.md, stop 29). The processes Loci starts (`loci`, the desktop app and its
store process) call `cap_malloc_arenas()` first; a program that embeds the engine may too.
"""
from __future__ import annotations

import ctypes
import os

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Let threads share `arenas` malloc arenas from now on; True when glibc took it.

    Does nothing where the C library is not glibc, or when MALLOC_ARENA_MAX is set (the
    person's own choice, which glibc already applied at start).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):  # raises off Linux
            return False
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError, ValueError):
        return False
