"""The bridge runs every store call in a worker: the window stays correct and never calls the store itself."""
from __future__ import annotations

import threading
from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.gui.models.memory_table import COL_MEMORY
from engine import Scope
from gui_helpers import row_texts, select_row

FACTS = ["I am vegetarian and love mushroom risotto", "My sister Ingrid lives in Bergen",
         "I started a new job at Nordlys Energy", "I bought a road bike to cycle to work",
         "I am allergic to cats"]


class GuiThreadCalls:
    """The real Memory, noting the name of every method called on it from the GUI thread."""

    def __init__(self, memory: Any) -> None:
        self._memory = memory
        self.names: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._memory, name)
        if not callable(value) or name.startswith("_"):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is threading.main_thread():
                self.names.append(name)
            return value(*args, **kwargs)
        return call


def _window(qtbot, store):
    from app.gui.application import build

    calls = GuiThreadCalls(store)
    window, bridge, messages = build(calls)
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.table_updated, timeout=10_000):
        bridge.start()
    return window, calls


def test_browse_edit_undo_search_delete_never_call_the_store_on_the_gui_thread(qtbot, store, monkeypatch):
    window, calls = _window(qtbot, store)
    store.add([{"role": "user", "content": t} for t in FACTS], user_id="maya", infer=False)
    with qtbot.waitSignal(window.table_updated, timeout=10_000):
        window.refresh()
    assert sorted(row_texts(window)) == sorted(FACTS)
    assert window.sidebar.topLevelItem(0).text(1) == str(len(FACTS))

    rec = select_row(qtbot, window, 0, timeout=10_000)
    assert window.detail.editor.toPlainText() == rec.memory and "ADD" in window.detail.history.toPlainText()
    window.detail.editor.setPlainText("I am vegan now")
    window.save_action.trigger()
    assert "I am vegan now" in row_texts(window)  # shown at once, before the store answers
    qtbot.waitUntil(lambda: "UPDATE" in window.detail.history.toPlainText(), timeout=30_000)
    assert store.get_record(rec.id).memory == "I am vegan now"
    window.undo_action.trigger()
    assert window.detail.editor.toPlainText() == rec.memory
    qtbot.waitUntil(lambda: store.get_record(rec.id).memory == rec.memory, timeout=30_000)

    with qtbot.waitSignal(window.table_updated, timeout=30_000):
        window.search_bar.box.setText("where does my sister live")
    assert "Ingrid" in row_texts(window)[0]
    with qtbot.waitSignal(window.table_updated, timeout=10_000):
        window.clear_search_action.trigger()

    doomed = select_row(qtbot, window, 1, timeout=10_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.delete_action.trigger()
    assert doomed.memory not in row_texts(window)  # gone at once
    qtbot.waitUntil(lambda: store.count() == len(FACTS) - 1, timeout=30_000)

    with qtbot.waitSignal(window.detail_updated, timeout=10_000):
        window.open_memory(rec.id)  # a citation from the assistant
    assert window.detail.record.id == rec.id
    assert calls.names == []
    window.bridge.close()


def test_a_long_list_shows_later_pages_once_read_and_the_new_memory_after_an_add(qtbot, store, monkeypatch):
    from app.gui import browser_reads
    from app.gui.models import MemoryTableModel

    # small pages, so five memories make a "long" list: the first read brings rows 0-3, the rest comes later
    monkeypatch.setattr(browser_reads, "PRELOAD_ROWS", 3)
    monkeypatch.setattr(browser_reads, "PAGE_ROWS", 2)
    monkeypatch.setattr(MemoryTableModel, "PAGE", 2)
    window, calls = _window(qtbot, store)
    store.add([{"role": "user", "content": t} for t in FACTS], user_id="maya", infer=False)
    with qtbot.waitSignal(window.table_updated, timeout=10_000):
        window.refresh()
    assert window.model.rowCount() == len(FACTS)
    assert window.model.is_loaded(3) and not window.model.is_loaded(4)
    window.model.data(window.model.index(4, COL_MEMORY))  # the view looks at the last row: read in a worker
    qtbot.waitUntil(lambda: window.model.is_loaded(4), timeout=10_000)
    assert sorted(row_texts(window)) == sorted(FACTS)  # newest first, every row in the end

    with qtbot.waitSignal(window.table_updated, timeout=30_000):
        window.bridge.add_note("Dentist on Friday at nine", Scope(user_id="maya"), infer=False)
    assert window.model.rowCount() == len(FACTS) + 1
    assert window.model.record(0).memory == "Dentist on Friday at nine"  # the new page shows the new memory
    assert calls.names == []
    window.bridge.close()


def test_with_a_store_process_the_window_is_a_client_and_the_owner_stops_with_it(qtbot, tmp_path, embedder):
    """The app's default: the store's owner runs in a child process (its repairs are still told,
    writes land, changes show); closing the window's bridge stops it and frees the store."""
    import shutil

    from app.gui.application import build
    from engine import Memory
    from engine.service import RemoteMemory
    from engine.service.opening import lock_is_free

    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mem.add("My sister lives in Oslo", user_id="me", infer=False)
    shutil.rmtree(tmp_path / "s" / "chroma")  # the owner repairs it when it opens
    window, bridge, messages = build(data_dir=tmp_path / "s", store_process=True)
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    window.show()
    shown: list[str] = []
    messages.shown.connect(lambda _level, text: shown.append(text))
    with qtbot.waitSignal(bridge.store_opened, timeout=120_000):
        bridge.start()
    assert isinstance(bridge.memory, RemoteMemory) and bridge.owner is not None and bridge.owner.running
    assert any("repaired when it opened: rebuilt 1 vectors" in text for text in shown)
    added: list[object] = []
    bridge.add_note("My cat is called Miso", Scope(user_id="me"), False, on_done=added.append)
    qtbot.waitUntil(lambda: bool(added), timeout=30_000)
    qtbot.waitUntil(lambda: "My cat is called Miso" in row_texts(window), timeout=30_000)
    owner = bridge.owner
    bridge.close()
    assert not owner.running and owner.exitcode == 0 and lock_is_free(tmp_path / "s")
    with Memory(tmp_path / "s", embedder=embedder) as again:
        assert again.count({"user_id": "me"}) == 2


def test_new_search_settings_restart_the_store_process_that_reads_them(qtbot, tmp_path):
    """The owner process reads the settings when it starts: Save in Settings starts a new one with them."""
    import dataclasses

    from app.gui.application import build

    window, bridge, messages = build(data_dir=tmp_path / "s", store_process=True)
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    with qtbot.waitSignal(bridge.store_opened, timeout=120_000):
        bridge.start()
    first = bridge.owner
    assert first is not None and first.running
    config = dataclasses.replace(bridge.config, search=dataclasses.replace(bridge.config.search, time_weight=0.4))
    with qtbot.waitSignal(bridge.store_opened, timeout=120_000):
        bridge.apply_settings(config, None)
    assert not first.running and first.exitcode == 0
    assert bridge.owner is not None and bridge.owner is not first and bridge.owner.running
    assert bridge.owner.config.search.time_weight == 0.4
    bridge.close()
    assert bridge.owner is None
