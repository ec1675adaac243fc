"""Grid-searches the fusion weights on the LoCoMo dev conversations (signals gathered once)."""
from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import Memory  # noqa: E402
from engine.search.filters import compile_filters  # noqa: E402
from engine.search.fusion import Weights  # noqa: E402
from engine.search.retrieval import rank  # noqa: E402
from engine.extraction.temporal import parse_timestamp  # noqa: E402
from locomo_retrieval import CATEGORIES, DATA, ingest, last_session_date, load  # noqa: E402


def main() -> None:
    convs = load(sorted(DATA.glob("*.json")))
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = Path(paths[0]) if paths else None  # reuse an ingested store between runs
    with tempfile.TemporaryDirectory() as tmp, Memory(keep or Path(tmp) / "s") as mem:
        if not mem.count():
            for conv_id, conv in convs:
                ingest(mem, conv_id, conv)
        retriever = mem._retriever
        mem_weights = retriever.weights()
        gathered = []
        for conv_id, conv in convs:
            ref = parse_timestamp(last_session_date(conv))
            filters = {"user_id": conv_id}
            for qa in conv["qa"]:
                if qa.get("category") in CATEGORIES:
                    found = retriever.gather(qa["question"], n=200, filters=filters,
                                             predicate=compile_filters(filters), reference_date=ref)
                    gathered.append((found, set(qa["evidence"])))
                    if "--misses" in sys.argv:
                        top = [m.record.metadata.get("dia_id") for m in rank(found, retriever.weights())]
                        ranks = [top.index(g) + 1 for g in qa["evidence"] if g in top]
                        if not ranks or min(ranks) > 10:
                            print(f"MISS cat{qa['category']} rank={min(ranks) if ranks else None} "
                                  f"q={qa['question']!r} gold={qa['evidence']}")
    print(f"{len(gathered)} questions gathered")

    def score(w: Weights) -> tuple[float, float, float]:
        out = []
        for k in (5, 10, 20):
            hit = 0
            for found, gold in gathered:
                top = [m.record.metadata.get("dia_id") for m in rank(found, w)[:k]]
                hit += bool(set(top) & gold)
            out.append(hit / len(gathered))
        return tuple(out)  # type: ignore[return-value]

    if "--no-grid" in sys.argv:
        print("default weights:", score(mem_weights))
        return
    results = []
    grid = itertools.product([0.5, 1.0, 1.5], [0.0, 0.1, 0.2], [0.0, 0.2],
                             [2.0, 4.0, 8.0], [0.0, 0.1, 0.2, 0.3, 0.5])
    for kw, ent, tm, scale, ctx in grid:
        w = Weights(semantic=1.0, keyword=kw, entity=ent, time=tm, bm25_scale=scale, context=ctx)
        results.append((score(w), w))
    results.sort(key=lambda r: (r[0][1], r[0][0] + r[0][2]), reverse=True)
    for (h5, h10, h20), w in results[:15]:
        print(f"hit@5 {h5:.3f} hit@10 {h10:.3f} hit@20 {h20:.3f}  kw={w.keyword} ent={w.entity} "
              f"time={w.time} scale={w.bm25_scale} context={w.context}")


if __name__ == "__main__":
    main()
