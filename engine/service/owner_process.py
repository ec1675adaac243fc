"""A store's owner in a child process of its own, so the parent (the desktop app) is only a client.

The engine's heavy work (embedding, spaCy, Chroma's writes, which keep the GIL for a whole call)
then never competes with the parent's event loop for its interpreter. The child opens the folder
as a `ServedMemory`, tells the parent it serves, and closes the store when the parent asks or
when the parent is gone (its end of the pipe closed, even after a kill). Started with the
"spawn" method, which works the same from source and from a frozen bundle.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from ..config import LociConfig
from ..errors import LociError, StoreError
from ..inference.shutdown import STORE, install_sigterm_exit, on_exit
from . import announce
from .opening import answers, lock_is_free

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 300.0  # opening may check and repair a large store first
STOP_TIMEOUT_S = 60.0  # the owner finishes the writes under way, then closes
OWNER_PROGRAM = "the Loci app"
OWNER_NICENESS = 5  # lower CPU priority than the parent: about a third of its share when both are busy


@dataclass(frozen=True, slots=True)
class OwnerReady:
    """What the child reports once it serves: its process id, its address and any repairs made."""

    pid: int
    url: str
    repairs: tuple[str, ...] = ()


class OwnerProcess:
    """Start with `start()`; `stop()` closes the store in the child and waits for it to exit."""

    def __init__(self, data_dir: str | Path, config: LociConfig | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.config = config or LociConfig()
        self._process: Any = None
        self._conn: Connection | None = None
        self._exitcode: int | None = None
        self.ready: OwnerReady | None = None  # what the child reported once it served
        self._unregister_stop: Callable[[], None] = lambda: None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        """The child's exit status once it ended (0: it closed the store cleanly), else None."""
        return self._exitcode if self._process is None else self._process.exitcode

    def start(self, timeout: float = READY_TIMEOUT_S) -> OwnerReady | None:
        """Start the owner and wait until it serves. None when the store already has an owner (the
        caller becomes its client as usual), or when the child died before a word or cannot be reached
        over loopback (the caller opens the store itself); StoreError when the child could not open the
        store, in the child's own words."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not lock_is_free(self.data_dir):
            return None
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        # daemon: should this program end without stop() (a crash, a test), multiprocessing terminates
        # the child at exit (an orderly close on SIGTERM) rather than waiting for it forever
        process = ctx.Process(target=serve_until_parent_leaves, args=(str(self.data_dir), self.config, child_end),
                              name="loci-store-owner", daemon=True)
        process.start()
        child_end.close()  # the parent sees EOF on its end once the child is gone
        self._process, self._conn = process, parent_end
        self._unregister_stop = on_exit(self._stop_at_exit, STORE)  # at exit, after the work that uses the store
        try:
            if not parent_end.poll(timeout):
                raise StoreError(f"The store owner did not start within {timeout:.0f} s.")
            kind, value = parent_end.recv()
        except (EOFError, OSError):
            process.join(5)
            self._forget()
            # lost a race to another program (then a client of it), or the child died without a word
            # (then the caller opens the store itself, and meets any real problem with it there)
            log.warning("the store owner process exited while starting (status %s)", process.exitcode)
            return None
        except StoreError:
            self.stop()
            raise
        if kind == "failed":
            process.join(10)
            self._forget()
            if value == "busy":
                return None
            raise StoreError(value)
        ann = announce.read(self.data_dir)
        if ann is None or not answers(self.data_dir, ann):  # e.g. no loopback network: open it in-process
            log.warning("the store owner process serves on %s, but this process cannot reach it; stopping it",
                        value["url"])
            self.stop()
            return None
        self.ready = OwnerReady(**value)
        return self.ready

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Ask the owner to close the store and wait; terminate it (an orderly shutdown too) if it hangs.
        Returns its exit status (0 when it closed cleanly)."""
        process, conn = self._process, self._conn
        if process is None:
            return None
        try:
            if conn is not None:
                conn.send(("stop", None))
        except OSError:
            pass  # already gone
        process.join(timeout)
        if process.is_alive():
            log.warning("the store owner (process %s) did not stop within %.0f s; terminating it", process.pid,
                        timeout)
            process.terminate()  # SIGTERM: the owner's orderly shutdown still closes the store
            process.join(timeout)
        code: int | None = process.exitcode
        self._forget()
        return code

    def _stop_at_exit(self) -> None:
        self.stop()

    def _forget(self) -> None:
        self._unregister_stop()
        if self._process is not None:
            self._exitcode = self._process.exitcode
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None


def serve_until_parent_leaves(data_dir: str, config: LociConfig, conn: Connection) -> None:
    """The child: own the store, report, serve until told to stop or until the parent is gone."""
    from .heap import cap_malloc_arenas
    from .owner import ServedMemory

    cap_malloc_arenas()  # before the store's threads start
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the parent's terminal is the parent's to handle
    install_sigterm_exit()  # terminate() closes the store in order (SystemExit through the finally below)
    sys.argv[:1] = [OWNER_PROGRAM]  # what the lock and the announcement tell other programs
    if hasattr(os, "nice"):  # the parent (a window) gets a core first when both want one
        os.nice(OWNER_NICENESS)
    try:
        memory = ServedMemory(data_dir, config)
    except LociError as exc:
        conn.send(("failed", "busy" if not lock_is_free(Path(data_dir)) and _served(data_dir)
                   else exc.user_message))
        raise SystemExit(1) from None
    try:
        conn.send(("ready", {"pid": os.getpid(), "url": memory.service_url or "",
                             "repairs": tuple(memory.open_report.repairs)}))
        try:
            conn.recv()  # ("stop", None), or EOFError when the parent has exited or was killed
        except (EOFError, OSError):
            log.info("the app that started this store owner is gone; closing the store")
    finally:
        memory.close()


def _served(data_dir: str) -> bool:
    ann = announce.read(data_dir)
    return ann is not None and ann.state == "serving"

