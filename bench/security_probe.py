"""Cross-scope probe: every REST route and MCP tool, tried as the owner, as alice and with a wrong key, on bob.

A store holds one memory of alice and one of bob. Each route (REST, a real `loci serve`) and tool
(MCP, real `loci mcp` servers driven by the mcp SDK's stdio client) is called with bob's id, bob's
filters or bob's scope, by three callers: the owner key (the control: it may), a key made with
`loci api-key create --user alice` (an MCP server confined with --user-id alice, or run with that
key) and a wrong key. A cross-scope success is a non-owner call that answered with bob's data, or
after which bob's memories changed. Bob's memory is put back after every call that changed it.

    python bench/security_probe.py          # prints the table and the count (target: 0)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "app"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MEM0_TELEMETRY", "False")

import httpx  # noqa: E402

from service_helpers import Served, child_env  # noqa: E402

BOB_TEXT = "Bob's bank PIN is 4321"
ALICE_TEXT = "Alice grows tomatoes"
CALLERS = ("owner", "alice", "wrong")


class World:
    """The served store, bob's current memory id, and checks of bob's state through the owner key."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.owner = {"Authorization": f"Token {served.key}"}
        self.bob_id = ""
        self.alice_id = self._add("alice", ALICE_TEXT)
        self.restore_bob()

    def _add(self, user: str, text: str) -> str:
        r = httpx.post(f"{self.served.url}/memories", headers=self.owner, timeout=120,
                       json={"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False})
        r.raise_for_status()
        return str(r.json()["results"][0]["id"])

    def bob_state(self) -> list[str]:
        r = httpx.post(f"{self.served.url}/v3/memories/", headers=self.owner, json={"filters": {"user_id": "bob"}},
                       timeout=120)
        return sorted(f"{m['id']}:{m['memory']}" for m in r.json()["results"])

    def restore_bob(self) -> None:
        httpx.delete(f"{self.served.url}/v1/memories/", params={"user_id": "bob"}, headers=self.owner, timeout=120)
        if not self._alice_present():
            self.alice_id = self._add("alice", ALICE_TEXT)
        self.bob_id = self._add("bob", BOB_TEXT)

    def _alice_present(self) -> bool:
        return httpx.get(f"{self.served.url}/v1/memories/{self.alice_id}/", headers=self.owner,
                         timeout=60).status_code == 200


def _leaks(text: str, world: World) -> bool:
    return BOB_TEXT in text or world.bob_id in text or '"bob"' in text


def rest_probes(world: World) -> list[tuple[str, Callable[[], tuple[str, str, Any]]]]:
    """(route, a function returning (method, path, json body)) evaluated at call time (bob's id changes)."""
    b = lambda: world.bob_id  # noqa: E731
    return [
        ("GET /v1/memories/{bob}/", lambda: ("GET", f"/v1/memories/{b()}/", None)),
        ("PUT /v1/memories/{bob}/", lambda: ("PUT", f"/v1/memories/{b()}/", {"text": "changed"})),
        ("DELETE /v1/memories/{bob}/", lambda: ("DELETE", f"/v1/memories/{b()}/", None)),
        ("GET /v1/memories/{bob}/history/", lambda: ("GET", f"/v1/memories/{b()}/history/", None)),
        ("POST /v3/memories/ filters bob", lambda: ("POST", "/v3/memories/", {"filters": {"user_id": "bob"}})),
        ("POST /v3/memories/ filters OR", lambda: ("POST", "/v3/memories/", {"filters": {
            "OR": [{"user_id": "bob"}, {"user_id": "alice"}]}})),
        ("POST /v3/memories/search/ filters bob", lambda: ("POST", "/v3/memories/search/", {
            "query": "PIN", "filters": {"user_id": "bob"}})),
        ("POST /v3/memories/search/ user_id bob", lambda: ("POST", "/v3/memories/search/", {
            "query": "PIN", "user_id": "bob"})),
        ("POST /v3/memories/search/ filters *", lambda: ("POST", "/v3/memories/search/", {
            "query": "PIN", "filters": {"user_id": "*"}})),
        ("POST /v3/memories/add/ for bob", lambda: ("POST", "/v3/memories/add/", {
            "messages": "planted", "user_id": "bob", "infer": False})),
        ("DELETE /v1/memories/?user_id=bob", lambda: ("DELETE", "/v1/memories/?user_id=bob", None)),
        ("GET /v1/entities/", lambda: ("GET", "/v1/entities/", None)),
        ("DELETE /v2/entities/user/bob/", lambda: ("DELETE", "/v2/entities/user/bob/", None)),
        ("PUT /v1/batch/ bob", lambda: ("PUT", "/v1/batch/", {"memories": [{"memory_id": b(), "text": "changed"}]})),
        ("DELETE /v1/batch/ bob", lambda: ("DELETE", "/v1/batch/", {"memories": [{"memory_id": b()}]})),
        ("GET /memories?user_id=bob", lambda: ("GET", "/memories?user_id=bob", None)),
        ("GET /memories/{bob}", lambda: ("GET", f"/memories/{b()}", None)),
        ("PUT /memories/{bob}", lambda: ("PUT", f"/memories/{b()}", {"text": "changed"})),
        ("DELETE /memories/{bob}", lambda: ("DELETE", f"/memories/{b()}", None)),
        ("GET /memories/{bob}/history", lambda: ("GET", f"/memories/{b()}/history", None)),
        ("POST /memories for bob", lambda: ("POST", "/memories", {
            "messages": [{"role": "user", "content": "planted"}], "user_id": "bob", "infer": False})),
        ("POST /search user_id bob", lambda: ("POST", "/search", {"query": "PIN", "user_id": "bob"})),
        ("DELETE /memories?user_id=bob", lambda: ("DELETE", "/memories?user_id=bob", None)),
        ("POST /reset", lambda: ("POST", "/reset", None)),
    ]


def probe_rest(world: World, keys: dict[str, str]) -> list[tuple[str, str, str, bool]]:
    rows = []
    for route, make in rest_probes(world):
        for caller in CALLERS:
            before = world.bob_state()
            method, path, body = make()
            r = httpx.request(method, world.served.url + path, json=body, timeout=300,
                              headers={"Authorization": f"Token {keys[caller]}"})
            changed = world.bob_state() != before
            crossed = (200 <= r.status_code < 300 and _leaks(r.text, world)) or changed
            rows.append(("REST", route, caller, f"{r.status_code}" + (" changed" if changed else ""), crossed))
            if changed:
                world.restore_bob()
    return rows


def mcp_probes(world: World) -> list[tuple[str, Callable[[], dict[str, Any]], str]]:
    b = lambda: world.bob_id  # noqa: E731
    return [
        ("get_memory(bob id)", lambda: {"memory_id": b()}, "get_memory"),
        ("update_memory(bob id)", lambda: {"memory_id": b(), "text": "changed"}, "update_memory"),
        ("delete_memory(bob id)", lambda: {"memory_id": b()}, "delete_memory"),
        ("search_memories(user_id=bob)", lambda: {"query": "PIN", "user_id": "bob"}, "search_memories"),
        ("search_memories(filters bob)", lambda: {"query": "PIN", "filters": {"user_id": "bob"}}, "search_memories"),
        ("get_memories(user_id=bob)", lambda: {"user_id": "bob"}, "get_memories"),
        ("get_memories(filters OR)", lambda: {"filters": {"OR": [{"user_id": "bob"}, {"user_id": "alice"}]}},
         "get_memories"),
        ("add_memory(user_id=bob)", lambda: {"text": "planted", "user_id": "bob"}, "add_memory"),
        ("delete_all_memories(user_id=bob)", lambda: {"user_id": "bob"}, "delete_all_memories"),
        ("list_entities()", lambda: {}, "list_entities"),
        ("delete_entities(user_id=bob)", lambda: {"user_id": "bob"}, "delete_entities"),
    ]


def probe_mcp(world: World, data_dir: Path, caller: str, args: list[str], env: dict[str, str]
              ) -> list[tuple[str, str, str, str, bool]]:
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    probes = mcp_probes(world)
    if caller == "wrong":  # the server must refuse to start with a key it does not know
        done = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "mcp", *args],
                              env={**child_env(), **env}, cwd=REPO, capture_output=True, text=True, timeout=120,
                              input="")
        outcome = f"exit {done.returncode}"
        return [("MCP", name, caller, outcome, done.returncode == 0) for name, _, _ in probes]

    async def run() -> list[tuple[str, str, str, str, bool]]:
        params = StdioServerParameters(command=sys.executable,
                                       args=["-m", "app.cli", "--data-dir", str(data_dir), "mcp", *args],
                                       env={**child_env(), **env}, cwd=str(REPO))
        rows = []
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for name, make, tool in probes:
                    before = world.bob_state()
                    result = await session.call_tool(tool, make())
                    text = result.content[0].text if result.content else ""
                    changed = world.bob_state() != before
                    crossed = (not result.is_error and _leaks(text, world)) or changed
                    outcome = ("error" if result.is_error else "ok") + (" changed" if changed else "")
                    rows.append(("MCP", name, caller, outcome, crossed))
                    if changed:
                        world.restore_bob()
        return rows
    return anyio.run(run)


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="loci-probe-")) / "store"
    made = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "--json", "api-key",
                           "create", "--user", "alice"], env=child_env(), cwd=REPO, capture_output=True,
                          text=True, check=True)
    alice_key = json.loads(made.stdout)["key"]
    served = Served(data_dir).wait_ready()
    try:
        world = World(served)
        keys = {"owner": served.key, "alice": alice_key, "wrong": "loci-s-not-a-key"}
        rows = probe_rest(world, keys)
        rows += probe_mcp(world, data_dir, "owner", [], {})
        rows += probe_mcp(world, data_dir, "alice", ["--user-id", "alice"], {})
        rows += [(s, n, "alice key", o, c) for s, n, _, o, c in
                 probe_mcp(world, data_dir, "alice", [], {"LOCI_API_KEY": alice_key})]
        rows += probe_mcp(world, data_dir, "wrong", [], {"LOCI_API_KEY": "loci-s-not-a-key"})
    finally:
        served.stop()
    width = max(len(r[1]) for r in rows)
    print(f"{'surface':<8}{'route / tool':<{width + 2}}{'caller':<11}{'outcome':<16}cross-scope")
    for surface, name, caller, outcome, crossed in rows:
        mark = "" if caller == "owner" else ("YES" if crossed else "no")
        print(f"{surface:<8}{name:<{width + 2}}{caller:<11}{outcome:<16}{mark}")
    others = [r for r in rows if r[2] != "owner"]
    owner_ok = sum(1 for r in rows if r[2] == "owner" and r[4])
    crossed = sum(1 for r in others if r[4])
    rest = sum(1 for r in others if r[4] and r[0] == "REST")
    print(f"\ncalls: {len(rows)} ({len(others)} by alice or a wrong key); owner calls that reached bob "
          f"(the control, expected): {owner_ok}")
    print(f"cross-scope successes: {crossed} (REST {rest}, MCP {crossed - rest}); target 0")
    return 0 if crossed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
