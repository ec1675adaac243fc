"""Undoable changes (QUndoCommand): editing a memory's text and deleting memories."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from PySide6.QtGui import QUndoCommand

from engine import MemoryRecord


class EditMemoryCommand(QUndoCommand):
    """redo saves the new text, undo puts the old text back (both recorded in history)."""

    def __init__(self, bridge: Any, record: MemoryRecord, new_text: str,
                 on_done: Callable[[MemoryRecord], None] | None = None) -> None:
        preview = " ".join(new_text.split())[:40]
        super().__init__(f"Edit “{preview}”")
        self.bridge, self.memory_id = bridge, record.id
        self.old_text, self.new_text = record.memory, new_text
        self.on_done = on_done

    def redo(self) -> None:
        self.bridge.update_text(self.memory_id, self.new_text, self.on_done)

    def undo(self) -> None:
        self.bridge.update_text(self.memory_id, self.old_text, self.on_done)


class DeleteMemoriesCommand(QUndoCommand):
    """redo deletes the records, undo restores them with their ids."""

    def __init__(self, bridge: Any, records: Sequence[MemoryRecord],
                 on_done: Callable[[int], None] | None = None) -> None:
        n = len(records)
        super().__init__(f"Delete {n} memor{'y' if n == 1 else 'ies'}")
        self.bridge, self.records, self.on_done = bridge, list(records), on_done

    def redo(self) -> None:
        self.bridge.delete(self.records, self.on_done)

    def undo(self) -> None:
        self.bridge.restore(self.records, self.on_done)
