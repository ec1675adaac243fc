"""infer=False throughput of this checkout against an earlier commit, interleaved in fresh processes.

Stores one LoCoMo conversation ("Speaker: text", one add() per session) with each engine in
turn, --rounds times, and prints turns per second and the ratio of the medians. The baseline
engine is taken from git (`git archive <commit> engine`) into a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))

WORKER = r'''
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import engine
from engine import Memory
from engine.inference.embeddings import SentenceTransformerEmbedder
conv = json.load(open(sys.argv[2]))
sessions = [(conv[f"session_{n}_date_time"], conv[f"session_{n}"]) for n in range(1, 100) if f"session_{n}" in conv]
emb = SentenceTransformerEmbedder("sentence-transformers/all-MiniLM-L6-v2", None, "cpu", 64)
emb.load()
emb.embed_batch(["warm up"])
with tempfile.TemporaryDirectory() as tmp, Memory(tmp, embedder=emb) as m:
    started, n = time.perf_counter(), 0
    for when, turns in sessions:
        m.add([{"role": "user", "name": t["speaker"], "content": t["speaker"] + ": " + t["text"],
                "metadata": {"dia_id": t["dia_id"]}} for t in turns], user_id="c", timestamp=when, infer=False)
        n += len(turns)
    print(json.dumps({"engine": engine.__file__, "turns": n, "seconds": time.perf_counter() - started}))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", default="a374218", help="git commit of the engine to compare with")
    ap.add_argument("--conversation", default="26")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "engine"],
                                 capture_output=True, check=True).stdout
        tarfile.open(fileobj=BytesIO(archive)).extractall(tmp, filter="data")
        rates: dict[str, list[float]] = {"baseline": [], "this": []}
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        for r in range(args.rounds):
            for name, root in (("baseline", tmp), ("this", str(ROOT))):
                out = subprocess.run([sys.executable, "-c", WORKER, root,
                                      str(DATA / f"{args.conversation}.json")],
                                     capture_output=True, text=True, env=env, check=True)
                info = json.loads(out.stdout.strip().splitlines()[-1])
                rates[name].append(info["turns"] / info["seconds"])
                print(f"round {r + 1} {name:<8} {info['turns']} turns in {info['seconds']:.1f} s")
    base, this = statistics.median(rates["baseline"]), statistics.median(rates["this"])
    print(f"infer=False turns/s: baseline {args.baseline} {base:.1f}, this checkout {this:.1f}, "
          f"ratio {this / base:.3f}")


if __name__ == "__main__":
    main()
