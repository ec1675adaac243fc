"""How long an update waits while the background entity linker is busy (prints the figures).

    python bench/linker_wait_bench.py [--memories 1500] [--updates 15]

Adds --memories memories (infer=False, 20 per call) so the entity linker has a backlog, then
times --updates updates of one memory while the linker thread parses that backlog, with the
linker's spaCy slices as shipped (engine/inference/nlp.py BACKGROUND_SLICE) and, in the same
run, with one slice per batch (how the linker held spaCy before: a whole batch at a time).
Prints p50 / max update time for both and how many updates ran while the linker was busy.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(data_dir: Path, memories: int, updates: int, slice_size: int) -> tuple[list[float], int]:
    from engine import Memory
    from engine.inference import nlp

    nlp.BACKGROUND_SLICE = slice_size
    with Memory(data_dir) as m:
        m.wait_until_ready()
        target = m.add("Maya keeps a diary about Oslo.", user_id="maya", infer=False)["results"][0]["id"]
        m.wait_for_entities()
        for start in range(0, memories, 20):
            m.add([{"role": "user", "content": f"Entry {i}: Maya met Tomas and Ingrid in Bergen on Friday "
                    f"to plan the concert at the Grieg Hall with Oskar from Nordlys."}
                   for i in range(start, min(memories, start + 20))], user_id="maya", infer=False)
        time.sleep(0.4)  # the linker starts once writes pause
        times, busy = [], 0
        for n in range(updates):
            busy += m.wait_for_entities(0) is False
            started = time.perf_counter()
            m.update(target, f"Maya keeps a diary about Oslo and Bergen, entry {n}.")
            times.append(time.perf_counter() - started)
            time.sleep(0.05)
        return times, busy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memories", type=int, default=1500)
    ap.add_argument("--updates", type=int, default=15)
    args = ap.parse_args()
    from engine.inference import nlp

    shipped = nlp.BACKGROUND_SLICE
    for label, size in (("slices (shipped)", shipped), ("whole batch", 10**6)):
        with tempfile.TemporaryDirectory(prefix="loci-linker-") as tmp:
            times, busy = measure(Path(tmp), args.memories, args.updates, size)
        print(f"{label:<18} update p50 {1000 * statistics.median(times):7.1f} ms  max {1000 * max(times):7.1f} ms"
              f"  ({busy} of {len(times)} while the linker had a backlog)", flush=True)


if __name__ == "__main__":
    main()
