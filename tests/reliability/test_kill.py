"""SIGKILL at random moments of add/update/delete (and of recovery): no acknowledged write is lost."""
from __future__ import annotations

import random
import signal
import time

import pytest
from conftest import open_and_report, read_log, record, spawn


def _expected(entries: list[list]) -> tuple[dict[str, set[str]], set[str]]:
    """From the ACK log: id -> texts it may have now, and ids that must be gone.

    The write in flight when the process died (BEGIN without ACK) may or may not have
    happened, so both outcomes are allowed for its memory.
    """
    live: dict[str, set[str]] = {}
    gone: set[str] = set()

    def in_flight(entry: list) -> None:  # a write its process was killed in: either outcome
        _, op, mid, text = entry
        if op == "update" and mid in live:
            live[mid] = live[mid] | {text}
        elif op == "delete" and mid in live:
            live.pop(mid)

    pending = None
    for entry in entries:
        if entry[0] == "BEGIN":
            if pending is not None:  # the previous process died inside that write
                in_flight(pending)
            pending = entry
        elif entry[0] == "ACK":
            _, op, mid, text = entry
            pending = None
            if op == "delete":
                live.pop(mid, None)
                gone.add(mid)
            else:
                live[mid] = {text}
    if pending is not None:
        in_flight(pending)
    return live, gone


def _run_kills(tmp_path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    store = tmp_path / "store"
    log = tmp_path / "writes.log"
    for n in range(kills):
        proc = spawn("churn", store, log, seed * 1000 + n)
        start = time.monotonic()
        if rng.random() < 0.2:  # early: during open and journal recovery
            time.sleep(rng.uniform(0.0, 2.5))
        else:
            ready = len([e for e in read_log(log) if e[0] == "READY"])
            while len([e for e in read_log(log) if e[0] == "READY"]) == ready:
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                assert time.monotonic() - start < 120, "the writer never became ready"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        record("kills survived")
    report = open_and_report(store, tmp_path / "check.log")
    assert report[0] == "OPEN", report
    _, rows, vectors, repairs, _hits = report
    rows_now = [e for e in read_log(tmp_path / "check.log") if e[0] == "ROWS"][-1][1]
    live, gone = _expected(read_log(log))
    lost = [mid for mid, texts in live.items() if rows_now.get(mid) not in texts]
    resurrected = [mid for mid in gone if mid in rows_now]
    record("acknowledged writes checked", len(live) + len(gone))
    record("acknowledged writes lost", len(lost) + len(resurrected))
    record("repairs needed on open after a kill", len(repairs))
    assert not lost and not resurrected, (lost, resurrected)
    assert rows == vectors == len(rows_now)
    assert live, "no write was acknowledged: the test did not test anything"


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path):
    _run_kills(tmp_path, kills=3, seed=1)


@pytest.mark.reliability
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_many_sigkills_lose_nothing_acknowledged(tmp_path, seed):
    _run_kills(tmp_path, kills=8, seed=seed)
