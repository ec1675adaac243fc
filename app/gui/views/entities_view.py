"""Entities view: every entity with its memory count; selecting one lists its memories."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QLabel, QLineEdit, QSplitter, QTableView, QVBoxLayout, QWidget

from engine import MemoryRecord

from ..models import EntityTableModel, MemoryTableModel
from ..models.entity_table import COL_COUNT
from ..models.memory_table import COL_ENTITIES, COL_MEMORY, COL_SCORE, COL_TYPE, RecordRole, SortRole


class EntitiesView(QWidget):
    """Loads through the bridge; record_activated(record) when a memory is picked."""

    record_activated = Signal(object)
    entity_selected = Signal(str)

    def __init__(self, bridge: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.scope: dict[str, str] = {}
        self.model = EntityTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter_box = QLineEdit(placeholderText="Filter entities…", clearButtonEnabled=True)
        self.filter_box.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_COUNT, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setSectionResizeMode(0, self.table.horizontalHeader().ResizeMode.Stretch)
        self.memories = MemoryTableModel(self)
        self.memory_table = QTableView()
        self.memory_table.setModel(self.memories)
        self.memory_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.memory_table.verticalHeader().hide()
        self.memory_table.verticalHeader().setDefaultSectionSize(24)
        self.memory_table.setWordWrap(False)
        for col in range(self.memories.columnCount()):
            self.memory_table.setColumnHidden(col, col not in (COL_MEMORY, COL_TYPE, COL_ENTITIES))
        self.memory_table.setColumnHidden(COL_SCORE, True)
        self.memory_table.horizontalHeader().setSectionResizeMode(
            COL_MEMORY, self.memory_table.horizontalHeader().ResizeMode.Stretch)
        self.status = QLabel("", wordWrap=True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter_box)
        lv.addWidget(self.table)
        lv.addWidget(self.status)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(left)
        splitter.addWidget(self.memory_table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.table.selectionModel().currentRowChanged.connect(self._entity_picked)
        self.memory_table.selectionModel().currentRowChanged.connect(self._memory_picked)

    def refresh(self, scope: dict[str, str] | None = None) -> None:
        if scope is not None:
            self.scope = dict(scope)
        if not self.bridge.is_open:
            return
        self.status.setText("Loading entities…")
        self.bridge.entities(self.scope, self._loaded)

    def _loaded(self, entities: list[Any]) -> None:
        self.model.set_rows(entities)
        self.memories.clear()
        self.status.setText(f"{len(entities)} entities" if entities else
                            "No entities yet. They appear as memories are extracted by the model.")

    def _entity_picked(self, current: Any, _previous: Any) -> None:
        ent = self.proxy.data(current, RecordRole) if current.isValid() else None
        if ent is None:
            return
        self.entity_selected.emit(ent.name)
        self.bridge.entity_memories(ent.name, self.scope, self.memories.set_rows)

    def _memory_picked(self, current: Any, _previous: Any) -> None:
        rec: MemoryRecord | None = self.memories.data(current, RecordRole) if current.isValid() else None
        if rec is not None:
            self.record_activated.emit(rec)
