"""The `loci` command line: add, search, list, get, delete, history and a demo."""
from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from typing import Any, Sequence

SAMPLE = "sample_conversation.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loci", description="Loci: private, local-first memory for AI agents.")
    p.add_argument("--data-dir", help="store folder (default: $LOCI_HOME or the platform data dir)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub = p.add_subparsers(dest="command", required=True)

    def scoped(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--user", dest="user_id")
        sp.add_argument("--agent", dest="agent_id")
        sp.add_argument("--run", dest="run_id", help="session id")

    a = sub.add_parser("add", help="remember a message")
    a.add_argument("text")
    scoped(a)
    a.add_argument("--infer", action="store_true", help="extract facts with the local model")
    a.add_argument("--name", help="who said it")
    a.add_argument("--timestamp", help="when it was said (ISO 8601 or unix seconds)")
    s = sub.add_parser("search", help="find memories")
    s.add_argument("query")
    scoped(s)
    s.add_argument("-k", "--top-k", type=int, default=10)
    s.add_argument("--explain", action="store_true", help="show every signal's score")
    l_ = sub.add_parser("list", help="list memories, newest first")
    scoped(l_)
    l_.add_argument("-k", "--top-k", type=int, default=50)
    l_.add_argument("--offset", type=int, default=0)
    g = sub.add_parser("get", help="show one memory")
    g.add_argument("id")
    d = sub.add_parser("delete", help="delete one memory")
    d.add_argument("id")
    h = sub.add_parser("history", help="show a memory's history")
    h.add_argument("id")
    sub.add_parser("demo", help="store a sample conversation and search it")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from engine import LociError, Memory

    try:
        with Memory(args.data_dir) as mem:
            out = _run(mem, args)
    except LociError as exc:
        print(f"loci: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    else:
        _print_human(args.command, out)
    return 0


def _scope(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k in ("user_id", "agent_id", "run_id") if (v := getattr(args, k, None))}


def _run(mem: Any, args: argparse.Namespace) -> Any:
    cmd = args.command
    if cmd == "add":
        msg: dict[str, Any] = {"role": "user", "content": args.text}
        if args.name:
            msg["name"] = args.name
        scope = _scope(args) or {"user_id": "default"}
        return mem.add([msg], **scope, infer=args.infer, timestamp=args.timestamp)
    if cmd == "search":
        return mem.search(args.query, top_k=args.top_k, filters=_scope(args), explain=args.explain)
    if cmd == "list":
        return mem.get_all(filters=_scope(args), top_k=args.top_k, offset=args.offset)
    if cmd == "get":
        return mem.get_record(args.id).to_dict()
    if cmd == "delete":
        return mem.delete(args.id)
    if cmd == "history":
        return {"results": [e.to_dict() for e in mem.history_records(args.id)]}
    return _demo(mem)


def load_sample() -> dict[str, Any]:
    """The bundled sample conversation (written for Loci; not from any dataset)."""
    return json.loads(resources.files("app.data").joinpath(SAMPLE).read_text(encoding="utf-8"))


def _demo(mem: Any) -> dict[str, Any]:
    sample = load_sample()
    user = sample["user_id"]
    if not mem.count({"user_id": user}):
        for session in sample["sessions"]:
            mem.add(session["messages"], user_id=user, run_id=session["run_id"],
                    timestamp=session["date"], infer=False)
    queries = ["Where does Maya's sister live?", "What food should I avoid suggesting?",
               "Where does Maya work?", "When did Maya buy a bike?"]
    return {"stored": mem.count({"user_id": user}), "queries": [
        {"query": q, "results": mem.search(q, top_k=3, filters={"user_id": user})["results"]}
        for q in queries]}


def _print_human(command: str, out: Any) -> None:
    if command == "demo":
        print(f"Stored {out['stored']} memories from the sample conversation.\n")
        for item in out["queries"]:
            print(f"? {item['query']}")
            for r in item["results"]:
                print(f"   {r['score']:.2f}  {r['memory']}")
            print()
        return
    if isinstance(out, dict) and "results" in out and command != "history":
        rows = out["results"]
        if not rows:
            print("(no memories)")
        for r in rows:
            score = f"{r['score']:.2f}  " if "score" in r else ""
            event = f"[{r['event']}] " if "event" in r else ""
            print(f"{score}{event}{r['memory']}  ({r['id']})")
            if r.get("explain"):
                print("      " + "  ".join(f"{k}={v:.3f}" for k, v in r["explain"].items()))
        return
    if command == "history":
        for e in out["results"]:
            print(f"{e['created_at']}  {e['event']:<6}  {e['old_memory'] or ''!s} -> {e['new_memory'] or ''!s}")
        return
    if command == "get":
        for key, value in out.items():
            print(f"{key:>18}: {value}")
        return
    print(out.get("message", out) if isinstance(out, dict) else out)


if __name__ == "__main__":
    sys.exit(main())
