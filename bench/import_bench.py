"""Importing chat exports: messages/s with infer=False and infer=True, peak RSS, and the re-import count.

Builds a synthetic ChatGPT export (a .zip of conversations.json: a message tree per
conversation with a hidden system root, tool nodes, regenerated replies left on side branches,
attachments, non-ASCII text) and a Claude export (conversations.json with chat_messages) from
the LoCoMo dev conversations (read from $LOCI_LOCOMO_DIR or <repo>/../shared/data/locomo-dev at
run time, never copied), then imports each in a fresh process the way `loci import` does
(app.chat_exports streamed into engine.service.importing.import_resumable) and imports it again
(a re-import must add 0), and says how long the entity linker took to link what was left
after the import returned. --big-mb builds a ChatGPT export of that size and imports the first
--big-messages of it after a full streaming preview pass, to show peak RSS does not grow with the file.

    LOCI_LOCOMO_DIR=/work/shared/data/locomo-dev python bench/import_bench.py --messages 10000 \
        --infer-messages 1000 --big-mb 200
    python bench/import_bench.py --profile /tmp/import.prof   # where the time of infer=False goes

Timings on a shared machine are noisy: the load average is printed beside them, and the CPU
seconds of the importing process (messages per CPU second) say more than wall time under load.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
LOCOMO = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))
UNICODE = ["Café crème ☕ at Grünerløkka.", "日本語の本を読んでいます。", "Ørsted — naïve résumé, señor.",
           "Привет из Москвы!", "🎉 we did it 🎉"]

WORKER = r'''
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from app import chat_exports
from engine import Memory, Scope
from engine.service.heap import cap_malloc_arenas
from engine.service.importing import import_resumable
cap_malloc_arenas()  # as `loci` does first
path, store, infer, limit, profile = sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5]), sys.argv[6]
out = {}
t = time.perf_counter()
summary = chat_exports.summarize(path)
out["preview_s"] = time.perf_counter() - t
out["conversations"] = len(summary.conversations)
total = min(summary.messages, limit) if limit else summary.messages
out["messages"] = total
mem = Memory(store)
mem.wait_until_ready()
def first_conversations():  # whole conversations until limit messages (all of them without a limit)
    seen = 0
    for conv in chat_exports.read_conversations(path):
        if limit and seen >= limit:
            return
        seen += len(conv.messages)
        yield conv
def run():
    return import_resumable(mem, first_conversations(), Scope("bench"), total=total, infer=infer,
                            lanes=int(os.environ.get("BENCH_LANES", "2")))
t = time.perf_counter()
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
if profile:
    import cProfile
    prof = cProfile.Profile()
    first = prof.runcall(run)
    prof.dump_stats(profile)
else:
    first = run()
out["import_s"] = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_SELF)
out["import_cpu_s"] = usage.ru_utime + usage.ru_stime - cpu0
t = time.perf_counter()
mem.wait_for_entities()  # the entity linker's backlog (it links off the write path, after the import too)
out["linked_s"] = time.perf_counter() - t
out["imported"] = first.added
out["stored_messages"] = mem.count({"user_id": "bench", "memory_type": "message"})
if not limit:
    t = time.perf_counter()
    again = import_resumable(mem, chat_exports.read_conversations(path), Scope("bench"), total=summary.messages,
                             infer=infer)
    out["reimport_added"] = again.added
    out["reimport_s"] = time.perf_counter() - t
mem.close()
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''


def turns() -> list[tuple[str, str, str]]:
    """(speaker role, text, ISO time) of every LoCoMo dev turn, speaker_a as the user."""
    sys.path.insert(0, str(ROOT))
    from app.importers import load_conversation

    out: list[tuple[str, str, str]] = []
    files = sorted(LOCOMO.glob("*.json"))
    if not files:
        raise SystemExit(f"no LoCoMo data at {LOCOMO}: set LOCI_LOCOMO_DIR")
    for path in files:
        conv = load_conversation(path, "locomo")
        for session in conv.sessions:
            when = session.timestamp.isoformat() if session.timestamp else "2023-05-08T13:56:00+00:00"
            out += [(m["role"], m["content"], when) for m in session.messages]
    return out


def conversations(n_messages: int, seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    """Conversations of 6-60 messages, user and assistant alternating, until n_messages are made."""
    rng = random.Random(seed)
    base = turns()
    made = 0
    k = 0
    while made < n_messages:
        size = min(rng.randint(6, 60), n_messages - made)
        msgs = []
        for j in range(size):
            role, text, when = base[(k + j) % len(base)]
            lap = (k + j) // len(base)
            if lap:  # later laps: other sentences, so texts do not repeat verbatim
                text = f"{text} {base[(k + j * 7 + lap * 13) % len(base)][1].split('.')[0]}."
            if rng.random() < 0.05:
                text += " " + rng.choice(UNICODE)
            msgs.append({"role": "user" if j % 2 == 0 else "assistant", "text": text, "time": when,
                         "attach": f"photo-{k + j}.jpg" if rng.random() < 0.03 and j % 2 == 0 else None})
        yield msgs
        k += size
        made += size


def _epoch(iso: str, offset: int) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() + offset


def chatgpt(convs: Iterator[list[dict[str, Any]]], rng: random.Random) -> Iterator[dict[str, Any]]:
    for c, msgs in enumerate(convs):
        mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None, "children": ["sys"]},
                                   "sys": {"id": "sys", "parent": "root", "children": [], "message": {
                                       "id": "sys", "author": {"role": "system"}, "create_time": None,
                                       "content": {"content_type": "text", "parts": [""]},
                                       "metadata": {"is_visually_hidden_from_conversation": True}}}}
        parent = "sys"
        for i, m in enumerate(msgs):
            node = f"c{c}n{i}"
            when = _epoch(m["time"], i * 30)
            if m["role"] == "assistant" and rng.random() < 0.1:  # a regenerated reply left on a side branch
                old = node + "old"
                mapping[old] = {"id": old, "parent": parent, "children": [], "message": {
                    "id": old, "author": {"role": "assistant"}, "create_time": when - 5,
                    "content": {"content_type": "text", "parts": ["An earlier draft: " + m["text"][::-1]]},
                    "metadata": {}}}
                mapping[parent]["children"].append(old)
            if m["role"] == "assistant" and rng.random() < 0.05:  # a tool call and its output before the reply
                tool = node + "tool"
                mapping[tool] = {"id": tool, "parent": parent, "children": [], "message": {
                    "id": tool, "author": {"role": "tool", "name": "browser"}, "create_time": when - 2,
                    "content": {"content_type": "text", "parts": ["search results ..."]}, "metadata": {}}}
                mapping[parent]["children"].append(tool)
                parent = tool
            meta = {"attachments": [{"id": "f", "name": m["attach"]}]} if m["attach"] else {}
            mapping[node] = {"id": node, "parent": parent, "children": [], "message": {
                "id": node, "author": {"role": m["role"]}, "create_time": when,
                "content": {"content_type": "text", "parts": [m["text"]]}, "metadata": meta}}
            mapping[parent]["children"].append(node)
            parent = node
        yield {"title": None if c % 17 == 0 else f"Chat {c} ✨", "create_time": _epoch(msgs[0]["time"], 0),
               "conversation_id": f"conv-{c}", "current_node": parent, "mapping": mapping}


def claude(convs: Iterator[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for c, msgs in enumerate(convs):
        out = []
        for i, m in enumerate(msgs):
            files = [{"file_name": m["attach"]}] if m["attach"] else []
            sender = "human" if m["role"] == "user" else "assistant"
            out.append({"uuid": f"c{c}m{i}", "text": m["text"], "sender": sender,
                        "created_at": m["time"], "content": [{"type": "text", "text": m["text"]}],
                        "attachments": [], "files": files})
            if i % 9 == 8:
                out.append({"uuid": f"c{c}e{i}", "text": "", "sender": "human", "created_at": m["time"],
                            "content": [], "attachments": [], "files": []})
        yield {"uuid": f"conv-{c}", "name": "" if c % 17 == 0 else f"Chat {c} ✨", "created_at": msgs[0]["time"],
               "chat_messages": out}


def write_export(path: Path, items: Iterator[dict[str, Any]], zipped: bool, max_bytes: int = 0) -> int:
    """Stream the conversations into conversations.json (inside a .zip when zipped); returns its size."""
    tmp = path.with_suffix(".json.tmp")
    size = 0
    with tmp.open("w", encoding="utf-8") as f:
        f.write("[")
        for n, item in enumerate(items):
            text = ("," if n else "") + json.dumps(item, ensure_ascii=False)
            f.write(text)
            size += len(text.encode("utf-8"))
            if max_bytes and size >= max_bytes:
                break
        f.write("]")
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(tmp, "conversations.json")
        tmp.unlink()
    else:
        tmp.rename(path)
    return size


def run(path: Path, infer: bool, limit: int = 0, profile: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOCI_HOME": store}
        proc = subprocess.run([sys.executable, "-c", WORKER, str(ROOT), str(path), store, "1" if infer else "0",
                               str(limit), profile], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000, help="messages per export (infer=False)")
    ap.add_argument("--infer-messages", type=int, default=1000,
                    help="messages of each export imported with infer=True (0: skip)")
    ap.add_argument("--big-mb", type=int, default=0, help="also a ChatGPT export of this many MB (peak RSS)")
    ap.add_argument("--big-messages", type=int, default=2000, help="messages imported from the big export")
    ap.add_argument("--formats", default="chatgpt,claude")
    ap.add_argument("--profile", default="", help="cProfile the ChatGPT imports into FILE and FILE.infer")
    args = ap.parse_args()
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        if "chatgpt" in args.formats:
            files["chatgpt"] = Path(tmp) / "chatgpt-export.zip"
            write_export(files["chatgpt"], chatgpt(conversations(args.messages), rng), zipped=True)
        if "claude" in args.formats:
            files["claude"] = Path(tmp) / "conversations.json"
            write_export(files["claude"], claude(conversations(args.messages)), zipped=False)
        print(f"load average {os.getloadavg()[0]:.1f}; {args.messages:,} messages per export")
        print("| export | infer | messages | seconds | messages/s | CPU s | messages per CPU s | then every entity "
              "linked, s | re-import adds | peak RSS MiB | preview s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for kind, path in files.items():
            for infer, limit in ((False, 0), (True, args.infer_messages)):
                if infer and not limit:
                    continue
                profile = (args.profile + (".infer" if infer else "")) if args.profile and kind == "chatgpt" else ""
                r = run(path, infer, limit, profile)
                rate = r["stored_messages"] / r["import_s"] if r["import_s"] else 0
                print(f"| {kind} ({path.stat().st_size / 1e6:.1f} MB) | {infer} | {r['stored_messages']:,} | "
                      f"{r['import_s']:.1f} | {rate:.0f} | {r['import_cpu_s']:.1f} | "
                      f"{r['stored_messages'] / max(r['import_cpu_s'], 1e-9):.0f} | {r['linked_s']:.1f} | "
                      f"{r.get('reimport_added', '-')} | "
                      f"{r['peak_rss_mib']:.0f} | {r['preview_s']:.1f} |", flush=True)
        if args.big_mb:
            big = Path(tmp) / "big.json"
            size = write_export(big, chatgpt(conversations(10 ** 9), rng), zipped=False,
                                max_bytes=args.big_mb * 1_000_000)
            r = run(big, False, args.big_messages)
            print(f"| chatgpt ({size / 1e6:.0f} MB, {r['conversations']:,} conversations) | False | "
                  f"{r['stored_messages']:,} (first) | {r['import_s']:.1f} | - | {r['import_cpu_s']:.1f} | - | "
                  f"{r['linked_s']:.1f} | - | "
                  f"{r['peak_rss_mib']:.0f} | "
                  f"{r['preview_s']:.1f} |")
    if args.profile:
        import pstats

        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
