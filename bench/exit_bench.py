"""Exit reliability: runs `loci` commands and engine scripts many times and counts abnormal exits.

    python bench/exit_bench.py [--runs 20] [--scripts 5] [--max-adds 2000] [--memories 300] [--source DIR]

From a source checkout, on a store of --memories memories: --runs runs each of `loci list`,
`get`, `history`, `export`, `import` (of that export, merging), `doctor` and `search`; then
--scripts scripts of each kind that add a random number (1..--max-adds) of memories through
`engine.Memory` and
  - end without close() (expected exit 0),
  - raise an uncaught exception without close() (expected exit 1),
  - get SIGTERM once they have added that many (expected exit 143, i.e. 128 + SIGTERM, after an
    orderly shutdown: the same status a shell shows for a terminated program).
An exit is abnormal when its status differs from the expected one (a signal such as SIGSEGV
or SIGABRT, 134, 139), when stderr shows a native abort ("terminate called", "libblis",
"Fatal Python error", "Segmentation fault"), or when it hangs past --timeout seconds.
--source runs another checkout (a worktree of an older commit, to compare); --bundle DIR runs the
commands with the built app's `loci` (an unpacked `make package` tarball) in an empty environment.
Prints one line per kind with runs, abnormal exits and the median wall time; target: 0 abnormal.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CRASH_MARKS = ("terminate called", "libblis", "Fatal Python error", "Segmentation fault", "Aborted",
               "core dumped")

SCRIPT = r'''
import sys
from engine import Memory

kind, data_dir, adds = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = Memory(data_dir)
done = 0
while done < adds or kind == "sigterm":
    n = min(20, max(1, adds - done)) if done < adds else 1
    m.add([{"role": "user", "content": f"Note {done + i}: Maya talked about Oslo, hiking and her sister Ingrid."}
           for i in range(n)], user_id="maya", infer=False)
    done += n
    print(done, flush=True)
if kind == "raise":
    raise RuntimeError("the script failed after its adds")
'''


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", MEM0_TELEMETRY="False",
                ORT_DISABLE_TELEMETRY="1")


def abnormal(returncode: int | None, stderr: str, expected: int) -> str | None:
    """Why this exit is abnormal, or None."""
    if returncode is None:
        return "hung"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    for mark in CRASH_MARKS:
        if mark in stderr:
            return f"stderr: {mark}"
    if returncode != expected:
        return f"exit {returncode}, expected {expected}"
    return None


def run_cli(args: list[str], timeout: float, bundle: Path | None = None) -> tuple[int | None, str, float]:
    """One `loci` command from source, or from the built bundle with an empty environment."""
    started = time.perf_counter()
    if bundle is not None:
        cmd, env = [str(bundle / "loci"), *args], {"HOME": str(bundle.parent / "home"), "PATH": "/usr/bin:/bin"}
    else:
        cmd, env = [sys.executable, "-m", "app.cli", *args], _env()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return None, str(exc.stderr or ""), time.perf_counter() - started
    return proc.returncode, proc.stderr, time.perf_counter() - started


def run_script(kind: str, data_dir: Path, adds: int, timeout: float) -> tuple[int | None, str, float]:
    """One engine script of `kind`; a "sigterm" one is sent SIGTERM once it has added `adds`."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, kind, str(data_dir), str(adds)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if kind == "sigterm":
            assert proc.stdout is not None
            for line in proc.stdout:
                if int(line) >= adds:
                    proc.send_signal(signal.SIGTERM)
                    break
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err, time.perf_counter() - started
    return proc.returncode, err, time.perf_counter() - started


def build_store(data_dir: Path, n: int) -> str:
    """n memories in one user's store; returns one memory's id."""
    sys.path.insert(0, str(ROOT))
    from engine import Memory

    with Memory(data_dir) as m:
        for start in range(0, n, 20):
            m.add([{"role": "user", "content": f"Entry {i}: Maya met Tomas in Bergen to plan a concert."}
                   for i in range(start, min(n, start + 20))], user_id="maya", infer=False)
        return str(m.get_all(user_id="maya", top_k=1)["results"][0]["id"])


def main() -> int:
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="runs of each loci command")
    ap.add_argument("--scripts", type=int, default=5, help="scripts of each kind (no close, raise, SIGTERM)")
    ap.add_argument("--max-adds", type=int, default=2000)
    ap.add_argument("--memories", type=int, default=300, help="size of the store the commands run on")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--only", choices=("cli", "scripts"), help="run one half only")
    ap.add_argument("--source", type=Path, default=ROOT, help="checkout to run (default: this one)")
    ap.add_argument("--bundle", type=Path, help="unpacked app folder whose `loci` runs the commands")
    args = ap.parse_args()
    ROOT = args.source.resolve()
    rng = random.Random(args.seed)
    rows: list[tuple[str, int, list[str], list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="loci-exit-") as tmp:
        tmp_path = Path(tmp)
        if args.only != "scripts":
            store = tmp_path / "store"
            memory_id = build_store(store, args.memories)
            export = tmp_path / "export.json"
            commands: dict[str, list[str]] = {
                "list": ["list", "-k", "20"], "get": ["get", memory_id], "history": ["history", memory_id],
                "export": ["export", str(export)], "import": ["import", str(export)],
                "doctor": ["doctor"], "search": ["search", "where did Maya meet Tomas?"]}
            for name, cli_args in commands.items():
                problems, times = [], []
                for _ in range(args.runs):
                    code, err, took = run_cli(["--data-dir", str(store), *cli_args], args.timeout,
                                              args.bundle.resolve() if args.bundle else None)
                    times.append(took)
                    why = abnormal(code, err, 0)
                    if why:
                        problems.append(why)
                rows.append((f"loci {name}", args.runs, problems, times))
                _print_row(rows[-1])
        if args.only != "cli":
            expected = {"no-close": 0, "raise": 1, "sigterm": 128 + signal.SIGTERM}
            for kind, want in expected.items():
                problems, times = [], []
                for n in range(args.scripts):
                    adds = rng.randint(1, args.max_adds)
                    code, err, took = run_script(kind.replace("no-close", "plain"),
                                                 tmp_path / f"{kind}-{n}", adds, args.timeout)
                    times.append(took)
                    why = abnormal(code, err, want)
                    if why:
                        problems.append(f"{why} after {adds} adds")
                rows.append((f"script, {kind} (exit {want})", args.scripts, problems, times))
                _print_row(rows[-1])
    total = sum(len(p) for _, _, p, _ in rows)
    print(json.dumps({"runs": sum(r for _, r, _, _ in rows), "abnormal": total}))
    return 1 if total else 0


def _print_row(row: tuple[str, int, list[str], Any]) -> None:
    name, runs, problems, times = row
    detail = f"  ({'; '.join(sorted(set(problems)))})" if problems else ""
    print(f"{name:<32} runs {runs:>4}  abnormal {len(problems):>3}  median {statistics.median(times):5.1f} s"
          f"{detail}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
