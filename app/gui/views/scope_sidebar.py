"""Left sidebar: all memories, then users, agents and sessions (by title when they have one) with their counts."""
from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from ..messages import plural
from ..models.memory_table import natural_key

FilterRole = Qt.ItemDataRole.UserRole + 1
_GROUPS = (("user_id", "Users"), ("agent_id", "Agents"), ("run_id", "Sessions"))


class ScopeSidebar(QTreeWidget):
    """Emits scope_selected({} or {"user_id": ...}) when the person picks a scope."""

    scope_selected = Signal(dict)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(2)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setAccessibleName("Scopes")
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "chat-…-06-01" keeps both ends
        self._current: dict[str, str] = {}
        self.currentItemChanged.connect(self._picked)

    @property
    def current_scope(self) -> dict[str, str]:
        return dict(self._current)

    def populate(self, scopes: Sequence[Any], total: int) -> None:
        """Rebuild from ScopeCount rows; keeps the current selection when it still exists."""
        keep = dict(self._current)
        self.blockSignals(True)
        self.clear()
        everything = QTreeWidgetItem(self, ["All memories", f"{total:,}"])
        everything.setData(0, FilterRole, {})
        chosen = everything
        for kind, title in _GROUPS:
            rows = sorted((s for s in scopes if s.kind == kind), key=lambda s: natural_key(_label(s)))
            if not rows:
                continue
            group = QTreeWidgetItem(self, [title, str(len(rows))])
            group.setFlags(group.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            group.setExpanded(kind != "run_id" or len(rows) <= 12)
            for s in rows:
                item = QTreeWidgetItem(group, [_label(s), f"{s.count:,}"])
                item.setData(0, FilterRole, {kind: s.value})
                named = f" “{s.title}”" if s.title else ""
                item.setToolTip(0, f"{title[:-1]} {s.value}{named}: {plural(s.count, 'memory')}")
                if keep == {kind: s.value}:
                    chosen = item
        for col in (1,):
            self.resizeColumnToContents(col)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, self.header().ResizeMode.Stretch)
        self.setCurrentItem(chosen)
        self._current = dict(chosen.data(0, FilterRole) or {})
        self.blockSignals(False)

    def select_scope(self, scope: dict[str, str]) -> None:
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            if top is None:
                continue
            for item in [top, *(top.child(j) for j in range(top.childCount()))]:
                if item is not None and item.data(0, FilterRole) == scope:
                    self.setCurrentItem(item)
                    return

    def _picked(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None) -> None:
        if item is None:
            return
        scope = item.data(0, FilterRole)
        if scope is None:
            return
        self._current = dict(scope)
        self.scope_selected.emit(dict(scope))


def _label(scope: Any) -> str:
    """What a scope row shows: an imported conversation's title, else the id."""
    return str(scope.title or scope.value)
