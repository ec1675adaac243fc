"""GUI figures: start-up time with 10k memories and table scrolling with 100k (prints them).

    python bench/gui_bench.py [--startup-n 10000] [--scroll-n 100000] [--cache /tmp/loci-bench]
    python bench/gui_bench.py --stalls [--conversation PATH] [--infer]
    python bench/gui_bench.py --stalls --rounds 3 [--variants in-process,separate]

--stalls measures how long the event loop stalls (a 5 ms timer's longest late tick) in the
real window over a fresh store with the real models: while the app's importer stores LoCoMo
conversation 26 (default $LOCI_LOCOMO_DIR/26.json, else ../shared/data/locomo-dev/26.json),
while another process adds 50 memories through the window's store (a client of it), while the
Assistant tab streams a reply from the packaged GGUF model and a note is added in the
background, and the time from Save to the new text shown in the list and the details (and to
the store's answer). LOCI_STALL_TRACE=1 prints the GUI thread's stack during stalls.
Targets: stall <= 100 ms, Save -> shown <= 200 ms. Each worst stall is split, from the GUI
thread's schedstat, into time it ran, waited for a core (the OS ran others) and slept (waiting
for the GIL or a lock), with the longest pause of the cyclic GC on any thread.

--stalls runs the window as the app does: the store's owner in a child process, the window its
client ("separate"). --rounds N runs N fresh processes of each variant, alternated, and prints a
table: "in-process" keeps the store in the window's process (as before), "before" also switches
off app/gui/pauses.py (the cyclic GC as Python sets it).

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
from typing import Sequence

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


class StallMeter:
    """The event loop's longest delay: a 5 ms timer notes how late each tick comes."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.clock = QElapsedTimer()
        self.timer = QTimer(interval=5)
        self.timer.timeout.connect(self._tick)
        self.worst = 0.0
        self.over_100 = 0  # stalls over the 100 ms target
        self.ticks: list[float] = []
        # where the GUI thread's time went during the worst stall: running (its own work), waiting for
        # a core (the OS ran other threads) or asleep (waiting for the GIL or a lock), from schedstat
        self._sched = self._open_schedstat()
        self._last_sched = self._read_sched()
        self.worst_split = (0.0, 0.0, 0.0)
        self.measuring = False
        self.gc_pauses: list[tuple[float, int]] = []  # (ms, generation) of the cyclic GC, on any thread
        self._gc_start = 0.0
        import gc

        gc.callbacks.append(self._gc)

        self._last_tick = time.monotonic()
        self.samples: dict[str, int] = {}  # GUI thread's stack during a stall -> times seen
        self._beat = None  # LOCI_STALL_BEAT=FILE: the last tick's time.monotonic(), for an outside watcher (py-spy)
        if os.environ.get("LOCI_STALL_BEAT"):
            import mmap

            with open(os.environ["LOCI_STALL_BEAT"], "wb") as f:
                f.write(b" " * 32)
            with open(os.environ["LOCI_STALL_BEAT"], "r+b") as f:
                self._beat = mmap.mmap(f.fileno(), 32)
        if os.environ.get("LOCI_STALL_TRACE"):  # what the GUI thread does during a stall
            import threading

            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """Every 10 ms, when the last tick is over 50 ms old: note the GUI thread's stack (and
        which other threads run Python), to print the commonest at stop()."""
        import threading
        import traceback

        main_id = threading.main_thread().ident
        while True:
            time.sleep(0.01)
            if not self.measuring or time.monotonic() - self._last_tick < 0.05:
                continue
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            gui = frames.get(main_id)
            where = "".join(traceback.format_list(traceback.extract_stack(gui)[-6:])) if gui else "(no frame)\n"
            others = sorted(f"{names.get(i, i)}@{traceback.extract_stack(f)[-1].name}"
                            for i, f in frames.items() if i not in (main_id, threading.get_ident()))
            key = where + "  others: " + ", ".join(others)
            self.samples[key] = self.samples.get(key, 0) + 1

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self.measuring:
            self.gc_pauses.append(((time.perf_counter() - self._gc_start) * 1000, info["generation"]))

    @staticmethod
    def _open_schedstat():
        import threading

        try:
            return open(f"/proc/self/task/{threading.get_native_id()}/schedstat", "rb", buffering=0)
        except OSError:  # not Linux
            return None

    def _read_sched(self) -> tuple[float, float]:
        """(ms on a core, ms waiting for one) of the GUI thread so far."""
        if self._sched is None:
            return 0.0, 0.0
        self._sched.seek(0)
        run, wait, _slices = self._sched.read().split()
        return int(run) / 1e6, int(wait) / 1e6

    def start(self) -> None:
        self.worst, self.ticks = 0.0, []
        self.over_100 = 0
        self.measuring = True
        self.worst_split = (0.0, 0.0, 0.0)
        self.gc_pauses = []
        self._last_sched = self._read_sched()
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        self._last_tick = time.monotonic()
        if self._beat is not None:
            self._beat.seek(0)
            self._beat.write(f"{self._last_tick:.6f}\n".encode().ljust(32))
        gap = self.clock.nsecsElapsed() / 1e6
        self.clock.restart()
        self.ticks.append(gap)
        self.over_100 += gap - 5 > 100
        run, wait = self._read_sched()
        ran, waited = run - self._last_sched[0], wait - self._last_sched[1]
        self._last_sched = (run, wait)
        if gap - 5 > self.worst:
            self.worst = gap - 5
            self.worst_split = (ran, waited, max(0.0, gap - ran - waited))
        if gap > 100 and self.samples is not None and os.environ.get("LOCI_STALL_TRACE"):
            print(f"STALL {gap - 5:.0f} ms ending at {time.time():.3f}: GUI thread ran {ran:.0f} ms, waited for a "
                  f"core {waited:.0f} ms, slept {max(0.0, gap - ran - waited):.0f} ms", flush=True)

    def split(self) -> str:
        ran, waited, slept = self.worst_split
        gc_ms = max((ms for ms, _gen in self.gc_pauses), default=0.0)
        return (f"(GUI thread ran {ran:.0f}, waited for a core {waited:.0f}, slept {slept:.0f} ms; "
                f"longest GC pause {gc_ms:.0f} ms of {len(self.gc_pauses)})")

    def stop(self) -> tuple[float, float]:
        """(worst stall, p99 stall) in ms."""
        self.measuring = False
        self.timer.stop()
        if self.samples:
            print(f"-- GUI thread during stalls over 50 ms ({sum(self.samples.values())} samples, 10 ms apart):")
            for key, n in sorted(self.samples.items(), key=lambda kv: -kv[1])[:6]:
                print(f"{n} x\n{key}\n")
            self.samples = {}
        late = sorted(max(0.0, t - 5) for t in self.ticks) or [0.0]
        return self.worst, late[min(len(late) - 1, int(len(late) * 0.99))]


