"""LoCoMo retrieval benchmark: raw turns (infer=False) against episodes+facts (infer=True).

Reads the conversations from $LOCI_LOCOMO_DIR (default <repo>/../shared/data/locomo-dev) at
run time, never copying them into the repo. Every dialog turn is given to add() as
"Speaker: text" with the speaker's name, one add() per session (timestamp = the session's date,
metadata dia_id), one user_id per conversation; every question of categories 1-4 is asked
with search(q, filters={"user_id": conv}).

Paths compared:
  raw        a store built with infer=False (every turn an episode);
  facts      the infer=True store searched with filters={"memory_type": {"ne": "message"}};
  ep+facts   the infer=True store searched whole (a fact and its episode share one slot).
Metrics: hit@k (an evidence turn among the top k, facts count through their source turn);
at a word budget (context built by engine/assistant/context.py): evidence hit, and the share of the
gold answer's words found in the context text.

Stores are cached under --cache (default /tmp/loci-locomo) per conversation and extraction
setting, so ranking can be re-measured without re-extracting (--rebuild to force).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import Memory  # noqa: E402
from engine.assistant.context import build_context  # noqa: E402
from engine.records import ScoredMemory  # noqa: E402
from engine.search.retrieval import SearchOptions  # noqa: E402

DATA = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))
CACHE = Path("/tmp/loci-locomo")
KS = (5, 10, 20)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
FACTS_ONLY = {"memory_type": {"ne": "message"}}
METHODS = {
    "dense": SearchOptions(keyword=False, entity=False, time=False, context=False),
    "bm25": SearchOptions(semantic=False, entity=False, time=False, context=False),
    "dense+bm25": SearchOptions(entity=False, time=False, context=False),
    "hybrid": SearchOptions(),
}
_STOP = frozenset("a an the and or of to in on at for is was were be by with her his their she he "
                  "they it its that this as from".split())


# -- data ------------------------------------------------------------------------------------

def load(conversations: list[str] | None = None) -> list[tuple[str, dict]]:
    files = sorted(DATA.glob("*.json"))
    if conversations:
        files = [f for f in files if f.stem in conversations]
    if not files:
        sys.exit(f"No LoCoMo files found in {DATA} (set LOCI_LOCOMO_DIR)")
    return [(p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in files]


def sessions(conv: dict) -> Iterator[tuple[str, list[dict]]]:
    c = conv.get("conversation", conv)
    n = 1
    while f"session_{n}" in c:
        yield c[f"session_{n}_date_time"], c[f"session_{n}"]
        n += 1


def turns_of(conv: dict) -> int:
    return sum(len(turns) for _, turns in sessions(conv))


def last_session_date(conv: dict) -> str:
    return list(sessions(conv))[-1][0]


def questions(conv: dict, limit: int | None = None, per_category: int | None = None) -> list[dict]:
    """Category 1-4 questions: all, the first `limit`, or the first `per_category` of each category."""
    qs = [q for q in conv["qa"] if q.get("category") in CATEGORIES]
    if per_category:
        qs = [q for c in CATEGORIES for q in [x for x in qs if x["category"] == c][:per_category]]
    return qs[:limit] if limit else qs


# -- stores ----------------------------------------------------------------------------------

@dataclass
class Built:
    path: Path
    seconds: float  # ingest wall time (0 when read from the cache)
    turns: int
    memories: int


def store_label(infer: bool, mode: str, model: str | None) -> str:
    if not infer:
        return "raw"
    return f"infer-{mode}-{Path(model).stem if model else 'default'}"


def open_memory(path: Path, mode: str = "select", model: str | None = None,
                embedder: str | None = None, precision: str | None = None) -> Memory:
    config: dict[str, Any] = {"extraction": {"mode": mode}}
    if model:
        config["llm"] = {"model_path": model}
    if embedder:  # a model folder (bench/embedder_bench.py --prepare writes some)
        config["embedder"] = {"path": embedder}
    if precision:  # fp32 or int8 (default: the settings' default)
        config.setdefault("embedder", {})["precision"] = precision
    return Memory(path, config)


def build(conv_id: str, conv: dict, *, infer: bool, mode: str, model: str | None, cache: Path,
          rebuild: bool, progress: bool = True, embedder: str | None = None,
          precision: str | None = None) -> Built:
    """The store of one conversation, from the cache when it is complete."""
    path = cache / f"{conv_id}-{store_label(infer, mode, model)}"
    done = path / "bench-done.json"
    if done.exists() and not rebuild:
        info = json.loads(done.read_text())
        return Built(path, info["seconds"], info["turns"], info["memories"])
    shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    n_turns = 0
    with open_memory(path, mode, model, embedder, precision) as mem:
        all_sessions = list(sessions(conv))
        for s, (when, turns) in enumerate(all_sessions, start=1):
            mem.add([{"role": "user", "name": t["speaker"], "content": f"{t['speaker']}: {t['text']}",
                      "metadata": {"dia_id": t["dia_id"]}} for t in turns],
                    user_id=conv_id, timestamp=when, infer=infer)
            n_turns += len(turns)
            if progress:
                rate = (time.perf_counter() - started) / n_turns
                print(f"\r  {conv_id} {store_label(infer, mode, model)}: session {s}/{len(all_sessions)}, "
                      f"{n_turns} turns, {rate:.3f} s/turn", end="", file=sys.stderr, flush=True)
        mem.wait_for_entities()  # entities are linked after add() returns: rank with all of them
        memories = mem.count()
    if progress:
        print(file=sys.stderr)
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"seconds": seconds, "turns": n_turns, "memories": memories}))
    return Built(path, seconds, n_turns, memories)


# -- metrics ---------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def answer_recall(answer: Any, context: str) -> float:
    """Share of the gold answer's content words that appear in the context."""
    gold = [w for w in words(str(answer)) if w not in _STOP] or words(str(answer))
    have = set(words(context))
    return sum(1 for w in gold if w in have) / len(gold) if gold else 0.0


