"""`loci mcp`: an MCP server over stdio with mem0's tool names, for Claude Desktop, Cursor and others.

The store is opened with open_memory, so the server works whether or not the desktop app (or
`loci serve`) already has it open: the first of them owns the store, the others use it through
the owner. Tools answer with JSON text, as mem0's MCP server does.

`loci mcp --user-id X` (or a scoped key) confines the server to X: every tool sees X's memories
only, by id too (engine/service/scoped.py enforces it), and refuses a user or agent outside it.
Without it the server reaches every user, adding and listing for 'default' when none is named.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Annotated, Any, Optional

from pydantic import Field

from engine import InvalidInputError, LociError
from engine.service import mem0_compat as compat
from engine.service.keys import KeyScope
from engine.service.scoped import ScopedMemory, view_for

log = logging.getLogger(__name__)

DEFAULT_USER = "default"


class _Store:
    """Opens the store in the background at start-up; the first tool call waits for it."""

    def __init__(self, data_dir: str | None) -> None:
        self._data_dir = data_dir
        self._memory: Any = None
        self._error: LociError | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._open, name="loci-mcp-open", daemon=True).start()

    def _open(self) -> None:
        from engine.service import open_memory

        try:
            self._memory = open_memory(self._data_dir)
        except LociError as exc:
            self._error = exc
        finally:
            self._ready.set()

    def get(self) -> Any:
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._memory

    def close(self) -> None:
        if self._ready.wait(timeout=60) and self._memory is not None:
            self._memory.close()


def _scoped_filters(filters: Optional[dict[str, Any]], default_user: str, **top: Optional[str]) -> dict[str, Any]:
    """Top-level user_id/agent_id/run_id merged into the filters; with no scope at all, the default user."""
    flat = compat.flatten_filters(filters)
    for key, value in top.items():
        if value is None:
            continue
        if key in flat and flat[key] != value:
            raise InvalidInputError(f"{key}={value!r} conflicts with {key} {flat[key]!r} in filters; "
                                    "give the scope once.")
        flat[key] = value
    if not any(k in json.dumps(flat) for k in ('"user_id"', '"agent_id"', '"run_id"')):
        flat["user_id"] = default_user
    return flat


def build_server(store: Any, default_user: str = DEFAULT_USER, confine: Optional[KeyScope] = None) -> Any:
    """The MCPServer with mem0's memory tools; `confine` limits every tool to one user (and agent)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from .version import version

    server = MCPServer("loci", version=version(),
                       instructions="Loci: private, local long-term memory. Store facts with "
                                    "add_memory, find them with search_memories.")

    if confine is not None:
        default_user = confine.user_id

    def mem() -> Any:
        """The store as this server may see it: the confined scope, or all of it."""
        return view_for(store.get(), confine, may_delete_all=True)

    def check(**given: Optional[str]) -> None:
        view = mem()
        if isinstance(view, ScopedMemory):
            view.check_given(**given)

    def call(fn: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return json.dumps(fn(*args, **kwargs), ensure_ascii=False, default=str)
        except LociError as exc:
            raise ToolError(exc.user_message) from None

    @server.tool(description="Store a new preference, fact, or conversation snippet. Uses the default user "
                             "unless user_id, agent_id or run_id is given.")
    def add_memory(
        text: Annotated[str, Field(description="Plain sentence summarizing what to store.")],
        messages: Annotated[Optional[list[dict[str, str]]], Field(
            description="Conversation turns with role/content; when given, facts are extracted from them.")] = None,
        user_id: Annotated[Optional[str], Field(description="User scope for this write.")] = None,
        agent_id: Annotated[Optional[str], Field(description="Agent scope.")] = None,
        app_id: Annotated[Optional[str], Field(description="Not supported by Loci.")] = None,
        run_id: Annotated[Optional[str], Field(description="Run (session) scope.")] = None,
        metadata: Annotated[Optional[dict[str, Any]], Field(description="Extra JSON kept with the memory.")] = None,
        enable_graph: Annotated[Optional[bool], Field(description="Ignored (Loci links entities always).")] = None,
        infer: Annotated[Optional[bool], Field(description="Extract facts with the local model. Default: "
                                               "only when messages are given; text is stored as written.")] = None,
    ) -> str:
        scope = compat.scope_from(None, user_id=user_id, agent_id=agent_id, run_id=run_id, app_id=app_id)
        if not scope:
            scope = {"user_id": default_user}
        conversation: Any = messages or [{"role": "user", "content": text}]
        return call(lambda: mem().add(conversation, **scope, metadata=metadata,
                                      infer=bool(messages) if infer is None else infer))

    @server.tool(description="Run a search over existing memories (semantic, keyword, entities and time). "
                             'Filters like {"AND": [{"user_id": "john"}]}; the default user is added when '
                             "no user_id/agent_id/run_id is given.")
    def search_memories(
        query: Annotated[str, Field(description="Natural language description of what to find.")],
        filters: Annotated[Optional[dict[str, Any]], Field(description="Filter clauses.")] = None,
        limit: Annotated[Optional[int], Field(description="Maximum number of results (default 10).")] = None,
        enable_graph: Annotated[Optional[bool], Field(description="Ignored.")] = None,
        user_id: Annotated[Optional[str], Field(description="Search this user's memories.")] = None,
        agent_id: Annotated[Optional[str], Field(description="Search this agent's memories.")] = None,
        run_id: Annotated[Optional[str], Field(description="Search this run's memories.")] = None,
    ) -> str:
        def run() -> Any:
            check(user_id=user_id, agent_id=agent_id)
            scoped = _scoped_filters(filters, default_user, user_id=user_id, agent_id=agent_id, run_id=run_id)
            return mem().search(query, top_k=limit or 10, filters=scoped)
        return call(run)

    @server.tool(description="Page through memories using filters instead of search (newest first).")
    def get_memories(
        filters: Annotated[Optional[dict[str, Any]], Field(description="Filter clauses.")] = None,
        page: Annotated[Optional[int], Field(description="1-indexed page number.")] = None,
        page_size: Annotated[Optional[int], Field(description="Memories per page (default 10).")] = None,
        enable_graph: Annotated[Optional[bool], Field(description="Ignored.")] = None,
        user_id: Annotated[Optional[str], Field(description="List this user's memories.")] = None,
        agent_id: Annotated[Optional[str], Field(description="List this agent's memories.")] = None,
        run_id: Annotated[Optional[str], Field(description="List this run's memories.")] = None,
    ) -> str:
        def run() -> Any:
            check(user_id=user_id, agent_id=agent_id)
            scoped = _scoped_filters(filters, default_user, user_id=user_id, agent_id=agent_id, run_id=run_id)
            return compat.page_of(mem(), scoped, page or 1, page_size or 10)
        return call(run)

    @server.tool(description="Fetch a single memory once you know its memory_id.")
    def get_memory(memory_id: Annotated[str, Field(description="Exact memory_id to fetch.")]) -> str:
        return call(lambda: mem().get_record(memory_id).to_dict())

    @server.tool(description="Overwrite an existing memory's text.")
    def update_memory(memory_id: Annotated[str, Field(description="Exact memory_id to overwrite.")],
                      text: Annotated[str, Field(description="Replacement text.")]) -> str:
        return call(lambda: mem().update(memory_id, text, actor="mcp"))

    @server.tool(description="Delete one memory after the user confirms its memory_id.")
    def delete_memory(memory_id: Annotated[str, Field(description="Exact memory_id to delete.")]) -> str:
        return call(lambda: mem().delete(memory_id, actor="mcp"))

    @server.tool(description="Delete every memory in the given user/agent/run (default: the default user).")
    def delete_all_memories(
        user_id: Annotated[Optional[str], Field(description="User scope to delete.")] = None,
        agent_id: Annotated[Optional[str], Field(description="Agent scope to delete.")] = None,
        app_id: Annotated[Optional[str], Field(description="Not supported by Loci.")] = None,
        run_id: Annotated[Optional[str], Field(description="Run scope to delete.")] = None,
    ) -> str:
        scope = compat.scope_from(None, user_id=user_id, agent_id=agent_id, run_id=run_id, app_id=app_id)
        return call(lambda: mem().delete_all(**(scope or {"user_id": default_user})))

    @server.tool(description="List which users/agents/runs currently hold memories.")
    def list_entities() -> str:
        return call(lambda: {"results": compat.list_entities(mem())})

    @server.tool(description="Remove a user/agent/run entirely (and delete its memories).")
    def delete_entities(
        user_id: Annotated[Optional[str], Field(description="Delete this user and its memories.")] = None,
        agent_id: Annotated[Optional[str], Field(description="Delete this agent and its memories.")] = None,
        app_id: Annotated[Optional[str], Field(description="Not supported by Loci.")] = None,
        run_id: Annotated[Optional[str], Field(description="Delete this run and its memories.")] = None,
    ) -> str:
        if app_id:
            raise ToolError("Loci has no app_id scope: use user_id, agent_id or run_id.")
        targets = [(kind, name) for kind, name in (("user", user_id), ("agent", agent_id), ("run", run_id)) if name]
        if not targets:
            raise ToolError("Provide user_id, agent_id or run_id before calling delete_entities.")

        def run() -> dict[str, str]:
            for kind, name in targets:
                compat.delete_entity(mem(), kind, name)
            return {"message": "Entity deleted successfully."}
        return call(run)

    return server


def run(data_dir: str | None = None, default_user: str | None = None, *, agent_id: str | None = None,
        read_only: bool = False, api_key: str | None = None) -> int:
    """Serve MCP over stdin/stdout until the client closes the pipe; logs go to stderr.

    A user (--user-id or LOCI_MCP_USER_ID) or a scoped key (--api-key or LOCI_API_KEY) confines it.
    """
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .api import quiet_idle_threads

    quiet_idle_threads()  # the MCP server also answers other programs when it owns the store
    confine = server_scope(data_dir, default_user or os.environ.get("LOCI_MCP_USER_ID"), agent_id, read_only,
                           api_key or os.environ.get("LOCI_API_KEY"))
    store = _Store(data_dir)
    try:
        build_server(store, confine.user_id if confine else DEFAULT_USER, confine).run("stdio")
    finally:
        store.close()
    return 0


def server_scope(data_dir: str | None, user_id: str | None, agent_id: str | None, read_only: bool,
                 api_key: str | None) -> Optional[KeyScope]:
    """The scope the server is confined to: a scoped key's, else the user given; None for the whole store."""
    if api_key:
        from engine.paths import default_data_dir
        from engine.service.keys import KeyRing

        known, scope = KeyRing(data_dir or default_data_dir()).identify(api_key.strip())
        if not known:
            raise SystemExit("loci mcp: the API key is wrong or was revoked (`loci api-key list`).")
        if scope is not None and user_id and user_id != scope.user_id:
            raise SystemExit(f"loci mcp: the key is limited to user '{scope.user_id}', not '{user_id}'.")
        if scope is not None:
            return scope
    if user_id:
        return KeyScope(user_id, agent_id, read_only)
    if agent_id or read_only:
        raise SystemExit("loci mcp: --agent-id and --read-only confine a user: give --user-id too.")
    return None