def measure_stalls(conversation: Path, infer: bool, variant: str = "separate") -> dict[str, float]:
    """One run in this process. Variants: "separate" (what the app does: the store's owner in a child
    process, engine/service/owner_process.py), "in-process" (the store in the window's process, as
    before), "before" (in process, and app/gui/pauses.py switched off too)."""
    import tempfile

    from app.gui import pauses

    if variant == "before":
        pauses.HOLD_GC_WHILE_LOADING = False
    figures: dict[str, float] = {"load_start": os.getloadavg()[0]}

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.application import build
    from app.importers import load_conversation
    from engine import Scope

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="loci-gui-stalls-"))
    os.environ["LOCI_HOME"] = str(tmp)

    def wait_until(done, timeout_s: float) -> bool:
        loop = QEventLoop()
        poll = QTimer(interval=10)
        poll.timeout.connect(lambda: loop.quit() if done() else None)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        poll.start()
        loop.exec()
        poll.stop()
        return bool(done())

    t0 = time.perf_counter()
    window, bridge, _messages = build(data_dir=tmp / "store", store_process=variant == "separate")
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    shown_ms = (time.perf_counter() - t0) * 1000
    bridge.start()
    meter = StallMeter()
    meter.start()
    wait_until(lambda: bridge.model_state == "ready", 300)
    if os.environ.get("LOCI_BENCH_AFTER_PRELOAD"):  # let the background loading (spaCy...) finish first
        import threading

        wait_until(lambda: not any(t.name == "loci-model-loader" for t in threading.enumerate()), 300)
    worst, p99 = meter.stop()
    figures["start"], figures["start_n"] = worst, meter.over_100
    figures["start_gc"] = max((ms for ms, _gen in meter.gc_pauses), default=0.0)
    print(f"first window shown {shown_ms:.0f} ms after build; while the store opened and the model loaded: "
          f"longest stall {worst:.0f} ms {meter.split()}, p99 {p99:.0f} ms")

    conv = load_conversation(conversation)
    finished: list[object] = []
    bridge.import_finished.connect(finished.append)
    meter.start()
    started = time.perf_counter()
    window.start_import(conv, Scope(user_id="bench"), infer)
    wait_until(lambda: bool(finished), 3600)
    worst, p99 = meter.stop()
    figures["import"], figures["import_n"] = worst, meter.over_100
    figures["import_gc"] = max((ms for ms, _gen in meter.gc_pauses), default=0.0)
    figures["import_s"] = time.perf_counter() - started
    print(f"import of {conv.message_count} messages ({conversation.name}, infer={infer}) in "
          f"{time.perf_counter() - started:.1f} s: longest stall {worst:.0f} ms {meter.split()}, p99 {p99:.0f} ms")

    code = ("import sys\nfrom engine.service import open_memory\nm = open_memory(sys.argv[1])\n"
            "for i in range(50):\n    m.add(f'Note {i} from another program about Oslo and hiking', "
            "user_id='other', infer=False)\nm.close()\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    meter.start()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp / "store")], env=env)
    wait_until(lambda: proc.poll() is not None, 1200)
    wait_until(lambda: False, 1.0)  # the window follows the other program's writes
    worst, p99 = meter.stop()
    figures["adds"], figures["adds_n"] = worst, meter.over_100
    figures["adds_gc"] = max((ms for ms, _gen in meter.gc_pauses), default=0.0)
    print(f"50 adds from another process (exit {proc.returncode}) in {time.perf_counter() - started:.1f} s: "
          f"longest stall {worst:.0f} ms {meter.split()}, p99 {p99:.0f} ms")

    # a streamed assistant reply (the packaged GGUF model) while a note is added in the background
    from app.gui.main_window import TAB_MEMORIES

    assistant = window.assistant_view
    window.tabs.setCurrentIndex(window.tabs.indexOf(assistant))
    assistant.set_user("bench")
    assistant.controller.load_model()
    wait_until(lambda: assistant.controller.model_state in ("ready", "error"), 600)
    pieces: list[str] = []
    replies: list[object] = []
    notes: list[object] = []
    assistant.controller.token_received.connect(pieces.append)
    assistant.controller.reply_finished.connect(lambda _c, r: replies.append(r))
    assistant.controller.reply_failed.connect(replies.append)
    meter.start()
    started = time.perf_counter()
    assistant.input.setPlainText("What did Melanie paint, and what does Caroline want to do for a living?")
    assistant.send()
    bridge.add_note("Bench note: Caroline visited the lake with Melanie on a rainy Sunday.", Scope(user_id="bench"),
                    False, on_done=notes.append)
    wait_until(lambda: bool(replies) and bool(notes), 600)
    wait_until(lambda: False, 1.0)  # the browser follows the add
    worst, p99 = meter.stop()
    figures["reply"], figures["reply_n"] = worst, meter.over_100
    figures["reply_gc"] = max((ms for ms, _gen in meter.gc_pauses), default=0.0)
    print(f"streamed reply ({len(pieces)} pieces, model {assistant.controller.model_state}) with a background add "
          f"in {time.perf_counter() - started:.1f} s: longest stall {worst:.0f} ms {meter.split()}, p99 {p99:.0f} ms")
    window.tabs.setCurrentIndex(TAB_MEMORIES)

    from app.gui.models.memory_table import COL_MEMORY

    refreshed: list[int] = []
    window.table_updated.connect(lambda: refreshed.append(1))
    window.refresh()
    wait_until(lambda: bool(refreshed) and window.model.rowCount() > 0, 30)
    index = window.proxy.index(0, COL_MEMORY)
    window.table.selectionModel().setCurrentIndex(index, window.table.selectionModel().SelectionFlag.ClearAndSelect
                                                  | window.table.selectionModel().SelectionFlag.Rows)
    wait_until(lambda: window.detail.record is not None, 30)
    memory_id = window.detail.record.id
    new_text = "Edited in the benchmark: Caroline moved to Oslo."
    window.detail.editor.setPlainText(new_text)
    started = time.perf_counter()
    window.save_action.trigger()
    row = window.model.row_of(memory_id)
    in_list = row is not None and window.model.record(row).memory == new_text
    shown = in_list and window.detail.editor.toPlainText() == new_text and not window.detail.save_button.isEnabled()
    shown_ms = (time.perf_counter() - started) * 1000
    wait_until(lambda: window.detail.record is not None and window.detail.record.updated_at
               != window.detail.record.created_at, 120)
    stored_ms = (time.perf_counter() - started) * 1000
    figures["save"] = shown_ms if shown else float("nan")
    figures["load_end"] = os.getloadavg()[0]
    print(f"Save -> new text shown in list and details: {shown_ms:.1f} ms (shown: {shown}); "
          f"store's answer shown {stored_ms:.0f} ms after Save")
    bridge.close()
    return figures


PHASES = (("start", "while the store opens and the models load"), ("import", "import of the conversation"),
          ("adds", "50 adds from another process"), ("reply", "streamed reply + a background add"))


def compare_stalls(conversation: Path, infer: bool, rounds: int, variants: Sequence[str]) -> None:
    """Fresh processes, before and after alternated (before, after, before, ...): a table of longest stalls."""
    import json

    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for n in range(rounds):
        for variant in variants:
            out = subprocess.run([sys.executable, __file__, "--stalls", "--variant", variant, "--conversation",
                                  str(conversation)] + (["--infer"] if infer else []),
                                 capture_output=True, text=True, timeout=3600)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                raise SystemExit(f"{variant} run failed:\n{out.stdout}\n{out.stderr[-3000:]}")
            runs[variant].append(json.loads(line[-1][7:]))
            r = runs[variant][-1]
            print(f"round {n + 1} {variant}: " + ", ".join(f"{k} {r[k]:.0f}" for k, _ in PHASES)
                  + f"; save {r['save']:.1f} ms; load average {r['load_start']:.1f}-{r['load_end']:.1f}", flush=True)
    print("\nlongest stall per run in ms (how many stalls over 100 ms), runs in the order made; "
          "'separate' = the store's owner in a child process (the app's default), 'in-process' = "
          "in the window's process, 'before' = in process with app/gui/pauses.py switched off")
    print("| | " + " | ".join(variants) + " |\n|---|" + "---|" * len(variants))
    for key, label in PHASES + (("save", "Save -> new text shown"), ("import_s", "import's wall time (s)")):
        cells = [", ".join(f"{r.get(key, float('nan')):.1f}" if key in ("save", "import_s")
                           else f"{r[key]:.0f} ({r.get(key + '_n', 0):.0f})" for r in runs[v]) for v in variants]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in PHASES:
        cells = [", ".join(f"{r.get(key + '_gc', float('nan')):.0f}" for r in runs[v]) for v in variants]
        print(f"| longest GC pause, {label} | " + " | ".join(cells) + " |")
    loads = [r[k] for v in runs.values() for r in v for k in ("load_start", "load_end")]
    print(f"| load average (1 min) | {min(loads):.1f}-{max(loads):.1f} |" + " |" * (len(variants) - 1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--startup-n", type=int, default=10_000)
    p.add_argument("--scroll-n", type=int, default=100_000)
    p.add_argument("--cache", default=os.environ.get("LOCI_BENCH_CACHE", "/tmp/loci-bench"))
    p.add_argument("--child-startup", help=argparse.SUPPRESS)
    p.add_argument("--stalls", action="store_true", help="event-loop stalls during import, outside adds, Save")
    p.add_argument("--conversation", type=Path, default=Path(os.environ.get(
        "LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev")) / "26.json")
    p.add_argument("--infer", action="store_true", help="import with fact extraction (infer=True)")
    p.add_argument("--rounds", type=int, default=0,
                   help="with --stalls: this many runs each of before/after, alternated, and a table")
    p.add_argument("--variant", default="separate", help=argparse.SUPPRESS)
    p.add_argument("--variants", default="in-process,separate",
                   help="with --rounds: the variants compared (separate, in-process, before)")
    args = p.parse_args()
    if args.stalls and args.rounds:
        compare_stalls(args.conversation, args.infer, args.rounds, args.variants.split(","))
        return 0
    if args.stalls:
        import json

        figures = measure_stalls(args.conversation, args.infer, args.variant)
        print("RESULT " + json.dumps(figures), flush=True)
        return 0
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