def dia_ids(mem: Memory, hits: list[ScoredMemory]) -> list[set[str]]:
    """The dialog turn(s) each hit stands for (facts through their source turn's metadata)."""
    return [{h.record.metadata.get("dia_id")} - {None} for h in hits]


@dataclass
class Table:
    """Per-category lists of per-question values, for one path and metric."""

    values: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def add(self, metric: str, cat: int, value: float) -> None:
        self.values.setdefault(metric, {}).setdefault(cat, []).append(value)

    def row(self, metric: str) -> tuple[list[float], float]:
        per = self.values.get(metric, {})
        cells = [statistics.fmean(per[c]) if per.get(c) else 0.0 for c in CATEGORIES]
        flat = [v for c in CATEGORIES for v in per.get(c, [])]
        return cells, statistics.fmean(flat) if flat else 0.0


def evaluate(mem: Memory, conv_id: str, conv: dict, table: Table, *, filters: dict[str, Any],
             budgets: tuple[int, int], limit: int | None, options: SearchOptions = SearchOptions(),
             latency: list[float] | None = None) -> None:
    """Score every question of one conversation on one store and path into `table`."""
    ref = last_session_date(conv)
    for qa in questions(conv, limit):
        cat = qa["category"]
        gold = set(qa.get("evidence", []))
        started = time.perf_counter()
        hits = mem.search_records(qa["question"], top_k=60, filters={"user_id": conv_id, **filters},
                                  reference_date=ref, options=options)
        if latency is not None:
            latency.append((time.perf_counter() - started) * 1000)
        got = dia_ids(mem, hits)
        for k in KS:
            top = set().union(*got[:k]) if got[:k] else set()
            table.add(f"hit@{k}", cat, 1.0 if top & gold else 0.0)
        for budget in budgets:
            ctx = build_context(hits, budget) if hits else None
            shown = set().union(*got[:len(ctx.memory_ids)]) if ctx else set()
            table.add(f"ev@{budget}w", cat, 1.0 if shown & gold else 0.0)
            table.add(f"ans@{budget}w", cat, answer_recall(qa.get("answer", ""), ctx.text if ctx else ""))
            table.add(f"words@{budget}w", cat, float(ctx.words if ctx else 0))
            table.add(f"items@{budget}w", cat, float(len(ctx.memory_ids) if ctx else 0))


