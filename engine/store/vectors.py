"""Chroma vector collection, the store manifest and the single-writer lock of a data folder."""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from ..inference.offline import enforce_offline
from ..errors import StoreError
from ..records import MemoryRecord
from .vector_index import VectorIndex

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LOCK_FILE = "loci.lock"
CHROMA_DIR = "chroma"

# A write to Chroma starts only with this much free space on its disk: Chroma can hang for
# ever inside a write that runs out of space, so Loci refuses well before that point.
MIN_FREE_BYTES = 32 * 1024 * 1024
# A Chroma call that has not returned after this long (plus a little per vector) is abandoned.
WRITE_TIMEOUT_S = 60.0
# Vectors per Chroma upsert. Each call has a fixed cost (its log write: 16-vector calls stored 3,072
# vectors 3-4 times slower than 128-vector calls), and Chroma's Rust core holds the GIL for a whole
# call, so a big write is cut into calls of this size. The desktop app keeps its store in a process
# of its own (service/owner_process.py), so these GIL holds no longer reach its window.
UPSERT_SLICE = 128

T = TypeVar("T")


def chroma_errors() -> tuple[type[BaseException], ...]:
    """The exceptions Chroma raises for faults of its files or disk (anything else is a bug)."""
    from chromadb.errors import ChromaError

    return (ChromaError, OSError, sqlite3.Error)


def damaged_hint(data_dir: Path) -> str:
    return (f"Run `loci doctor` to check and repair the store at {data_dir}, or `loci restore` to "
            "go back to a backup.")


class _RefuseToEmbed:
    """Chroma's embedding function slot: Loci always passes vectors, so a call here is a bug.

    Giving Chroma this object keeps it from creating its default function, which would
    download an ONNX model.
    """

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002 (Chroma's name)
        raise RuntimeError("Loci passes embeddings explicitly; Chroma must not embed text.")

    @staticmethod
    def name() -> str:
        return "loci-external"

    def is_legacy(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "_RefuseToEmbed":
        return _RefuseToEmbed()

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]


class Manifest:
    """What built a store: embedder name and dimension, schema version."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / MANIFEST

    def recorded_embedder(self) -> str | None:
        """The embedder name the manifest records, None when there is none or it cannot be read
        (check_or_write says what is wrong)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        name = data.get("embedder") if isinstance(data, dict) else None
        return name if isinstance(name, str) else None

    def recorded_collection(self) -> str | None:
        """The Chroma collection holding the vectors, when a re-embed moved them out of the
        configured one (None: the configured collection)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        name = data.get("collection") if isinstance(data, dict) else None
        return name if isinstance(name, str) and name else None

    def switch(self, embedder: str, dimension: int, collection: str) -> None:
        """Record (atomically, and on disk before returning) that the vectors now live in
        `collection`, made by `embedder`: the moment a re-embed takes effect."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {"schema_version": SCHEMA_VERSION}
        data.update(embedder=embedder, dimension=dimension, collection=collection,
                    switched_at=datetime.now(timezone.utc).isoformat())
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data, indent=2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"Cannot write the store manifest {self.path}: {exc}. Is the disk full?") from exc

    def check_or_write(self, embedder: str, dimension: int) -> None:
        if not self.path.exists():
            text = json.dumps({"schema_version": SCHEMA_VERSION, "embedder": embedder,
                               "dimension": dimension,
                               "created_at": datetime.now(timezone.utc).isoformat()}, indent=2)
            tmp = self.path.with_suffix(".tmp")
            try:  # written whole or not at all
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"Cannot write the store manifest {self.path}: {exc}. "
                                 "Is the disk full?") from exc
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"The store manifest {self.path} is unreadable ({exc}). "
                             "Restore it from a backup.") from exc
        if not isinstance(data, dict):
            raise StoreError(f"The store manifest {self.path} is damaged. " + damaged_hint(self.path.parent))
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise StoreError(f"The store at {self.path.parent} was made by a newer Loci; update Loci.")
        try:
            built_dimension = int(data.get("dimension", 0))
        except (TypeError, ValueError):
            built_dimension = -1
        built = str(data.get("embedder"))
        if built != embedder and built.split("@")[0] == embedder.split("@")[0]:  # fp32 against int8
            precision = built.partition("@")[2] or "fp32"
            raise StoreError(
                f"The store at {self.path.parent} was built with the {precision} embedding model "
                f"'{built}', but Loci is set to use '{embedder}'. Set embedder.precision to "
                f"\"{precision}\" to open it, or export the memories and import them into a new data folder.")
        if built != embedder or built_dimension != dimension:
            raise StoreError(
                f"The store at {self.path.parent} was built with the embedding model "
                f"'{data.get('embedder')}' ({data.get('dimension')} dims), but Loci is set to use "
                f"'{embedder}' ({dimension} dims). Switch the embedding model back, or export the "
                "memories and import them into a new data folder.")


