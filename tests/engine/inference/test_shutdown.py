"""engine/inference/shutdown.py: background work stops in stage order when a program ends, however it ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CRASH_MARKS = ("terminate called", "libblis", "Fatal Python error", "Segmentation fault")


def _run(code: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_stop_functions_run_by_stage_before_atexit_and_after_an_uncaught_exception():
    out = _run("""
        import atexit
        from engine.inference import shutdown

        atexit.register(lambda: print("atexit", flush=True))
        shutdown.on_exit(lambda: print("models", flush=True), shutdown.MODELS)
        shutdown.on_exit(lambda: print("store", flush=True), shutdown.STORE)
        shutdown.on_exit(lambda: print("front", flush=True), shutdown.FRONT)
        gone = shutdown.on_exit(lambda: print("unregistered", flush=True), shutdown.FRONT)
        gone()
        raise RuntimeError("boom")
    """)
    assert out.returncode == 1 and "RuntimeError: boom" in out.stderr
    assert out.stdout.split() == ["front", "store", "models", "atexit"]


def test_sigterm_ends_the_program_through_its_stop_functions_with_status_143():
    out = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from engine.inference import shutdown

        shutdown.install_sigterm_exit()
        shutdown.on_exit(lambda: print("stopped", flush=True))
        print("ready", flush=True)
        time.sleep(60)
    """)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    assert out.stdout is not None and out.stdout.readline().strip() == "ready"
    out.send_signal(signal.SIGTERM)
    rest, _ = out.communicate(timeout=30)
    assert out.returncode == 128 + signal.SIGTERM and rest.split() == ["stopped"]


@pytest.mark.parametrize(("ending", "status"), [("return", 0), ("raise", 1)])
def test_a_script_that_never_closes_its_store_exits_cleanly_and_keeps_every_memory(tmp_path, ending, status):
    # Ends while the entity model is still loading in the background (the first add waits only
    # for the embedder): before orderly shutdown this died with SIGSEGV (3 runs of 4) or
    # "terminate called without an active exception".
    out = _run("""
        import sys
        from engine import Memory

        m = Memory(sys.argv[1])
        m.add("Maya hiked near Bergen with Ingrid.", user_id="maya", infer=False)
        print(m.get_all(user_id="maya")["results"][0]["memory"], flush=True)
        if sys.argv[2] == "raise":
            raise RuntimeError("the script failed")
    """, str(tmp_path / "store"), ending)
    assert out.returncode == status, out.stderr[-2000:]
    assert out.stdout.strip() == "Maya hiked near Bergen with Ingrid."
    assert not [m for m in CRASH_MARKS if m in out.stderr]
    check = _run("""
        import sys
        from engine import Memory

        with Memory(sys.argv[1]) as m:
            print(m.count({"user_id": "maya"}), len(m.open_report.repairs))
    """, str(tmp_path / "store"))
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.split() == ["1", "0"]  # nothing lost, nothing to repair: it was closed


def test_a_thread_still_writing_when_the_main_thread_ends_finishes_before_the_store_closes(tmp_path):
    out = _run("""
        import sys, threading, time
        from engine import Memory

        m = Memory(sys.argv[1])

        def work():
            time.sleep(1.0)  # still running when the main thread has ended
            for i in range(5):
                m.add(f"Late note {i} about Oslo.", user_id="maya", infer=False)
            print("written", flush=True)
        threading.Thread(target=work).start()
    """, str(tmp_path / "store"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["written"]
    check = _run("""
        import sys
        from engine import Memory

        with Memory(sys.argv[1]) as m:
            print(m.count({"user_id": "maya"}))
    """, str(tmp_path / "store"))
    assert check.stdout.split() == ["5"], check.stderr[-2000:]
