"""Add and search latency through the REST API (`loci serve`) vs in-process engine.Memory.

Builds a store of N memories (infer=False, batched adds), then measures p50/p95 of search and
of a one-message add, in-process and through the mem0-compatible REST API (a `loci serve`
child process that owns the same kind of store), with 1 and 8 concurrent clients.

    python bench/service_bench.py            # 10,000 memories
    python bench/service_bench.py --n 2000   # smaller, for a busy machine
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "app"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MEM0_TELEMETRY", "False")

QUERIES = ["where does the user live", "favourite food", "what sport", "who is the sister", "when is the trip",
           "what instrument", "which city", "allergies", "job", "pets"]
WORDS = ("Oslo Bergen tea coffee cello violin football tennis sister brother dentist Friday trip Rome "
         "peanuts cats dogs garden bees teacher nurse engineer Monday March winter summer").split()


def facts(n: int) -> list[str]:
    out = []
    for i in range(n):
        a, b, c = WORDS[i % len(WORDS)], WORDS[(i * 7) % len(WORDS)], WORDS[(i * 13) % len(WORDS)]
        out.append(f"Fact {i}: the user mentioned {a} and {b} while talking about {c}.")
    return out


def build(mem, n: int, batch: int = 250) -> None:
    texts = facts(n)
    for start in range(0, n, batch):
        mem.add([{"role": "user", "content": t} for t in texts[start:start + batch]], user_id="bench", infer=False)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure(fn, calls: int, clients: int) -> list[float]:
    def one(i: int) -> float:
        t = time.perf_counter()
        fn(i)
        return (time.perf_counter() - t) * 1000
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(calls)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="memories in the store (default 10000)")
    parser.add_argument("--calls", type=int, default=80, help="calls per measurement (default 80)")
    args = parser.parse_args()

    from engine import Memory
    from mem0 import MemoryClient
    from service_helpers import Served

    tmp = Path(tempfile.mkdtemp(prefix="loci-service-bench-"))
    t = time.perf_counter()
    with Memory(tmp / "inproc") as mem:
        build(mem, args.n)
    shutil.copytree(tmp / "inproc", tmp / "rest")  # the served store: the same contents
    print(f"built a store of {args.n:,} memories in {time.perf_counter() - t:.0f} s", flush=True)

    # Both paths are measured in the same rounds, interleaved, so machine load hits both alike.
    results: dict[tuple[str, int, str], list[float]] = {}
    served = Served(tmp / "rest").wait_ready()
    try:
        client = MemoryClient(host=served.url, api_key=served.key)
        overheads: list[float] = []
        engine_ms = threading.local()  # the Server-Timing of the last response on this thread

        def remember_timing(response) -> None:
            engine_ms.value = float(response.headers["server-timing"].split("dur=")[1])
        client.client.event_hooks["response"].append(remember_timing)

        def overhead_of(call):
            def timed(i: int) -> None:
                t = time.perf_counter()
                call(i)
                overheads.append((time.perf_counter() - t) * 1000 - engine_ms.value)
            return timed
        with Memory(tmp / "inproc") as mem:
            mem.warm_up()
            paths = {
                "in-process": (lambda i: mem.search(QUERIES[i % 10], filters={"user_id": "bench"}, top_k=10),
                               lambda i: mem.add(f"note {i}", user_id="bench", infer=False)),
                "REST (MemoryClient)": (
                    overhead_of(lambda i: client.search(QUERIES[i % 10], filters={"user_id": "bench"}, top_k=10)),
                    lambda i: client.add(f"note {i}", user_id="bench", infer=False)),
            }
            for search, _add in paths.values():
                search(0)  # warm both
            overheads.clear()
            rounds = 4
            for clients in (1, 8):
                overheads.clear()
                for _ in range(rounds):
                    for name, (search, add) in paths.items():
                        results.setdefault((name, clients, "search"), []).extend(
                            measure(search, args.calls // rounds, clients))
                        results.setdefault((name, clients, "add"), []).extend(
                            measure(add, args.calls // rounds, clients))
                results[("overhead", clients, "search")] = list(overheads)
    finally:
        served.stop()
    rows = [(name, clients, results[(name, clients, "search")], results[(name, clients, "add")])
            for clients in (1, 8) for name in ("in-process", "REST (MemoryClient)")]

    print(f"\nlatency in ms at {args.n:,} memories, {args.calls} calls each "
          f"(search top_k=10; add = one message, infer=False)")
    print(f"{'path':<22}{'clients':>8}{'search p50':>12}{'search p95':>12}{'add p50':>10}{'add p95':>10}")
    for path, clients, s, a in rows:
        print(f"{path:<22}{clients:>8}{statistics.median(s):>12.1f}{pct(s, .95):>12.1f}"
              f"{statistics.median(a):>10.1f}{pct(a, .95):>10.1f}")
    print("\nAPI overhead per REST search = client-observed time - engine time in the server "
          "(its Server-Timing header), same request:")
    for clients in (1, 8):
        o = results[("overhead", clients, "search")]
        print(f"  {clients} client(s): p50 {statistics.median(o):.1f} ms, p95 {pct(o, .95):.1f} ms "
              "(target: p50 <= 5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