class WriterLock:
    """An exclusive lock on a data folder, naming its holder when someone else has it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fh: Any = None

    def acquire(self) -> None:
        try:
            fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"Cannot open the lock file {self.path}: {exc}. Check that the data "
                             "folder is writable and the disk is not full.") from exc
        try:
            _lock_file(fh)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another program"
            fh.close()
            try:
                info = json.loads(holder)
                holder = (f"{info.get('program', 'a program')} (process {info.get('pid')} on "
                          f"{info.get('host')}, since {info.get('since')})")
            except ValueError:
                pass
            raise StoreError(f"The memory store at {self.path.parent} is already open for writing by "
                             f"{holder}. Close that program first, or use another data folder "
                             "(set LOCI_HOME).") from None
        self._fh = fh
        try:  # who holds the lock is only a courtesy for the next opener: a full disk may refuse it
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "program": Path(sys.argv[0]).name or "python",
                                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
            fh.flush()
        except OSError as exc:
            log.warning("could not record the lock holder in %s: %s", self.path, exc)

    def release(self) -> None:
        if self._fh is not None:
            try:
                self._fh.seek(0)
                self._fh.truncate()
                _unlock_file(self._fh)
            except OSError as exc:  # closing the file below releases the lock anyway
                log.warning("could not unlock %s cleanly: %s", self.path, exc)
            finally:
                try:
                    self._fh.close()
                except OSError:
                    pass
                self._fh = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fh: Any) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock_file(fh: Any) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock_file(fh: Any) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(fh: Any) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class _DamagedChroma(OSError):
    """Chroma could not open its folder (seen as the OSError of a damaged file)."""


def forget_chroma_system(path: Path) -> None:
    """Drop Chroma's cached system for a folder (a failed open leaves a dead one that later opens reuse)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(str(path), None)
    SharedSystemClient._identifier_to_refcount.pop(str(path), None)


def vector_meta(rec: MemoryRecord) -> dict[str, Any]:
    """What Chroma keeps beside a memory's vector: its scope keys and message time."""
    meta: dict[str, Any] = dict(rec.scope.as_dict())
    meta["ts"] = int(rec.timestamp.timestamp())
    return meta


