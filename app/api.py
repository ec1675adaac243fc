"""`loci serve`: a local REST API that mem0's MemoryClient and mem0's self-hosted clients can use.

Two surfaces over one store: the platform endpoints mem0ai's `MemoryClient(host=..., api_key=...)`
calls (/v1, /v3), and the endpoints of mem0's self-hosted server (/memories, /search, /reset).
Every request needs an API key (`Authorization: Token <key>`): the data folder's owner key, or a
key made for one user with `loci api-key create`, which sees and changes that user's memories
only (engine/service/scoped.py enforces it). The server binds to 127.0.0.1 and answers only
requests addressed to a loopback name (no DNS rebinding) unless told otherwise. Each response says how long
the engine worked on it (`Server-Timing: engine;dur=<ms>`), so the API's own overhead can be measured per request.
Handlers are plain functions run in FastAPI's thread pool, so one client's slow add
(extraction) never holds up another client's search.
"""
from __future__ import annotations

import ast
import ipaddress
import json
import logging
import os
import sys
import threading
import time
from contextvars import ContextVar
from typing import Annotated, Any, Optional, Union

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from engine import AccessDeniedError, InvalidInputError, LociError, NotFoundError, StoreError
from engine.service import mem0_compat as compat
from engine.service.keys import KeyRing, KeyScope, key_path, token_from_header
from engine.service.scoped import view_for

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_BATCH = 1000
PUBLIC_PATHS = frozenset({"/openapi.json"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


# -- request bodies (extra keys newer SDKs send are ignored) --------------------------------
class _Body(BaseModel):
    # strict: a field gets what the engine takes, "infer": "no" or "top_k": "5" are refused (400)
    model_config = ConfigDict(extra="ignore", strict=True)


class MessageIn(_Body):
    role: str = Field("user", description="user, assistant, system or tool")
    content: str
    name: Optional[str] = Field(None, description="who said it")
    timestamp: Optional[Union[int, float, str]] = None


class Scoped(_Body):
    user_id: Optional[str] = None
    agent_id: Optional[str] = None
    run_id: Optional[str] = None
    app_id: Optional[str] = Field(None, description="not supported by Loci (400)")


def _one(memory: Any, memory_id: str) -> dict[str, Any]:
    """A memory by id, or NotFoundError (404): the API reports a missing id, mem0's get() gives None."""
    found = memory.get(memory_id)
    if found is None:
        raise NotFoundError(f"No memory with id '{memory_id}'. It may have been deleted.")
    return dict(found)


def _as_message_list(value: Any) -> Any:
    """mem0 accepts a string, one message dict or a list of them."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [value] if isinstance(value, dict) else value


class AddV3(Scoped):
    messages: Annotated[list[MessageIn], BeforeValidator(_as_message_list)] = Field(
        ..., description="the conversation to remember: a string, a message or a list of messages")
    filters: Optional[dict[str, Any]] = Field(None, description="mem0 v3 puts user_id etc. here")
    metadata: Optional[dict[str, Any]] = None
    infer: bool = Field(True, description="extract facts with the local model (False: store as said)")
    timestamp: Optional[Union[int, float, str]] = Field(None, description="when it was said")
    custom_instructions: Optional[str] = Field(None, description="extra extraction instructions")
    memory_type: Optional[str] = None


class ListV3(_Body):
    filters: Optional[dict[str, Any]] = None


class SearchV3(Scoped):
    query: str
    filters: Optional[dict[str, Any]] = None
    top_k: Optional[int] = Field(None, ge=1, le=1000)
    limit: Optional[int] = Field(None, ge=1, le=1000)
    threshold: Optional[float] = None
    rerank: bool = False
    reference_date: Optional[Union[str, int]] = None
    explain: bool = Field(False, description="Loci: add every signal's score to each result")


class UpdateIn(_Body):
    text: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    timestamp: Optional[Union[int, float, str]] = None


class BatchUpdateItem(_Body):
    memory_id: str
    text: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None


class BatchDeleteItem(_Body):
    memory_id: str


class BatchUpdate(_Body):
    memories: list[BatchUpdateItem] = Field(..., max_length=MAX_BATCH)


class BatchDelete(_Body):
    memories: list[BatchDeleteItem] = Field(..., max_length=MAX_BATCH)


class MemoryCreate(Scoped):
    messages: list[MessageIn]
    metadata: Optional[dict[str, Any]] = None
    infer: bool = True


class SearchRequest(Scoped):
    query: str
    filters: Optional[dict[str, Any]] = None
    top_k: Optional[int] = Field(None, ge=1, le=1000)
    limit: Optional[int] = Field(None, ge=1, le=1000)


# -- engine time per request, reported in a Server-Timing header ------------------------------------
_engine_time: ContextVar[list[float]] = ContextVar("loci_engine_time")
# -- whose key made the request: None for the owner key, else the key's scope ---------------------
_caller: ContextVar[Optional[KeyScope]] = ContextVar("loci_caller", default=None)


class _Timed:
    """The memory as the request's key may see it (the scoped view), each engine call timed."""

    def __init__(self, memory: Any) -> None:
        self._memory = memory

    def __getattr__(self, name: str) -> Any:
        fn = getattr(view_for(self._memory, _caller.get()), name)
        if not callable(fn):
            return fn

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                box = _engine_time.get(None)
                if box is not None:
                    box[0] += time.perf_counter() - start
        return timed


# -- the ASGI guard: key and size, before any handler runs --------------------------------------
class Guard:
    """Refuses a foreign Host (421), a missing or unknown key (401) and a body over the limit (413).

    A request's key decides what it sees: the owner key the whole store, a scoped key its scope.
    """

    def __init__(self, app: Any, keys: KeyRing, key_file: str, max_body: int, *,
                 allow_remote: bool = False) -> None:
        self.app, self.keys, self.key_file, self.max_body = app, keys, key_file, max_body
        self.allow_remote = allow_remote

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not self.allow_remote and not _loopback_host(headers.get("host")):
            await _send_json(send, 421, {"detail": f"This server answers only requests to localhost or "
                                         f"127.0.0.1, not to '{headers.get('host')}' (start it with "
                                         "--allow-remote to be reached by other names)."})
            return
        caller: Optional[KeyScope] = None
        if scope["path"] not in PUBLIC_PATHS:
            token = token_from_header(headers.get("authorization"))
            known, caller = self.keys.identify(token)
            if not known:
                what = "No API key was sent" if token is None else "The API key is wrong or was revoked"
                await _send_json(send, 401, {"detail": f"{what}. Send the header 'Authorization: Token <key>' "
                                             f"with the key in {self.key_file} (`loci api-key` prints it) "
                                             "or a key from `loci api-key create`."})
                return
        _caller.set(caller)
        try:
            declared = int(headers.get("content-length", "0"))
        except ValueError:
            declared = 0
        if declared > self.max_body:
            await _send_json(send, 413, {"detail": f"The request body is {declared:,} bytes; the limit is "
                                         f"{self.max_body:,}. Send fewer or shorter messages per request."})
            return
        limit = self.max_body
        body = bytearray()
        while True:  # the whole body first: a chunked one declares no length
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > limit:
                await _send_json(send, 413, {"detail": f"The request body is over the limit of {limit:,} bytes. "
                                             "Send fewer or shorter messages per request."})
                return
            if not message.get("more_body", False):
                break
        box = [0.0]
        _engine_time.set(box)  # handlers (in worker threads) add to the same list

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"engine;dur={box[0] * 1000:.2f}".encode())]}
            await send(message)

        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect

        await self.app(scope, replay, timed_send)


