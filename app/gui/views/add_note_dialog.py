"""Add a note typed by hand, stored as it is or with facts extracted by the local model."""
from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QLabel, QPlainTextEdit,
                               QVBoxLayout)

from engine import Scope

from .scope_fields import ScopeFields


class AddNoteDialog(QDialog):
    """values() -> (text, scope, infer) once accepted."""

    def __init__(self, scope: Scope | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a note")
        self.text = QPlainTextEdit(placeholderText="What should be remembered? e.g. I'm allergic to peanuts.")
        self.text.setTabChangesFocus(True)
        self.scope_fields = ScopeFields(scope or Scope(user_id="me"))
        self.infer = QCheckBox("Extract facts with the local model (slower; needs the LLM)")
        self.error = QLabel(wordWrap=True)
        self.error.setStyleSheet("color: #b3261e")
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.scope_fields)
        layout.addWidget(self.infer)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(460, 320)

    def accept(self) -> None:
        if not self.text.toPlainText().strip():
            return self._fail("Write the note first.")
        if self.scope_fields.scope().is_empty:
            return self._fail("Say whose memory this is: fill in a user, an agent or a session.")
        super().accept()

    def _fail(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def values(self) -> tuple[str, Scope, bool]:
        return self.text.toPlainText().strip(), self.scope_fields.scope(), self.infer.isChecked()
