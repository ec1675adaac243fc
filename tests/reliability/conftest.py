"""Fault-injection helpers: child processes, their logs, and the figures `make test-reliability` prints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("_worker.py")
ROOT = Path(__file__).resolve().parents[2]

# name -> value, summed over the tests that ran; printed at the end of the session
FIGURES: dict[str, int] = defaultdict(int)
ORDER = ["kills survived", "acknowledged writes checked", "acknowledged writes lost",
         "repairs needed on open after a kill", "disk-full runs", "disk-full runs that hung",
         "disk-full raw errors leaked", "disk-full acknowledged writes lost",
         "damaged-store cases", "damaged-store cases detected", "damaged-store raw errors",
         "fuzz calls made", "fuzz raw exceptions",
         "exit runs", "abnormal exits"]


def record(name: str, value: int = 1) -> None:
    FIGURES[name] += value


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name in ORDER + sorted(set(FIGURES) - set(ORDER)):  # zeros shown: a 0 is a result
        terminalreporter.write_line(f"{name:>48}: {FIGURES.get(name, 0)}")


def spawn(mode: str, data_dir: Path, log: Path, seed: int = 0, *extra: str,
          max_file_bytes: int | None = None) -> subprocess.Popen:
    """Run the worker; max_file_bytes caps how large any file it writes may grow (RLIMIT_FSIZE)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))

    def limit_files() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the cap fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.Popen([sys.executable, str(WORKER), mode, str(data_dir), str(log), str(seed),
                             *extra], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit_files if max_file_bytes is not None else None)


def read_log(log: Path) -> list[list[Any]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut short by SIGKILL
            pass
    return out


def open_and_report(data_dir: Path, log: Path, timeout: float = 180) -> list[Any]:
    """Open the store in a fresh process; its one report line (OPEN / LOCI / RAW)."""
    proc = spawn("open", data_dir, log)
    _, err = proc.communicate(timeout=timeout)
    lines = [entry for entry in read_log(log) if entry[0] in ("OPEN", "LOCI", "RAW")]
    assert lines, f"the checking process wrote nothing: {err[-2000:]}"
    return lines[-1]


@pytest.fixture
def hash_embedder() -> Any:
    from _worker import HashEmbedder

    return HashEmbedder()
