"""Storing a parsed conversation: chunks, run ids, progress in messages, cancel between adds (real store)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from engine import CancelToken, Memory, Scope
from engine.extraction import Cancelled
from engine.service.importing import (RAW_CHUNK, ImportSummary, added_count, chunks, import_sessions,
                                      session_run_id)


@dataclass(frozen=True)
class Session:
    messages: tuple[dict[str, Any], ...]
    run_id: str | None = None
    timestamp: datetime | None = None


def said(*texts: str) -> tuple[dict[str, Any], ...]:
    return tuple({"role": "user", "content": t, "name": "Maya"} for t in texts)


def test_every_message_is_stored_with_its_session_time_and_progress_counts_messages(memory: Memory) -> None:
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


def test_cancel_stops_before_the_next_add_and_keeps_what_was_stored(memory: Memory) -> None:
    token = CancelToken()
    sessions = [Session(said(*(f"fact {s}.{i}" for i in range(30))), f"s{s}") for s in range(3)]
    summary = import_sessions(memory, sessions, Scope(user_id="maya"), infer=False, cancel=token,
                              stored=token.cancel)
    assert summary == ImportSummary(added=RAW_CHUNK, cancelled=True)
    assert memory.count() == RAW_CHUNK


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


def test_helpers() -> None:
    assert added_count({"results": [{"event": "ADD"}, {"event": "NONE"}, {"event": "ADD"}]}) == 2
    assert added_count({}) == 0
    assert session_run_id(None, "s3", 2, 5) == "s3" and session_run_id(None, None, 0, 1) is None
    assert session_run_id("run", None, 0, 1) == "run" and session_run_id("run", None, 1, 2) == "run-2"
    msgs = said(*(str(i) for i in range(51)))
    assert [len(c) for c in chunks(msgs, infer=False)] == [25, 25, 1]
    assert [len(c) for c in chunks(msgs, infer=True)] == [51]
    assert chunks((), infer=True) == []
