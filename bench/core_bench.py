"""Engine-core benchmark: add throughput, search latency at 1k/10k memories, peak RSS."""
from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Memory  # noqa: E402

SUBJECTS = ["My sister", "My manager", "Our neighbour", "The dentist", "My best friend", "Grandma",
            "The landlord", "My coach", "Our team lead", "My cousin"]
VERBS = ["moved to", "loves", "recommended", "is allergic to", "visited", "bought", "plans a trip to",
         "started learning", "hates", "wrote about"]
OBJECTS = ["Oslo", "ramen", "the jazz festival", "peanuts", "a road bike", "Lisbon", "Spanish",
           "the new museum", "cold showers", "climbing", "Kyoto", "sourdough", "chess openings",
           "a vintage camera", "the marathon"]


def sentences(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    return [f"{rnd.choice(SUBJECTS)} {rnd.choice(VERBS)} {rnd.choice(OBJECTS)} ({i})" for i in range(n)]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "store") as mem:
        mem.embedder.embed_batch(["warm up"])
        one = sentences(100, seed=1)
        t = time.perf_counter()
        for s in one:
            mem.add(s, user_id="one", infer=False)
        one_by_one = len(one) / (time.perf_counter() - t)
        print(f"add one-by-one : {one_by_one:8.1f} memories/s  (100 calls)")
        stored = 0
        rows = []
        for size in sizes:
            batch = sentences(size - stored, seed=size)
            t = time.perf_counter()
            for start in range(0, len(batch), 500):
                mem.add([{"role": "user", "content": s} for s in batch[start:start + 500]],
                        user_id="bench", infer=False)
            rate = len(batch) / (time.perf_counter() - t)
            stored = size
            print(f"add batched    : {rate:8.1f} memories/s  ({len(batch)} memories, 500 per call)")
            queries = [f"who {v} {o}?" for v, o in zip(random.Random(size).choices(VERBS, k=args.queries),
                                                       random.Random(size + 1).choices(OBJECTS, k=args.queries))]
            t0 = time.perf_counter()
            mem.search(queries[0], top_k=10, filters={"user_id": "bench"})
            first = (time.perf_counter() - t0) * 1000
            lat = []
            for q in queries:
                t0 = time.perf_counter()
                mem.search(q, top_k=10, filters={"user_id": "bench"})
                lat.append((time.perf_counter() - t0) * 1000)
            rows.append((size, statistics.median(lat), pct(lat, 95), first))
        print(f"\n{'memories':>9} | {'search p50 ms':>13} | {'p95 ms':>7} | {'first ms':>8}")
        for size, p50, p95, first in rows:
            print(f"{size:>9} | {p50:>13.1f} | {p95:>7.1f} | {first:>8.1f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()
