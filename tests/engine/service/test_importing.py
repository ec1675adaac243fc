"""Storing a parsed conversation: chunks, run ids, progress in messages, cancel between adds (real store)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from engine import CancelToken, Memory, Scope
from engine.extraction import Cancelled
from engine.service.importing import (ImportSummary, added_count, already_stored, chunks,
                                      import_resumable, import_sessions, session_run_id)


@dataclass(frozen=True)
class Session:
    messages: tuple[dict[str, Any], ...]
    run_id: str | None = None
    timestamp: datetime | None = None


def said(*texts: str) -> tuple[dict[str, Any], ...]:
    return tuple({"role": "user", "content": t, "name": "Maya"} for t in texts)


@pytest.fixture
def small_chunks(monkeypatch):
    """Adds of 25 messages, so these short conversations take several."""
    monkeypatch.setattr("engine.service.importing.RAW_CHUNK", 25)


def test_every_message_is_stored_with_its_session_time_and_progress_counts_messages(
        memory: Memory, small_chunks) -> None:
    texts = [f"Maya visited place number {i} and liked it." for i in range(60)]
    may = datetime(2024, 5, 3, 9, 0, tzinfo=timezone.utc)
    steps: list[tuple[int, int]] = []
    stored: list[int] = []
    summary = import_sessions(memory, [Session(said(*texts), "s1", may)], Scope(user_id="maya"), infer=False,
                              progress=lambda d, t: steps.append((d, t)),
                              stored=lambda: stored.append(memory.count()))
    assert summary == ImportSummary(added=60, cancelled=False)
    assert memory.count({"user_id": "maya", "run_id": "s1"}) == 60
    assert steps == [(0, 60), (25, 60), (50, 60), (60, 60)]
    assert stored == [25, 50, 60]  # memories show up as each add lands
    assert {r.timestamp for r in memory.list_records(filters={"user_id": "maya"})} == {may}


def test_a_scope_run_id_is_suffixed_per_session_of_a_file_with_several(memory: Memory) -> None:
    sessions = [Session(said("I moved to Oslo"), "first"), Session(said("I work as a nurse"))]
    import_sessions(memory, sessions, Scope(user_id="maya", run_id="chat"), infer=False)
    runs = {s.value for s in memory.scopes() if s.kind == "run_id"}
    assert runs == {"chat-first", "chat-2"}
    import_sessions(memory, [Session(said("My sister lives in Bergen"), "x")], Scope(user_id="maya", run_id="one"),
                    infer=False)
    assert memory.count({"run_id": "one"}) == 1  # a single session keeps the id asked for


def test_cancel_stops_before_the_next_add_and_keeps_what_was_stored(memory: Memory, small_chunks) -> None:
    token = CancelToken()
    sessions = [Session(said(*(f"fact {s}.{i}" for i in range(30))), f"s{s}") for s in range(3)]
    summary = import_sessions(memory, sessions, Scope(user_id="maya"), infer=False, cancel=token,
                              stored=token.cancel)
    # the add under way beside the first one (two lanes) finishes; nothing starts after the cancel
    assert summary.cancelled and summary.added in (25, 50)
    assert memory.count() == summary.added


def test_with_the_model_a_session_is_one_add_and_progress_moves_inside_it(memory: Memory) -> None:
    texts = ["I moved to Oslo in March.", "My sister Ingrid lives in Bergen.", "I work as a nurse at Ullevål."]
    steps: list[tuple[int, int]] = []
    summary = import_sessions(memory, [Session(said(*texts), "s1"), Session(said("I am vegan now."), "s2")],
                              Scope(user_id="maya"), infer=True, progress=lambda d, t: steps.append((d, t)))
    assert summary.added >= 3 and not summary.cancelled
    facts = memory.list_records(filters={"user_id": "maya", "memory_type": {"ne": "message"}})
    assert any("Bergen" in f.memory for f in facts)
    done = [d for d, _ in steps]
    assert steps[0] == (0, 4) and steps[-1] == (4, 4) and done == sorted(done)
    assert all(t == 4 for _, t in steps)


def test_a_cancel_inside_an_extraction_stores_nothing_of_it(memory: Memory) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        import_sessions(memory, [Session(said("I moved to Oslo."))], Scope(user_id="maya"), infer=True,
                        progress=lambda d, t: None, cancel=_CancelAfterFirstCheck(token))
    assert memory.count() == 0


class _CancelAfterFirstCheck:
    """Not cancelled when the import checks before add(), cancelled when the extraction checks."""

    def __init__(self, token: CancelToken) -> None:
        self.token, self.checks = token, 0

    @property
    def is_cancelled(self) -> bool:
        self.checks += 1
        return self.checks > 1 and self.token.is_cancelled


def test_an_empty_conversation_stores_nothing_and_reports_done() -> None:
    steps: list[tuple[int, int]] = []

    class NoStore:
        def add(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("nothing to add")

    summary = import_sessions(NoStore(), [Session(())], Scope(user_id="u"), infer=False,
                              progress=lambda d, t: steps.append((d, t)))
    assert summary == ImportSummary(0, False) and steps == [(0, 1)]


def test_helpers(small_chunks) -> None:
    assert added_count({"results": [{"event": "ADD"}, {"event": "NONE"}, {"event": "ADD"}]}) == 2
    assert added_count({}) == 0
    assert session_run_id(None, "s3", 2, 5) == "s3" and session_run_id(None, None, 0, 1) is None
    assert session_run_id("run", None, 0, 1) == "run" and session_run_id("run", None, 1, 2) == "run-2"
    msgs = said(*(str(i) for i in range(51)))
    assert [len(c) for c in chunks(msgs, infer=False)] == [25, 25, 1]
    assert [len(c) for c in chunks(msgs, infer=True)] == [51]
    assert chunks((), infer=True) == []


def _conversations(n: int, size: int) -> list[Session]:
    return [Session(said(*(f"Conversation {c} message {i} about the harbour." for i in range(size))), f"chat-{c}")
            for c in range(n)]


def test_an_interrupted_resumable_import_continues_where_it_stopped_and_a_reimport_adds_nothing(
        memory: Memory, small_chunks) -> None:
    sessions = _conversations(3, 30)  # 30 messages: two adds each (25 + 5)
    token = CancelToken()
    adds = 0

    def stop_after_three() -> None:
        nonlocal adds
        adds += 1
        if adds == 3:
            token.cancel()
    first = import_resumable(memory, iter(sessions), Scope(user_id="maya"), total=90, infer=False,
                             cancel=token, stored=stop_after_three)
    # three adds saved when it was cancelled, and the one under way beside them (two lanes) finished
    assert first.cancelled and adds in (3, 4) and first.added >= 55
    stored = {run: already_stored(memory, Scope(user_id="maya"), run) for run in ("chat-0", "chat-1", "chat-2")}
    assert sum(stored.values()) == first.added and set(stored.values()) <= {0, 25, 30}
    steps: list[tuple[int, int]] = []
    second = import_resumable(memory, iter(sessions), Scope(user_id="maya"), total=90, infer=False,
                              progress=lambda d, t: steps.append((d, t)))
    assert second == ImportSummary(added=90 - first.added, cancelled=False, skipped=first.added)
    assert steps[-1] == (90, 90) and (stored["chat-0"], 90) in steps  # skipped messages count as done
    texts = [r.memory for r in memory.list_records(filters={"user_id": "maya"}, top_k=500)]
    assert len(texts) == 90 and len(set(texts)) == 90  # every message once, none twice
    again = import_resumable(memory, iter(sessions), Scope(user_id="maya"), total=90, infer=False)
    assert again == ImportSummary(added=0, cancelled=False, skipped=90)
    assert memory.count({"user_id": "maya"}) == 90


def test_resuming_is_per_owner_so_another_user_gets_the_whole_file(memory: Memory) -> None:
    sessions = _conversations(1, 4)
    import_resumable(memory, sessions, Scope(user_id="maya"), total=4, infer=False)
    other = import_resumable(memory, sessions, Scope(user_id="ingrid", run_id="ignored"), total=4, infer=False)
    assert other == ImportSummary(added=4, cancelled=False, skipped=0)
    assert memory.count({"user_id": "ingrid", "run_id": "chat-0"}) == 4


class Recording:
    """The real store, recording when each add() starts and ends; the first add waits (10 s at most)
    for a second one to start, so two adds under way at once is seen, not hoped for."""

    def __init__(self, memory: Memory, fail_run: str | None = None, wait: float = 10) -> None:
        self.memory = memory
        self.wait = wait
        self.fail_run = fail_run
        self.events: list[tuple[str, str, str]] = []  # (start|end, run id, first message)
        self.overlapped = False
        self._second = threading.Event()
        self._lock = threading.Lock()

    def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        key = (kwargs["run_id"], messages[0]["content"])
        with self._lock:
            first = not self.events
            self.events.append(("start", *key))
            if not first:
                self._second.set()
        if first:
            self.overlapped = self._second.wait(self.wait)
        if kwargs["run_id"] == self.fail_run:
            raise RuntimeError("the disk is full")
        result = self.memory.add(messages, **kwargs)
        with self._lock:
            self.events.append(("end", *key))
        return result

    def count(self, filters: Any = None) -> int:
        return self.memory.count(filters)


def test_without_the_model_two_sessions_are_stored_at_once_and_each_session_stays_in_order(
        memory: Memory, small_chunks) -> None:
    sessions = _conversations(4, 60)  # three adds each: 25 + 25 + 10
    store = Recording(memory)
    summary = import_resumable(store, iter(sessions), Scope(user_id="maya"), total=240, infer=False)
    assert summary == ImportSummary(added=240, cancelled=False, skipped=0)
    assert store.overlapped  # a second add started while the first was under way
    for c in range(4):
        mine = [(kind, text) for kind, run, text in store.events if run == f"chat-{c}"]
        firsts = [f"Conversation {c} message {i} about the harbour." for i in (0, 25, 50)]
        # each add of a session starts only once the one before it is saved: what resuming counts
        assert mine == [(kind, text) for text in firsts for kind in ("start", "end")]
    texts = [r.memory for r in memory.list_records(filters={"user_id": "maya"}, top_k=500)]
    assert len(texts) == 240 and len(set(texts)) == 240


def test_a_failed_add_is_raised_after_the_one_beside_it_is_saved_and_a_rerun_completes(memory: Memory) -> None:
    sessions = _conversations(3, 4)
    store = Recording(memory, fail_run="chat-0")
    with pytest.raises(RuntimeError, match="disk is full"):
        import_resumable(store, iter(sessions), Scope(user_id="maya"), total=12, infer=False)
    assert ("end", "chat-1", "Conversation 1 message 0 about the harbour.") in store.events
    assert memory.count({"user_id": "maya", "run_id": "chat-2"}) == 0  # nothing new began after the failure
    again = import_resumable(memory, iter(sessions), Scope(user_id="maya"), total=12, infer=False)
    assert again == ImportSummary(added=8, cancelled=False, skipped=4)
    assert memory.count({"user_id": "maya"}) == 12


def test_one_lane_stores_one_add_at_a_time(memory: Memory) -> None:
    store = Recording(memory, wait=0.5)
    import_resumable(store, iter(_conversations(2, 3)), Scope(user_id="maya"), total=6, infer=False, lanes=1)
    assert not store.overlapped
    assert [kind for kind, _run, _text in store.events] == ["start", "end", "start", "end"]


def test_with_the_model_two_sessions_are_extracted_at_once_and_progress_never_goes_back(memory: Memory) -> None:
    sessions = [Session(said("I moved to Oslo in March.", "My sister Ingrid lives in Bergen."), "a"),
                Session(said("I work as a nurse at Ullevål.", "My cat is called Miso."), "b")]
    store = Recording(memory)
    steps: list[tuple[int, int]] = []
    summary = import_sessions(store, sessions, Scope(user_id="maya"), infer=True,
                              progress=lambda d, t: steps.append((d, t)))
    assert store.overlapped and not summary.cancelled
    assert summary.added >= 2  # facts (episodes are not counted here)
    done = [d for d, _t in steps]
    assert done == sorted(done) and steps[0] == (0, 4) and steps[-1] == (4, 4)
    assert memory.count({"user_id": "maya", "memory_type": "message"}) == 4
