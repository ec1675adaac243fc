"""ReadJobs: the browser's reads run in workers against the real store and come back on the GUI thread."""
from __future__ import annotations

import threading

from app.gui.messages import Messages
from app.gui.read_jobs import ReadJobs


def _wait_for(qtbot, start):
    got: list[object] = []
    start(got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=20_000)
    return got[0]


def test_reads_run_off_the_gui_thread_and_deliver_on_it(qtbot, store) -> None:
    store.add([{"role": "user", "content": "My sister Ingrid lives in Bergen"},
               {"role": "user", "content": "I bought a road bike"}], user_id="maya", infer=False)
    jobs = ReadJobs(Messages())
    jobs.memory = store
    gui, seen = threading.get_ident(), []
    search = store.search_records

    def recording_search(*args, **kwargs):
        seen.append(threading.get_ident())
        return search(*args, **kwargs)

    store.search_records = recording_search  # type: ignore[method-assign]
    hits = _wait_for(qtbot, lambda done: jobs.search("where does my sister live", {"user_id": "maya"},
                                                     on_result=lambda v: done((threading.get_ident(), v))))
    thread, found = hits
    assert thread == gui and seen and gui not in seen
    assert "Ingrid" in found[0].record.memory
    assert _wait_for(qtbot, jobs.user_counts) == {"maya": 2}
    assert len(_wait_for(qtbot, lambda done: jobs.timeline({"user_id": "maya"}, done))) == 2
    jobs.wait_for_jobs(5000)


def test_without_a_store_reads_say_so_instead_of_failing(qtbot) -> None:
    messages = Messages()
    shown: list[tuple[str, str]] = []
    messages.shown.connect(lambda level, text: shown.append((level, text)))
    jobs = ReadJobs(messages)
    jobs.memory = None
    assert jobs.overview({}, 0, on_result=lambda _v: None) is None  # nothing to read: no job at all
    jobs.search("anything", None, on_result=lambda _v: None)
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    assert shown[0][0] == "error" and "No memory store is open" in shown[0][1]
    jobs.wait_for_jobs(5000)
