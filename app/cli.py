"""The `loci` command line: memories, export/import, a demo, store care (doctor, backup), chat and models."""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import resources
from typing import Any, Sequence

from .version import version

SAMPLE = "sample_conversation.json"


class _VersionAction(argparse.Action):
    """`--version`: the version and the data folder (honouring an earlier --data-dir), then exit."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from engine.paths import default_data_dir

        data_dir = namespace.data_dir or default_data_dir()
        print(f"loci {version()}\ndata folder: {data_dir}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loci", description="Loci: private, local-first memory for AI agents.")
    p.add_argument("--version", action=_VersionAction, nargs=0, help="print the version and the data folder")
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
    e = sub.add_parser("export", help="save every memory (with history and sources) to a JSON file")
    e.add_argument("file")
    from .import_cli import add_arguments as import_arguments

    import_arguments(sub.add_parser("import", help="restore a Loci export, or import a ChatGPT/Claude export "
                                                   "or a conversation file (Ctrl-C stops; run again to continue)"))
    d = sub.add_parser("doctor", help="check the store fully and repair what can be repaired")
    d.add_argument("--chat-leftovers", action="store_true",
                   help="list the memories earlier versions stored from assistant replies and your questions")
    d.add_argument("--delete", action="store_true", help="with --chat-leftovers: delete the ones listed")
    b = sub.add_parser("backup", help="take a backup now (or list them with --list)")
    b.add_argument("--list", action="store_true", help="list the backups, newest first")
    r = sub.add_parser("restore", help="replace the store with a backup (the newest by default)")
    r.add_argument("name", nargs="?", help="backup folder name, as `loci backup --list` shows")
    from .chat_cli import add_arguments

    add_arguments(sub.add_parser("chat", help="chat with the assistant that remembers (streamed)"),
                  sub.add_parser("models", help="list the GGUF chat models found on this computer"))
    sv = sub.add_parser("serve", help="run the mem0-compatible REST API (127.0.0.1 by default)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    sv.add_argument("--allow-remote", action="store_true",
                    help="allow listening on a non-loopback address (reachable from other machines)")
    sv.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    mc = sub.add_parser("mcp", help="run the MCP server over stdio (for Claude Desktop, Cursor, ...)")
    mc.add_argument("--user-id", default=None,
                    help="confine every tool to this user (default: any user, 'default' when none is named)")
    mc.add_argument("--agent-id", default=None, help="with --user-id: confine to this agent of the user too")
    mc.add_argument("--read-only", action="store_true", help="with --user-id: refuse every write")
    mc.add_argument("--api-key", default=None, help="a scoped key (`loci api-key create`): confine to its "
                    "scope (also LOCI_API_KEY)")
    ak = sub.add_parser("api-key", help="print the owner's API key, or create, list and revoke keys for one user")
    ak.add_argument("action", nargs="?", choices=["create", "list", "revoke"], help="(default: print the owner key)")
    ak.add_argument("key_id", nargs="?", help="revoke: the id `loci api-key list` shows")
    ak.add_argument("--user", dest="key_user", help="create: the user the key is limited to")
    ak.add_argument("--agent", dest="key_agent", help="create: limit it to this agent of the user too")
    ak.add_argument("--read-only", dest="key_read_only", action="store_true", help="create: reads only")
    ak.add_argument("--name", dest="key_name", help="create: a label to recognise the key by")
    return p


_CARE = ("doctor", "backup", "restore")


def _care(args: argparse.Namespace) -> Any:
    """Commands that look after the store itself; doctor and restore work on a closed store."""
    from pathlib import Path

    from engine import Memory
    from engine.store.backup import list_snapshots, restore_snapshot
    from engine.memory import doctor
    from engine.paths import default_data_dir

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if args.command == "doctor" and getattr(args, "chat_leftovers", False):
        from engine.assistant.legacy import chat_leftovers

        with Memory(data_dir) as mem:
            found = chat_leftovers(mem)
            deleted = mem.delete_records([r.id for r in found], actor="loci doctor") if args.delete and found else 0
        return {"memories": 0, "vectors": 0, "problems": [], "repairs": [], "unrepaired": [],
                "chat_leftovers": [{"id": r.id, "memory": r.memory, "role": r.role} for r in found],
                "deleted": deleted}
    if args.command == "doctor":
        def progress(done: int, total: int) -> None:
            print(f"  rebuilding vectors: {done}/{total}", file=sys.stderr)
        report = doctor(data_dir, progress=progress)
        moved = ""
        if not report.unrepaired:  # a move to the configured embedder precision is finished here
            with Memory(data_dir) as mem:
                def watch(s: Any) -> None:
                    if s.state == "running" and s.total:
                        print(f"  re-embedding: {s.done}/{s.total}", file=sys.stderr)
                moved = mem.migration_status(watch, wait=None).describe()
        return {"memories": report.rows, "vectors": report.vectors, "problems": list(report.problems),
                "repairs": list(report.repairs), "unrepaired": list(report.unrepaired), "embedder": moved}
    if args.command == "restore":
        snap = restore_snapshot(data_dir, args.name)
        with Memory(data_dir) as mem:  # opening checks the restored store and rebuilds vectors
            count = mem.count()
        return {"message": f"Restored {snap.name} ({count} memories). The store as it was before, "
                           "when readable, is kept as a pre-restore backup."}
    if args.list:
        return {"backups": [{"name": s.name, "created_at": s.created_at.isoformat(), "reason": s.reason,
                             "memories": s.memories, "path": str(s.path)} for s in list_snapshots(data_dir)]}
    from engine.service import open_memory

    with open_memory(data_dir) as store:  # a running app or server takes the backup itself
        snap = store.backup()
    return {"message": f"Backed up {snap.memories} memories to {snap.path}"}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from engine.service.heap import cap_malloc_arenas

    cap_malloc_arenas()  # before any thread starts: a long import keeps less memory
    if hasattr(os, "umask"):
        os.umask(0o077)  # files this process makes in the data folder are private as they are created
    if args.command in ("chat", "models"):
        from .chat_cli import list_models, run_chat

        return run_chat(args) if args.command == "chat" else list_models(args)
    from engine import LociError
    from engine.service import open_memory

    try:
        if args.command == "serve":
            from .api import serve

            return serve(args.data_dir, args.host, args.port, allow_remote=args.allow_remote,
                         parent_pid=args.parent_pid)
        if args.command == "mcp":
            from .mcp_server import run

            return run(args.data_dir, default_user=args.user_id, agent_id=args.agent_id,
                       read_only=args.read_only, api_key=args.api_key)
        if args.command == "api-key":
            from .api import api_key_command

            return api_key_command(args)
        if args.command in _CARE:
            out = _care(args)
        else:
            # the owner's store, or a client of whoever owns it; models load only for commands using them
            with open_memory(args.data_dir, preload=args.command in _USES_MODELS) as mem:
                out = _run(mem, args)
    except LociError as exc:
        print(f"loci: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    else:
        _print_human(args.command, out)
    return 1 if args.command == "doctor" and out["unrepaired"] else 0


_USES_MODELS = ("add", "search", "demo", "import")


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
        return mem.search(args.query, top_k=args.top_k, filters=_scope(args), explain=args.explain,
                          all_scopes=not _scope(args))
    if cmd == "list":
        return mem.get_all(filters=_scope(args), top_k=args.top_k, offset=args.offset,
                           all_scopes=not _scope(args))
    if cmd == "get":
        return mem.get_record(args.id).to_dict()
    if cmd == "delete":
        return mem.delete(args.id)
    if cmd == "history":
        return {"results": [e.to_dict() for e in mem.history_records(args.id)]}
    if cmd == "export":
        from engine.store import export

        return {"exported": export.export_store(mem, args.file), "file": args.file}
    if cmd == "import":
        from .import_cli import run_import

        return run_import(mem, args)
    return _demo(mem)


def load_sample() -> dict[str, Any]:
    """The bundled sample conversation (written for Loci; not from any dataset)."""
    sample: dict[str, Any] = json.loads(resources.files("app.data").joinpath(SAMPLE).read_text(encoding="utf-8"))
    return sample


def _demo(mem: Any) -> dict[str, Any]:
    sample = load_sample()
    user = sample["user_id"]
    if not mem.count({"user_id": user}):
        from engine.extraction.small_talk import is_small_talk

        for session in sample["sessions"]:
            said = [m for m in session["messages"] if not is_small_talk(m["content"])]
            if said:
                mem.add(said, user_id=user, run_id=session["run_id"], timestamp=session["date"], infer=False)
    queries = ["Where does Maya's sister live?", "What food should I avoid suggesting?",
               "Where does Maya work?", "When did Maya buy a bike?"]
    return {"stored": mem.count({"user_id": user}), "queries": [
        {"query": q, "results": mem.search(q, top_k=3, filters={"user_id": user})["results"]}
        for q in queries]}


def _print_human(command: str, out: Any) -> None:
    if command == "doctor" and "chat_leftovers" in out:
        for row in out["chat_leftovers"]:
            print(f"{row['id']}  {row['role'] or ''}: {row['memory'][:100]}")
        n = len(out["chat_leftovers"])
        print(f"Deleted {out['deleted']} memories stored from assistant replies and questions." if out["deleted"]
              else f"{n} memories were stored from assistant replies and questions by an earlier version"
              + (": remove them with loci doctor --chat-leftovers --delete." if n else "."))
        return
    if command == "doctor":
        for line in out["problems"]:
            print(f"found:    {line}")
        for line in out["repairs"]:
            print(f"repaired: {line}")
        for line in out["unrepaired"]:
            print(f"NOT repaired: {line}")
        verdict = "needs attention" if out["unrepaired"] else "healthy"
        print(f"The store is {verdict}: {out['memories']} memories, {out['vectors']} vectors.")
        if out.get("embedder"):
            print(out["embedder"])
        return
    if command == "backup" and "backups" in out:
        if not out["backups"]:
            print("(no backups)")
        for b in out["backups"]:
            print(f"{b['name']}  {b['memories']:>6} memories  ({b['reason']})")
        return
    if command == "demo":
        print(f"Stored {_memories(out['stored'])} from the sample conversation.\n")
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
    if command == "export":
        print(f"Exported {_memories(out['exported'])} to {out['file']}.")
        return
    if command == "import" and "removed" in out:
        text = f"Restored {_memories(out['added'])} from {out['file']}"
        if out["skipped"]:
            text += f"; skipped {out['skipped']:,} already in the store"
        if out["removed"]:
            text += f"; removed {_memories(out['removed'])} first"
        print(text + ".")
        return
    if command == "get":
        for key, value in out.items():
            print(f"{key:>18}: {value}")
        return
    print(out.get("message", out) if isinstance(out, dict) else out)


def _memories(n: int) -> str:
    return f"{n:,} memor{'y' if n == 1 else 'ies'}"


if __name__ == "__main__":
    sys.exit(main())
