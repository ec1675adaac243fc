"""engine/service/heap.py: threads of a process that caps its malloc arenas share two (glibc)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.service.heap import cap_malloc_arenas

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

THREADS = textwrap.dedent("""
    import ctypes, sys, threading
    from engine.service.heap import cap_malloc_arenas
    print(cap_malloc_arenas() if sys.argv[1] == "cap" else None, flush=True)
    barrier = threading.Barrier(6)
    kept = []
    def work():
        kept.append(bytearray(100_000))  # from malloc, in the thread's arena
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
""")


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    run = subprocess.run([sys.executable, "-c", THREADS, mode], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={k: v for k, v in {**os.environ, **env}.items() if k != "MALLOC_ARENA_MAX" or v})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip(), sum(line.startswith("Arena ") for line in run.stderr.splitlines())


def test_capped_threads_share_two_arenas_where_they_would_take_one_each():
    assert _arenas("cap", MALLOC_ARENA_MAX="") == ("True", 2)
    said, arenas = _arenas("no", MALLOC_ARENA_MAX="")
    assert said == "None" and arenas > 2


def test_a_persons_own_malloc_arena_max_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False
    assert _arenas("cap", MALLOC_ARENA_MAX="4") == ("False", 4)
