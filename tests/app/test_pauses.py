"""The GUI's short-pause measures: no full GC pass while the models load, a core left to the GUI thread."""
from __future__ import annotations

import gc
import os

from app.gui import pauses
from app.gui.engine_bridge import MODEL_READY, EngineBridge
from app.gui.messages import Messages
from engine import LociConfig

def test_the_hold_keeps_full_collections_off_until_released_then_freezes_what_was_loaded() -> None:
    before = gc.get_threshold()
    hold = pauses.GcHold()
    hold.hold()
    try:
        assert hold.holding and gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] > 10**6
        gc.disable()  # a library's own disable/enable pair (spaCy's loader) does not end the hold
        gc.enable()
        assert gc.get_threshold()[2] > 10**6
        loaded = [[] for _ in range(1000)]  # noqa: F841 - objects "loaded" during the hold
        hold.release(freeze=True)
        assert not hold.holding and gc.get_threshold() == before
        assert gc.get_freeze_count() >= 1000
    finally:
        hold.thaw()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_the_gui_leaves_a_core_to_itself_unless_the_threads_are_set(monkeypatch) -> None:
    config = LociConfig()
    for cores, threads in ((1, 1), (2, 1), (4, 3), (16, 4)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert pauses.leave_a_core(config).embedder.threads == threads
    assert config.embedder.threads is None  # the settings themselves are untouched
    chosen = LociConfig.from_dict({"embedder": {"threads": 2}})
    assert pauses.leave_a_core(chosen) is chosen


def test_the_gui_store_embeds_with_a_core_left_and_the_models_objects_frozen_until_it_closes(qtbot, tmp_path,
                                                                                               monkeypatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    bridge = EngineBridge(Messages(), data_dir=tmp_path / "store")
    bridge.start()
    try:
        assert bridge.gc_hold.holding
        qtbot.waitUntil(lambda: bridge.model_state == MODEL_READY, timeout=120_000)
        qtbot.waitUntil(lambda: not bridge.gc_hold.holding, timeout=120_000)  # the entity model loaded too
        assert gc.get_freeze_count() > 0
        assert bridge.memory.embedder._session.get_session_options().intra_op_num_threads == 2
    finally:
        bridge.close()
    assert gc.get_freeze_count() == 0
