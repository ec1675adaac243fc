"""The import dialog with chat exports: preview (conversations, dates, messages, estimate), untick,
whose memories (the app's user by default), and a chat import cancelled then resumed (pytest-qt)."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from PySide6.QtCore import Qt

from app.gui.views.import_dialog import ImportDialog, estimate
from engine import Scope

DATA = Path(__file__).resolve().parents[1] / "data"


def _dialog(qtbot, path: Path, **kwargs) -> ImportDialog:
    dialog = ImportDialog(None, path=str(path), **kwargs)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.summary is not None or dialog.error.isVisibleTo(dialog), timeout=5000)
    return dialog


def test_preview_of_a_chatgpt_zip_lists_conversations_and_counts_for_the_apps_user(qtbot, tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(DATA / "chatgpt_conversations.json", "conversations.json")
    dialog = _dialog(qtbot, archive, app_user="maya")
    assert dialog.conversations.isVisibleTo(dialog) and dialog.conversations.count() == 2
    assert dialog.conversations.item(0).text() == "Moving to Oslo  (2024-04-13, 4 messages)"
    assert dialog.conversations.item(1).text().startswith("Untitled conversation  (2024-04-24, 1 message)")
    text = dialog.preview.text()
    assert "ChatGPT export: 2 conversations, 2024-04-13 to 2024-04-24" in text
    assert "To import: 2 conversations, 5 messages, under a minute" in text
    assert dialog.scope_fields.scope().user_id == "maya" and not dialog.format.isEnabled()
    dialog.accept()
    choice = dialog.chat_export()
    assert choice is not None and choice.ids == {"c-oslo", "c-untitled"} and choice.messages == 5
    assert dialog.scope() == Scope("maya")


def test_unticking_a_conversation_updates_the_preview_and_the_choice(qtbot):
    dialog = _dialog(qtbot, DATA / "claude_conversations.json", app_user="default")
    dialog.conversations.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert "To import: 1 conversation, 1 message" in dialog.preview.text()
    choice = dialog.chat_export()
    assert choice is not None and choice.ids == {"k-untitled"} and choice.kind == "claude"
    dialog.conversations.item(1).setCheckState(Qt.CheckState.Unchecked)
    dialog.accept()
    assert dialog.result() == 0 and "Tick at least one conversation" in dialog.error.text()


def test_a_file_that_is_no_export_or_conversation_says_what_was_expected(qtbot, tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.jpg", "x")
    dialog = ImportDialog(None, path=str(archive))
    qtbot.addWidget(dialog)
    assert "photos.zip is a .zip without conversations.json" in dialog.error.text()
    assert dialog.summary is None and not dialog.conversations.isVisibleTo(dialog)


def test_estimate_grows_with_messages_and_extraction() -> None:
    assert estimate(100, False) == "under a minute"
    assert estimate(10_000, False) == "about 1 minute"
    assert estimate(10_000, True) == "about 3 minutes"
    assert estimate(1_000_000, False) == "about 1.9 hours"


def test_a_chat_import_cancelled_midway_continues_on_the_next_import(qtbot, gui, tmp_path):
    path = tmp_path / "conversations.json"
    shutil.copy(DATA / "claude_conversations.json", path)
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=20_000) as done:
        gui.bridge.import_chat_export(path, {"k-bikes", "k-untitled"}, 4, Scope("maya"), False)
        gui.bridge.cancel_import()
    assert done.args[0]["cancelled"] is True and done.args[0]["added"] < 4
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=20_000) as again:
        gui.bridge.import_chat_export(path, {"k-bikes", "k-untitled"}, 4, Scope("maya"), False)
    assert again.args[0] == {"added": 4 - done.args[0]["added"], "cancelled": False, "error": None}
    assert gui.bridge.memory.count({"user_id": "maya"}) == 4


def test_dropping_an_export_on_the_window_opens_the_import_dialog(qtbot, gui, monkeypatch):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    opened = []
    monkeypatch.setattr(gui, "import_conversation", lambda path="": opened.append(path))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(DATA / "chatgpt_conversations.json"))])
    event = QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    assert gui.acceptDrops()
    gui.dropEvent(event)
    assert opened == [str(DATA / "chatgpt_conversations.json")]
