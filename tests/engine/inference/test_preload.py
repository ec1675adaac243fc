"""engine/inference/preload.py: models load on a background thread, each step reported, a failure kept."""
from __future__ import annotations

import logging
import threading

from engine.inference.preload import Preload


def test_steps_run_in_order_off_the_callers_thread_and_report_progress():
    ran: list[tuple[str, str]] = []
    seen: list[tuple[str, int, int]] = []
    step = lambda name: (lambda: ran.append((name, threading.current_thread().name)))
    preload = Preload([("embedding model", step("embed")), ("entity model", step("spacy"))],
                      lambda name, done, total: seen.append((name, done, total)))
    assert preload.wait(30)
    assert ran == [("embed", "loci-model-loader"), ("spacy", "loci-model-loader")]
    assert seen == [("embedding model", 0, 2), ("entity model", 1, 2), ("ready", 2, 2)]
    assert preload.error is None


def test_a_failing_step_ends_the_run_and_is_kept_for_later(caplog):
    gate = threading.Event()
    ran: list[str] = []

    def broken() -> None:
        gate.wait(30)
        raise OSError("model file missing")

    with caplog.at_level(logging.WARNING, logger="engine.inference.preload"):
        preload = Preload([("embedding model", broken), ("entity model", lambda: ran.append("spacy"))])
        assert not preload.wait(0.05)  # still loading
        gate.set()
        assert preload.wait(30)
    assert isinstance(preload.error, OSError) and ran == []
    assert "background model load failed: model file missing" in caplog.text


def test_without_start_nothing_runs_and_it_is_ready_at_once():
    ran: list[str] = []
    preload = Preload([("embedding model", lambda: ran.append("x"))], start=False)
    assert preload.wait(0) and ran == []


def test_stop_waits_for_the_step_under_way_and_skips_the_rest():
    gate = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        gate.wait(30)
        ran.append("embed")

    preload = Preload([("embedding model", slow), ("entity model", lambda: ran.append("spacy"))])
    assert started.wait(30)
    stopper = threading.Thread(target=preload.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()  # a model half loaded is not abandoned to a finalizing interpreter
    gate.set()
    stopper.join(30)
    assert not stopper.is_alive() and preload.wait(1)
    assert ran == ["embed"]  # the entity model was never started
