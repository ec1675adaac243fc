"""Export -> restore timings on one LoCoMo conversation stored raw (infer=False).

    python bench/export_bench.py [conversation.json]

Prints the time to export, to restore into an empty store (merge), to restore the same file
again (everything skipped) and to replace, with the memory counts after each step.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import Memory  # noqa: E402
from engine.store import export  # noqa: E402

DATA = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA / "26.json"
    conv = json.loads(path.read_text(encoding="utf-8"))
    c = conv.get("conversation", conv)
    with tempfile.TemporaryDirectory() as tmp:
        with Memory(Path(tmp) / "a") as mem:
            n = 1
            while f"session_{n}" in c:
                mem.add([{"role": "user", "name": t["speaker"], "content": t["text"]} for t in c[f"session_{n}"]],
                        user_id="u", run_id=f"session_{n}", timestamp=c[f"session_{n}_date_time"], infer=False)
                n += 1
            file = Path(tmp) / "export.json"
            t = time.perf_counter()
            count = export.export_store(mem, file)
            print(f"export   {count} memories in {time.perf_counter() - t:5.1f} s "
                  f"({file.stat().st_size / 1e6:.1f} MB)")
        with Memory(Path(tmp) / "b", embedder=mem.embedder) as other:
            for step, mode in (("restore", "merge"), ("again", "merge"), ("replace", "replace")):
                t = time.perf_counter()
                s = export.restore(other, file, mode=mode)  # type: ignore[arg-type]
                print(f"{step:<8} added {s.added:>4}, skipped {s.skipped:>4}, removed {s.removed:>4} "
                      f"in {time.perf_counter() - t:5.1f} s -> {other.count()} memories")


if __name__ == "__main__":
    main()
