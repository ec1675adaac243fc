"""The owner of a store: engine.Memory plus a loopback server that other processes use.

Whoever opens a data folder first holds its writer lock and builds a `ServedMemory`. It
listens on 127.0.0.1 (a free port), announces the port in `loci.service.json` beside the
lock, and answers calls of every public Memory method (`POST /rpc`) and change polls
(`GET /changes`), all requiring the data folder's API key. Every request runs on its own
thread, so a long extraction in one client's add() never holds up another client's reads.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..errors import InvalidInputError, LociError
from ..inference.shutdown import FRONT, on_exit
from ..memory import Memory
from . import announce
from .changes import ChangeFeed
from .codec import decode, encode, encode_error
from .keys import load_or_create_api_key, same_key, token_from_header

log = logging.getLogger(__name__)

MAX_RPC_BYTES = 16 * 1024 * 1024
POLL_LIMIT_S = 30.0

# Public Memory methods a client may call (everything a front end uses; nothing private).
REMOTE_METHODS = frozenset({
    "add", "search", "search_records", "get", "get_record", "get_all", "list_records", "count",
    "scopes", "entities", "entity_memories", "warm_up", "source_messages", "history",
    "history_records", "update", "update_record", "delete", "delete_all", "delete_records",
    "restore_record", "reset", "messages", "disk_usage", "restore_exported", "answer", "backup",
    "backup_if_due", "migration_status"})
_LOCAL_ONLY_KWARGS = ("progress", "cancel", "options")


class ServedMemory(Memory):
    """engine.Memory that owns its folder, serves it to other processes and reports changes."""

    def __init__(self, data_dir: str | Path | None = None, config: Any = None, *, embedder: Any = None,
                 llm: Any = None, serve: bool = True, preload: bool = True) -> None:
        self.changes = ChangeFeed()  # before the store opens: its entity linker may report at once
        super().__init__(data_dir, config, embedder=embedder, llm=llm, preload=preload)
        self.owner_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._service: _Service | None = None
        self._unregister_serving: Callable[[], None] = lambda: None
        if serve:
            try:
                self._service = _Service(self)
                self._service.start()
            except BaseException:
                super().close()
                raise
        # at exit, serving stops before the program's own threads are waited for (request threads
        # of long polls would otherwise keep it waiting); the store closes after them
        self._unregister_serving = on_exit(self._stop_serving, FRONT)

    @property
    def service_url(self) -> str | None:
        return self._service.url if self._service else None

    def subscribe(self, fn: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call fn(event) after every change made by anyone; returns the unsubscribe function."""
        return self.changes.subscribe(fn)

    # -- writes report what changed (the base class routes every write through these), and so do
    # entity links found after a write ("linked": the memories' entities changed) -------------
    def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        out = super().add(messages, **kwargs)
        ids = [r["id"] for r in out.get("results", []) if r.get("event") == "ADD"]
        if ids:
            self.changes.publish("add", ids)
        return out

    def update_record(self, memory_id: str, *args: Any, **kwargs: Any) -> Any:
        rec = super().update_record(memory_id, *args, **kwargs)
        self.changes.publish("update", [memory_id])
        return rec

    def delete_records(self, memory_ids: Any, **kwargs: Any) -> int:
        n = super().delete_records(memory_ids, **kwargs)
        if n:
            self.changes.publish("delete", list(memory_ids))
        return n

    def restore_record(self, record: Any, **kwargs: Any) -> Any:
        rec = super().restore_record(record, **kwargs)
        self.changes.publish("add", [record.id])
        return rec

    def restore_exported(self, items: Any, **kwargs: Any) -> int:
        items = list(items)
        n = super().restore_exported(items, **kwargs)
        if n:
            self.changes.publish("add", [item.record.id for item in items])
        return n

    def reset(self) -> None:
        super().reset()
        self.changes.publish("reset", [])

    def _entities_linked(self, memory_ids: list[str]) -> None:
        self.changes.publish("linked", memory_ids)

    def close(self) -> None:
        """Stop serving (every request already read gets its reply), then release the store."""
        self._unregister_serving()
        self._stop_serving()
        self.changes.close()
        super().close()

    def _stop_serving(self) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for every request in flight
    block_on_close = True
    allow_reuse_address = False


