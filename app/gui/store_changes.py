"""Writes to the store, ours and other programs' (REST API, MCP, CLI), as one coalesced refresh signal."""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from .jobs import Relay

QUIET_MS = 150  # a burst of edits becomes one refresh this long after the last
IMPORT_REFRESH_MS = 2000  # at most one refresh this often while an import stores memories


class StoreChanges(QObject):
    """Emits `changed` once per burst of writes, on the GUI thread.

    While is_importing() the refreshes are spaced IMPORT_REFRESH_MS apart, so the GUI thread
    rarely waits on the store while the import worker writes. Entity links found after a write
    (the feed's "linked" events, batch after batch once an import ends) are shown the same way:
    at most one refresh each IMPORT_REFRESH_MS.
    """

    changed = Signal()

    def __init__(self, is_importing: Callable[[], bool], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._is_importing = is_importing
        self._timer = QTimer(self, singleShot=True, interval=QUIET_MS)
        self._timer.timeout.connect(self.changed)
        self._relay = Relay(self)  # fired from worker threads and the store's change feed
        self._relay.fired.connect(self.note)
        self._linked_relay = Relay(self)
        self._linked_relay.fired.connect(self.note_linked)
        self._unsubscribe: Callable[[], None] | None = None

    def note(self) -> None:
        """Something was written: refresh soon."""
        if not self._is_importing():
            self._timer.start(QUIET_MS)
        elif not self._timer.isActive():
            self._timer.start(IMPORT_REFRESH_MS)

    def note_linked(self) -> None:
        """Memories got their entity links: refresh within IMPORT_REFRESH_MS (not once per batch)."""
        if not self._timer.isActive():
            self._timer.start(IMPORT_REFRESH_MS)

    def note_from_any_thread(self) -> None:
        self._relay.emit()

    def follow(self, memory: Any) -> None:
        """Refresh when other programs change the store too: live, no restart."""
        self.stop()
        subscribe = getattr(memory, "subscribe", None)  # a plain engine.Memory has no other writers
        if subscribe is not None:
            self._unsubscribe = subscribe(self._heard)

    def _heard(self, event: dict[str, Any]) -> None:
        """A change feed event, on the writer's (or the poller's) thread."""
        (self._linked_relay if event.get("kind") == "linked" else self._relay).emit()

    def stop(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
