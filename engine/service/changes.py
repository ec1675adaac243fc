"""A numbered feed of store changes that in-process listeners and remote clients follow."""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
KEEP = 1000  # events remembered for clients that poll with an older sequence number


class ChangeFeed:
    """Each write publishes {"seq", "kind", "ids"}; listeners are called on the writer's thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._events: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._listeners: list[Listener] = []
        self._closed = False

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, kind: str, ids: list[str]) -> None:
        with self._cond:
            self._seq += 1
            event = {"seq": self._seq, "kind": kind, "ids": list(ids)}
            self._events.append(event)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(event)
            except Exception:  # a listener's bug must not fail the write that was already made
                log.exception("change listener failed")

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call fn(event) after every change; returns a function that stops it."""
        with self._cond:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._cond:
                if fn in self._listeners:
                    self._listeners.remove(fn)
        return unsubscribe

    def wait(self, since: int, timeout: float) -> tuple[int, list[dict[str, Any]]]:
        """Events after `since` (waits up to timeout seconds for one); a gap yields a 'resync' event."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > since or self._closed, timeout=timeout)
            if self._seq <= since:
                return self._seq, []
            events = [e for e in self._events if e["seq"] > since]
            if not events or events[0]["seq"] != since + 1:
                events = [{"seq": self._seq, "kind": "resync", "ids": []}]
            return self._seq, events

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
