"""The background move of an fp32 store to int8 (engine/store/reembed.py): its speed, and what it costs
the writers and searches that go on meanwhile.

An fp32 store of N memories (LoCoMo dev turns, cycled) is built once, then copied for each run:
  quiet     opened with precision fp32 (no move): the writer and searcher below, for a baseline;
  paced     opened with the default settings (int8): the move runs in the background at its
            normal pace (resting between batches) while the writer adds a memory every 100 ms
            and the searcher searches every 200 ms, until the switch;
  hurried   the same move with nobody else working, as `loci doctor` runs it (no rests).
Printed: memories re-embedded per second (wall, and per second of the thread's own work), how long
the thread held the write lock at most (saving a batch / switching), and the latency of the
writer's adds and of the searches (p50 / p99 / max) in each run. The machine is shared: compare runs of one invocation.

    LOCI_LOCOMO_DIR=... python bench/reembed_bench.py --memories 2000
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MEM0_TELEMETRY", "False")

from embedder_bench import conversations, turn_text  # noqa: E402

from engine import Memory  # noqa: E402

FP32 = {"embedder": {"precision": "fp32"}}


def turns() -> list[str]:
    """Every LoCoMo dev turn as "Speaker: text", in order (embedder_bench's reading of the files)."""
    return [turn_text(t) for conv in conversations() for _, session in conv for t in session]


def build(path: Path, n: int, texts: list[str]) -> float:
    """An fp32 store of n memories; returns adds/s of its 20-per-call adds."""
    started = time.perf_counter()
    with Memory(path, FP32) as mem:
        for start in range(0, n, 20):
            batch = [texts[i % len(texts)] + ("" if i < len(texts) else f" ({i // len(texts)})")
                     for i in range(start, min(n, start + 20))]
            mem.add([{"role": "user", "content": t} for t in batch], user_id="bench", infer=False)
    return n / (time.perf_counter() - started)


class Load:
    """A writer adding a memory every 100 ms and a searcher searching every 200 ms, timed."""

    def __init__(self, mem: Memory, texts: list[str]) -> None:
        self.mem, self.texts = mem, texts
        self.adds: list[float] = []
        self.searches: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write), threading.Thread(target=self._search)]
        for t in self._threads:
            t.start()

    def _write(self) -> None:
        k = 0
        while not self._stop.wait(0.1):
            started = time.perf_counter()
            self.mem.add(f"written during the run, number {k}: {self.texts[k % len(self.texts)]}",
                         user_id="bench", infer=False)
            self.adds.append((time.perf_counter() - started) * 1000)
            k += 1

    def _search(self) -> None:
        k = 0
        while not self._stop.wait(0.2):
            started = time.perf_counter()
            self.mem.search(self.texts[(k * 37) % len(self.texts)][:80], user_id="bench", top_k=10)
            self.searches.append((time.perf_counter() - started) * 1000)
            k += 1

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):6.1f} / {p99:6.1f} / {ordered[-1]:6.1f} ms (n={len(values)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memories", type=int, default=2000)
    ap.add_argument("--quiet-seconds", type=float, default=20.0, help="length of the baseline run")
    args = ap.parse_args()
    texts = turns()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "fp32"
        rate = build(source, args.memories, texts)
        print(f"built an fp32 store of {args.memories} memories ({rate:.0f} adds/s, 20 per call)\n")
        rows: list[tuple[str, str, str, str]] = []

        quiet = Path(tmp) / "quiet"
        shutil.copytree(source, quiet)
        with Memory(quiet, FP32) as mem:
            mem.wait_until_ready()
            load = Load(mem, texts)
            time.sleep(args.quiet_seconds)
            load.stop()
            assert mem.migration_status().state == "none"
        rows.append(("quiet (fp32, no move)", "-", spread(load.adds), spread(load.searches)))

        paced = Path(tmp) / "paced"
        shutil.copytree(source, paced)
        with Memory(paced) as mem:
            mem.wait_until_ready()
            load = Load(mem, texts)
            began = time.perf_counter()
            while mem.migration_status().is_active:  # polled: waiting on it would hurry it
                time.sleep(0.1)
            wall = time.perf_counter() - began
            status = mem.migration_status()
            load.stop()
        assert status.state == "done", status
        rows.append(("paced move (default)",
                     f"{status.total / wall:.0f}/s wall, {status.total / status.seconds:.0f}/s working; "
                     f"lock {status.longest_save_ms:.0f} / {status.longest_lock_ms:.0f} ms",
                     spread(load.adds), spread(load.searches)))
        paced_wall = wall

        hurried = Path(tmp) / "hurried"
        shutil.copytree(source, hurried)
        with Memory(hurried) as mem:
            began = time.perf_counter()
            status = mem.migration_status(wait=None)
            wall = time.perf_counter() - began
        assert status.state == "done", status
        rows.append(("hurried move (doctor)",
                     f"{status.total / wall:.0f}/s wall; lock {status.longest_save_ms:.0f} / "
                     f"{status.longest_lock_ms:.0f} ms", "-", "-"))

    print(f"{'run':<24} {'re-embed':<48} {'adds p50 / p99 / max':<36} {'searches p50 / p99 / max'}")
    for row in rows:
        print(f"{row[0]:<24} {row[1]:<48} {row[2]:<36} {row[3]}")
    print(f"\nthe paced move of {args.memories} memories took {paced_wall:.1f} s")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
