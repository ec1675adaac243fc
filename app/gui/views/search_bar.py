"""Search box (debounced search-as-you-type) and the filter row: date range, type, entity."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDateEdit, QHBoxLayout, QLabel, QLineEdit,
                               QToolButton, QVBoxLayout, QWidget)

DEBOUNCE_MS = 250
MEMORY_TYPES = ("fact", "preference", "event", "plan", "relationship", "message", "procedural_memory")


class SearchBar(QWidget):
    """query_changed fires 250 ms after the last keystroke; filters_changed on any filter edit."""

    query_changed = Signal(str)
    filters_changed = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.box = QLineEdit(placeholderText="Search memories (Ctrl+F)…", clearButtonEnabled=True)
        self.box.setAccessibleName("Search memories")
        self.filter_button = QToolButton(text="Filters", checkable=True)
        self.filter_button.setToolTip("Show filters for date range, type and entity")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.box, 1)
        top.addWidget(self.filter_button)

        self.date_check = QCheckBox("Said between")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addYears(-1), calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.date_to = QDateEdit(today, calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.type_combo = QComboBox()
        self.type_combo.addItem("Any type", None)
        for t in MEMORY_TYPES:
            self.type_combo.addItem(t.replace("_", " "), t)
        self.entity_box = QLineEdit(placeholderText="Entity…", clearButtonEnabled=True)
        self.entity_box.setAccessibleName("Filter by entity")
        self.filter_row = QWidget()
        row = QHBoxLayout(self.filter_row)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.date_check, self.date_from, QLabel("and"), self.date_to, self.type_combo, self.entity_box):
            row.addWidget(w)
        row.addStretch(1)
        self.filter_row.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.filter_row)

        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(lambda: self.query_changed.emit(self.query))
        self.box.textChanged.connect(lambda _t: self._debounce.start())
        self.box.returnPressed.connect(self._fire_now)
        self.filter_button.toggled.connect(self.filter_row.setVisible)
        self._entity_debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._entity_debounce.timeout.connect(self.filters_changed)
        self.entity_box.textChanged.connect(lambda _t: self._entity_debounce.start())
        for signal in (self.date_check.toggled, self.date_from.dateChanged, self.date_to.dateChanged,
                       self.type_combo.currentIndexChanged):
            signal.connect(lambda *_: self.filters_changed.emit())

    @property
    def query(self) -> str:
        return self.box.text().strip()

    def focus_search(self) -> None:
        self.box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.box.selectAll()

    def clear_search(self) -> None:
        """Esc: clear the query (results go back to the browse list at once)."""
        if self.box.text():
            self.box.clear()
            self._fire_now()

    def _fire_now(self) -> None:
        self._debounce.stop()
        self.query_changed.emit(self.query)

    def set_entity(self, name: str) -> None:
        self.filter_button.setChecked(True)
        self.entity_box.setText(name)
        self._entity_debounce.stop()
        self.filters_changed.emit()

    def clear_filters(self) -> None:
        self.blockSignals(True)
        self.date_check.setChecked(False)
        self.type_combo.setCurrentIndex(0)
        self.entity_box.clear()
        self.blockSignals(False)
        self.filters_changed.emit()

    def filters(self) -> dict[str, Any]:
        """The non-scope part of the engine filter dict (mem0 style)."""
        out: dict[str, Any] = {}
        if self.date_check.isChecked():
            start = self.date_from.date().toString("yyyy-MM-dd")
            end = self.date_to.date().toString("yyyy-MM-dd")
            out["timestamp"] = {"gte": f"{start}T00:00:00+00:00", "lte": f"{end}T23:59:59+00:00"}
        kind = self.type_combo.currentData()
        if kind:
            out["memory_type"] = kind
        entity = self.entity_box.text().strip()
        if entity:
            out["entities"] = {"icontains": entity}
        return out
