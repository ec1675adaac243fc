"""LoCoMo retrieval benchmark: hit@k and recall@k for dense, BM25 and Loci hybrid, plus latency.

Reads the conversations from ../shared/data/locomo-dev at run time (never copied into the
repo). Every dialog turn is stored raw ("Speaker: text", infer=False, one user_id per
conversation, timestamp = the session's date, metadata dia_id); every question of
categories 1-4 is asked with search(q, top_k=k, filters={"user_id": conv}).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import Memory  # noqa: E402
from engine.retrieval import SearchOptions  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "locomo-dev"
KS = (5, 10, 20)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
METHODS = {
    "dense": SearchOptions(keyword=False, entity=False, time=False, context=False),
    "bm25": SearchOptions(semantic=False, entity=False, time=False, context=False),
    "dense+bm25": SearchOptions(entity=False, time=False, context=False),
    "hybrid": SearchOptions(),
}


def load(paths: list[Path]) -> list[tuple[str, dict]]:
    return [(p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in paths]


def ingest(mem: Memory, conv_id: str, conv: dict) -> None:
    c = conv.get("conversation", conv)
    n = 1
    while f"session_{n}" in c:
        turns = c[f"session_{n}"]
        when = c[f"session_{n}_date_time"]
        mem.add([{"role": "user", "name": t["speaker"], "content": f"{t['speaker']}: {t['text']}",
                  "metadata": {"dia_id": t["dia_id"]}} for t in turns],
                user_id=conv_id, timestamp=when, infer=False)
        n += 1


def last_session_date(conv: dict) -> str:
    c = conv.get("conversation", conv)
    n = 1
    while f"session_{n + 1}" in c:
        n += 1
    return c[f"session_{n}_date_time"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("files", nargs="*", type=Path, help="LoCoMo json files (default: the dev set)")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    files = args.files or sorted(DATA.glob("*.json"))
    if not files:
        sys.exit(f"No LoCoMo files found in {DATA}")
    convs = load(files)
    methods = args.methods.split(",")
    hits = {m: {k: {} for k in KS} for m in methods}
    recall = {m: {k: {} for k in KS} for m in methods}
    latency: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "store") as mem:
        t0 = time.perf_counter()
        for conv_id, conv in convs:
            ingest(mem, conv_id, conv)
        print(f"ingested {mem.count()} turns in {time.perf_counter() - t0:.1f} s")
        mem.warm_up()
        for conv_id, conv in convs:
            ref = last_session_date(conv)
            for qa in conv["qa"]:
                cat = qa.get("category")
                if cat not in CATEGORIES:
                    continue
                gold = set(qa.get("evidence", []))
                for m in methods:
                    t = time.perf_counter()
                    res = mem.search_records(qa["question"], top_k=max(KS), filters={"user_id": conv_id},
                                             reference_date=ref, options=METHODS[m])
                    latency[m].append((time.perf_counter() - t) * 1000)
                    got = [r.record.metadata.get("dia_id") for r in res]
                    for k in KS:
                        top = set(got[:k])
                        hits[m][k].setdefault(cat, []).append(1.0 if top & gold else 0.0)
                        recall[m][k].setdefault(cat, []).append(len(top & gold) / len(gold) if gold else 0.0)
    n_q = len(next(iter(hits.values()))[KS[0]].get(1, [])) and sum(
        len(v) for v in hits[methods[0]][KS[0]].values())
    print(f"\n{n_q} questions (categories 1-4) from {', '.join(c for c, _ in convs)}\n")
    header = (f"{'method':<11} {'metric':<9}" + "".join(f"{CATEGORIES[c][:11]:>12}" for c in CATEGORIES)
              + f"{'overall':>10}")
    print(header)
    print("-" * len(header))
    for m in methods:
        for name, table in (("hit", hits), ("recall", recall)):
            for k in KS:
                cells = []
                allv: list[float] = []
                for c in CATEGORIES:
                    vals = table[m][k].get(c, [])
                    allv += vals
                    cells.append(f"{(sum(vals) / len(vals) if vals else 0):>12.3f}")
                print(f"{m:<11} {name + '@' + str(k):<9}" + "".join(cells) + f"{sum(allv) / len(allv):>10.3f}")
    print()
    for m in methods:
        lat = latency[m]
        p95 = statistics.quantiles(lat, n=100)[94] if len(lat) > 1 else lat[0]
        print(f"latency {m:<11} p50 {statistics.median(lat):6.1f} ms   p95 {p95:6.1f} ms")


if __name__ == "__main__":
    main()
