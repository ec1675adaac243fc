"""Import a conversation file or a ChatGPT/Claude export: preview it, untick conversations, say whose memories."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout)

from engine import LociError, Scope

from ... import chat_exports
from ...importers import FORMATS, Conversation, load_conversation, without_small_talk
from ..messages import plural
from .scope_fields import ScopeFields

# messages/s of an import on a slow 2-core machine (bench/import_bench.py: 10,000 ChatGPT messages in
# 30-72 s, or 86-218 s with extraction, in stops 28-29), for the estimate only
RATE = {False: 150.0, True: 50.0}


@dataclass(frozen=True, slots=True)
class ChatExportChoice:
    """A chat export to import: the file, the ticked conversations and how many messages they hold."""

    path: Path
    ids: frozenset[str]
    messages: int
    kind: str


def estimate(messages: int, infer: bool) -> str:
    """'about 4 minutes' for that many messages."""
    seconds = messages / RATE[infer]
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    return f"about {plural(minutes, 'minute')}" if minutes < 90 else f"about {seconds / 3600:.1f} hours"


class ImportDialog(QDialog):
    """Parses the file in the dialog (a chat export on a thread: it may be hundreds of MB), so
    errors show next to the file field. Whose memories: the scope's user, else the app's user."""

    summary_ready = Signal(int, object)  # generation, ExportSummary or LociError (from the reading thread)

    def __init__(self, scope: Scope | None = None, parent: Any = None, path: str = "",
                 app_user: str = "default") -> None:
        super().__init__(parent)
        self.setWindowTitle("Import conversations")
        self.conversation: Conversation | None = None
        self.summary: chat_exports.ExportSummary | None = None
        self._generation = 0
        self.app_user = app_user
        self.path = QLineEdit(path, placeholderText="A ChatGPT or Claude export (.zip), or a .json, .jsonl "
                                                    "or .txt conversation")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        self.format = QComboBox()
        for key, label in FORMATS.items():
            self.format.addItem(label, key)
        self.preview = QLabel("", wordWrap=True)
        self.conversations = QListWidget()
        self.conversations.setToolTip("Untick the conversations you do not want to import")
        self.conversations.itemChanged.connect(lambda _item: self._show_chat_summary())
        self.conversations.hide()
        self.scope_fields = ScopeFields(Scope(scope.user_id if scope and scope.user_id else app_user,
                                              scope.agent_id if scope else None, None))
        self.scope_fields.user.setToolTip("Whose memories these are: their messages are theirs; everyone "
                                          "else keeps their own name on what they said")
        self.infer = QCheckBox("Extract facts with the local model (slower; needs the LLM)")
        self.infer.setToolTip("Off: every message is stored as a memory. On: the local model "
                              "extracts the facts worth remembering.")
        self.skip_small_talk = QCheckBox("Skip small talk (greetings, thanks, \u201cgood night\u201d)")
        self.skip_small_talk.setChecked(True)
        self.skip_small_talk.setToolTip("Messages made only of greetings, thanks and reactions are not "
                                        "stored. Applies when the model does not extract facts.")
        self.skip_small_talk.toggled.connect(lambda _on: self._load_preview())
        self.infer.toggled.connect(lambda on: self.skip_small_talk.setEnabled(not on and self.summary is None))
        self.infer.toggled.connect(lambda _on: self._show_chat_summary())
        self.summary_ready.connect(self._summary_read)
        self.error = QLabel(wordWrap=True)
        self.error.setStyleSheet("color: #b3261e")
        self.error.hide()
        form = QFormLayout()
        file_label = QLabel("&File:")
        file_label.setBuddy(self.path)
        form.addRow(file_label, file_row)
        form.addRow("F&ormat:", self.format)
        form.addRow("", self.preview)
        form.addRow("", self.conversations)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Whose memories are these?"))
        layout.addWidget(self.scope_fields)
        layout.addWidget(self.infer)
        layout.addWidget(self.skip_small_talk)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.path.editingFinished.connect(self._load_preview)
        self.format.currentIndexChanged.connect(lambda _i: self._load_preview())
        self.resize(560, 420)
        if path:
            self._load_preview()

    def _browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Conversation file", self.path.text(),
                                              "Conversations and exports (*.zip *.json *.jsonl *.txt *.md);;"
                                              "All files (*)")
        if name:
            self.path.setText(name)
            self._load_preview()

    def _load_preview(self) -> bool:
        self.conversation = None
        self.summary = None
        self._generation += 1
        self.conversations.hide()
        self.format.setEnabled(True)
        self.skip_small_talk.setVisible(True)
        self.skip_small_talk.setEnabled(not self.infer.isChecked())
        self.scope_fields.run.setEnabled(True)
        text = self.path.text().strip()
        if not text:
            return False
        path = Path(text).expanduser()
        try:
            kind = chat_exports.sniff(path) if path.is_file() else None
        except LociError as exc:
            return self._show_error(exc.user_message)
        if kind in chat_exports.KINDS:
            self._read_export(path, kind)
            return False  # ready once the summary arrives
        try:
            conv = load_conversation(path, self.format.currentData())
        except LociError as exc:
            return self._show_error(exc.user_message)
        self.error.hide()
        self.conversation = conv
        who = ", ".join(conv.speakers[:4]) or "unnamed speakers"
        small = conv.message_count - without_small_talk(conv)[0].message_count
        note = ""
        if small:
            note = (f" {plural(small, 'message')} {'is' if small == 1 else 'are'} small talk"
                    + (" and will be skipped." if self.skip_small_talk.isChecked() else "."))
        self.preview.setText(f"{plural(conv.message_count, 'message')} in {plural(len(conv.sessions), 'session')} "
                             f"({FORMATS[conv.format]}), by {who}; each speaker keeps their name.{note}")
        return True

    def _show_error(self, text: str) -> bool:
        self.error.setText(text)
        self.error.show()
        self.preview.clear()
        return False

    def _read_export(self, path: Path, kind: str) -> None:
        """Summarize the export on a thread (one streaming pass); the result comes back as a signal."""
        generation = self._generation
        self.error.hide()
        self.format.setEnabled(False)
        self.skip_small_talk.setVisible(False)  # an export is imported as it was said (resumable)
        self.scope_fields.run.setEnabled(False)  # each conversation is a session of its own
        self.preview.setText(f"Reading the {chat_exports.KINDS[kind]}…")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)

        def read() -> None:
            try:
                result: object = chat_exports.summarize(path)
            except LociError as exc:
                result = exc
            self.summary_ready.emit(generation, result)
        threading.Thread(target=read, name="import-preview", daemon=True).start()

    def _summary_read(self, generation: int, result: object) -> None:
        if generation != self._generation:
            return  # the file changed meanwhile
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
        if isinstance(result, LociError):
            self._show_error(result.user_message)
            return
        assert isinstance(result, chat_exports.ExportSummary)
        self.summary = result
        self.conversations.blockSignals(True)
        self.conversations.clear()
        for info in result.conversations:
            when = f"{info.first:%Y-%m-%d}" if info.first else "no date"
            item = QListWidgetItem(f"{info.title}  ({when}, {plural(info.messages, 'message')})")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            item.setData(Qt.ItemDataRole.UserRole, info)
            self.conversations.addItem(item)
        self.conversations.blockSignals(False)
        self.conversations.show()
        self._show_chat_summary()

    def chosen(self) -> list[chat_exports.ConversationInfo]:
        """The ticked conversations of a chat export."""
        items = (self.conversations.item(i) for i in range(self.conversations.count()))
        return [item.data(Qt.ItemDataRole.UserRole) for item in items
                if item.checkState() == Qt.CheckState.Checked]

    def _show_chat_summary(self) -> None:
        if self.summary is None:
            return
        chosen = self.chosen()
        messages = sum(c.messages for c in chosen)
        firsts = [c.first for c in chosen if c.first]
        lasts = [c.last for c in chosen if c.last]
        span = f", {min(firsts):%Y-%m-%d} to {max(lasts):%Y-%m-%d}" if firsts and lasts else ""
        self.preview.setText(
            f"{chat_exports.KINDS[self.summary.kind]}: {plural(len(self.summary.conversations), 'conversation')}"
            f"{span}. To import: {plural(len(chosen), 'conversation')}, {plural(messages, 'message')}, "
            f"{estimate(messages, self.infer.isChecked())}. Each conversation becomes a session with its "
            "title; the assistant's replies are kept as context, not as your facts. An import stopped "
            "midway continues where it stopped when you import the file again.")

    def accept(self) -> None:
        if self.summary is not None:
            if not self.chosen():
                self._show_error("Tick at least one conversation to import.")
                return
            if not self.scope_fields.scope().user_id:
                self.error.setText("Say whose memories these are: fill in a user.")
                self.error.show()
                return
            super().accept()
            return
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

    def chat_export(self) -> ChatExportChoice | None:
        """The chat export and the ticked conversations, when the file is one (else None: use values())."""
        if self.summary is None:
            return None
        chosen = self.chosen()
        return ChatExportChoice(self.summary.path, frozenset(c.id for c in chosen), sum(c.messages for c in chosen),
                                self.summary.kind)

    def scope(self) -> Scope:
        """Whose memories (a chat export's conversations are sessions of their own: no session id)."""
        scope = self.scope_fields.scope()
        return Scope(scope.user_id, scope.agent_id, None) if self.summary is not None else scope

    def values(self) -> tuple[Conversation, Scope, bool]:
        """The conversation to store (without small talk when asked), its scope, and infer."""
        assert self.conversation is not None
        conv, infer = self.conversation, self.infer.isChecked()
        if self.skip_small_talk.isChecked() and not infer:
            conv = without_small_talk(conv)[0]
        return conv, self.scope_fields.scope(), infer
