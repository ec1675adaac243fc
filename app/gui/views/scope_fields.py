"""User / agent / session fields shared by the add and import dialogs."""
from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFormLayout, QLineEdit, QWidget

from engine import Scope


class ScopeFields(QWidget):
    """Three line edits; scope() gives an engine Scope (empty fields are None)."""

    def __init__(self, scope: Scope | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        scope = scope or Scope()
        self.user = QLineEdit(scope.user_id or "", placeholderText="e.g. maya")
        self.agent = QLineEdit(scope.agent_id or "", placeholderText="optional")
        self.run = QLineEdit(scope.run_id or "", placeholderText="optional session id")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("&User:", self.user)
        form.addRow("A&gent:", self.agent)
        form.addRow("&Session:", self.run)

    def scope(self) -> Scope:
        return Scope(self.user.text().strip() or None, self.agent.text().strip() or None,
                     self.run.text().strip() or None)

    def set_scope(self, scope: Scope) -> None:
        self.user.setText(scope.user_id or "")
        self.agent.setText(scope.agent_id or "")
        self.run.setText(scope.run_id or "")
