"""Every `loci` command and every script ends with its status (0, 1, or 143 on SIGTERM), never a native crash."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, record

pytestmark = pytest.mark.reliability

RUNS = 3  # of each command; bench/exit_bench.py runs as many as you ask
CRASH_MARKS = ("terminate called", "libblis", "Fatal Python error", "Segmentation fault")
SCRIPT = r'''
import sys
from engine import Memory

kind, data_dir, adds = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = Memory(data_dir)
done = 0
while done < adds or kind == "sigterm":
    n = min(20, max(1, adds - done)) if done < adds else 1
    m.add([{"role": "user", "content": f"Note {done + i}: Maya hiked near Bergen with Ingrid."}
           for i in range(n)], user_id="maya", infer=False)
    done += n
    print(done, flush=True)
if kind == "raise":
    raise RuntimeError("the script failed after its adds")
'''


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1")


def _check(name: str, returncode: int, stderr: str, expected: int, problems: list[str]) -> None:
    record("exit runs")
    crashed = [m for m in CRASH_MARKS if m in stderr]
    if returncode != expected or crashed:
        record("abnormal exits")
        problems.append(f"{name}: exit {returncode} (expected {expected}) {crashed} {stderr[-300:]}")


def test_cli_commands_exit_with_their_status(tmp_path):
    store, export = tmp_path / "store", tmp_path / "export.json"
    seed = subprocess.run([sys.executable, "-c", SCRIPT, "plain", str(store), "150"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert seed.returncode == 0, seed.stderr[-2000:]
    listed = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(store), "--json", "list", "-k", "1"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    import json

    mid = json.loads(listed.stdout)["results"][0]["id"]
    commands = {"list": ["list"], "get": ["get", mid], "history": ["history", mid], "export": ["export", str(export)],
                "import": ["import", str(export)], "doctor": ["doctor"], "search": ["search", "where did Maya hike?"],
                "get (missing id)": ["get", "no-such-id"]}
    problems: list[str] = []
    for name, args in commands.items():
        for _ in range(RUNS):
            out = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(store), *args], cwd=ROOT,
                                 env=_env(), capture_output=True, text=True, timeout=300)
            _check(f"loci {name}", out.returncode, out.stderr, 1 if "missing" in name else 0, problems)
    assert problems == []


@pytest.mark.parametrize(("kind", "expected"), [("plain", 0), ("raise", 1), ("sigterm", 128 + signal.SIGTERM)])
def test_scripts_that_never_close_exit_with_their_status(tmp_path, kind, expected):
    rng = random.Random(kind)
    problems: list[str] = []
    for n in range(2):
        adds = rng.randint(1, 300)
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, kind, str(tmp_path / f"s{n}"), str(adds)], cwd=ROOT,
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kind == "sigterm":
            assert proc.stdout is not None
            for line in proc.stdout:
                if int(line) >= adds:
                    proc.send_signal(signal.SIGTERM)
                    break
        _, err = proc.communicate(timeout=600)
        _check(f"{kind} after {adds} adds", proc.returncode, err, expected, problems)
    assert problems == []
