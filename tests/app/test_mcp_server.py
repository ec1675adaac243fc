"""`loci mcp` driven by the official MCP SDK's stdio client: every tool, alone and beside an owner."""
from __future__ import annotations

import json
import sys

import anyio
import httpx

from app.cli import version
from service_helpers import REPO, Served, child_env

TOOLS = {"add_memory", "search_memories", "get_memories", "get_memory", "delete_memory",
         "delete_all_memories", "delete_entities"}


async def _session_run(data_dir, script):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "app.cli", "--data-dir", str(data_dir), "mcp"],
                                   env=child_env(), cwd=str(REPO))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            hello = await session.initialize()
            assert hello.server_info.name == "loci" and hello.server_info.version == version()
            return await script(session)


async def _call(session, name, **arguments):
    result = await session.call_tool(name, arguments)
    text = result.content[0].text
    return (json.loads(text) if not result.is_error else text), result.is_error


def test_every_tool_over_stdio(tmp_path):
    async def script(session):
        names = {t.name for t in (await session.list_tools()).tools}
        assert TOOLS <= names
        added, err = await _call(session, "add_memory", text="I prefer window seats on long flights")
        assert not err and added["results"][0]["event"] == "ADD"
        mid = added["results"][0]["id"]
        await _call(session, "add_memory", text="Deploys happen on Tuesdays", agent_id="ops-bot")
        hits, _ = await _call(session, "search_memories", query="which seat do I like?")
        assert hits["results"][0]["id"] == mid  # the default user, as mem0's server does
        page, _ = await _call(session, "get_memories", page=1, page_size=5)
        assert page["count"] == 1 and page["results"][0]["id"] == mid
        agent, _ = await _call(session, "get_memories", filters={"AND": [{"agent_id": "ops-bot"}]})
        assert [r["memory"] for r in agent["results"]] == ["Deploys happen on Tuesdays"]
        one, _ = await _call(session, "get_memory", memory_id=mid)
        assert one["memory"] == "I prefer window seats on long flights"
        gone, _ = await _call(session, "delete_memory", memory_id=mid)
        assert "deleted" in gone["message"]
        text, err = await _call(session, "get_memory", memory_id=mid)
        assert err and "No memory with id" in text
        await _call(session, "add_memory", text="Ana likes tea", user_id="ana")
        await _call(session, "delete_all_memories", user_id="ana")
        left, _ = await _call(session, "get_memories", filters={"user_id": "ana"})
        assert left["count"] == 0
        await _call(session, "delete_entities", agent_id="ops-bot")
        left, _ = await _call(session, "get_memories", filters={"agent_id": "ops-bot"})
        assert left["count"] == 0
        text, err = await _call(session, "delete_entities")
        assert err and "user_id" in text
    anyio.run(_session_run, tmp_path / "store", script)


def test_mcp_joins_a_store_another_program_owns(tmp_path):
    served = Served(tmp_path / "store").wait_ready()
    try:
        async def script(session):
            added, err = await _call(session, "add_memory", text="The spare key is under the blue pot")
            assert not err
            return added["results"][0]["id"]
        mid = anyio.run(_session_run, tmp_path / "store", script)
        got = httpx.get(f"{served.url}/v1/memories/{mid}/", headers={"Authorization": f"Token {served.key}"})
        assert got.json()["memory"] == "The spare key is under the blue pot"
    finally:
        served.stop()
