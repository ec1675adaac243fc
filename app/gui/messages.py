"""The one place that shows messages to the person: status bar, error banner, crash dialog."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.service.importing import ImportSummary
from engine.store.export import ExportFile, RestoreSummary

log = logging.getLogger(__name__)

_IRREGULAR = {"memory": "memories", "match": "matches", "entity": "entities"}


def plural(n: int, word: str) -> str:
    """'1 memory', '2 memories', '1,000 results'."""
    return f"{n:,} {word if n == 1 else _IRREGULAR.get(word, word + 's')}"


def memories(n: int) -> str:
    """'1 memory', '12 memories'."""
    return plural(n, "memory")


def imported(summary: ImportSummary) -> str:
    """The status line after a conversation import."""
    what = memories(summary.added)
    earlier = f" ({plural(summary.skipped, 'message')} were already imported)" if summary.skipped else ""
    if summary.cancelled:
        return f"Import cancelled after storing {what}{earlier}; import the file again to continue."
    return f"Imported {what}{earlier}."


def repaired(repairs: Sequence[str]) -> str:
    """The status line when opening the store repaired it."""
    return f"The store was checked and repaired when it opened: {'; '.join(repairs)}."


def restored(summary: RestoreSummary, source: str | Path | ExportFile) -> str:
    """The status line after restoring an export: added, skipped as already here, removed first."""
    name = Path(source).name if isinstance(source, (str, Path)) else "the export"
    text = f"Restored {memories(summary.added)} from {name}"
    if summary.skipped:
        text += f"; {summary.skipped:,} already here were skipped"
    if summary.removed:
        text += f"; {memories(summary.removed)} removed first"
    return text + (" (cancelled)." if summary.cancelled else ".")


class Messages(QObject):
    """Routes info, errors and crashes to whatever the window registers; remembers the last."""

    shown = Signal(str, str)  # level ("info", "error", "crash"), text

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.last_text = ""
        self.last_level = ""
        self._dialog_parent: QWidget | None = None
        self.crash_dialogs_enabled = True

    def set_dialog_parent(self, widget: QWidget) -> None:
        self._dialog_parent = widget

    def info(self, text: str) -> None:
        self._show("info", text)

    def error(self, text: str) -> None:
        """A known problem (a LociError's message): shown in the window's banner."""
        log.info("error shown: %s", text.splitlines()[0] if text else "")
        self._show("error", text)

    def crash(self, summary: str, details: str) -> None:
        """A bug: logged with its traceback, shown non-modally; the app stays open."""
        log.error("unexpected error: %s\n%s", summary, details)
        self._show("crash", f"Something went wrong inside Loci: {summary}")
        if self.crash_dialogs_enabled:
            box = QMessageBox(QMessageBox.Icon.Critical, "Loci: unexpected error",
                              f"Something went wrong inside Loci:\n{summary}\n\n"
                              "Your memories are safe. Please report this with the details below.",
                              QMessageBox.StandardButton.Ok, self._dialog_parent)
            box.setDetailedText(details)
            box.setModal(False)
            box.show()

    def _show(self, level: str, text: str) -> None:
        self.last_level, self.last_text = level, text
        self.shown.emit(level, text)
