"""RemoteMemory: engine.Memory's methods, answered by the process that owns the store.

When the owner goes away, the next call finds the new owner, or becomes the owner itself
(takes the writer lock and serves the others). A call the owner never received is sent again;
a write the old owner may have received just before it died is not (so it cannot happen
twice) and raises StoreError instead.
"""
from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import LociConfig
from ..errors import StoreError
from ..inference.shutdown import is_exiting
from . import announce
from .codec import decode, decode_error, encode
from .keys import load_or_create_api_key

log = logging.getLogger(__name__)

WAIT_SLICE_S = 2.0  # a wait for the owner's move to int8 is made of calls this long
CALL_TIMEOUT_S = 3600.0  # an add with extraction of a long conversation can take minutes
READS = frozenset({"search", "search_records", "get", "get_record", "get_all", "list_records", "count",
                   "scopes", "entities", "entity_memories", "warm_up", "source_messages", "history",
                   "history_records"})


class OwnerGone(Exception):
    """The connection to the owner failed; `sent` says whether the request may have arrived."""

    def __init__(self, sent: bool, reason: str) -> None:
        super().__init__(reason)
        self.sent = sent


class RemoteMemory:
    """A client of the process that owns a data folder, with the same methods as engine.Memory."""

    def __init__(self, data_dir: str | Path, ann: announce.Announcement, config: LociConfig | None = None,
                 *, reconnect: Callable[["RemoteMemory"], Any] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.config = config or LociConfig()
        self._key = load_or_create_api_key(self.data_dir)
        self._ann = ann
        self._reconnect = reconnect
        self._local: Any = None  # the ServedMemory this client became after a takeover
        self._switch = threading.Lock()
        self._closed = False
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._local_unsubs: list[Callable[[], None]] = []
        self._poller: threading.Thread | None = None
        self._llm: Any = None  # the chat model of this process (language_model)
        self._llm_config: Any = None

    # -- plumbing ----------------------------------------------------------------------
    @property
    def owner_url(self) -> str:
        return self._ann.url

    @property
    def is_owner(self) -> bool:
        """True once this client has taken over the store (its owner closed)."""
        return self._local is not None

    def _request(self, ann: announce.Announcement, method: str, path: str, body: bytes | None = None,
                 timeout: float = CALL_TIMEOUT_S) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(ann.host, ann.port, timeout=timeout)
        headers = {"Authorization": f"Token {self._key}", "Content-Type": "application/json"}
        sent = False
        try:
            conn.connect()
            sent = True
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            status, data = resp.status, resp.read()
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise OwnerGone(False, str(exc)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise OwnerGone(sent, str(exc) or type(exc).__name__) from None
        finally:
            conn.close()
        try:
            return status, json.loads(data or b"{}")
        except ValueError:
            raise StoreError(f"The store owner at {ann.url} sent an unreadable reply.") from None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        for key in ("progress", "cancel", "options"):
            kwargs.pop(key, None)  # local-only: the owner reports progress to no one over the wire
        body = json.dumps({"method": method, "args": encode(list(args)), "kwargs": encode(kwargs)}).encode()
        while True:
            if self._closed:
                raise StoreError("This memory store has been closed; open it again to use it.")
            local, ann = self._local, self._ann
            if local is not None:
                return getattr(local, method)(*args, **kwargs)
            try:
                status, data = self._request(ann, "POST", "/rpc", body)
            except OwnerGone as gone:
                self._owner_lost(ann, gone, retry_safe=(not gone.sent) or method in READS)
                continue
            if status == 200:
                return decode(data.get("result"))
            error = data.get("error") or {}
            if status == 500:
                raise RuntimeError(f"The store owner failed: {error.get('message')}")
            raise decode_error(error)

    def _owner_lost(self, old: announce.Announcement, gone: OwnerGone, retry_safe: bool) -> None:
        """Find the next owner (or become it); raise when the failed call must not be repeated."""
        with self._switch:
            if self._closed:  # a closed client never takes a store over
                raise StoreError("This memory store has been closed; open it again to use it.")
            if self._ann is old and self._local is None:
                log.info("the store owner (process %s) went away: %s", old.pid, gone)
                if self._reconnect is None:
                    raise StoreError(f"Lost the connection to the program that owns the store ({gone}).")
                successor = self._reconnect(self)
                if isinstance(successor, announce.Announcement):
                    self._ann = successor
                else:
                    self._become_owner(successor)
            if not retry_safe and not self._old_owner_was_clean(old):
                raise StoreError("The program that owned the store stopped during this change, so it may "
                                 "or may not have been saved. Check, then try again if it is missing.")

    def _old_owner_was_clean(self, old: announce.Announcement) -> bool:
        """A cleanly stopped owner answered everything it read, so an unanswered call never arrived."""
        if self._local is not None:
            svc = getattr(self._local, "_service", None)
            return bool(svc and svc.previous_pid == old.pid and svc.previous_clean)
        now = self._ann
        return now.previous_pid == old.pid and now.previous_clean

    def _become_owner(self, memory: Any) -> None:
        self._local = memory
        for fn in self._listeners:
            self._local_unsubs.append(memory.subscribe(fn))
            fn({"seq": 0, "kind": "resync", "ids": []})
        log.info("took over the store in %s", self.data_dir)

    # -- changes -----------------------------------------------------------------------
    def subscribe(self, fn: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call fn(event) (from a background thread) whenever anyone changes the store."""
        with self._switch:
            self._listeners.append(fn)
            if self._local is not None:
                self._local_unsubs.append(self._local.subscribe(fn))
            elif self._poller is None:
                self._poller = threading.Thread(target=self._poll, name="loci-changes", daemon=True)
                self._poller.start()

        def unsubscribe() -> None:
            with self._switch:
                if fn in self._listeners:
                    self._listeners.remove(fn)
        return unsubscribe

    def _poll(self) -> None:
        since, owner = 0, None
        while not self._closed and self._local is None:
            ann = self._ann
            try:
                status, data = self._request(ann, "GET", f"/changes?since={since}&timeout=20", timeout=30)
            except OwnerGone as gone:
                if is_exiting():  # the owner stopped because this program ends: nothing to take over
                    return
                try:
                    self._owner_lost(ann, gone, retry_safe=True)
                except StoreError as exc:
                    log.warning("stopped following changes: %s", exc)
                    return
                continue
            if status != 200:
                time.sleep(1.0)
                continue
            events = data.get("events", [])
            if data.get("owner") != owner:  # a new owner numbers its changes from zero
                if owner is not None:
                    events = [{"seq": data.get("seq", 0), "kind": "resync", "ids": []}]
                owner = data.get("owner")
            since = int(data.get("seq", since))
            for event in events:
                for fn in list(self._listeners):
                    try:
                        fn(event)
                    except Exception:
                        log.exception("change listener failed")

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "RemoteMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop using the store (and release it, if this client had taken it over)."""
        with self._switch:  # waits for a takeover in progress, so its store is closed below
            if self._closed:
                return
            self._closed = True
        for unsub in self._local_unsubs:
            unsub()
        if self._local is not None:
            self._local.close()

    # -- engine.Memory's methods -----------------------------------------------------
    def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        """Store messages as memories (see engine.Memory.add); progress/cancel stay local."""
        return self._call("add", messages, **kwargs)

    def search(self, query: str, **kwargs: Any) -> dict[str, Any]:
        return self._call("search", query, **kwargs)

    def search_records(self, query: str, **kwargs: Any) -> list[Any]:
        return self._call("search_records", query, **kwargs)

    def get(self, memory_id: str) -> dict[str, Any]:
        return self._call("get", memory_id)

    def get_record(self, memory_id: str, **kwargs: Any) -> Any:
        return self._call("get_record", memory_id, **kwargs)

    def get_all(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_all", **kwargs)

    def list_records(self, **kwargs: Any) -> list[Any]:
        return self._call("list_records", **kwargs)

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        return self._call("count", filters)

    def scopes(self) -> list[Any]:
        return self._call("scopes")

    def migration_status(self, watch: Callable[[Any], None] | None = None, wait: float | None = 0.0) -> Any:
        """The owner's move to int8 (Memory.migration_status); `watch` hears each status read here,
        and a wait is made of short calls, so none outlasts the connection's time limit."""
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            left = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, max(0.0, deadline - time.monotonic()))
            status = self._call("migration_status", wait=left)
            if watch is not None:
                watch(status)
            if not status.is_active or (deadline is not None and time.monotonic() >= deadline):
                return status

    def entities(self, filters: Mapping[str, Any] | None = None) -> list[Any]:
        return self._call("entities", filters)

    def entity_memories(self, name: str, filters: Mapping[str, Any] | None = None) -> list[Any]:
        return self._call("entity_memories", name, filters)

    def warm_up(self) -> None:
        self._call("warm_up")

    def source_messages(self, memory_id: str) -> list[Any]:
        return self._call("source_messages", memory_id)

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        return self._call("history", memory_id)

    def history_records(self, memory_id: str) -> list[Any]:
        return self._call("history_records", memory_id)

    def update(self, memory_id: str, text: str | None = None, metadata: Mapping[str, Any] | None = None,
               **kwargs: Any) -> dict[str, Any]:
        return self._call("update", memory_id, text, metadata, **kwargs)

    def update_record(self, memory_id: str, text: str | None = None,
                      metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return self._call("update_record", memory_id, text, metadata, **kwargs)

    def delete(self, memory_id: str, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete", memory_id, **kwargs)

    def delete_all(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete_all", **kwargs)

    def delete_records(self, memory_ids: Sequence[str], **kwargs: Any) -> int:
        return self._call("delete_records", list(memory_ids), **kwargs)

    def restore_record(self, record: Any, **kwargs: Any) -> Any:
        return self._call("restore_record", record, **kwargs)

    def reset(self) -> None:
        self._call("reset")

    def messages(self, filters: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        return self._call("messages", filters, **kwargs)

    def disk_usage(self) -> int:
        return int(self._call("disk_usage"))

    def restore_exported(self, items: Sequence[Any], **kwargs: Any) -> Any:
        return self._call("restore_exported", list(items), **kwargs)

    def answer(self, question: str, **kwargs: Any) -> Any:
        if kwargs.get("llm") is not None:  # a caller's own model runs here, on the owner's memories
            from ..assistant.answer import answer

            llm = kwargs.pop("llm")
            return answer(self, llm, question, **kwargs)
        return self._call("answer", question, **kwargs)

    def backup(self, reason: str = "manual", **kwargs: Any) -> Any:
        return self._call("backup", reason, **kwargs)

    def backup_if_due(self, *args: Any) -> Any:
        return self._call("backup_if_due", *args)

    @property
    def open_report(self) -> Any:
        """What the owner's check found when it opened the store (it reports repairs itself)."""
        if self._local is not None:
            return self._local.open_report
        from ..store.integrity import IntegrityReport

        return IntegrityReport(rows=0, vectors=0)

    def language_model(self) -> Any:
        """The local LLM for chat in this process, built from the current `config.llm`."""
        if self._local is not None:
            return self._local.language_model()
        from dataclasses import replace

        from ..inference.llm import LlamaCppLLM

        with self._switch:
            if self._llm is None or self._llm_config != self.config.llm:
                self._llm_config = replace(self.config.llm)
                self._llm = LlamaCppLLM(self._llm_config)
            return self._llm
