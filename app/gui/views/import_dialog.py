"""Import a conversation file: pick the file and format, preview it, choose the scope."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout)

from engine import LociError, Scope

from ...importers import FORMATS, Conversation, load_conversation, without_small_talk
from ..messages import plural
from .scope_fields import ScopeFields


class ImportDialog(QDialog):
    """Parses the file on accept (in the dialog, so errors show next to the file field)."""

    def __init__(self, scope: Scope | None = None, parent: Any = None, path: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Import a conversation")
        self.conversation: Conversation | None = None
        self.path = QLineEdit(path, placeholderText="A .json, .jsonl or .txt conversation")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        self.format = QComboBox()
        for key, label in FORMATS.items():
            self.format.addItem(label, key)
        self.preview = QLabel("", wordWrap=True)
        self.scope_fields = ScopeFields(scope)
        self.infer = QCheckBox("Extract facts with the local model (slower; needs the LLM)")
        self.infer.setToolTip("Off: every message is stored as a memory. On: the local model "
                              "extracts the facts worth remembering.")
        self.skip_small_talk = QCheckBox("Skip small talk (greetings, thanks, \u201cgood night\u201d)")
        self.skip_small_talk.setChecked(True)
        self.skip_small_talk.setToolTip("Messages made only of greetings, thanks and reactions are not "
                                        "stored. Applies when the model does not extract facts.")
        self.skip_small_talk.toggled.connect(lambda _on: self._load_preview())
        self.infer.toggled.connect(lambda on: self.skip_small_talk.setEnabled(not on))
        self.error = QLabel(wordWrap=True)
        self.error.setStyleSheet("color: #b3261e")
        self.error.hide()
        form = QFormLayout()
        file_label = QLabel("&File:")
        file_label.setBuddy(self.path)
        form.addRow(file_label, file_row)
        form.addRow("F&ormat:", self.format)
        form.addRow("", self.preview)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Store the memories under:"))
        layout.addWidget(self.scope_fields)
        layout.addWidget(self.infer)
        layout.addWidget(self.skip_small_talk)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.path.editingFinished.connect(self._load_preview)
        self.format.currentIndexChanged.connect(lambda _i: self._load_preview())
        self.resize(520, 360)
        if path:
            self._load_preview()

    def _browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Conversation file", self.path.text(),
                                              "Conversations (*.json *.jsonl *.txt *.md);;All files (*)")
        if name:
            self.path.setText(name)
            self._load_preview()

    def _load_preview(self) -> bool:
        self.conversation = None
        if not self.path.text().strip():
            return False
        try:
            conv = load_conversation(Path(self.path.text().strip()).expanduser(), self.format.currentData())
        except LociError as exc:
            self.error.setText(exc.user_message)
            self.error.show()
            self.preview.clear()
            return False
        self.error.hide()
        self.conversation = conv
        who = ", ".join(conv.speakers[:4]) or "unnamed speakers"
        small = conv.message_count - without_small_talk(conv)[0].message_count
        note = ""
        if small:
            note = (f" {plural(small, 'message')} {'is' if small == 1 else 'are'} small talk"
                    + (" and will be skipped." if self.skip_small_talk.isChecked() else "."))
        self.preview.setText(f"{plural(conv.message_count, 'message')} in {plural(len(conv.sessions), 'session')} "
                             f"({FORMATS[conv.format]}), by {who}.{note}")
        current = self.scope_fields.scope()
        if current.is_empty or (current.user_id == "me" and conv.user_id):
            self.scope_fields.set_scope(Scope(conv.user_id or "me", conv.agent_id, None))
        return True

    def accept(self) -> None:
        if not self._load_preview():
            if not self.path.text().strip():
                self.error.setText("Pick a conversation file first.")
                self.error.show()
            return
        if self.scope_fields.scope().is_empty:
            self.error.setText("Say whose memories these are: fill in a user, an agent or a session.")
            self.error.show()
            return
        super().accept()

    def values(self) -> tuple[Conversation, Scope, bool]:
        """The conversation to store (without small talk when asked), its scope, and infer."""
        assert self.conversation is not None
        conv, infer = self.conversation, self.infer.isChecked()
        if self.skip_small_talk.isChecked() and not infer:
            conv = without_small_talk(conv)[0]
        return conv, self.scope_fields.scope(), infer
