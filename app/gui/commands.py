"""Undoable changes (QUndoCommand): editing a memory's text and deleting memories, shown at once."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from PySide6.QtGui import QUndoCommand

from engine import MemoryRecord


class EditMemoryCommand(QUndoCommand):
    """redo saves the new text, undo puts the old text back (both recorded in history).

    The window shows the text at once (show(memory_id, text)), before the store has it; when the
    store refuses, refused(memory_id, text_shown_before, message) puts the previous text back.
    """

    def __init__(self, bridge: Any, record: MemoryRecord, new_text: str,
                 on_done: Callable[[MemoryRecord], None] | None = None, *,
                 show: Callable[[str, str], None] | None = None,
                 refused: Callable[[str, str, str], None] | None = None) -> None:
        preview = " ".join(new_text.split())[:40]
        super().__init__(f"Edit “{preview}”")
        self.bridge, self.memory_id = bridge, record.id
        self.old_text, self.new_text = record.memory, new_text
        self.on_done, self.show, self.refused = on_done, show, refused

    def redo(self) -> None:
        self._apply(self.new_text, self.old_text)

    def undo(self) -> None:
        self._apply(self.old_text, self.new_text)

    def _apply(self, text: str, before: str) -> None:
        if self.show:
            self.show(self.memory_id, text)

        def failed(message: str) -> None:
            if self.refused:
                self.refused(self.memory_id, before, message)
        self.bridge.update_text(self.memory_id, text, self.on_done, on_failed=failed)


class DeleteMemoriesCommand(QUndoCommand):
    """redo deletes the records, undo restores them with their ids.

    hide(ids) takes the rows away at once and returns what put_back(rows) needs to show them
    again (on undo, or when the store refuses the delete, with refused(message)).
    """

    def __init__(self, bridge: Any, records: Sequence[MemoryRecord],
                 on_done: Callable[[int], None] | None = None, *,
                 hide: Callable[[Sequence[str]], Any] | None = None,
                 put_back: Callable[[Any], None] | None = None,
                 refused: Callable[[str], None] | None = None) -> None:
        n = len(records)
        super().__init__(f"Delete {n} memor{'y' if n == 1 else 'ies'}")
        self.bridge, self.records, self.on_done = bridge, list(records), on_done
        self.hide, self.put_back, self.refused = hide, put_back, refused
        self._hidden: Any = None

    def redo(self) -> None:
        self._hidden = self.hide([r.id for r in self.records]) if self.hide else None
        hidden = self._hidden

        def failed(message: str) -> None:
            if self.put_back and hidden is not None:
                self.put_back(hidden)
            if self.refused:
                self.refused(message)
        self.bridge.delete(self.records, self.on_done, on_failed=failed)

    def undo(self) -> None:
        if self.put_back and self._hidden is not None:
            self.put_back(self._hidden)
        hidden, self._hidden = self._hidden, None

        def failed(message: str) -> None:
            if self.hide and hidden is not None:
                self.hide([r.id for r in self.records])
            if self.refused:
                self.refused(message)
        self.bridge.restore(self.records, self.on_done, on_failed=failed)
