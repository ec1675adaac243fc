"""Storing a parsed conversation: sessions -> add() calls, progress counted in messages, cancellable between steps.

No Qt here: the GUI's import runs this in its ingestion worker; any front end can.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from ..records import EPISODE, Scope

RAW_CHUNK = 100  # messages per add() when storing without the model

Progress = Callable[[int, int], None]


class Session(Protocol):
    """One sitting of a conversation (app.importers.Session is one)."""

    @property
    def messages(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime | None: ...


class Writer(Protocol):
    """What an import needs of a store: engine.Memory (and its remote client) is one."""

    def add(self, messages: Any, *, user_id: str | None = ..., agent_id: str | None = ...,
            run_id: str | None = ..., timestamp: Any = ..., infer: bool = ...,
            progress: Progress | None = ..., cancel: Any = ...) -> dict[str, Any]: ...

    def count(self, filters: Mapping[str, Any] | None = ...) -> int: ...


class Cancel(Protocol):
    """Anything with an is_cancelled flag (engine.CancelToken)."""

    @property
    def is_cancelled(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import stored: new memories as add() reported them, and whether it stopped early."""

    added: int
    cancelled: bool
    skipped: int = 0  # messages already in the store from an earlier (interrupted) import of the file


def added_count(result: Mapping[str, Any]) -> int:
    """How many memories an add() result reports as new (mem0's "ADD" events)."""
    return sum(1 for r in result.get("results", []) if r.get("event") == "ADD")


def session_run_id(scope_run_id: str | None, session_run_id: str | None, index: int, sessions: int) -> str | None:
    """The run id a session is stored under: the one asked for (one per session, suffixed with
    the file's session id or number, when the file has several), else the file's own."""
    if scope_run_id and sessions > 1:
        return f"{scope_run_id}-{session_run_id or index + 1}"
    return scope_run_id or session_run_id or None


def chunks(messages: Sequence[Mapping[str, Any]], infer: bool) -> list[list[Mapping[str, Any]]]:
    """The add() calls a session takes: whole when the model extracts (it reads the session as
    one context), else RAW_CHUNK messages at a time (Cancel and progress act between calls)."""
    size = (len(messages) if infer else RAW_CHUNK) or 1
    return [list(messages[start:start + size]) for start in range(0, len(messages), size)]


def import_sessions(memory: Writer, sessions: Sequence[Session], scope: Scope, *, infer: bool,
                    progress: Progress | None = None, cancel: Cancel | None = None,
                    stored: Callable[[], None] | None = None) -> ImportSummary:
    """Store every session (one time and run id each) and return what was added.

    progress(done, total) counts messages, from (0, total) to (total, total), moving within a
    session while the model extracts; stored() is called after each add(), so a view can show
    memories as they land. Cancel stops before the next add(); a cancel inside an extraction
    raises engine.extraction.Cancelled as add() does.
    """
    total = max(sum(len(s.messages) for s in sessions), 1)
    report = progress or (lambda _done, _total: None)
    added = done = 0
    report(0, total)
    for i, session in enumerate(sessions):
        run_id = session_run_id(scope.run_id, session.run_id, i, len(sessions))
        for chunk in chunks(session.messages, infer):
            if cancel is not None and cancel.is_cancelled:
                return ImportSummary(added, cancelled=True)

            def step(d: int, t: int, base: int = done, n: int = len(chunk)) -> None:
                report(base + (min(d, t) * n // t if t else 0), total)
            result = memory.add(chunk, user_id=scope.user_id, agent_id=scope.agent_id, run_id=run_id,
                                timestamp=session.timestamp, infer=infer,
                                progress=step if infer else None, cancel=cancel if infer else None)
            added += added_count(result)
            done += len(chunk)
            report(done, total)
            if stored is not None:
                stored()
    return ImportSummary(added, cancelled=cancel is not None and cancel.is_cancelled)


def already_stored(memory: Writer, scope: Scope, run_id: str) -> int:
    """How many messages of a session (its own run id) an earlier import stored: each add() commits
    whole, in order, so they are the session's first ones."""
    return memory.count({**Scope(scope.user_id, scope.agent_id, None).as_dict(), "run_id": run_id,
                         "memory_type": EPISODE})


def import_resumable(memory: Writer, sessions: Iterable[Session], scope: Scope, *, total: int, infer: bool,
                     progress: Progress | None = None, cancel: Cancel | None = None,
                     stored: Callable[[], None] | None = None) -> ImportSummary:
    """Store sessions that each carry their own run id (one per conversation of a chat export),
    read lazily (a stream), skipping the messages an earlier import of the same file stored.

    An interrupted import run again continues where it stopped, and a finished one adds nothing.
    progress(done, total) counts messages, the skipped ones included; the scope's run id is not
    used (every conversation is its own session). Cancel stops before the next add().
    """
    report = progress or (lambda _done, _total: None)
    total = max(total, 1)
    added = done = skipped = 0
    report(0, total)
    owner = Scope(scope.user_id, scope.agent_id, None)
    for session in sessions:
        if cancel is not None and cancel.is_cancelled:
            return ImportSummary(added, True, skipped)
        run_id = session.run_id
        messages = session.messages
        if run_id:
            have = min(already_stored(memory, owner, run_id), len(messages))
            skipped += have
            done += have
            messages = messages[have:]
            if have:
                report(done, total)
        for chunk in chunks(messages, infer):
            if cancel is not None and cancel.is_cancelled:
                return ImportSummary(added, True, skipped)

            def step(d: int, t: int, base: int = done, n: int = len(chunk)) -> None:
                report(base + (min(d, t) * n // t if t else 0), total)
            result = memory.add(chunk, user_id=owner.user_id, agent_id=owner.agent_id, run_id=run_id,
                                timestamp=session.timestamp, infer=infer,
                                progress=step if infer else None, cancel=cancel if infer else None)
            added += added_count(result) + (len(result.get("episodes", ())) if infer else 0)
            done += len(chunk)
            report(min(done, total), total)
            if stored is not None:
                stored()
    return ImportSummary(added, cancel is not None and cancel.is_cancelled, skipped)
