"""In-memory exact vector index over a store's memories, restricted per scope, saved on close.

Chroma stays the durable store of vectors; this index mirrors it so a search costs one matrix
product over the scope's rows instead of a filtered HNSW query (Chroma's filtered query
spent ~70% of Loci's search time at 10k-50k memories). Exact search also means no recall
loss inside small scopes, where a filtered HNSW graph walk degrades.

Rows live in one float32 matrix in insertion order with scope code columns (as bm25.py).
A search over a scope holding a small share of the rows gathers just those rows; over most
of the store it multiplies the whole matrix and masks. Deleted rows are tombstones until
more than half are dead, then the matrix is compacted.

On close the matrix is saved as `.npy` beside its ids; on open it is loaded and reconciled
with the ledger (rows missing from the snapshot are fetched from Chroma, extra rows dropped).
A snapshot is only trusted when it was written by a clean close (see store.IndexState).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .bm25 import ScopeColumn

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
VECTORS_FILE = "vectors.npy"
IDS_FILE = "vector_ids.json"


class VectorIndex:
    """Cosine similarity (vectors are L2-normalised) over all memories, searched by scope."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._matrix = np.zeros((1024, dimension), dtype=np.float32)
        self._alive = np.zeros(1024, dtype=bool)
        self._scope = {key: ScopeColumn() for key in SCOPE_KEYS}

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._pos

    def add(self, ids: Sequence[str], vectors: np.ndarray, scopes: Sequence[Mapping[str, object]]) -> None:
        """Add or replace rows; scopes are dicts with any of user_id, agent_id, run_id."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1) if len(ids) else vectors
        with self._lock:
            for memory_id, vector, scope in zip(ids, vectors, scopes):
                old = self._pos.pop(memory_id, None)
                if old is not None:
                    self._alive[old] = False
                pos = len(self._ids)
                if pos >= len(self._alive):
                    self._grow(pos + 1)
                self._ids.append(memory_id)
                self._pos[memory_id] = pos
                self._matrix[pos] = vector
                self._alive[pos] = True
                for key, column in self._scope.items():
                    value = scope.get(key)
                    column.set(pos, value if isinstance(value, str) else None)

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            for memory_id in ids:
                pos = self._pos.pop(memory_id, None)
                if pos is not None:
                    self._alive[pos] = False
            if len(self._ids) > 4096 and len(self._pos) < len(self._ids) // 2:
                self._compact()

    def clear(self) -> None:
        with self._lock:
            self.__init__(self.dimension)  # type: ignore[misc]

    def search(self, vector: np.ndarray, scope: Mapping[str, str], n: int) -> list[tuple[str, float]]:
        """The n most similar (id, cosine) rows inside the scope, best first."""
        if n <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self._lock:
            size = len(self._ids)
            mask = self._alive[:size].copy()
            for key, value in scope.items():
                column_mask = self._scope[key].mask(value, size)
                if column_mask is None:
                    return []
                mask &= column_mask
            rows = np.flatnonzero(mask)
            if not len(rows):
                return []
            if len(rows) * 3 < size:  # a small scope: gather its rows
                sims = self._matrix[rows] @ query
            else:  # most of the store: one pass over the matrix, then mask
                sims = (self._matrix[:size] @ query)[rows]
            if len(rows) > n:
                best = np.argpartition(-sims, n - 1)[:n]
            else:
                best = np.arange(len(rows))
            best = best[np.lexsort((rows[best], -sims[best]))]
            return [(self._ids[int(rows[i])], float(sims[i])) for i in best]

    # -- snapshot --------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the live rows (compacted) as vectors.npy + vector_ids.json, atomically."""
        with self._lock:
            self._compact()
            size = len(self._ids)
            names = {key: {c: v for v, c in col.codes.items()} for key, col in self._scope.items()}
            columns = [self._scope[key].values[:size].tolist() for key in SCOPE_KEYS]
            scopes = [[names[key].get(columns[k][p]) for k, key in enumerate(SCOPE_KEYS)]
                      for p in range(size)]
            folder.mkdir(parents=True, exist_ok=True)
            tmp_vectors = folder / (VECTORS_FILE + ".tmp")
            with open(tmp_vectors, "wb") as fh:
                np.save(fh, self._matrix[:size])
            tmp_ids = folder / (IDS_FILE + ".tmp")
            tmp_ids.write_text(json.dumps({"dimension": self.dimension, "ids": self._ids, "scopes": scopes}),
                               encoding="utf-8")
            tmp_vectors.replace(folder / VECTORS_FILE)
            tmp_ids.replace(folder / IDS_FILE)

    @classmethod
    def load(cls, folder: Path, dimension: int) -> "VectorIndex | None":
        """The index saved in a folder, or None when there is none usable."""
        try:
            meta = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
            matrix = np.load(folder / VECTORS_FILE)
        except (OSError, ValueError):
            return None
        ids, scopes = meta.get("ids") or [], meta.get("scopes") or []
        if meta.get("dimension") != dimension or matrix.shape != (len(ids), dimension) or \
                len(scopes) != len(ids):
            return None
        index = cls(dimension)
        cap = max(1024, len(ids) + len(ids) // 4)
        index._matrix = np.zeros((cap, dimension), dtype=np.float32)
        index._matrix[:len(ids)] = matrix
        del matrix
        index._alive = np.zeros(cap, dtype=bool)
        index._alive[:len(ids)] = True
        index._ids = list(ids)
        index._pos = {memory_id: n for n, memory_id in enumerate(ids)}
        for k, key in enumerate(SCOPE_KEYS):
            column = index._scope[key]
            codes = column.codes
            column.values = np.full(cap, -1, dtype=np.int32)
            column.values[:len(ids)] = [-1 if s[k] is None else codes.setdefault(s[k], len(codes))
                                        for s in scopes]
        return index

    # -- internals -------------------------------------------------------------------
    def _grow(self, need: int) -> None:
        cap = max(need, len(self._alive) * 2)
        matrix = np.zeros((cap, self.dimension), dtype=np.float32)
        matrix[:len(self._ids)] = self._matrix[:len(self._ids)]
        self._matrix = matrix
        alive = np.zeros(cap, dtype=bool)
        alive[:len(self._alive)] = self._alive
        self._alive = alive

    def _compact(self) -> None:
        size = len(self._ids)
        keep = np.flatnonzero(self._alive[:size])
        if len(keep) == size:
            return
        self._matrix = np.ascontiguousarray(self._matrix[keep]) if len(keep) else \
            np.zeros((1024, self.dimension), dtype=np.float32)
        if len(self._matrix) < 1024:
            self._matrix = np.concatenate([self._matrix, np.zeros((1024 - len(self._matrix), self.dimension),
                                                                  dtype=np.float32)])
        self._alive = np.zeros(len(self._matrix), dtype=bool)
        self._alive[:len(keep)] = True
        self._ids = [self._ids[int(i)] for i in keep]
        self._pos = {memory_id: n for n, memory_id in enumerate(self._ids)}
        for column in self._scope.values():
            column.values = np.concatenate([column.values[keep],
                                            np.full(max(1024, len(keep)), -1, dtype=np.int32)])
