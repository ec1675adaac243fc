"""Moving a store's vectors to another precision of its model (fp32 <-> int8) in the background.

A store keeps the precision that built it (folder.store_embedder_config) and opens with it; when
the settings ask for another precision of the same model, a background thread re-embeds every
memory with the configured one into a new Chroma collection beside the one in use, in batches,
resting between them. Search and writes carry on with the old vectors meanwhile: embedding runs
outside the write lock, and writers wait only while a batch of new vectors is saved (one Chroma
writer at a time; a backup copies the folder under the same lock) and during the switch.

Each new vector carries the hash of the text it was made from, so the thread finds what changed
(added, edited, deleted memories) by comparing the ledger's hashes with its own, pass after pass;
a crash or a close leaves a half-built collection that the next open resumes the same way. When
only a few memories are left, the thread takes the write lock, embeds those, and switches: the
manifest records the new embedder and collection (the one durable step: before it the old
vectors are used, after it the new ones), the vector store, its in-memory mirror and the embedder
change over, and the old collection is dropped (a crash before that leaves it to the next open,
which drops it). A remote Chroma server is never moved.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..config import LociConfig
from ..errors import LociError, StoreError
from ..inference.embeddings import Embedder
from ..inference.onnx_embedder import default_embedder, effective_precision
from ..inference.switchable import SwitchableEmbedder
from .folder import store_embedder_config
from .ledger import Ledger
from .vector_index import VectorIndex
from .vectors import Manifest, SideCollection, VectorStore, vector_meta

log = logging.getLogger(__name__)

HASH_KEY = "text_hash"  # metadata of a re-embedded vector: the hash of the text it was made from
BATCH = 32  # memories per embed call: a close waits for one batch at most
FINAL = 4  # memories left when the switch takes the write lock (more after many passes)
START_DELAY_S = 2.0  # a short-lived open (a CLI command) does not start the work
DUTY = 0.6  # share of the time the thread works; it rests the remainder between batches

Watch = Callable[["ReembedStatus"], None]
Make = Callable[[Any], Embedder]  # EmbedderConfig -> the embedder it describes


@dataclass(frozen=True, slots=True)
class ReembedStatus:
    """Where moving the vectors to the configured precision stands.

    state: "none" (nothing to move), "waiting" (starts a moment after opening), "running",
    "done", "stopped" (closed first: the next open resumes), "failed" (error says why; search
    keeps the old vectors and the next open tries again).
    """

    state: str
    source: str = ""  # the embedder whose vectors are in use (before a switch)
    target: str = ""
    done: int = 0
    total: int = 0
    error: str | None = None
    seconds: float = 0.0  # time spent re-embedding so far in this session
    longest_lock_ms: float = 0.0  # the longest the switch held the write lock
    longest_save_ms: float = 0.0  # the longest it held the lock to save a batch of new vectors

    @property
    def is_active(self) -> bool:
        return self.state in ("waiting", "running")

    def describe(self) -> str:
        """One line a person can read."""
        old, new = _precision(self.source), _precision(self.target)
        if self.state == "none":
            return f"The vectors match the embedder settings ({old})."
        if self.state == "done":
            return f"The memories were re-embedded with the {new} embedding model ({self.total} memories)."
        if self.state == "failed":
            return (f"Re-embedding the memories with the {new} model failed: {self.error} Search uses the "
                    f"{old} vectors; Loci tries again when the store next opens.")
        if self.state == "stopped":
            return (f"Re-embedding the memories with the {new} model paused at {self.done}/{self.total}; "
                    "it resumes when the store next opens.")
        return (f"Re-embedding the memories with the {new} model in the background: {self.done}/{self.total} "
                f"(search uses the {old} vectors until then).")


def _precision(embedder: str) -> str:
    return embedder.partition("@")[2] or "fp32"


def open_embedder(data_dir: Path, config: LociConfig, given: Embedder | None,
                  make: Make = default_embedder) -> Embedder:
    """The embedder a store opens with: the caller's, else the one its vectors were made by,
    switchable when the settings ask for another precision of it (then `Reembed` moves it)."""
    if given is not None:
        return given
    settings = store_embedder_config(data_dir, config.embedder)
    embedder: Embedder = make(settings)
    if settings.precision != effective_precision(config.embedder) and not config.store.chroma_host:
        return SwitchableEmbedder(embedder)
    return embedder


class Reembed:
    """The background move of one open store's vectors (see the module docstring)."""

    def __init__(self, data_dir: Path, config: LociConfig, ledger: Ledger, vectors: VectorStore,
                 embedder: Embedder, lock: threading.RLock, make: Make = default_embedder, *,
                 start_delay: float | None = None) -> None:
        self._make = make
        self._data_dir = data_dir
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._lock = lock
        precision = effective_precision(config.embedder)
        self._target_config = replace(config.embedder, precision=precision)
        self._delay = START_DELAY_S if start_delay is None else start_delay
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # someone waits: no delay, no rest between batches
        self._finished = threading.Event()
        self._watchers: list[Watch] = []
        self._watch_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._worked = 0.0
        self._held = 0.0  # the longest the thread held the write lock to save a batch
        moving = isinstance(embedder, SwitchableEmbedder) and not vectors.is_remote
        target = f"{embedder.name.partition('@')[0]}{'' if precision == 'fp32' else '@' + precision}"
        self._status = ReembedStatus("waiting" if moving else "none", embedder.name, target if moving else "")
        base = config.store.collection_name
        self._side = next(n for n in (f"{base}-{precision}", base, f"{base}-{precision}-2")
                          if n != vectors.collection_name)
        leftovers = [] if vectors.is_remote else self._leftovers(base, keep=self._side if moving else None)
        if moving or leftovers:
            self._thread = threading.Thread(target=self._run, args=(moving, leftovers), daemon=True,
                                            name="loci-reembed")
            self._thread.start()
        else:
            self._finished.set()

    # -- the facade's side ---------------------------------------------------------------
    def status(self, watch: Watch | None = None, wait: float | None = 0.0) -> ReembedStatus:
        """The status now; `watch` hears of every change from the thread; `wait` seconds (None:
        until it ends) blocks while the move runs, and starts it at once without rests."""
        if watch is not None:
            with self._watch_lock:
                self._watchers.append(watch)
        if wait is None or wait > 0:
            self._hurry.set()
            self._finished.wait(wait)
        return self._status

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch under way (the next open resumes); called by close and at exit."""
        self._stopping.set()
        self._hurry.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the re-embed thread is still busy after %.0f s", timeout)

    # -- the thread ----------------------------------------------------------------------
    def _leftovers(self, base: str, keep: str | None) -> list[str]:
        """Collections a finished or abandoned move left in the folder."""
        try:
            names = self._vectors.collection_names()
        except StoreError as exc:
            log.warning("cannot list the vector collections: %s", exc)
            return []
        ours = {base, f"{base}-fp32", f"{base}-int8", f"{base}-fp32-2", f"{base}-int8-2"}
        return [n for n in names if n in ours and n not in (self._vectors.collection_name, keep)]

    def _set(self, **changes: Any) -> None:
        self._status = replace(self._status, seconds=round(self._worked, 2),
                               longest_save_ms=round(self._held * 1000, 1), **changes)
        with self._watch_lock:
            watchers = list(self._watchers)
        for watch in watchers:
            try:
                watch(self._status)
            except Exception:  # noqa: BLE001 - a front end's callback must not end the move
                log.exception("a re-embed progress callback failed")

    def _run(self, moving: bool, leftovers: list[str]) -> None:
        try:
            for name in leftovers:
                with self._lock:
                    self._vectors.drop(name)
                log.info("dropped the vector collection %s left by an earlier re-embed", name)
            if not moving:
                return
            self._hurry.wait(self._delay)
            if self._stopping.is_set():
                self._set(state="stopped")
                return
            self._set(state="running")
            self._move()
        except LociError as exc:
            log.warning("re-embedding the store in %s stopped: %s", self._data_dir, exc)
            self._set(state="failed", error=str(exc))
        finally:
            self._finished.set()

    def _move(self) -> None:
        target = self._make(self._target_config)
        if target.name != self._status.target:
            raise StoreError(f"The {self._target_config.precision} embedding model could not be made "
                             f"(got '{target.name}').")
        started = time.perf_counter()
        getattr(target, "load", lambda: None)()
        self._worked += time.perf_counter() - started
        side, built, index = self._resume(target.dimension)
        passes = 0
        while True:
            if self._stopping.is_set():
                self._set(state="stopped")
                return
            want = self._ledger.hashes()
            stale = [i for i, h in want.items() if built.get(i) != h]
            gone = [i for i in built if i not in want]
            self._set(done=len(want) - len(stale), total=len(want))
            passes += 1
            if len(stale) <= FINAL * (1 if passes < 20 else 16):
                break
            if gone:
                with self._lock:
                    side.delete(gone)
                index.remove(gone)
                for i in gone:
                    built.pop(i, None)
            for start in range(0, len(stale), BATCH):
                if self._stopping.is_set():
                    self._set(state="stopped")
                    return
                began = time.perf_counter()
                self._embed(target, side, index, built, stale[start:start + BATCH], want)
                spent = time.perf_counter() - began
                self._worked += spent
                self._set(done=self._status.done + len(stale[start:start + BATCH]))
                if not self._hurry.is_set():
                    self._stopping.wait(spent * (1 - DUTY) / DUTY)
        self._switch(target, side, index, built)

    def _resume(self, dimension: int) -> tuple[SideCollection, dict[str, str], VectorIndex]:
        """The collection being built, with what it holds already (a damaged one starts again)."""
        index = VectorIndex(dimension)
        built: dict[str, str] = {}
        side = self._vectors.side(self._side)
        try:
            for ids, vectors, metas in side.pages():
                index.add(ids, vectors, metas)
                built.update((i, str(m.get(HASH_KEY, ""))) for i, m in zip(ids, metas))
        except StoreError as exc:
            log.warning("the half-built vector collection %s is unreadable (%s); starting it again",
                        self._side, exc)
            with self._lock:
                self._vectors.drop(self._side)
            return self._vectors.side(self._side), {}, VectorIndex(dimension)
        if built:
            log.info("resuming the re-embed of %s: %d vectors already made", self._data_dir, len(built))
        return side, built, index

    def _embed(self, target: Embedder, side: SideCollection, index: VectorIndex, built: dict[str, str],
               ids: list[str], want: dict[str, str]) -> None:
        """Embed these memories into the new collection. The hash recorded is the one read before
        the text: a text edited in between is older than its hash says, and is embedded again."""
        rows = self._ledger.get_many(ids)
        records = [rows[i] for i in ids if i in rows]
        if not records:
            return
        vectors = target.embed_batch([r.memory for r in records])
        metas = [{**vector_meta(r), HASH_KEY: want[r.id]} for r in records]
        with self._lock:  # one Chroma writer at a time (a backup copies the folder under this lock)
            began = time.perf_counter()
            side.upsert([r.id for r in records], vectors, metas)
            self._held = max(self._held, time.perf_counter() - began)
        index.add([r.id for r in records], vectors, metas)
        built.update((r.id, want[r.id]) for r in records)

    def _switch(self, target: Embedder, side: SideCollection, index: VectorIndex,
                built: dict[str, str]) -> None:
        """Under the write lock: embed what is left, record the switch, change over; then drop the old."""
        assert isinstance(self._embedder, SwitchableEmbedder)
        with self._lock:
            began = time.perf_counter()
            want = self._ledger.hashes()
            gone = [i for i in built if i not in want]
            stale = [i for i, h in want.items() if built.get(i) != h]
            if gone:
                side.delete(gone)
                index.remove(gone)
            for start in range(0, len(stale), BATCH):
                self._embed(target, side, index, built, stale[start:start + BATCH], want)
            self._vectors.state.mark_dirty()  # the mirror's snapshot on disk is of the old vectors
            Manifest(self._data_dir).switch(target.name, target.dimension, side.name)
            old = self._vectors.adopt(side, index)
            self._embedder.switch(target)
            held = (time.perf_counter() - began) * 1000
        self._worked += held / 1000
        log.info("the store in %s now uses %s (%d memories re-embedded in %.1f s; writes waited %.0f ms)",
                 self._data_dir, target.name, len(want), self._worked, held)
        self._set(state="done", done=len(want), total=len(want), longest_lock_ms=round(held, 1))
        try:
            with self._lock:
                self._vectors.drop(old)
        except StoreError as exc:  # the next open drops it
            log.warning("the old vector collection %s is left for the next open: %s", old, exc)
