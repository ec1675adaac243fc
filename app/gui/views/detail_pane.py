"""Right pane: one memory's text (editable), metadata, entities, provenance and history."""
from __future__ import annotations

import html
import json
from dataclasses import replace
from typing import Any, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QSizePolicy, QTabWidget, QTextBrowser, QVBoxLayout, QWidget)

from engine import MemoryRecord


SHOWN_CHARS = 2000  # of a long message or history entry; the editor always holds the full text
SHOWN_ENTITIES = 12


def _clip(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}… ({len(text) - SHOWN_CHARS:,} more characters)"


def _when(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "—"


class DetailPane(QWidget):
    """save_requested(record, new_text) when the person saves; entity_clicked(name) on a link."""

    save_requested = Signal(object, str)
    entity_clicked = Signal(str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.record: MemoryRecord | None = None
        self.title = QLabel("No memory selected")
        self.title.setObjectName("detailTitle")
        self.editor = QPlainTextEdit()
        self.editor.setAccessibleName("Memory text")
        self.editor.setPlaceholderText("Select a memory to see and edit it.")
        self.editor.setTabChangesFocus(True)
        self.editor.setMaximumHeight(120)
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Save the edited text (Ctrl+S); recorded in the history")
        self.revert_button = QPushButton("Revert")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)

        self.meta = QFormLayout()
        self.meta.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._labels: dict[str, QLabel] = {}
        for key in ("Type", "Scope", "Said", "Event date", "Created", "Updated", "Metadata"):
            label = QLabel(textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse, wordWrap=True)
            self._labels[key] = label
            self.meta.addRow(key + ":", label)
        # an id has no spaces to wrap at: a read-only line scrolls, selects and copies it whole
        self.id_field = QLineEdit(readOnly=True, frame=False)
        self.id_field.setAccessibleName("Memory id")
        self.id_field.setStyleSheet("background: transparent")
        self.id_field.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.meta.addRow("Id:", self.id_field)
        self.entities = QLabel(wordWrap=True)
        self.entities.setTextFormat(Qt.TextFormat.RichText)
        self.entities.setAccessibleName("Entities")
        self.entities.linkActivated.connect(lambda name: self.entity_clicked.emit(name))
        self.meta.addRow("Entities:", self.entities)

        self.provenance = QTextBrowser(openLinks=False)
        self.provenance.setAccessibleName("Where this memory came from")
        self.history = QTextBrowser(openLinks=False)
        self.history.setAccessibleName("History")

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.editor)
        layout.addLayout(buttons)
        layout.addLayout(self.meta)
        # one tab per record of the past: both fit a small window without squeezing the fields
        self.past = QTabWidget()
        self.past.setDocumentMode(True)
        self.past.addTab(self.provenance, "Where it came from")
        self.past.addTab(self.history, "History")
        self.score_page = QTextBrowser(openLinks=False)
        self.score_page.setAccessibleName("Why this result")
        self.past.setMinimumHeight(110)
        layout.addWidget(self.past, 1)

        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self.revert)
        self.editor.textChanged.connect(self._update_buttons)
        self.editor.installEventFilter(self)
        self.show_record(None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        """Ctrl+Z / Ctrl+Shift+Z in the editor undo its typing; with none left to undo (just saved or
        just selected) they reach the window's Undo and Redo, which undo the saved edit."""
        if watched is self.editor and event.type() == QEvent.Type.ShortcutOverride \
                and isinstance(event, QKeyEvent):
            document = self.editor.document()
            if (event.matches(QKeySequence.StandardKey.Undo) and not document.isUndoAvailable()) or \
                    (event.matches(QKeySequence.StandardKey.Redo) and not document.isRedoAvailable()):
                event.ignore()  # not the editor's: the window's shortcut takes it
                return True
        return super().eventFilter(watched, event)

    @property
    def is_dirty(self) -> bool:
        return self.record is not None and self.editor.toPlainText() != self.record.memory

    def save(self) -> None:
        if self.is_dirty:
            self.save_requested.emit(self.record, self.editor.toPlainText())

    def revert(self) -> None:
        if self.record is not None:
            self.editor.setPlainText(self.record.memory)

    def show_entities(self, entities: Sequence[str]) -> None:
        """The shown memory's entities (they may arrive after the rest: the linker finds them)."""
        if self.record is not None and tuple(entities) != self.record.entities:
            self.record = replace(self.record, entities=tuple(entities))
        shown = list(entities)[:SHOWN_ENTITIES]
        links = ", ".join(f'<a href="{html.escape(e, quote=True)}">{html.escape(e)}</a>' for e in shown)
        if len(entities) > len(shown):
            links += f" and {len(entities) - len(shown)} more"
        self.entities.setText(links or "—")
        self.entities.setToolTip("Click an entity to list every memory that mentions it")

    def show_score(self, html_text: str) -> None:
        """A search hit's score breakdown, in its own tab (shown first); none outside a search."""
        index = self.past.indexOf(self.score_page)
        if html_text:
            self.score_page.setHtml(html_text)
            if index < 0:
                self.past.insertTab(0, self.score_page, "Why this result")
            self.past.setCurrentWidget(self.score_page)
        elif index >= 0:
            self.past.removeTab(index)

    def show_text(self, text: str) -> None:
        """The shown memory's text changed (saved, undone, or put back): show it, Save disabled."""
        if self.record is not None:
            self.record = replace(self.record, memory=text)
            self.editor.setPlainText(text)
            self._update_buttons()

    def _update_buttons(self) -> None:
        dirty = self.is_dirty and bool(self.editor.toPlainText().strip())
        self.save_button.setEnabled(dirty)
        self.revert_button.setEnabled(self.is_dirty)

    def show_past(self, history: Sequence[Any] | None, sources: Sequence[Any] | None) -> None:
        """The shown memory's history and source messages (None: still being read)."""
        self.provenance.setHtml(_sources_html(sources))
        self.history.setHtml(_history_html(history))

    def show_record(self, record: MemoryRecord | None, history: Sequence[Any] | None = (),
                    sources: Sequence[Any] | None = ()) -> None:
        """Show one memory (None clears the pane); history or sources None: "Loading…" until show_past."""
        self.record = record
        self.editor.setReadOnly(record is None)
        self.editor.setPlainText(record.memory if record else "")
        self.title.setText("Memory" if record else "No memory selected")
        if record is None:
            for label in self._labels.values():
                label.clear()
            self.id_field.clear()
            self.entities.clear()
            self.provenance.clear()
            self.history.clear()
            self.show_score("")
            self._update_buttons()
            return
        scope = ", ".join(f"{k.replace('_id', '')} {v}" for k, v in record.scope.as_dict().items())
        said_by = record.actor or record.role or ""
        values = {"Type": record.memory_type or "—", "Scope": scope or "—",
                  "Said": f"{_when(record.timestamp)}" + (f" by {said_by}" if said_by else ""),
                  "Event date": (record.event_date or "—").replace("/", " to "), "Created": _when(record.created_at),
                  "Updated": _when(record.updated_at),
                  "Metadata": _clip(json.dumps(dict(record.metadata), ensure_ascii=False)) if record.metadata else "—"}
        for key, value in values.items():
            self._labels[key].setText(value)
        self.id_field.setText(record.id)
        self.id_field.setToolTip(record.id)
        self.id_field.setCursorPosition(0)
        self.show_entities(record.entities)
        self.show_past(history, sources)
        self._update_buttons()


_LOADING = "<i style='color:gray'>Loading…</i>"


def _sources_html(sources: Sequence[Any] | None) -> str:
    if sources is None:
        return _LOADING
    if not sources:
        return "<i>No source messages were stored for this memory.</i>"
    parts = []
    for m in sources:
        who = html.escape(m.name or m.role)
        parts.append(f"<p><b>{who}</b> <span style='color:gray'>{_when(m.timestamp)}</span><br>"
                     f"{html.escape(_clip(m.content))}</p>")
    return "".join(parts)


def _history_html(events: Sequence[Any] | None) -> str:
    if events is None:
        return _LOADING
    if not events:
        return "<i>No history.</i>"
    parts = []
    for e in reversed(list(events)):
        head = f"<b>{html.escape(e.event)}</b> <span style='color:gray'>{_when(e.created_at)}"
        if e.actor:
            head += f" by {html.escape(e.actor)}"
        head += "</span>"
        if e.event == "UPDATE":
            body = (f"<br><s>{html.escape(_clip(e.old_memory or ''))}</s><br>→ "
                    f"{html.escape(_clip(e.new_memory or ''))}")
        else:
            body = f"<br>{html.escape(_clip(e.new_memory or e.old_memory or ''))}"
        parts.append(f"<p>{head}{body}</p>")
    return "".join(parts)