class _Service:
    def __init__(self, memory: ServedMemory) -> None:
        self.memory = memory
        self.data_dir = memory.data_dir
        self.key = load_or_create_api_key(self.data_dir)
        previous = announce.read(self.data_dir)
        self.previous_pid = previous.pid if previous else None
        # A previous owner that did not mark itself closed died mid-way: its last replies may be lost.
        self.previous_clean = previous is None or previous.state == "closed"
        self.httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="loci-owner", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _announcement(self, state: str) -> announce.Announcement:
        return announce.Announcement(host="127.0.0.1", port=self.port, pid=os.getpid(),
                                     program=Path(sys.argv[0]).name or "python", state=state,
                                     previous_pid=self.previous_pid, previous_clean=self.previous_clean)

    def start(self) -> None:
        self._thread.start()
        announce.write(self.data_dir, self._announcement("serving"))
        log.info("serving the store to other processes on %s", self.url)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.memory.changes.close()  # wake long polls so their threads finish
        self.httpd.server_close()  # joins request threads: every accepted request is answered
        try:
            announce.write(self.data_dir, self._announcement("closed"))
        except OSError as exc:
            log.warning("cannot mark the service closed: %s", exc)
        self._thread.join(timeout=5)


def _handler_for(service: _Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "loci-owner"
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base class name)
            log.debug("owner: " + format, *args)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if same_key(token_from_header(self.headers.get("Authorization")), service.key):
                return True
            self._reply(401, {"error": {"type": "LociError", "message":
                              "Missing or wrong API key: send 'Authorization: Token <key>' with the key "
                              f"from {service.data_dir / 'api_key'}."}})
            return False

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not self._authorised():
                return
            url = urlsplit(self.path)
            if url.path == "/ping":
                self._reply(200, {"pid": os.getpid(), "owner": service.memory.owner_id,
                                  "data_dir": str(service.data_dir)})
            elif url.path == "/changes":
                query = parse_qs(url.query)
                try:
                    since = int(query.get("since", ["0"])[0])
                    timeout = min(float(query.get("timeout", ["20"])[0]), POLL_LIMIT_S)
                except ValueError:
                    self._reply(400, {"error": {"type": "InvalidInputError",
                                                "message": "since and timeout must be numbers."}})
                    return
                seq, events = service.memory.changes.wait(since, timeout)
                self._reply(200, {"owner": service.memory.owner_id, "seq": seq, "events": events})
            else:
                self._reply(404, {"error": {"type": "LociError", "message": f"No such path {url.path}."}})

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            if urlsplit(self.path).path != "/rpc":
                self._reply(404, {"error": {"type": "LociError", "message": "No such path."}})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0 or length > MAX_RPC_BYTES:
                self._reply(413, {"error": {"type": "InvalidInputError",
                                            "message": f"The request is larger than {MAX_RPC_BYTES} bytes."}})
                return
            try:
                call = json.loads(self.rfile.read(length) or b"{}")
                method, args, kwargs = call["method"], decode(call.get("args", [])), decode(call.get("kwargs", {}))
                if method not in REMOTE_METHODS:
                    raise InvalidInputError(f"'{method}' is not a method of the memory store.")
                if not isinstance(args, list) or not isinstance(kwargs, dict):
                    raise InvalidInputError("args must be a list and kwargs an object.")
            except (ValueError, KeyError, TypeError) as exc:  # InvalidInputError is a ValueError too
                self._reply(400, {"error": {"type": "InvalidInputError", "message": f"Bad call: {exc}"}})
                return
            for key in _LOCAL_ONLY_KWARGS:
                kwargs.pop(key, None)
            try:
                result = getattr(service.memory, method)(*args, **kwargs)
            except LociError as exc:
                self._reply(400 if isinstance(exc, InvalidInputError) else 409, {"error": encode_error(exc)})
                return
            except Exception as exc:  # a bug (or a client calling with wrong arguments): log it, report it
                log.exception("remote call %s failed", method)
                self._reply(500, {"error": {"type": "Bug", "message": f"{type(exc).__name__}: {exc}"}})
                return
            self._reply(200, {"result": encode(result)})

    return Handler
