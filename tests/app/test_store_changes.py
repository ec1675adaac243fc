"""Writes become one refresh per burst on the GUI thread, spaced out while an import runs (real ChangeFeed)."""
from __future__ import annotations

import threading

from PySide6.QtCore import QElapsedTimer

from app.gui.store_changes import IMPORT_REFRESH_MS, StoreChanges
from engine.service.changes import ChangeFeed


class Owner:
    """A store with other writers: what open_memory gives (its subscribe follows the real feed)."""

    def __init__(self) -> None:
        self.changes = ChangeFeed()

    def subscribe(self, fn):
        return self.changes.subscribe(fn)


def test_a_burst_of_writes_is_one_refresh(qtbot) -> None:
    changes = StoreChanges(lambda: False)
    fired: list[int] = []
    changes.changed.connect(lambda: fired.append(1))
    with qtbot.waitSignal(changes.changed, timeout=2000):
        for _ in range(5):
            changes.note()
    qtbot.wait(300)
    assert fired == [1]


def test_other_programs_writes_arrive_from_their_thread_until_stopped(qtbot) -> None:
    owner = Owner()
    changes = StoreChanges(lambda: False)
    changes.follow(owner)
    with qtbot.waitSignal(changes.changed, timeout=2000):
        writer = threading.Thread(target=owner.changes.publish, args=("add", ["m1"]))
        writer.start()
        writer.join()
    changes.stop()
    with qtbot.assertNotEmitted(changes.changed, wait=400):
        owner.changes.publish("add", ["m2"])


def test_a_plain_memory_has_no_other_writers_to_follow(qtbot) -> None:
    changes = StoreChanges(lambda: False)
    changes.follow(object())  # engine.Memory: no subscribe
    changes.stop()


def test_while_importing_refreshes_are_spaced_out(qtbot) -> None:
    changes = StoreChanges(lambda: True)
    clock = QElapsedTimer()
    clock.start()
    with qtbot.waitSignal(changes.changed, timeout=IMPORT_REFRESH_MS + 3000):
        changes.note_from_any_thread()
        qtbot.wait(IMPORT_REFRESH_MS // 2)
        changes.note()  # does not push the refresh back: the table still moves during a long import
    # Qt's coarse timers may fire up to 5% early; a restarted timer would take 1.5 times as long
    assert 0.9 * IMPORT_REFRESH_MS <= clock.elapsed() < 1.3 * IMPORT_REFRESH_MS


def test_entity_links_found_batch_after_batch_become_one_refresh_per_interval(qtbot) -> None:
    owner = Owner()
    changes = StoreChanges(lambda: False)
    changes.follow(owner)
    fired: list[int] = []
    changes.changed.connect(lambda: fired.append(clock.elapsed()))
    clock = QElapsedTimer()
    clock.start()
    for n in range(10):  # a linker writing a batch every 100 ms for a second
        owner.changes.publish("linked", [f"m{n}"])
        qtbot.wait(100)
    qtbot.waitUntil(lambda: len(fired) >= 1, timeout=IMPORT_REFRESH_MS + 3000)
    qtbot.wait(IMPORT_REFRESH_MS + 500)
    assert len(fired) == 1 and fired[0] >= IMPORT_REFRESH_MS * 0.95  # not one refresh per batch
    changes.stop()