def _loopback_host(value: Optional[str]) -> bool:
    """Whether a Host header names this machine's loopback (a request without one is let through)."""
    if not value:
        return True
    host = value.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host in LOOPBACK_NAMES or is_loopback(host)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _query_dict(text: Optional[str], name: str) -> Optional[dict[str, Any]]:
    """A dict passed in a query parameter: JSON, or the Python repr httpx makes of a dict."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise InvalidInputError(f"Query parameter '{name}' is not a JSON object.") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"Query parameter '{name}' must be an object like {{\"user_id\": \"alice\"}}.")
    return value


def _status_of(exc: LociError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, AccessDeniedError):
        return 403
    if isinstance(exc, InvalidInputError):
        return 400
    if isinstance(exc, StoreError):
        return 503
    return 422


# -- the app ----------------------------------------------------------------------------------
def create_app(memory: Any, api_key: str, *, key_file: str = "api_key", max_body: int = MAX_BODY_BYTES,
               allow_remote: bool = False) -> Any:
    """The FastAPI app over `memory` (engine.Memory, ServedMemory or RemoteMemory), wrapped in the Guard.

    `api_key` is the owner key; scoped keys are read from the data folder's key list.
    """
    keys = KeyRing(memory.data_dir, api_key)
    memory = _Timed(memory)
    # no /docs page: Swagger UI's assets come from a CDN, and nothing may leave the machine
    app = FastAPI(title="Loci memory API",
                  description="mem0-compatible REST API of a local Loci store. Send `Authorization: Token "
                              "<key>`; the owner key is in the data folder (`loci api-key`), keys limited "
                              "to one user come from `loci api-key create --user NAME`.",
                  version="1.0.0", docs_url=None, redoc_url=None)

    @app.exception_handler(LociError)
    async def loci_error(_request: Request, exc: LociError) -> JSONResponse:
        return JSONResponse({"detail": exc.user_message}, status_code=_status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                problems.append(f"The request body is not valid JSON ({err.get('ctx', {}).get('error', 'syntax')} "
                                f"at character {err['loc'][-1]}).")
            else:
                problems.append(f"Field '{_field_path(tuple(err.get('loc', ())))}': {err.get('msg')}.")
        return JSONResponse({"detail": " ".join(problems), "errors": [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg")} for e in exc.errors()]},
            status_code=400)

    def add(messages: list[MessageIn], scope: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        return memory.add([m.model_dump(exclude_none=True) for m in messages], **scope, **kwargs)

    # -- mem0 platform (MemoryClient) ------------------------------------------------------
    @app.get("/v1/ping/", tags=["mem0 platform"], summary="Check the API key")
    def ping() -> dict[str, Any]:
        # MemoryClient insists on an org and a project; a local store has one of each.
        return {"status": "ok", "message": "Loci is running", "user_email": None, "org_id": "local",
                "project_id": "loci"}

    @app.post("/v3/memories/add/", tags=["mem0 platform"], summary="Add memories (MemoryClient.add)")
    def add_v3(body: AddV3) -> dict[str, Any]:
        scope = compat.scope_from(body.filters, user_id=body.user_id, agent_id=body.agent_id,
                                  run_id=body.run_id, app_id=body.app_id)
        return add(body.messages, scope, metadata=body.metadata, infer=body.infer, timestamp=body.timestamp,
                   prompt=body.custom_instructions, memory_type=body.memory_type)

    @app.post("/v3/memories/", tags=["mem0 platform"], summary="List memories, paged (MemoryClient.get_all)")
    def list_v3(request: Request, body: ListV3 = Body(default_factory=ListV3),
                page: int = Query(1, ge=1), page_size: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return compat.page_of(memory, body.filters, page, page_size, str(request.url.remove_query_params(
            ["page", "page_size"])))

    @app.post("/v3/memories/search/", tags=["mem0 platform"], summary="Search (MemoryClient.search)")
    def search_v3(body: SearchV3) -> dict[str, Any]:
        filters = compat.flatten_filters(body.filters)
        filters.update(compat.scope_from(None, user_id=body.user_id, agent_id=body.agent_id,
                                         run_id=body.run_id, app_id=body.app_id))
        return memory.search(body.query, top_k=body.top_k or body.limit or 10, filters=filters,
                             threshold=body.threshold, explain=body.explain, reference_date=body.reference_date)

    @app.get("/v1/memories/{memory_id}/", tags=["mem0 platform"], summary="Get one memory")
    def get_v1(memory_id: str) -> dict[str, Any]:
        return _one(memory, memory_id)

    @app.put("/v1/memories/{memory_id}/", tags=["mem0 platform"], summary="Update one memory")
    def update_v1(memory_id: str, body: UpdateIn) -> dict[str, Any]:
        if body.text is None and body.metadata is None:
            raise InvalidInputError("Nothing to update: give 'text', 'metadata' or both.")
        memory.update(memory_id, body.text, body.metadata)
        return _one(memory, memory_id)

    @app.delete("/v1/memories/{memory_id}/", tags=["mem0 platform"], summary="Delete one memory")
    def delete_v1(memory_id: str) -> dict[str, Any]:
        return memory.delete(memory_id)

    @app.get("/v1/memories/{memory_id}/history/", tags=["mem0 platform"], summary="A memory's history")
    def history_v1(memory_id: str) -> list[dict[str, Any]]:
        return memory.history(memory_id)

    @app.delete("/v1/memories/", tags=["mem0 platform"], summary="Delete every memory of a user/agent/run")
    def delete_all_v1(user_id: Optional[str] = None, agent_id: Optional[str] = None,
                      run_id: Optional[str] = None, app_id: Optional[str] = None,
                      filters: Optional[str] = Query(None, description="{'user_id': ...} (as MemoryClient "
                                                     "sends delete_all(filters=...))")) -> dict[str, Any]:
        scope = compat.scope_from(_query_dict(filters, "filters"), user_id=user_id, agent_id=agent_id,
                                  run_id=run_id, app_id=app_id)
        if not scope:
            raise InvalidInputError("Say whose memories to delete: user_id, agent_id or run_id. "
                                    "To empty the whole store use POST /reset.")
        return memory.delete_all(**scope)

    @app.get("/v1/entities/", tags=["mem0 platform"], summary="Users, agents and runs with memories")
    def entities_v1() -> dict[str, Any]:
        rows = compat.list_entities(memory)
        return {"count": len(rows), "results": rows}

    @app.delete("/v2/entities/{kind}/{name}/", tags=["mem0 platform"], summary="Delete a user/agent/run")
    def delete_entity_v2(kind: str, name: str) -> dict[str, Any]:
        return compat.delete_entity(memory, kind, name)

    @app.put("/v1/batch/", tags=["mem0 platform"], summary="Update up to 1000 memories")
    def batch_update(body: BatchUpdate) -> dict[str, Any]:
        for item in body.memories:
            memory.get_record(item.memory_id)  # all exist, or nothing changes (404)
            if item.text is None and item.metadata is None:
                raise InvalidInputError(f"Nothing to update for memory '{item.memory_id}': give text or metadata.")
        for item in body.memories:
            memory.update(item.memory_id, item.text, item.metadata)
        return {"message": f"Successfully updated {len(body.memories)} memories"}

    @app.delete("/v1/batch/", tags=["mem0 platform"], summary="Delete up to 1000 memories")
    def batch_delete(body: BatchDelete) -> dict[str, Any]:
        ids = [item.memory_id for item in body.memories]
        for memory_id in ids:
            memory.get_record(memory_id)
        n = memory.delete_records(ids)
        return {"message": f"Successfully deleted {n} memories"}

    # -- mem0 self-hosted server -----------------------------------------------------------
    def _scope_required(body: Scoped) -> dict[str, str]:
        scope = compat.scope_from(None, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id,
                                  app_id=body.app_id)
        caller = _caller.get()
        if not scope and caller is not None:
            return {"user_id": caller.user_id}  # a scoped key names its user
        if not scope:
            raise InvalidInputError("At least one identifier (user_id, agent_id, run_id) is required.")
        return scope

    @app.post("/memories", tags=["mem0 self-hosted"], summary="Create memories")
    def create_memories(body: MemoryCreate) -> dict[str, Any]:
        return add(body.messages, _scope_required(body), metadata=body.metadata, infer=body.infer)

    @app.get("/memories", tags=["mem0 self-hosted"], summary="Get memories")
    def get_memories(user_id: Optional[str] = None, agent_id: Optional[str] = None,
                     run_id: Optional[str] = None, limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        scope = _scope_required(Scoped(user_id=user_id, agent_id=agent_id, run_id=run_id))
        return memory.get_all(filters=scope, top_k=limit)

    @app.get("/memories/{memory_id}", tags=["mem0 self-hosted"], summary="Get a memory")
    def get_memory(memory_id: str) -> dict[str, Any]:
        return _one(memory, memory_id)

    @app.post("/search", tags=["mem0 self-hosted"], summary="Search memories")
    def search(body: SearchRequest) -> dict[str, Any]:
        filters = compat.flatten_filters(body.filters)
        filters.update(compat.scope_from(None, user_id=body.user_id, agent_id=body.agent_id,
                                         run_id=body.run_id, app_id=body.app_id))
        return memory.search(body.query, top_k=body.top_k or body.limit or 100, filters=filters)

    @app.put("/memories/{memory_id}", tags=["mem0 self-hosted"], summary="Update a memory")
    def update_memory(memory_id: str, body: dict[str, Any] = Body(..., examples=[{"text": "new text"}])
                      ) -> dict[str, Any]:
        text = next((body[k] for k in ("text", "data", "memory") if k in body), None)
        if text is not None and not isinstance(text, str):
            raise InvalidInputError("Field 'text' must be a string.")
        return memory.update(memory_id, text, body.get("metadata"))

    @app.get("/memories/{memory_id}/history", tags=["mem0 self-hosted"], summary="Get memory history")
    def memory_history(memory_id: str) -> list[dict[str, Any]]:
        return memory.history(memory_id)

    @app.delete("/memories/{memory_id}", tags=["mem0 self-hosted"], summary="Delete a memory")
    def delete_memory(memory_id: str) -> dict[str, Any]:
        return memory.delete(memory_id)

    @app.delete("/memories", tags=["mem0 self-hosted"], summary="Delete all memories of a user/agent/run")
    def delete_all_memories(user_id: Optional[str] = None, agent_id: Optional[str] = None,
                            run_id: Optional[str] = None) -> dict[str, Any]:
        scope = _scope_required(Scoped(user_id=user_id, agent_id=agent_id, run_id=run_id))
        memory.delete_all(**scope)
        return {"message": "All relevant memories deleted"}

    @app.post("/reset", tags=["mem0 self-hosted"], summary="Delete every memory in the store")
    def reset() -> dict[str, Any]:
        memory.reset()
        return {"message": "All memories reset"}

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(url="/openapi.json")

    return Guard(app, keys, key_file, max_body, allow_remote=allow_remote)


# -- `loci serve` ----------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(data_dir: str | None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          allow_remote: bool = False, parent_pid: int | None = None) -> int:
    """Run the REST API until Ctrl+C / SIGTERM; the store is opened (or joined) with open_memory."""
    import uvicorn

    from engine.service import load_or_create_api_key, open_memory

    quiet_idle_threads()

    if not is_loopback(host):
        if not allow_remote:
            print(f"loci: refusing to listen on {host}: anyone on that network could reach your memories. "
                  "Pass --allow-remote if you mean it.", file=sys.stderr)
            return 2
        print(f"loci: WARNING: listening on {host}, reachable from other machines. Every request still "
              "needs the API key, but traffic is not encrypted.", file=sys.stderr)
    memory = open_memory(data_dir)
    try:
        key = load_or_create_api_key(memory.data_dir)
        app = create_app(memory, key, key_file=str(key_path(memory.data_dir)), allow_remote=allow_remote)
        if parent_pid:
            _exit_with_parent(parent_pid)
        role = "owner of" if not hasattr(memory, "owner_url") else "client of the owner of"
        print(f"Loci API on http://{host}:{port} ({role} {memory.data_dir}); API key in "
              f"{key_path(memory.data_dir)}; schema at /openapi.json", file=sys.stderr, flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        memory.close()
    return 0


def quiet_idle_threads() -> None:
    """Let the model's OpenMP threads sleep between requests instead of spinning.

    By default they busy-wait after each embedding, taking the CPU the reply needs: on a
    2-core laptop that added ~7 ms to every search answered over the API. Must run before
    torch loads; an explicit OMP_WAIT_POLICY in the environment wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _exit_with_parent(pid: int) -> None:
    """Stop (as Ctrl+C would) when the process that started us is gone (tests, supervisors)."""
    import signal

    def watch() -> None:
        while _alive(pid):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="loci-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether a process exists, without touching it (on Windows os.kill(pid, 0) would stop it)."""
    if sys.platform == "win32":
        import ctypes

        kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel.OpenProcess(0x00100000, False, pid)  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return bool(kernel.WaitForSingleObject(handle, 0) == 0x102)  # WAIT_TIMEOUT: still running
        finally:
            kernel.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# -- `loci api-key [create|list|revoke]` ----------------------------------------------------------
