"""add(infer=False) throughput into a store that already holds N memories in one scope:
this checkout against an earlier commit, interleaved in fresh processes, with the ratio.

A base store of N memories (bench/scale_bench.py's corpus) is built once with the earlier
commit's engine (so both engines can open it) and copied for every run. Each run opens its
copy, waits for the models, searches once (the indexes are built, as in a session), then
times --batched memories added 20 per call and --single added one per call, and finally how
long the deferred entity linking takes to drain (0 for an engine that links inside add).
The new memories are LoCoMo turns when $LOCI_LOCOMO_DIR (or <repo>/../shared/data/locomo-dev)
holds them, else generated sentences, which are about a third as long and embed about three
times faster: the line before the table says which. --profile writes a cProfile of the adds
of this checkout and prints where the time goes. --first-add times instead the first add()
into a new store right after it opens (models still loading in the background).

    LOCI_LOCOMO_DIR=/work/shared/data/locomo-dev python bench/write_bench.py --baseline 01a0a1b
    python bench/write_bench.py --baseline 01a0a1b --profile /tmp/adds.prof --rounds 1 --only this

Timings on a shared machine are noisy: compare the ratios, which come from the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 20

WORKER = r'''
import json, sys, time
root, store, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
sys.path.insert(1, sys.argv[4])  # bench/ of this checkout, for the corpus
import engine
from engine import Memory
from scale_bench import corpus, locomo
size, batched, single, profile = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
out = {"engine": engine.__file__}
if mode == "first":  # a new store: how long the first add() right after open waits
    t = time.perf_counter()
    m = Memory(store)
    out["open_s"] = time.perf_counter() - t
    t = time.perf_counter()
    m.add("My sister Ingrid moved to Bergen last week", user_id="u", infer=False)
    out["first_add_s"] = time.perf_counter() - t
    m.wait_until_ready()
    t = time.perf_counter()
    m.add("Tomas ran the Oslo marathon", user_id="u", infer=False)
    out["second_add_s"] = time.perf_counter() - t
    m.close()
    print(json.dumps(out))
    raise SystemExit
if mode == "build":
    texts = corpus(size)
    with Memory(store) as m:
        m.wait_until_ready()
        for start in range(0, len(texts), 500):
            m.add([{"role": "user", "content": t} for t in texts[start:start + 500]], user_id="u",
                  infer=False)
        m.search("warm up", user_id="u")
    print(json.dumps(out))
    raise SystemExit
turns = locomo()[0] or corpus(batched + single, seed=99)  # real turns when the data is there
texts = [f"{turns[i % len(turns)]} (new {i})" for i in range(batched + single)]
out["mean_chars"] = sum(map(len, texts)) / len(texts)
m = Memory(store)
m.wait_until_ready()
m.search("warm up", user_id="u")
prof = None
if profile != "-":
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
t = time.perf_counter()
for start in range(0, batched, 20):
    m.add([{"role": "user", "content": x} for x in texts[start:start + 20]], user_id="u", infer=False)
out["batched_per_s"] = batched / (time.perf_counter() - t)
t = time.perf_counter()
for x in texts[batched:]:
    m.add(x, user_id="u", infer=False)
out["single_per_s"] = single / (time.perf_counter() - t)
if prof is not None:
    prof.disable()
    prof.dump_stats(profile)
t = time.perf_counter()
drain = getattr(m, "wait_for_entities", None)
if drain is not None:
    drain()
out["entity_drain_s"] = time.perf_counter() - t
out["linked"] = len(m.entity_memories("Oslo", filters={"user_id": "u"}))
t = time.perf_counter()
m.close()
out["close_s"] = time.perf_counter() - t
print(json.dumps(out))
'''


def load() -> str:
    try:
        return os.getloadavg().__repr__()
    except OSError:
        return "?"


def run(root: str, store: Path, mode: str, args: argparse.Namespace, profile: str = "-") -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, "-c", WORKER, root, str(store), mode, str(ROOT / "bench"),
                          str(args.size), str(args.batched), str(args.single), profile],
                         capture_output=True, text=True, env=env, cwd=root)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-4000:])
        raise SystemExit(f"worker failed ({mode} in {root})")
    return json.loads(res.stdout.strip().splitlines()[-1])


def first_add(args: argparse.Namespace, engines: list[tuple[str, str]]) -> None:
    for r in range(args.rounds):
        for name, root in engines:
            with tempfile.TemporaryDirectory() as tmp:
                out = run(root, Path(tmp) / "store", "first", args)
            print(f"round {r + 1} {name:>8}: open {out['open_s']:.2f} s, first add {out['first_add_s']:.3f} s, "
                  f"an add once the models are loaded {out['second_add_s']:.3f} s  (load {load()})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="01a0a1b", help="git commit of the engine to compare with")
    ap.add_argument("--size", type=int, default=10_000, help="memories in the store before the adds")
    ap.add_argument("--batched", type=int, default=1000, help="memories added 20 per call")
    ap.add_argument("--single", type=int, default=200, help="memories added one per call")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=["baseline", "this"], help="run one engine only")
    ap.add_argument("--profile", metavar="FILE", help="cProfile this checkout's adds into FILE")
    ap.add_argument("--first-add", action="store_true",
                    help="time the first add() right after opening a new store, nothing else")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "loci-write-bench"),
                    help="where the base store and the baseline engine are kept between runs")
    args = ap.parse_args()
    cache = Path(args.cache)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                            capture_output=True, text=True, check=True).stdout.strip()
    base_code = cache / f"code-{commit}"
    if not (base_code / "engine").is_dir():
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "engine"],
                                 capture_output=True, check=True).stdout
        base_code.mkdir(parents=True, exist_ok=True)
        tarfile.open(fileobj=BytesIO(archive)).extractall(base_code, filter="data")
    from scale_bench import LOCOMO

    kind = "locomo" if any(LOCOMO.glob("*.json")) else "generated"
    base_store = cache / f"store-{commit}-{args.size}-{kind}"
    if args.first_add:
        first_add(args, [("baseline", str(base_code)), ("this", str(ROOT))])
        return
    if not (base_store / "loci.sqlite3").is_file():
        print(f"building the base store of {args.size:,} memories with {commit} ...", flush=True)
        shutil.rmtree(base_store, ignore_errors=True)
        run(str(base_code), base_store, "build", args)
    engines = [("baseline", str(base_code)), ("this", str(ROOT))]
    if args.only:
        engines = [e for e in engines if e[0] == args.only]
    results: dict[str, list[dict]] = {name: [] for name, _ in engines}
    for r in range(args.rounds):
        for name, root in engines:
            with tempfile.TemporaryDirectory() as tmp:
                store = Path(tmp) / "store"
                shutil.copytree(base_store, store)
                profile = args.profile if (args.profile and name == "this") else "-"
                before = load()
                out = run(root, store, "time", args, profile)
            results[name].append(out)
            print(f"round {r + 1} {name:>8}: batched {out['batched_per_s']:6.1f}/s  single "
                  f"{out['single_per_s']:5.1f}/s  entity drain {out['entity_drain_s']:.2f} s  close "
                  f"{out['close_s']:.2f} s  linked 'Oslo' {out['linked']}  (load before {before}, "
                  f"after {load()})", flush=True)
    print(f"\n{args.size:,} memories in one scope ({kind} texts), {args.batched} added {BATCH} per call, "
          f"{args.single} one per call, new texts of {out['mean_chars']:.0f} characters on average "
          f"(medians of {args.rounds}):")
    med = {name: {k: statistics.median(o[k] for o in outs) for k in ("batched_per_s", "single_per_s")}
           for name, outs in results.items()}
    for key, label in (("batched_per_s", f"add, {BATCH} per call, mem/s"),
                       ("single_per_s", "add, one per call, mem/s")):
        row = "  ".join(f"{name} {m[key]:7.1f}" for name, m in med.items())
        ratio = (f"  ratio this/baseline {med['this'][key] / med['baseline'][key]:.2f}"
                 if len(med) == 2 else "")
        print(f"  {label:<28} {row}{ratio}")
    if args.profile:
        import pstats

        print(f"\nprofile of this checkout's adds ({args.profile}), top 30 by cumulative time:")
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
