"""Smoke-test clients of a built Loci: the REST API (`loci serve`) over loopback and the MCP server (`loci mcp`).

    python3 smoke_clients.py serve -- LOCI_COMMAND...   # e.g. -- env -i HOME=... /tmp/app/loci
    python3 smoke_clients.py mcp -- LOCI_COMMAND...

Standard library only: it runs with the system's Python beside an installed app. The command
is the isolated `loci` (env -i, strace, ...); this script appends the subcommand, starts it
itself and stops it, so it must run in the same network namespace (smoke_test.sh runs it
under `unshare -n` and brings the loopback interface up when it is down there). Prints one
line per check; exits 1 when one fails.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

FACT = "My neighbour Ottilie keeps bees on her roof in Tromso"
QUESTION = "who keeps bees?"
START_TIMEOUT_S = 120  # the first start reads the whole bundle from disk on a loaded machine


def loopback_up() -> None:
    """Bring `lo` up when it is down (a fresh network namespace, `unshare -n`, starts with it down)."""
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1  # <linux/sockios.h>, <net/if.h>
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, struct.pack("16sh", b"lo", 0)))[1]
        if not flags & iff_up:
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    """Start the command in its own process group (so strace and loci stop together)."""
    if os.name == "posix":
        kw["start_new_session"] = True
    return subprocess.Popen(command, **kw)


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM the command's process group, as a service manager would; its exit status."""
    if proc.poll() is None:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
        return None


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def __call__(self, ok: bool, what: str) -> bool:
        print(f"{'ok  ' if ok else 'FAIL'}  {what}", flush=True)
        self.failed += not ok
        return ok


def request(port: int, method: str, path: str, key: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Token {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def serve(command: list[str]) -> int:
    """`loci serve` on a free loopback port: 401 without the key, add + search with it."""
    check = Checks()
    loopback_up()
    key = subprocess.run([*command, "api-key"], capture_output=True, text=True, timeout=60).stdout.strip()
    if not check(len(key) >= 16, "loci api-key prints the store's key"):
        return 1
    port = free_port()
    args = [*command, "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--parent-pid", str(os.getpid())]  # stops by itself if this script dies
    began = time.monotonic()
    proc = start(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.monotonic() - began < START_TIMEOUT_S and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if not check(proc.poll() is None and time.monotonic() - began < START_TIMEOUT_S,
                     f"loci serve listens on 127.0.0.1:{port} ({time.monotonic() - began:.1f} s)"):
            return 1
        status, _ = request(port, "POST", "/search", None, {"query": QUESTION, "user_id": "smoke-http"})
        check(status == 401, f"a request without the API key is refused ({status})")
        status, added = request(port, "POST", "/memories", key, {
            "messages": [{"role": "user", "content": FACT}], "user_id": "smoke-http", "infer": False})
        check(status == 200 and bool(added.get("results")), f"POST /memories adds it ({status})")
        status, found = request(port, "POST", "/search", key,
                                {"query": QUESTION, "user_id": "smoke-http", "top_k": 3})
        results = found.get("results", []) if isinstance(found, dict) else []
        check(status == 200 and bool(results) and "Ottilie" in results[0].get("memory", ""),
              f"POST /search finds it first ({status}): {results[0].get('memory') if results else None}")
    finally:
        code = stop(proc)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -15 is a clean stop, and
    # so is 143 (128 + SIGTERM), the status Loci exits with once its own shutdown has run.
    # Windows has no SIGTERM: terminate() ends the process with status 1.
    clean = code in (0, -signal.SIGTERM, 128 + signal.SIGTERM) if os.name == "posix" else code is not None
    check(clean and "Traceback" not in err, f"loci serve stops when told to (exit {code})")
    if check.failed:
        print(err[-3000:])
    return 1 if check.failed else 0


def mcp(command: list[str]) -> int:
    """`loci mcp` over stdio: initialize, tools/list and a search_memories call."""
    check = Checks()
    began = time.monotonic()
    proc = start([*command, "mcp", "--user-id", "smoke"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[bytes] = []
    got = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            got.set()

    threading.Thread(target=read, daemon=True).start()

    def call(msg_id: int, method: str, params: dict[str, Any]) -> Any:
        send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in lines:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("id") == msg_id:
                    return msg
            got.wait(0.2)
            got.clear()
        return {}

    def send(msg: dict[str, Any]) -> None:
        proc.stdin.write((json.dumps(msg) + "\n").encode())  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    try:
        init = call(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                      "clientInfo": {"name": "loci-smoke", "version": "1"}})
        check("serverInfo" in init.get("result", {}),
              f"initialize answered ({time.monotonic() - began:.1f} s): {init.get('result', {}).get('serverInfo')}")
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = [t["name"] for t in call(2, "tools/list", {}).get("result", {}).get("tools", [])]
        check({"add_memory", "search_memories"} <= set(tools), f"tools/list: {', '.join(tools)}")
        found = call(3, "tools/call", {"name": "search_memories", "arguments": {"query": QUESTION}})
        text = json.dumps(found.get("result", {}))
        check("Ottilie" in text, "tools/call search_memories finds the memory `loci add` stored")
    finally:
        proc.stdin.close()  # the client hangs up: the server ends by itself
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            code = stop(proc)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    check(code == 0 and "Traceback" not in err, f"loci mcp exits when stdin closes (exit {code})")
    if check.failed:
        print(err[-3000:])
    return 1 if check.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=["serve", "mcp"])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the isolated loci command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the loci command after --")
    return serve(command) if args.client == "serve" else mcp(command)


if __name__ == "__main__":
    sys.exit(main())
