"""A child process the reliability tests kill, starve of disk or feed damaged stores.

Usage: python tests/reliability/_worker.py MODE DATA_DIR LOG [SEED]
  churn     add/update/delete at random for ever; logs BEGIN before and ACK after each write
  diskfull  runs a fixed series of writes and reads; logs OK, LOCI (a LociError) or RAW per call
  open      opens the store, searches once, logs OPEN rows vectors repairs, or LOCI / RAW
Every log line is flushed before the next call, so a SIGKILL loses none that were written.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

DIM = 32


class HashEmbedder:
    """Deterministic stand-in for the sentence embedder: the crash tests are about storage."""

    name = "reliability-hash"
    dimension = DIM

    def embed_batch(self, texts):  # noqa: ANN001, ANN201 (Embedder protocol)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            out[i] = vec / np.linalg.norm(vec)
        return out


def _log(fh, *parts: object) -> None:  # noqa: ANN001
    fh.write(json.dumps(parts) + "\n")
    fh.flush()


def churn(data_dir: Path, log, seed: int) -> None:  # noqa: ANN001
    from engine import Memory

    rng = random.Random(seed)
    with Memory(data_dir, embedder=HashEmbedder()) as mem:
        live = [r.id for r in mem.list_records(filters={"user_id": "u"}, top_k=100_000)]
        n = 0
        while True:
            n += 1
            if n == 2:  # after one write: models and indexes are loaded, kills land in writes
                _log(log, "READY", len(live))
            roll = rng.random()
            if roll < 0.6 or len(live) < 3:
                text = f"memory {seed}-{n} about {rng.choice(['tea', 'oslo', 'chess', 'ramen'])}"
                _log(log, "BEGIN", "add", None, text)
                mid = mem.add(text, user_id="u", infer=False)["results"][0]["id"]
                live.append(mid)
                _log(log, "ACK", "add", mid, text)
            elif roll < 0.8:
                mid = rng.choice(live)
                text = f"updated {seed}-{n}"
                _log(log, "BEGIN", "update", mid, text)
                mem.update(mid, text)
                _log(log, "ACK", "update", mid, text)
            else:
                mid = live.pop(rng.randrange(len(live)))
                _log(log, "BEGIN", "delete", mid, None)
                mem.delete(mid)
                _log(log, "ACK", "delete", mid, None)


def diskfull(data_dir: Path, log, seed: int) -> None:  # noqa: ANN001
    from engine import LociError, Memory

    def call(name: str, fn):  # noqa: ANN001, ANN202
        _log(log, "START", name)
        try:
            value = fn()
        except LociError as exc:
            _log(log, "LOCI", name, type(exc).__name__, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - exactly what the test counts
            _log(log, "RAW", name, type(exc).__name__, str(exc))
            return None
        _log(log, "OK", name)
        return value

    rng = random.Random(seed)
    mem = call("open", lambda: Memory(data_dir, embedder=HashEmbedder()))
    if mem is None:
        _log(log, "DONE")
        return
    ids = [r.id for r in mem.list_records(filters={"user_id": "u"}, top_k=1000)]
    for n in range(12):
        kind = rng.choice(["add", "add", "update", "delete", "search", "backup"])
        if kind == "add":
            out = call("add", lambda: mem.add(f"full disk {seed}-{n} " + "x" * rng.randrange(2000),
                                              user_id="u", infer=False))
            if out:
                ids.append(out["results"][0]["id"])
                _log(log, "ACK", "add", ids[-1])
        elif kind == "update" and ids:
            mid = rng.choice(ids)
            text = f"changed {seed}-{n}"
            if call("update", lambda: mem.update(mid, text)) is not None:
                _log(log, "ACK", "update", mid, text)
        elif kind == "delete" and ids:
            mid = ids.pop(rng.randrange(len(ids)))
            if call("delete", lambda: mem.delete(mid)) is not None:
                _log(log, "ACK", "delete", mid)
            else:
                ids.append(mid)
        elif kind == "search":
            call("search", lambda: mem.search("full disk", user_id="u"))
        elif kind == "backup":
            call("backup", lambda: mem.backup("daily"))
    call("close", mem.close)
    _log(log, "DONE")


def open_store(data_dir: Path, log) -> None:  # noqa: ANN001
    from engine import LociError, Memory

    try:
        with Memory(data_dir, embedder=HashEmbedder()) as mem:
            hits = mem.search("tea", user_id="u")["results"]
            rows = mem.count()
            _log(log, "ROWS", {r.id: r.memory for r in mem.list_records(top_k=1_000_000)})
            vectors = mem.check_integrity(full=True).vectors
            _log(log, "OPEN", rows, vectors, list(mem.open_report.repairs), len(hits))
    except LociError as exc:
        _log(log, "LOCI", type(exc).__name__, str(exc))
    except Exception as exc:  # noqa: BLE001 - exactly what the test counts
        _log(log, "RAW", type(exc).__name__, str(exc))


def main() -> None:
    mode, data_dir, log_path = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if "no-space-check" in sys.argv[5:]:
        # Let Chroma run into the full disk itself, as when another program fills it between
        # Loci's free-space check and the write; the write timeout is then the only guard.
        import engine.store.vectors

        engine.store.vectors.MIN_FREE_BYTES = -(1 << 40)
        engine.store.vectors.WRITE_TIMEOUT_S = 15.0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with open(log_path, "a", encoding="utf-8") as log:
        if mode == "churn":
            churn(data_dir, log, seed)
        elif mode == "diskfull":
            diskfull(data_dir, log, seed)
        else:
            open_store(data_dir, log)


if __name__ == "__main__":
    main()