def api_key_command(args: Any) -> int:
    """Print the owner key, or create, list and revoke keys limited to one user (see engine/service/keys.py)."""
    from engine.paths import default_data_dir
    from engine.service.keys import (create_scoped_key, list_scoped_keys, load_or_create_api_key,
                                     revoke_scoped_key)

    data_dir = args.data_dir or default_data_dir()
    if args.action is None:
        print(load_or_create_api_key(data_dir))
        return 0
    if args.action == "create":
        if not args.key_user:
            print("loci: say whose memories the key may reach: loci api-key create --user NAME", file=sys.stderr)
            return 2
        key, token = create_scoped_key(data_dir, args.key_user, args.key_agent, read_only=args.key_read_only,
                                       name=args.key_name)
        if args.json:
            print(json.dumps({**key.to_dict(), "key": token}, indent=2))
        else:
            print(token)
            print(f"Key {key.id} for {key.scope.describe()}. It is shown only now; "
                  f"`loci api-key revoke {key.id}` stops it.", file=sys.stderr)
        return 0
    if args.action == "list":
        keys = list_scoped_keys(data_dir)
        if args.json:
            print(json.dumps([k.to_dict() for k in keys], indent=2))
        elif not keys:
            print("No scoped keys. The owner key (`loci api-key`) reaches every memory.")
        for k in keys if not args.json else []:
            print(f"{k.id}  {k.scope.describe()}  created {k.created_at}" + (f"  ({k.name})" if k.name else ""))
        return 0
    if not args.key_id:
        print("loci: say which key to revoke: loci api-key revoke ID (ids from `loci api-key list`)", file=sys.stderr)
        return 2
    gone = revoke_scoped_key(data_dir, args.key_id)
    print(f"Revoked key {gone.id} ({gone.scope.describe()}).")
    return 0