def print_tables(tables: dict[str, Table], metrics: list[str]) -> None:
    header = f"{'path':<22} {'metric':<10}" + "".join(f"{CATEGORIES[c][:11]:>12}" for c in CATEGORIES) + \
        f"{'overall':>10}"
    print(header)
    print("-" * len(header))
    for metric in metrics:
        for name, table in tables.items():
            cells, overall = table.row(metric)
            fmt = "{:>12.1f}" if metric.startswith(("words", "items")) else "{:>12.3f}"
            ofmt = "{:>10.1f}" if metric.startswith(("words", "items")) else "{:>10.3f}"
            print(f"{name:<22} {metric:<10}" + "".join(fmt.format(v) for v in cells) + ofmt.format(overall))
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", help="comma-separated conversation ids (default: all dev files)")
    ap.add_argument("--limit", type=int, help="only the first N questions of each conversation")
    ap.add_argument("--mode", default="off", help="extraction mode for infer=True: off, type, select, extract")
    ap.add_argument("--model", help="a GGUF file for extraction instead of the packaged SmolLM2-135M")
    ap.add_argument("--evidence", default="episode,best,fact",
                    help="comma-separated collapse preferences to compare: best, episode, fact, all")
    ap.add_argument("--budgets", default="250,300", help="two context word budgets")
    ap.add_argument("--methods", default="", help="also compare retrieval signals on raw turns: "
                    + ",".join(METHODS))
    ap.add_argument("--embedder", help="an embedding model folder instead of the packaged all-MiniLM-L6-v2 "
                    "(use a --cache of its own: cached stores keep the embedder that built them)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--rebuild", action="store_true", help="re-ingest even when a cached store exists")
    ap.add_argument("--precision", choices=["fp32", "int8"], help="the embedder's precision (default: the "
                    "settings' default; use a --cache of its own: a cached store moves to the precision asked)")
    args = ap.parse_args()
    convs = load(args.conversations.split(",") if args.conversations else None)
    budgets = tuple(int(b) for b in args.budgets.split(","))
    assert len(budgets) == 2, "--budgets takes two numbers"
    tables: dict[str, Table] = {"raw (infer=False)": Table()}
    for conv_id, conv in convs:
        raw = build(conv_id, conv, infer=False, mode=args.mode, model=args.model, cache=args.cache,
                    rebuild=args.rebuild, embedder=args.embedder, precision=args.precision)
        inf = build(conv_id, conv, infer=True, mode=args.mode, model=args.model, cache=args.cache,
                    rebuild=args.rebuild, embedder=args.embedder, precision=args.precision)
        print(f"{conv_id}: {raw.turns} turns; raw store {raw.memories} memories"
              + (f" ({raw.seconds / raw.turns * 1000:.1f} ms/turn)" if raw.seconds else " (cached)")
              + f"; infer=True ({args.mode}) {inf.memories} memories"
              + (f" ({inf.seconds / inf.turns:.3f} s/turn)" if inf.seconds else " (cached)"))
        with open_memory(raw.path, embedder=args.embedder, precision=args.precision) as mem:
            evaluate(mem, conv_id, conv, tables["raw (infer=False)"], filters={}, budgets=budgets,
                     limit=args.limit)
            for m in [x for x in args.methods.split(",") if x]:
                evaluate(mem, conv_id, conv, tables.setdefault(f"raw {m}", Table()), filters={},
                         budgets=budgets, limit=args.limit, options=METHODS[m])
        with open_memory(inf.path, args.mode, args.model, args.embedder, args.precision) as mem:
            n_facts = mem.count(FACTS_ONLY)
            print(f"    {n_facts} facts ({n_facts / inf.turns:.2f} per turn) + "
                  f"{inf.memories - n_facts} episodes")
            evaluate(mem, conv_id, conv, tables.setdefault(f"facts ({args.mode})", Table()),
                     filters=FACTS_ONLY, budgets=budgets, limit=args.limit)
            for pref in args.evidence.split(","):
                mem.config.search.evidence = pref
                evaluate(mem, conv_id, conv, tables.setdefault(f"ep+facts {pref}", Table()),
                         filters={}, budgets=budgets, limit=args.limit)
    n_q = sum(len(questions(c, args.limit)) for _, c in convs)
    print(f"\n{n_q} questions (categories 1-4) from {', '.join(c for c, _ in convs)}; "
          f"extraction mode {args.mode}, model {args.model or 'SmolLM2-135M (default)'}, "
          f"embedder {args.embedder or 'all-MiniLM-L6-v2 (default)'}, precision {args.precision or 'default'}\n")
    metrics = [f"hit@{k}" for k in KS]
    for b in budgets:
        metrics += [f"ev@{b}w", f"ans@{b}w", f"words@{b}w", f"items@{b}w"]
    print_tables(tables, metrics)


if __name__ == "__main__":
    main()
