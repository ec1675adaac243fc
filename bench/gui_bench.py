"""GUI figures: start-up time with 10k memories and table scrolling with 100k (prints them).

    python bench/gui_bench.py [--startup-n 10000] [--scroll-n 100000] [--cache /tmp/loci-bench]

Stores are built once through the real engine (Memory.add with infer=False) and cached. To
build 100k memories in minutes rather than an hour they are embedded by a deterministic
hash embedder with the default model's name and dimension: start-up and scrolling never
embed, so the figures are those of a real store of that size.

Start-up is measured in a fresh process, from interpreter start to the window shown with
its first page of rows painted. Scrolling jumps the scroll bar to 200 random positions and
pages down 200 times, repainting synchronously each time (pages are fetched from SQLite
on demand), after the background model load has finished.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WORDS = ("Oslo Bergen Ingrid Tomas coffee bike cats hiking Nordlys risotto dentist sister manager "
         "vegetarian guitar garden train concert birthday salmon marathon violin museum").split()


class HashEmbedder:
    """Deterministic unit vectors from the text hash (same name and size as the default model)."""

    name = "sentence-transformers/all-MiniLM-L6-v2"
    dimension = 384

    def embed_batch(self, texts):
        import numpy as np

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.md5(t.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


def build_store(path: Path, n: int) -> Path:
    """A store with n memories over 5 users and n/50 sessions (cached: reused when complete)."""
    from datetime import datetime, timedelta, timezone

    from engine import Memory

    marker = path / f".bench-{n}"
    if marker.exists():
        return path
    rng = random.Random(n)
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    t = time.perf_counter()
    with Memory(path, embedder=HashEmbedder()) as mem:
        have = mem.count()
        batch = 500
        for first in range(have, n, batch):
            msgs = [{"role": "user", "content": f"Memory {i}: " + " ".join(rng.choice(WORDS) for _ in range(12))}
                    for i in range(first, min(first + batch, n))]
            user = f"user{(first // batch) % 5}"
            mem.add(msgs, user_id=user, run_id=f"session-{first // 50}", infer=False,
                    timestamp=start + timedelta(hours=first // 10))
            if (first // batch) % 20 == 0:
                print(f"  building {path.name}: {first + len(msgs):,}/{n:,} "
                      f"({time.perf_counter() - t:.0f} s)", flush=True)
    marker.touch()
    return path


def child_startup(store: Path) -> None:
    """Runs in a fresh process: time to a visible window with its first rows painted."""
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from app.gui.application import build

    window, bridge, messages = build(data_dir=store)
    shown: dict[str, float] = {}

    def first_rows() -> None:
        if "rows" not in shown and window.model.rowCount():
            window.table.viewport().repaint()
            shown["rows"] = time.perf_counter()
            app.quit()

    window.table_updated.connect(first_rows)
    bridge.store_failed.connect(lambda text: (print("store failed:", text), app.quit()))
    window.show()
    app.processEvents()
    shown["window"] = time.perf_counter()
    bridge.start()
    app.exec()
    rows = window.model.rowCount()
    print(f"{(shown['window'] - T0) * 1000:.0f} {(shown.get('rows', time.perf_counter()) - T0) * 1000:.0f} {rows}")
    bridge.close()


def measure_startup(store: Path, runs: int = 3) -> tuple[float, float, int]:
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, __file__, "--child-startup", str(store)], capture_output=True,
                             text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, timeout=120)
        line = [ln for ln in out.stdout.splitlines() if ln and ln[0].isdigit()]
        if not line:
            raise SystemExit(f"start-up run failed:\n{out.stdout}\n{out.stderr[-2000:]}")
        window_ms, rows_ms, rows = line[-1].split()
        results.append((float(window_ms), float(rows_ms), int(rows)))
    best = min(results, key=lambda r: r[1])
    return best


def measure_scroll(store: Path) -> dict[str, float]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from app.gui.application import build

    window, bridge, _messages = build(data_dir=store)
    window.resize(1280, 800)
    window.show()
    done = []
    window.table_updated.connect(lambda: done.append(1))
    t = time.perf_counter()
    bridge.start()
    while not done and time.perf_counter() - t < 60:
        app.processEvents()
    open_ms = (time.perf_counter() - t) * 1000
    while bridge.model_state not in ("ready", "error") and time.perf_counter() - t < 120:
        app.processEvents()  # let the background model load finish: measure scrolling alone
        time.sleep(0.01)
    table, bar = window.table, window.table.verticalScrollBar()
    rows = window.model.rowCount()
    rng = random.Random(1)
    jumps, pages = [], []
    for _ in range(200):
        s = time.perf_counter()
        bar.setValue(rng.randrange(bar.maximum() + 1))
        table.viewport().repaint()
        app.processEvents()
        jumps.append((time.perf_counter() - s) * 1000)
    bar.setValue(0)
    for _ in range(200):
        s = time.perf_counter()
        bar.setValue(bar.value() + bar.pageStep())
        table.viewport().repaint()
        app.processEvents()
        pages.append((time.perf_counter() - s) * 1000)
    bridge.close()
    q = lambda xs, p: sorted(xs)[int(len(xs) * p) - 1]  # noqa: E731
    return {"rows": rows, "open_ms": open_ms, "jump_median": statistics.median(jumps), "jump_p95": q(jumps, 0.95),
            "jump_max": max(jumps), "page_median": statistics.median(pages), "page_p95": q(pages, 0.95),
            "page_max": max(pages)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--startup-n", type=int, default=10_000)
    p.add_argument("--scroll-n", type=int, default=100_000)
    p.add_argument("--cache", default=os.environ.get("LOCI_BENCH_CACHE", "/tmp/loci-bench"))
    p.add_argument("--child-startup", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_startup:
        child_startup(Path(args.child_startup))
        return 0
    cache = Path(args.cache)
    small = build_store(cache / f"store-{args.startup_n}", args.startup_n)
    window_ms, rows_ms, rows = measure_startup(small)
    print(f"start-up with {rows:,} memories: window shown {window_ms:.0f} ms, first rows painted {rows_ms:.0f} ms "
          "after interpreter start (best of 3)")
    big = build_store(cache / f"store-{args.scroll_n}", args.scroll_n)
    s = measure_scroll(big)
    print(f"table with {s['rows']:,} memories: opened in {s['open_ms']:.0f} ms; random scroll-bar jumps "
          f"median {s['jump_median']:.1f} ms, p95 {s['jump_p95']:.1f} ms, max {s['jump_max']:.1f} ms; "
          f"page-down median {s['page_median']:.1f} ms, p95 {s['page_p95']:.1f} ms, max {s['page_max']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
