"""Chroma vector collection, the store manifest and the single-writer lock of a data folder."""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._offline import enforce_offline
from .errors import StoreError
from .vector_index import VectorIndex

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LOCK_FILE = "loci.lock"


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

    def check_or_write(self, embedder: str, dimension: int) -> None:
        if not self.path.exists():
            self.path.write_text(json.dumps({
                "schema_version": SCHEMA_VERSION, "embedder": embedder, "dimension": dimension,
                "created_at": datetime.now(timezone.utc).isoformat()}, indent=2), encoding="utf-8")
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"The store manifest {self.path} is unreadable ({exc}). "
                             "Restore it from a backup.") from exc
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise StoreError(f"The store at {self.path.parent} was made by a newer Loci; update Loci.")
        if data.get("embedder") != embedder or int(data.get("dimension", 0)) != dimension:
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
        fh = open(self.path, "a+", encoding="utf-8")
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
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "program": Path(sys.argv[0]).name or "python",
                             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            try:
                self._fh.seek(0)
                self._fh.truncate()
                _unlock_file(self._fh)
            finally:
                self._fh.close()
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


class VectorStore:
    """One Chroma collection of memory vectors (cosine), with scope keys as metadata."""

    def __init__(self, data_dir: Path, collection: str = "memories", *, host: str | None = None,
                 port: int = 8000, ssl: bool = False) -> None:
        enforce_offline()
        where = f"the Chroma server at {host}:{port}" if host else f"{data_dir / 'chroma'}"
        self._where = where
        self.is_remote = host is not None
        # The in-memory mirror used for search (engine/vector_index.py); None until opened,
        # and never for a server other clients write to.
        self.index: VectorIndex | None = None
        self._index_lock = threading.RLock()
        self.state = IndexState(data_dir / "index")
        # Write-behind: Chroma's upsert costs tens of ms per call whatever its size, so
        # writes to an embedded store are applied to the in-memory mirror at once and sent to
        # Chroma in batches by a background thread (the ledger stays the source of truth;
        # an unclean close is reconciled on the next open, see Retriever._build).
        self._pending: dict[str, tuple[np.ndarray, dict[str, Any]] | None] = {}
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._flusher: threading.Thread | None = None
        self.write_error: Exception | None = None
        try:
            import chromadb
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False, allow_reset=True)
            if host:
                self._client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
            else:
                self._client = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)
            self._collection = self._client.get_or_create_collection(
                name=collection, embedding_function=_RefuseToEmbed(),  # type: ignore[arg-type]
                metadata={"hnsw:space": "cosine"})
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"Cannot open the vector database in {where}: {exc}") from exc

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        if not ids:
            return
        clean = [{k: v for k, v in m.items() if v is not None} or {"_": 0} for m in metadatas]
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._index_lock:
            self.state.mark_dirty()
            if self.is_remote:
                self._collection.upsert(ids=list(ids), embeddings=vectors, metadatas=clean)  # type: ignore[arg-type]
                return
            for memory_id, vector, meta in zip(ids, vectors, clean):
                self._pending[memory_id] = (vector, meta)
            if self.index is not None:
                self.index.add(ids, vectors, clean)
        self._kick()

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            with self._index_lock:
                self.state.mark_dirty()
                if self.is_remote:
                    self._collection.delete(ids=list(ids))
                    return
                for memory_id in ids:
                    self._pending[memory_id] = None
                if self.index is not None:
                    self.index.remove(ids)
            self._kick()

    # -- write-behind --------------------------------------------------------------------
    def flush(self) -> None:
        """Send every buffered write to Chroma now (reads from Chroma and close call this)."""
        with self._flush_lock:
            with self._index_lock:
                ops, self._pending = self._pending, {}
            if not ops:
                return
            try:
                dead = [i for i, op in ops.items() if op is None]
                live = {i: op for i, op in ops.items() if op is not None}
                if dead:
                    self._collection.delete(ids=dead)
                ids = list(live)
                for start in range(0, len(ids), 5000):
                    chunk = ids[start:start + 5000]
                    self._collection.upsert(ids=chunk, embeddings=np.stack([live[i][0] for i in chunk]),
                                            metadatas=[live[i][1] for i in chunk])  # type: ignore[arg-type]
                self.write_error = None
            except Exception as exc:  # Chroma failed (disk full, ...): keep the writes for a retry
                with self._index_lock:
                    self._pending = {**ops, **self._pending}
                self.write_error = exc
                raise StoreError(f"Could not save vectors to {self._where}: {exc}. Is the disk full?") from exc

    def close(self) -> None:
        """Flush buffered writes and stop the background writer."""
        self._stopped = True
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()

    def _kick(self) -> None:
        if self._flusher is None and not self._stopped:
            self._flusher = threading.Thread(target=self._flush_loop, name="loci-vector-writer", daemon=True)
            self._flusher.start()
        self._wake.set()

    def _flush_loop(self) -> None:
        while not self._stopped:
            self._wake.wait()
            self._wake.clear()
            if self._stopped:
                return
            time.sleep(0.05)  # let a burst of writes gather into one Chroma call
            try:
                self.flush()
            except StoreError as exc:
                log.error("vector write failed, will retry: %s", exc)
                time.sleep(1.0)
                self._wake.set()

    # -- the in-memory index -------------------------------------------------------------
    def open_index(self, dimension: int) -> VectorIndex | None:
        """Load (or build from Chroma) the in-memory mirror; writers wait meanwhile, so no
        write can fall between the snapshot and the mirror. None for a Chroma server."""
        if self.is_remote:
            return None
        with self._index_lock:
            if self.index is not None:
                return self.index
            index = VectorIndex(dimension)
            loaded = VectorIndex.load(self.state.folder, dimension) if self.state.is_clean() else None
            if loaded is not None and not self._pending and len(loaded) == self._collection.count():
                index = loaded
            else:
                # Chroma's rows plus the writes still buffered (not flushed: the writer thread
                # takes this lock to swap its buffer, so flushing here could deadlock).
                for ids, vectors, metas in self._raw_pages(include=["embeddings", "metadatas"]):
                    index.add(ids, vectors, metas)
                index.remove([i for i, op in self._pending.items() if op is None])
                live = [(i, op) for i, op in self._pending.items() if op is not None]
                if live:
                    index.add([i for i, _ in live], np.stack([op[0] for _, op in live]),
                              [op[1] for _, op in live])
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
            return index.search(vector, scope, n)
        clauses = [{k: {"$eq": v}} for k, v in scope.items()]
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        return self.query(vector, n, where)

    def _raw_pages(self, include: list[str], size: int = 5000) -> Any:
        offset = 0
        while True:
            res = self._collection.get(include=include, limit=size, offset=offset)  # type: ignore[arg-type]
            if not res["ids"]:
                return
            yield res["ids"], np.asarray(res["embeddings"], dtype=np.float32), res["metadatas"]
            if len(res["ids"]) < size:
                return
            offset += len(res["ids"])

    def query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Nearest ids with cosine similarity (1 - distance), best first (asks Chroma itself)."""
        total = self.count()
        if total == 0 or n <= 0:
            return []
        res = self._collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)],
                                     n_results=min(n, total), where=where, include=["distances"])
        ids = res["ids"][0]
        dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists)]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        self.flush()
        res = self._collection.get(ids=list(ids), include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(res["ids"], res["embeddings"])}

    def ids(self) -> list[str]:
        self.flush()
        out: list[str] = []
        offset = 0
        while True:
            chunk = self._collection.get(include=[], limit=5000, offset=offset)["ids"]
            out.extend(chunk)
            if len(chunk) < 5000:
                return out
            offset += len(chunk)

    def count(self) -> int:
        self.flush()
        return int(self._collection.count())

    def wipe(self) -> None:
        ids = self.ids()
        for start in range(0, len(ids), 5000):
            self.delete(ids[start:start + 5000])


class IndexState:
    """Whether the index snapshots in a folder match the store: a `clean` file written after a
    save and removed before the first write that follows, so a crash leaves it absent."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._marker = folder / "clean"
        self._dirty = False

    def is_clean(self) -> bool:
        return not self._dirty and self._marker.is_file()

    def mark_dirty(self) -> None:
        if not self._dirty:
            self._marker.unlink(missing_ok=True)
            self._dirty = True

    def mark_clean(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._marker.write_text("snapshots match the store\n", encoding="utf-8")
        self._dirty = False
