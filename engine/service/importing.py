"""Storing a parsed conversation: sessions -> add() calls, progress counted in messages, cancellable between steps.

No Qt here: the GUI's import runs this in its ingestion worker; any front end can.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from ..records import EPISODE, Scope

RAW_CHUNK = 100  # messages per add() when storing without the model
LANES = 2  # add() calls of different sessions under way at once (one embeds or extracts, one saves)

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
                    stored: Callable[[], None] | None = None, lanes: int = LANES) -> ImportSummary:
    """Store every session (one time and run id each) and return what was added.

    progress(done, total) counts messages, from (0, total) to (total, total), moving within a
    session while the model extracts; stored() is called after each add(), so a view can show
    memories as they land. Cancel stops before the next add() (the ones under way finish); a
    cancel inside an extraction raises engine.extraction.Cancelled as add() does. `lanes` adds of
    different sessions run at once (see _store).
    """
    total = max(sum(len(s.messages) for s in sessions), 1)
    work = (Work(session_run_id(scope.run_id, s.run_id, i, len(sessions)), s.timestamp, s.messages)
            for i, s in enumerate(sessions))
    added, _skipped = _store(memory, work, scope, total=total, infer=infer, progress=progress, cancel=cancel,
                             stored=stored, lanes=lanes, with_episodes=False)
    return ImportSummary(added, cancelled=cancel is not None and cancel.is_cancelled)


def already_stored(memory: Writer, scope: Scope, run_id: str) -> int:
    """How many messages of a session (its own run id) an earlier import stored: each add() commits
    whole, in order, so they are the session's first ones."""
    return memory.count({**Scope(scope.user_id, scope.agent_id, None).as_dict(), "run_id": run_id,
                         "memory_type": EPISODE})


def import_resumable(memory: Writer, sessions: Iterable[Session], scope: Scope, *, total: int, infer: bool,
                     progress: Progress | None = None, cancel: Cancel | None = None,
                     stored: Callable[[], None] | None = None, lanes: int = LANES) -> ImportSummary:
    """Store sessions that each carry their own run id (one per conversation of a chat export),
    read lazily (a stream), skipping the messages an earlier import of the same file stored.

    An interrupted import run again continues where it stopped, and a finished one adds nothing.
    progress(done, total) counts messages, the skipped ones included; the scope's run id is not
    used (every conversation is its own session). Cancel stops before the next add() (the ones
    under way finish). `lanes` adds of different sessions run at once (see _store).
    """
    owner = Scope(scope.user_id, scope.agent_id, None)

    def work() -> Iterator[Work]:
        for session in sessions:
            messages, have = session.messages, 0
            if session.run_id:
                have = min(already_stored(memory, owner, session.run_id), len(messages))
            yield Work(session.run_id, session.timestamp, messages[have:], have)
    added, skipped = _store(memory, work(), owner, total=max(total, 1), infer=infer, progress=progress,
                            cancel=cancel, stored=stored, lanes=lanes, with_episodes=True)
    return ImportSummary(added, cancel is not None and cancel.is_cancelled, skipped)


@dataclass(frozen=True, slots=True)
class Work:
    """One session to store: its run id and time, the messages left, and how many were already stored."""

    run_id: str | None
    timestamp: datetime | None
    messages: Sequence[Mapping[str, Any]]
    skipped: int = 0


def _store(memory: Writer, work: Iterator[Work], scope: Scope, *, total: int, infer: bool,
           progress: Progress | None, cancel: Cancel | None, stored: Callable[[], None] | None,
           lanes: int, with_episodes: bool) -> tuple[int, int]:
    """The add() calls of every session, in order within a session; returns (added, skipped).

    `lanes` add() calls of different sessions run at once, so one is embedded while another is
    saved (or, with the model, extracted); a session's own adds stay in order (an add starts once
    the one before it is saved), which is what resuming counts on. stored() is called from the
    caller's thread; progress from the adds' threads too, one call at a time, never going back.
    An add that fails is raised once the ones under way beside it are saved; nothing new starts.
    """
    meter = _Meter(progress, total)
    lanes = max(1, lanes)
    added = skipped = 0
    ready: deque[tuple[Work, deque[list[Mapping[str, Any]]]]] = deque()
    running: dict[Future[dict[str, Any]], tuple[Work, deque[list[Mapping[str, Any]]], int, object]] = {}
    failure: BaseException | None = None

    def cancelled() -> bool:
        return cancel is not None and cancel.is_cancelled

    def next_session() -> bool:
        """Queue the next session with something left to store; False when there is none."""
        nonlocal skipped
        for item in work:
            if item.skipped:
                skipped += item.skipped
                meter.finish(None, item.skipped)
            if item.messages:
                ready.append((item, deque(chunks(item.messages, infer))))
                return True
        return False

    def add(item: Work, chunk: list[Mapping[str, Any]], key: object) -> dict[str, Any]:
        def step(d: int, t: int) -> None:
            meter.part(key, min(d, t) * len(chunk) // t if t else 0)
        return memory.add(chunk, user_id=scope.user_id, agent_id=scope.agent_id, run_id=item.run_id,
                          timestamp=item.timestamp, infer=infer, progress=step if infer else None,
                          cancel=cancel if infer else None)

    with ThreadPoolExecutor(lanes, thread_name_prefix="loci-import") as pool:
        while True:
            while failure is None and not cancelled() and len(running) < lanes and (ready or next_session()):
                item, left = ready.popleft()
                chunk = left.popleft()
                key = object()  # this add's share of the progress while it runs
                running[pool.submit(add, item, chunk, key)] = (item, left, len(chunk), key)
            if not running:
                return added, skipped
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for job in finished:
                item, left, size, key = running.pop(job)
                try:
                    result = job.result()
                except BaseException as exc:  # noqa: BLE001 (raised once the adds under way are saved)
                    failure = failure or exc
                    continue
                added += added_count(result) + (len(result.get("episodes", ())) if with_episodes and infer else 0)
                meter.finish(key, size)
                if stored is not None:
                    stored()
                if left:
                    ready.appendleft((item, left))  # the session's next add, now that this one is saved
            if failure is not None and not running:
                raise failure


class _Meter:
    """Messages done for progress(done, total): whole adds plus the share of those under way."""

    def __init__(self, report: Progress | None, total: int) -> None:
        self._report = report or (lambda _done, _total: None)
        self._total = total
        self._done = 0
        self._parts: dict[object, int] = {}
        self._shown = -1
        self._lock = threading.Lock()
        self._show()

    def part(self, key: object, messages: int) -> None:
        with self._lock:
            self._parts[key] = messages
            self._show()

    def finish(self, key: object, messages: int) -> None:
        with self._lock:
            self._parts.pop(key, None)
            self._done += messages
            self._show()

    def _show(self) -> None:
        now = min(self._done + sum(self._parts.values()), self._total)
        if now > self._shown:
            self._shown = now
            self._report(now, self._total)
