"""The GUI process's cyclic GC: no full pass while the models load, their objects frozen once loaded."""
from __future__ import annotations

import gc

from app.gui import pauses
from app.gui.engine_bridge import MODEL_READY, EngineBridge
from app.gui.messages import Messages

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


def test_the_models_objects_are_frozen_once_loaded_and_thawed_when_the_store_closes(qtbot, tmp_path) -> None:
    bridge = EngineBridge(Messages(), data_dir=tmp_path / "store")
    bridge.start()
    try:
        assert bridge.gc_hold.holding
        qtbot.waitUntil(lambda: bridge.model_state == MODEL_READY, timeout=120_000)
        qtbot.waitUntil(lambda: not bridge.gc_hold.holding, timeout=120_000)  # the entity model loaded too
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[2] < 10**6
    finally:
        bridge.close()
    assert gc.get_freeze_count() == 0
