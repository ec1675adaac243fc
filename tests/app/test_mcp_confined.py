"""`loci mcp --user-id alice` (and a scoped key) driven by the MCP SDK's stdio client: alice only, by id too."""
from __future__ import annotations

import json
import subprocess
import sys

import anyio

from engine import Memory
from service_helpers import REPO, child_env


async def _session(data_dir, args, script, env=None):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "app.cli", "--data-dir", str(data_dir), "mcp", *args],
                                   env={**child_env(), **(env or {})}, cwd=str(REPO))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await script(session)


async def _call(session, name, **arguments):
    result = await session.call_tool(name, arguments)
    text = result.content[0].text
    return (json.loads(text) if not result.is_error else text), result.is_error


def _store(tmp_path, embedder):
    data = tmp_path / "store"
    with Memory(data, embedder=embedder) as mem:
        alice = mem.add("Alice grows tomatoes", user_id="alice", infer=False)["results"][0]["id"]
        bob = mem.add("Bob's bank PIN is 4321", user_id="bob", infer=False)["results"][0]["id"]
    return data, alice, bob


def _bob_is_intact(data, bob, embedder):
    # the default embedder: the server may have moved the store to int8 while it ran (engine/store/reembed.py)
    with Memory(data) as mem:
        assert mem.get(bob)["memory"] == "Bob's bank PIN is 4321"


async def _confined_script(session, alice, bob):
    # by id: bob's memory does not exist for this server
    for tool, args in (("get_memory", {"memory_id": bob}), ("update_memory", {"memory_id": bob, "text": "0000"}),
                       ("delete_memory", {"memory_id": bob})):
        text, err = await _call(session, tool, **args)
        assert err and "No memory with id" in text, (tool, text)
    one, err = await _call(session, "get_memory", memory_id=alice)
    assert not err and one["memory"] == "Alice grows tomatoes"
    # top-level scopes outside the server's are refused; filters are confined
    for tool, args in (("search_memories", {"query": "PIN", "user_id": "bob"}),
                       ("get_memories", {"user_id": "bob"}),
                       ("add_memory", {"text": "x", "user_id": "bob"}),
                       ("delete_all_memories", {"user_id": "bob"}),
                       ("delete_entities", {"user_id": "bob"})):
        text, err = await _call(session, tool, **args)
        assert err and "limited to user 'alice'" in text, (tool, text)
    for filters in ({"user_id": "bob"}, {"OR": [{"user_id": "bob"}, {"user_id": "alice"}]}):
        hits, _ = await _call(session, "search_memories", query="PIN", filters=filters)
        assert all(h["user_id"] == "alice" for h in hits["results"])
        page, _ = await _call(session, "get_memories", filters=filters)
        assert all(r["user_id"] == "alice" for r in page["results"])
    mine, _ = await _call(session, "search_memories", query="what does Alice grow?", user_id="alice")
    assert mine["results"][0]["id"] == alice
    added, err = await _call(session, "add_memory", text="Alice bikes to work")
    assert not err
    new, _ = await _call(session, "get_memory", memory_id=added["results"][0]["id"])
    assert new["user_id"] == "alice"
    ents, _ = await _call(session, "list_entities")
    assert [e["name"] for e in ents["results"]] == ["alice"]


def test_user_id_confines_every_tool(tmp_path, embedder):
    data, alice, bob = _store(tmp_path, embedder)
    anyio.run(_session, data, ["--user-id", "alice"], lambda s: _confined_script(s, alice, bob))
    _bob_is_intact(data, bob, embedder)


def test_a_scoped_key_confines_the_server(tmp_path, embedder):
    data, alice, bob = _store(tmp_path, embedder)
    out = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(data), "api-key", "create", "--user",
                          "alice"], env=child_env(), cwd=REPO, capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    anyio.run(_session, data, [], lambda s: _confined_script(s, alice, bob), {"LOCI_API_KEY": key})
    _bob_is_intact(data, bob, embedder)
