"""GUI test fixtures: a real store in tmp_path behind the real main window (offscreen Qt)."""
from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path, embedder):
    """A real Memory (Chroma + SQLite) in tmp_path using the session's loaded embedder."""
    from engine import Memory

    mem = Memory(tmp_path / "s", embedder=embedder)
    yield mem
    mem.close()


@pytest.fixture
def gui(qtbot, store):
    """The real main window over `store`; started, with the first table load done."""
    from app.gui.application import build

    window, bridge, messages = build(store)
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.table_updated, timeout=5000):
        bridge.start()
    yield window
    bridge.close()
