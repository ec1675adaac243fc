"""GUI test fixtures: a real store in tmp_path behind the real main window (offscreen Qt)."""
from __future__ import annotations

import importlib.util
import sys
import types
from datetime import datetime, timezone

import pytest


def _temporal_stand_in() -> types.ModuleType:
    """Minimal engine.temporal used only until the real module lands (parse times, no event dates)."""
    mod = types.ModuleType("engine.temporal")

    def parse_timestamp(value):
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, timezone.utc)
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    mod.parse_timestamp = parse_timestamp
    mod.resolve_event_date = lambda text, when: None
    mod.query_window = lambda query, reference: None
    mod.is_when_question = lambda query: False
    return mod


@pytest.fixture(autouse=True)
def _engine_temporal(monkeypatch):
    if importlib.util.find_spec("engine.temporal") is None:
        monkeypatch.setitem(sys.modules, "engine.temporal", _temporal_stand_in())


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