def free_bytes(path: Path) -> int:
    """Free space on the disk holding path (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


class VectorStore:
    """One Chroma collection of memory vectors (cosine), with scope keys as metadata, and an
    in-memory mirror of it that searches run on (engine/store/vector_index.py).

    Every call that writes runs in a worker thread bounded by a timeout, after a free-space
    check: on a full disk Chroma can block for ever inside a write, holding its own locks.
    A call that times out is abandoned and the store is marked unusable, so later calls fail
    at once with a StoreError instead of queueing behind it; SQLite stays the source of truth
    and the next open repairs the vectors. Only Chroma's, the OS's and SQLite's errors become
    StoreErrors; anything else is a bug and propagates.

    Writes reach Chroma before the call returns (no write-behind): the mirror is updated only
    after Chroma accepted them, and `state` records whether the mirror's snapshot on disk still
    matches Chroma (a clean close), so the next open loads it instead of reading every vector.
    With `host` the vectors live on a Chroma server (`chroma run`) instead of the folder; other
    clients may write there, so no mirror is kept and searches ask the server.
    """

    def __init__(self, data_dir: Path, collection: str = "memories", *, host: str | None = None,
                 port: int = 8000, ssl: bool = False, min_free_bytes: int | None = None,
                 write_timeout: float | None = None) -> None:
        enforce_offline()
        self.data_dir = data_dir
        self.path = data_dir / CHROMA_DIR
        self.is_remote = host is not None
        self._where = f"the Chroma server at {host}:{port}" if host else str(self.path)
        self.min_free_bytes = MIN_FREE_BYTES if min_free_bytes is None else min_free_bytes
        self.write_timeout = WRITE_TIMEOUT_S if write_timeout is None else write_timeout
        self._broken: str | None = None
        # count() is cached until the next write (a server may be written by others: never)
        self._writes = 0
        self._writing = 0
        self._count: tuple[int, int] | None = None
        self._client: Any = None
        self._collection: Any = None
        self.collection_name = collection
        # The in-memory mirror used for search; None until opened, and never for a server.
        self.index: VectorIndex | None = None
        self._index_lock = threading.RLock()  # writers wait while the mirror is being built
        self.state = IndexState(data_dir / "index")

        def open_collection() -> None:
            import chromadb
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False, allow_reset=True)
            if host:
                try:
                    self._client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
                    self._collection = self._client.get_or_create_collection(
                        name=collection, embedding_function=_RefuseToEmbed(),  # type: ignore[arg-type]
                        metadata={"hnsw:space": "cosine"})
                except Exception as exc:  # connection refused, TLS, HTTP errors: all say "unreachable"
                    raise StoreError(f"Cannot open the vector database at {self._where}: {exc}. "
                                     "Check that the Chroma server is running.") from exc
                return
            try:
                self._client = chromadb.PersistentClient(path=str(self.path), settings=settings)
                self._collection = self._client.get_or_create_collection(
                    name=collection, embedding_function=_RefuseToEmbed(),  # type: ignore[arg-type]
                    metadata={"hnsw:space": "cosine"})
            except (ValueError, AttributeError) as exc:
                # Chroma 1.x reports a damaged chroma.sqlite3 as "Could not connect to tenant"
                # (ValueError), and its clean-up after that fails with an AttributeError; both
                # leave a dead system in its per-path cache, which must go.
                forget_chroma_system(self.path)
                raise _DamagedChroma(str(exc)) from exc

        # Opening an existing folder writes little: it must work on a full disk, for reading.
        self._run("open the vector database", open_collection, write=True, opening=True,
                  check_space=not self.is_remote and not self.path.exists())

    def close(self) -> None:
        """Let go of Chroma's files (a store that hung is left alone: its thread still holds them)."""
        if self._client is not None and self._broken is None:
            try:
                self._client.close()
            except chroma_errors() as exc:
                log.warning("closing the vector database: %s", exc)
        self._client = None
        self._collection = None
        self._broken = self._broken or "The vector database has been closed."

    # -- bounded calls ----------------------------------------------------------------
    @property
    def is_broken(self) -> bool:
        return self._broken is not None

    def _run(self, what: str, fn: Callable[[], T], *, write: bool = False, items: int = 0,
             opening: bool = False, check_space: bool = True) -> T:
        if self._broken is not None:
            raise StoreError(self._broken)
        if write and check_space:
            self._check_space(what, items)
        if not write:
            try:
                return fn()
            except chroma_errors() as exc:
                raise self._error(what, exc, opening) from exc
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        worker = threading.Thread(target=work, name="loci-chroma-write", daemon=True)
        worker.start()
        worker.join(self.write_timeout + 0.01 * items)
        if worker.is_alive():
            self._broken = (f"The vector database in {self._where} stopped responding while trying to "
                            f"{what} (is the disk full or failing?). Nothing more was saved; free "
                            "some space and restart Loci: the store repairs itself when it opens.")
            log.error("chroma call to %s abandoned after %.0f s", what, self.write_timeout)
            raise StoreError(self._broken)
        if "error" in box:
            failure: BaseException = box["error"]
            if isinstance(failure, chroma_errors()):
                raise self._error(what, failure, opening) from failure
            raise failure
        return box["value"]  # type: ignore[no-any-return]

    def _check_space(self, what: str, items: int) -> None:
        if self.is_remote:  # the server's disk is the server's business
            return
        try:
            free = free_bytes(self.path)
        except OSError as exc:
            raise StoreError(f"Cannot reach the data folder {self.data_dir}: {exc}") from exc
        needed = self.min_free_bytes + items * 16 * 1024
        if free < needed:
            raise StoreError(f"Not enough free disk space to {what}: {free // 2**20} MB free in "
                             f"{self.data_dir}, Loci needs at least {needed // 2**20 + 1} MB. Free some "
                             "space and try again; nothing was changed.")

    def _error(self, what: str, exc: BaseException, opening: bool) -> StoreError:
        text = str(exc) or type(exc).__name__
        try:  # Chroma's messages on a full disk rarely say so ("Failed to apply logs ...")
            nearly_full = not self.is_remote and free_bytes(self.path) < 4 * 1024 * 1024
        except OSError:
            nearly_full = False
        full = nearly_full or isinstance(exc, OSError) and exc.errno == 28 or \
            "disk is full" in text or "No space left" in text
        if full:
            return StoreError(f"Could not {what}: the disk holding {self.data_dir} is full ({text}). "
                              "Free some space and try again.")
        hint = damaged_hint(self.data_dir) if opening or not isinstance(exc, OSError) else \
            "Check that the data folder is writable."
        return StoreError(f"Could not {what} in {self._where}: {text}. {hint}")

    # -- writes ------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        if not ids:
            return
        clean = [{k: v for k, v in m.items() if v is not None} or {"_": 0} for m in metadatas]
        array = np.asarray(vectors, dtype=np.float32)
        with self._index_lock, self._counting():
            self._mark_dirty()
            for start in range(0, len(ids), UPSERT_SLICE):
                part = slice(start, start + UPSERT_SLICE)
                self._run("save memory vectors", lambda part=part: self._collection.upsert(  # type: ignore[misc]
                    ids=list(ids[part]), embeddings=array[part], metadatas=clean[part]),
                    write=True, items=len(ids[part]))
                if self.index is not None:  # the mirror follows what Chroma accepted
                    self.index.add(list(ids[part]), array[part], clean[part])

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._index_lock, self._counting():
            self._mark_dirty()
            for start in range(0, len(ids), 1000):
                chunk = list(ids[start:start + 1000])
                # no free-space check: a delete is how a person frees space on a full disk
                self._run("delete memory vectors", lambda chunk=chunk: self._collection.delete(  # type: ignore[misc]
                    ids=chunk), write=True, items=len(chunk), check_space=False)
                if self.index is not None:
                    self.index.remove(chunk)

    def wipe(self) -> None:
        self.delete(self.ids())

    @contextmanager
    def _counting(self) -> Iterator[None]:
        """Around a write: a count read before or during it is not reused after it."""
        self._writing += 1
        self._writes += 1
        try:
            yield
        finally:
            self._writes += 1
            self._writing -= 1

    def _mark_dirty(self) -> None:
        try:
            self.state.mark_dirty()
        except OSError as exc:  # a snapshot that cannot be marked stale must not be trusted either
            raise StoreError(f"Cannot update the search index state in {self.state.folder}: {exc}. "
                             "Check that the data folder is writable.") from exc

    # -- the in-memory mirror ------------------------------------------------------------
    def open_index(self, dimension: int, trusted: bool | None = None) -> VectorIndex | None:
        """Load (or build from Chroma) the in-memory mirror; writers wait meanwhile, so no
        write can fall between reading Chroma and publishing the mirror. None for a server.

        The snapshot is used only when `trusted` (default: the state says clean) and it holds
        as many vectors as Chroma; otherwise every vector is read back from Chroma."""
        if self.is_remote:
            return None
        with self._index_lock:
            if self.index is not None:
                return self.index
            if trusted is None:
                trusted = self.state.is_clean()
            loaded = VectorIndex.load(self.state.folder, dimension) if trusted else None
            if loaded is not None and len(loaded) == self.count():
                index = loaded
            else:
                index = VectorIndex(dimension)
                for ids, vectors, metas in self._raw_pages(include=["embeddings", "metadatas"]):
                    index.add(ids, vectors, metas)
            self.index = index
            return index

    def save_index(self) -> None:
        """Write the mirror's snapshot (called on close, after the keyword index is saved)."""
        with self._index_lock:
            if self.index is not None:
                self.index.save(self.state.folder)

    def search(self, vector: np.ndarray, n: int, scope: dict[str, str]) -> list[tuple[str, float]]:
        """Nearest ids inside a scope with cosine similarity, from the mirror when open."""
        index = self.index
        if index is not None:
            if self._broken is not None:
                raise StoreError(self._broken)
            return index.search(vector, scope, n)
        clauses = [{k: {"$eq": v}} for k, v in scope.items()]
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        return self.query(vector, n, where)

    def _raw_pages(self, include: list[str], size: int = 5000, collection: Any = None) -> Any:
        source = collection if collection is not None else self._collection
        offset = 0
        while True:
            res = self._run("read memory vectors", lambda offset=offset: source.get(  # type: ignore[misc]
                include=include, limit=size, offset=offset))
            if not res["ids"]:
                return
            yield res["ids"], np.asarray(res["embeddings"], dtype=np.float32), res["metadatas"]
            if len(res["ids"]) < size:
                return
            offset += len(res["ids"])

    # -- other collections of the folder (a re-embed builds the next vectors beside these) ----
    def side(self, name: str) -> "SideCollection":
        """Another collection in this Chroma folder, made when missing (never the one in use)."""
        if name == self.collection_name or self.is_remote:
            raise StoreError(f"Cannot build the vector collection '{name}' beside the one in use.")

        def make() -> Any:
            return self._client.get_or_create_collection(
                name=name, embedding_function=_RefuseToEmbed(),  # type: ignore[arg-type]
                metadata={"hnsw:space": "cosine"})
        return SideCollection(self, name, self._run("open a vector collection", make, write=True))

    def collection_names(self) -> list[str]:
        """The collections in this Chroma folder."""
        found = self._run("list the vector collections", lambda: self._client.list_collections())
        return [c if isinstance(c, str) else c.name for c in found]

    def drop(self, name: str) -> None:
        """Delete another collection of the folder (a finished or abandoned re-embed's leftover)."""
        if name == self.collection_name:
            raise StoreError(f"The vector collection '{name}' is in use and cannot be dropped.")
        self._run("delete a vector collection", lambda: self._client.delete_collection(name=name),
                  write=True, check_space=False)

    def adopt(self, side: "SideCollection", index: VectorIndex | None) -> str:
        """Make `side` (with its mirror) the collection every read and write uses; returns the
        name of the one it replaces, which stays in the folder until dropped."""
        with self._index_lock, self._counting():
            self._mark_dirty()
            old = self.collection_name
            self._collection, self.collection_name = side.collection, side.name
            self.index = index
            self._count = None
        return old

    # -- reads -------------------------------------------------------------------------
    def query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Nearest ids with cosine similarity (1 - distance), best first (asks Chroma itself)."""
        total = self.count()
        if total == 0 or n <= 0:
            return []
        res = self._run("search the memory vectors", lambda: self._collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=min(n, total),
            where=where, include=["distances"]))
        ids = res["ids"][0]
        dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists)]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        res = self._run("read memory vectors",
                        lambda: self._collection.get(ids=list(ids), include=["embeddings"]))
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(res["ids"], res["embeddings"])}

    def ids(self) -> list[str]:
        out: list[str] = []
        offset = 0
        while True:
            chunk = self._run("list memory vectors", lambda offset=offset: self._collection.get(  # type: ignore[misc]
                include=[], limit=5000, offset=offset)["ids"])
            out.extend(chunk)
            if len(chunk) < 5000:
                return out
            offset += len(chunk)

    def count(self) -> int:
        """Vectors in the collection. Chroma counts by scanning (~0.1 s at 100k), so the answer is
        kept until the next write; a count read while a write ran is not kept."""
        cached = self._count
        if cached is not None and cached[0] == self._writes:
            return cached[1]
        writes = self._writes
        value = int(self._run("count memory vectors", lambda: self._collection.count()))
        if not self.is_remote and writes == self._writes and not self._writing:
            self._count = (writes, value)
        return value

    def probe(self) -> None:
        """Read one vector back and search with it, so a damaged index shows itself now."""
        if self.count() == 0:
            return
        first = self._run("read memory vectors", lambda: self._collection.get(
            include=["embeddings"], limit=1))
        if first["ids"]:
            self.query(np.asarray(first["embeddings"][0], dtype=np.float32), 1)


class SideCollection:
    """A collection being filled beside the one in use, through its store's bounded calls."""

    def __init__(self, store: VectorStore, name: str, collection: Any) -> None:
        self.store = store
        self.name = name
        self.collection = collection

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        clean = [{k: v for k, v in m.items() if v is not None} or {"_": 0} for m in metadatas]
        array = np.asarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), UPSERT_SLICE):  # bounded calls: Chroma holds the GIL in each
            part = slice(start, start + UPSERT_SLICE)
            self.store._run("save memory vectors", lambda part=part: self.collection.upsert(  # type: ignore[misc]
                ids=list(ids[part]), embeddings=array[part], metadatas=clean[part]),
                write=True, items=len(ids[part]))

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 1000):
            chunk = list(ids[start:start + 1000])
            self.store._run("delete memory vectors", lambda chunk=chunk: self.collection.delete(  # type: ignore[misc]
                ids=chunk), write=True, check_space=False)

    def pages(self) -> Iterator[tuple[list[str], np.ndarray, list[dict[str, Any]]]]:
        """(ids, vectors, metadatas) of every vector, a page at a time."""
        yield from self.store._raw_pages(["embeddings", "metadatas"], 2000, self.collection)


class IndexState:
    """Whether the index snapshots in a folder match the store: a `clean` file written after a
    save and removed before the first write that follows, so a crash leaves it absent. The
    file holds the ledger's fingerprint at the save (Ledger.fingerprint): a store changed
    behind the snapshots' back (a restored backup, a write whose marker removal was lost)
    no longer matches it, and its snapshots are not used."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._marker = folder / "clean"
        self._dirty = False

    def is_clean(self, fingerprint: str | None = None) -> bool:
        """True when the snapshots were saved by a clean close (and, given a fingerprint, of
        a store in that same state)."""
        if self._dirty or not self._marker.is_file():
            return False
        return fingerprint is None or self.saved_fingerprint() == fingerprint

    def saved_fingerprint(self) -> str | None:
        try:
            data = json.loads(self._marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = data.get("fingerprint") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    def mark_dirty(self) -> None:
        if not self._dirty:
            self._marker.unlink(missing_ok=True)
            self._dirty = True

    def mark_clean(self, fingerprint: str = "") -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
        tmp.replace(self._marker)
        self._dirty = False
