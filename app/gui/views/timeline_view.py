"""Timeline view: memories grouped by month of their event date (or when they were said)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from engine import MemoryRecord

from ..messages import plural

RecordDataRole = Qt.ItemDataRole.UserRole + 1


def month_of(rec: MemoryRecord) -> str:
    """'YYYY-MM' of the event date when known, else of when it was said."""
    if rec.event_date and len(rec.event_date) >= 7 and rec.event_date[:4].isdigit():
        return rec.event_date[:7]
    return rec.timestamp.strftime("%Y-%m")


def _month_title(key: str) -> str:
    try:
        return datetime.strptime(key, "%Y-%m").strftime("%B %Y")
    except ValueError:
        return key


class TimelineView(QWidget):
    """A grouped list, newest month first; record_activated(record) on click."""

    record_activated = Signal(object)

    def __init__(self, bridge: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.scope: dict[str, str] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["When", "Memory"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAccessibleName("Timeline")
        self.note = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addWidget(self.note)
        self.tree.currentItemChanged.connect(self._picked)

    def refresh(self, scope: dict[str, str] | None = None) -> None:
        if scope is not None:
            self.scope = dict(scope)
        if not self.bridge.is_open:
            return
        self.note.setText("Loading…")
        self.bridge.timeline(self.scope, self.set_records)

    def set_records(self, records: Sequence[MemoryRecord]) -> None:
        groups: dict[str, list[MemoryRecord]] = defaultdict(list)
        for rec in records:
            groups[month_of(rec)].append(rec)
        self.tree.clear()
        for n, key in enumerate(sorted(groups, reverse=True)):
            rows = sorted(groups[key], key=lambda r: (r.event_date or r.timestamp.date().isoformat()), reverse=True)
            month = QTreeWidgetItem(self.tree, [_month_title(key), plural(len(rows), "memory")])
            month.setFirstColumnSpanned(False)
            for rec in rows:
                when = rec.event_date or rec.timestamp.strftime("%Y-%m-%d")
                item = QTreeWidgetItem(month, [when, " ".join(rec.memory.split())[:200]])
                item.setData(0, RecordDataRole, rec)
                item.setToolTip(1, rec.memory)
            month.setExpanded(n < 6)
        self.tree.resizeColumnToContents(0)
        self.note.setText(f"{plural(len(records), 'memory')} in {plural(len(groups), 'month')}"
                          if records else "No memories yet.")

    def _picked(self, item: QTreeWidgetItem | None, _prev: Any) -> None:
        rec = item.data(0, RecordDataRole) if item is not None else None
        if rec is not None:
            self.record_activated.emit(rec)
