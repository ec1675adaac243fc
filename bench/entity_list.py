"""List the entities a conversation's memories link to, as the app's Entities view shows them.

    LOCI_LOCOMO_DIR=/work/shared/data/locomo-dev python bench/entity_list.py 26 [--kinds Person,Name]
    python bench/entity_list.py path/to/conversation.json

The conversation (a LoCoMo id from $LOCI_LOCOMO_DIR, or any file `loci import` reads) is
imported as `loci import` does (infer off) into a temporary store; once every memory is linked,
each entity is printed with its kind and how many memories mention it, most mentioned first,
then the count per kind. Run it on two checkouts to compare the entity rules' output.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.importers import load_conversation, without_small_talk  # noqa: E402
from engine import Memory, Scope  # noqa: E402
from engine.search.entities import kind_name  # noqa: E402
from engine.service.importing import import_sessions  # noqa: E402

DATA = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("conversation", help="a LoCoMo conversation id (e.g. 26) or a conversation file")
    p.add_argument("--kinds", default="", help="only these kinds, comma-separated (e.g. Person,Name,Thing)")
    args = p.parse_args()
    path = Path(args.conversation)
    if not path.exists():
        path = DATA / f"{args.conversation}.json"
    conv = without_small_talk(load_conversation(path))[0]
    kinds = {k.strip().casefold() for k in args.kinds.split(",") if k.strip()}
    with tempfile.TemporaryDirectory(prefix="loci-entities-") as home, Memory(Path(home) / "store") as mem:
        start = time.perf_counter()
        result = import_sessions(mem, conv.sessions, Scope(conv.user_id or "default"), infer=False)
        mem.wait_for_entities()
        seconds = time.perf_counter() - start
        entities = sorted(mem.entities(), key=lambda e: (-e.memory_count, e.name.casefold()))
    shown = [e for e in entities if not kinds or kind_name(e.label).casefold() in kinds]
    for e in shown:
        print(f"{e.memory_count:5d}  {kind_name(e.label):<14} {e.name}")
    per_kind = Counter(kind_name(e.label) for e in entities)
    print(f"\n{len(entities)} entities from {result.added} memories of {path.name} "
          f"(imported and linked in {seconds:.1f} s): "
          + ", ".join(f"{kind} {n}" for kind, n in per_kind.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
