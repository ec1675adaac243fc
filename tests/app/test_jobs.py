"""Jobs: results, known errors and bugs come back on the GUI thread; one import at a time reports its summary."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from PySide6.QtCore import QThread

from app.gui.jobs import JobRunner
from app.gui.messages import Messages
from engine import CancelToken, StoreError


@dataclass
class Summary:
    added: int
    cancelled: bool


@pytest.fixture
def made(qtbot):
    """A runner with its messages and what they showed; torn down after its jobs are done."""
    messages = Messages()
    messages.crash_dialogs_enabled = False
    shown: list[tuple[str, str]] = []
    messages.shown.connect(lambda level, text: shown.append((level, text)))
    jobs = JobRunner(messages)
    yield jobs, messages, shown
    jobs.wait_for_jobs(5000)
    qtbot.waitUntil(lambda: jobs.jobs == 0, timeout=5000)


def test_a_result_is_told_and_delivered_on_the_gui_thread(qtbot, made) -> None:
    jobs, _, shown = made
    got: list[tuple[int, bool]] = []
    gui = QThread.currentThread()
    counts: list[int] = []
    jobs.jobs_changed.connect(counts.append)
    with qtbot.waitSignal(jobs.jobs_changed, timeout=5000, check_params_cb=lambda n: n == 0):
        jobs.submit(lambda: threading.get_ident(), on_result=lambda v: got.append((v, QThread.currentThread() is gui)),
                    tell=lambda v: "done", name="ident")
    assert got[0][0] != threading.get_ident() and got[0][1]  # ran in a worker, answered here
    assert shown == [("info", "done")] and counts == [1, 0] and jobs.jobs == 0


def test_a_known_error_goes_to_on_failed_or_the_messages(qtbot, made) -> None:
    jobs, _, shown = made

    def fail() -> None:
        raise StoreError("The disk is full.")
    failed: list[str] = []
    with qtbot.waitSignal(jobs.jobs_changed, timeout=5000, check_params_cb=lambda n: n == 0):
        jobs.submit(fail, on_failed=failed.append)
    assert failed == ["The disk is full."] and shown == []
    with qtbot.waitSignal(jobs.jobs_changed, timeout=5000, check_params_cb=lambda n: n == 0):
        jobs.submit(fail)
    assert shown == [("error", "The disk is full.")]


def test_a_bug_is_shown_as_a_crash_and_the_caller_hears_of_it(qtbot, made) -> None:
    jobs, _, shown = made
    failed: list[str] = []
    with qtbot.waitSignal(jobs.jobs_changed, timeout=5000, check_params_cb=lambda n: n == 0):
        jobs.submit(lambda: 1 / 0, on_failed=failed.append)
    assert shown[0][0] == "crash" and "ZeroDivisionError" in shown[0][1]
    assert failed == ["Something went wrong inside Loci: ZeroDivisionError: division by zero"]


def test_an_import_reports_progress_its_summary_and_clears_its_token(qtbot, made) -> None:
    jobs, _, shown = made
    steps: list[tuple[int, int]] = []
    jobs.import_progressed.connect(lambda d, t: steps.append((d, t)))

    def run(token: CancelToken, progress) -> Summary:
        for i in range(1, 4):
            progress(i, 3)
        return Summary(3, token.is_cancelled)
    with qtbot.waitSignal(jobs.import_finished, timeout=5000) as finished:
        token = jobs.submit_import(run, lambda s: f"stored {s.added}", "test import")
        assert jobs.import_token is token
    assert finished.args[0] == {"added": 3, "cancelled": False, "error": None}
    assert steps[-1] == (3, 3) and shown == [("info", "stored 3")] and jobs.import_token is None


def test_a_cancelled_or_failed_import_says_so(qtbot, made) -> None:
    jobs, _, shown = made
    started = threading.Event()

    def run(token: CancelToken, progress) -> Summary:
        started.set()
        while not token.is_cancelled:
            QThread.msleep(5)
        raise StoreError("Stopped half way.")
    with qtbot.waitSignal(jobs.import_finished, timeout=5000) as finished:
        jobs.submit_import(run, str, "test import")
        assert started.wait(5)
        jobs.cancel_import()
    assert finished.args[0] == {"added": 0, "cancelled": True, "error": "Stopped half way."}
    assert [level for level, _ in shown] == ["info", "error"] and jobs.import_token is None


def test_closing_cancels_the_import_and_waits_for_it(qtbot, made) -> None:
    jobs, _, _ = made
    ended = threading.Event()

    def run(token: CancelToken, progress) -> Summary:
        while not token.is_cancelled:
            QThread.msleep(5)
        ended.set()
        return Summary(0, True)
    jobs.submit_import(run, str, "test import")
    QThread.msleep(50)
    jobs.wait_for_jobs(5000, cancel=True)
    assert ended.is_set()
    qtbot.waitUntil(lambda: jobs.jobs == 0, timeout=2000)
