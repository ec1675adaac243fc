"""How long the integrity check on open takes (PRAGMA quick_check) against the full integrity_check.

Builds a ledger of N memories with their history (the SQLite half of a store; no vectors needed)
and times, cold-ish and warm, `quick_problems` (what every open runs, stopped after
QUICK_CHECK_BUDGET_S) and `sqlite_problems` (integrity_check, what `loci doctor` runs).

    python bench/quick_check_bench.py              # 100,000 memories
    python bench/quick_check_bench.py --n 20000
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.records import MemoryRecord, Scope  # noqa: E402
from engine.store.integrity import QUICK_CHECK_BUDGET_S, quick_problems, sqlite_problems  # noqa: E402
from engine.store.ledger import Ledger  # noqa: E402

WORDS = "Oslo Bergen tea coffee cello violin sister brother dentist Friday trip Rome peanuts garden".split()


def build(path: Path, n: int) -> None:
    ledger = Ledger(path)
    now = datetime.now(timezone.utc)
    batch = 5000
    for start in range(0, n, batch):
        recs = []
        for i in range(start, min(n, start + batch)):
            text = f"Fact {i}: the user mentioned {WORDS[i % 14]} and {WORDS[i * 7 % 14]} about {WORDS[i * 3 % 14]}."
            recs.append(MemoryRecord(id=f"m{i:08d}", memory=text, hash=hashlib.md5(text.encode()).hexdigest(),
                                     scope=Scope(user_id=f"u{i % 50}"), created_at=now, updated_at=now, timestamp=now,
                                     metadata={"source": "bench"}, memory_type="fact"))
        with ledger.transaction() as db:
            Ledger.insert_memories(db, recs)
            Ledger.add_histories(db, [(r.id, "ADD", None, r.memory, None, None, None) for r in recs])
    ledger.checkpoint()
    ledger.close()


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp(prefix="loci-qc-")) / "loci.sqlite3"
    t_build, _ = timed(build, path, args.n)
    size = path.stat().st_size
    print(f"ledger of {args.n:,} memories: {size / 2**20:.1f} MB (built in {t_build:.1f} s)")
    for run in (1, 2):
        t_quick, found = timed(quick_problems, path)
        t_full, full = timed(sqlite_problems, path)
        print(f"run {run}: quick_check on open {t_quick * 1000:.0f} ms ({'sound' if not found else found}); "
              f"integrity_check (loci doctor) {t_full * 1000:.0f} ms ({'sound' if not full else full[:1]})")
    t_cut, _ = timed(quick_problems, path, 0.05)
    print(f"with a 50 ms budget the check stops after {t_cut * 1000:.0f} ms (open's budget: "
          f"{QUICK_CHECK_BUDGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
