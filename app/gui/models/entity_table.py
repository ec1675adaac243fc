"""Entities (name, kind, how many memories mention them) for the Entities view."""
from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from engine import Entity
from engine.search.entities import kind_name

from .memory_table import RecordRole, SortRole

COL_NAME, COL_LABEL, COL_COUNT = range(3)
HEADERS = ("Entity", "Kind", "Memories")
_Index = QModelIndex | QPersistentModelIndex


class EntityTableModel(QAbstractTableModel):
    """A fixed list of entities; set_rows resets."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Entity] = []

    def set_rows(self, rows: Sequence[Entity]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def entity(self, row: int) -> Entity | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        ent = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (ent.name, kind_name(ent.label), str(ent.memory_count))[col]
        if role == SortRole:
            return (ent.name.casefold(), kind_name(ent.label), ent.memory_count)[col]
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_LABEL and ent.label:
            return f"{kind_name(ent.label)} (spaCy label {ent.label})"
        if role == RecordRole:
            return ent
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_COUNT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
