"""In-memory exact vector index over a store's memories, restricted per scope, saved on close.

Chroma stays the durable store of vectors; this index mirrors it so a search costs one matrix
product over the scope's rows instead of a filtered HNSW query (Chroma's filtered query
spent ~70% of Loci's search time at 10k-50k memories). Exact search also means no recall
loss inside small scopes, where a filtered HNSW graph walk degrades.

Rows live in one float32 matrix in insertion order with scope code columns (as bm25.py).
A search over a scope holding a small share of the rows gathers just those rows; over most
of the store it multiplies the whole matrix and masks. Deleted rows are tombstones until
more than half are dead, then the matrix is compacted.

On close the matrix is saved as `vectors.npy`, the scope codes as one int32 array and the ids
and scope names as JSON. Opening maps the matrix from the file read-only (no copy, no Python
loop over rows: pages come in as searches touch them) and copies it into memory only on the
first write; a close without writes since the load leaves the files as they are. A snapshot
is only trusted when it was written by a clean close of the same store (see store.IndexState);
otherwise the mirror is rebuilt from Chroma.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .scope_column import ScopeColumn

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
VECTORS_FILE = "vectors.npy"
IDS_FILE = "vector_ids.json"
SCOPES_FILE = "vector_scopes.npy"
FORMAT = 2  # snapshot layout; another value (or none) is not loaded


class VectorIndex:
    """Cosine similarity (vectors are L2-normalised) over all memories, searched by scope."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._pos_map: dict[str, int] | None = {}
        self._matrix: np.ndarray = np.zeros((1024, dimension), dtype=np.float32)
        self._alive = np.zeros(1024, dtype=bool)
        self._scope = {key: ScopeColumn() for key in SCOPE_KEYS}
        self._source: Path | None = None  # the snapshot folder this was loaded from, while unchanged

    @property
    def _pos(self) -> dict[str, int]:
        """id -> row of the live rows, built on first use (a search never needs it)."""
        if self._pos_map is None:
            size = len(self._ids)
            live = np.flatnonzero(self._alive[:size])
            self._pos_map = dict(zip(self._ids, range(size))) if len(live) == size else \
                {self._ids[int(p)]: int(p) for p in live}
        return self._pos_map

    def __len__(self) -> int:
        return int(np.count_nonzero(self._alive[:len(self._ids)]))

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._pos

    def add(self, ids: Sequence[str], vectors: np.ndarray, scopes: Sequence[Mapping[str, object]]) -> None:
        """Add or replace rows; scopes are dicts with any of user_id, agent_id, run_id."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1) if len(ids) else vectors
        with self._lock:
            if not len(ids):
                return
            self._reserve(len(self._ids) + len(ids))
            positions = self._pos
            for memory_id, vector, scope in zip(ids, vectors, scopes):
                old = positions.pop(memory_id, None)
                if old is not None:
                    self._alive[old] = False
                pos = len(self._ids)
                self._ids.append(memory_id)
                positions[memory_id] = pos
                self._matrix[pos] = vector
                self._alive[pos] = True
                for key, column in self._scope.items():
                    value = scope.get(key)
                    column.set(pos, value if isinstance(value, str) else None)

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            positions = self._pos
            for memory_id in ids:
                pos = positions.pop(memory_id, None)
                if pos is not None:
                    self._alive[pos] = False
                    self._source = None
            if len(self._ids) > 4096 and len(positions) < len(self._ids) // 2:
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
                sims = similarities(self._matrix[rows], query)
            else:  # most of the store: one pass over the matrix, then mask
                sims = similarities(self._matrix[:size], query)[rows]
            if len(rows) > n:
                best = np.argpartition(-sims, n - 1)[:n]
            else:
                best = np.arange(len(rows))
            best = best[np.lexsort((rows[best], -sims[best]))]
            ids = self._ids
            return [(ids[r], s) for r, s in zip(rows[best].tolist(), sims[best].tolist())]

    # -- snapshot --------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the live rows (compacted) as vectors.npy, vector_scopes.npy and vector_ids.json,
        each replaced atomically; nothing is written when the index is unchanged since it was
        loaded from this folder."""
        with self._lock:
            if self._source is not None and self._source == folder and \
                    all((folder / name).is_file() for name in (VECTORS_FILE, SCOPES_FILE, IDS_FILE)):
                return
            self._compact()
            self._own()
            size = len(self._ids)
            codes = np.stack([self._scope[key].values[:size] for key in SCOPE_KEYS], axis=1) if size \
                else np.zeros((0, len(SCOPE_KEYS)), dtype=np.int32)
            names = {key: _names(self._scope[key].codes) for key in SCOPE_KEYS}
            folder.mkdir(parents=True, exist_ok=True)
            tmp_vectors = folder / (VECTORS_FILE + ".tmp")
            with open(tmp_vectors, "wb") as fh:
                np.save(fh, self._matrix[:size])
            tmp_scopes = folder / (SCOPES_FILE + ".tmp")
            with open(tmp_scopes, "wb") as fh:
                np.save(fh, np.ascontiguousarray(codes, dtype=np.int32))
            tmp_ids = folder / (IDS_FILE + ".tmp")
            tmp_ids.write_text(json.dumps({"format": FORMAT, "dimension": self.dimension, "ids": self._ids,
                                           "scope_names": names}), encoding="utf-8")
            tmp_vectors.replace(folder / VECTORS_FILE)
            tmp_scopes.replace(folder / SCOPES_FILE)
            tmp_ids.replace(folder / IDS_FILE)

    @classmethod
    def load(cls, folder: Path, dimension: int) -> "VectorIndex | None":
        """The index saved in a folder, or None when there is none usable.

        The matrix stays a read-only map of the file until the first write copies it.
        """
        try:
            meta = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
            matrix = np.load(folder / VECTORS_FILE, mmap_mode="r")
            codes = np.load(folder / SCOPES_FILE)
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None
        ids, names = meta.get("ids"), meta.get("scope_names")
        if not isinstance(ids, list) or not isinstance(names, dict) or meta.get("dimension") != dimension \
                or matrix.dtype != np.float32 or matrix.shape != (len(ids), dimension) \
                or codes.dtype != np.int32 or codes.shape != (len(ids), len(SCOPE_KEYS)):
            return None
        index = cls(dimension)
        n = len(ids)
        cap = n + 1024
        index._matrix = matrix
        index._alive = np.zeros(cap, dtype=bool)
        index._alive[:n] = True
        index._ids = ids
        index._pos_map = None
        for k, key in enumerate(SCOPE_KEYS):
            values = names.get(key) or []
            if n and (codes[:, k].max() >= len(values) or codes[:, k].min() < -1):
                return None
            column = index._scope[key]
            column.codes = {value: code for code, value in enumerate(values)}
            column.values = np.full(cap, -1, dtype=np.int32)
            column.values[:n] = codes[:, k]
        index._source = folder
        return index

    # -- internals -------------------------------------------------------------------
    def _own(self) -> None:
        """Copy a matrix still mapped from its snapshot file into memory (before any change)."""
        if isinstance(self._matrix, np.memmap):
            self._reserve(len(self._ids))

    def _reserve(self, need: int) -> None:
        """Room for `need` rows in a writable in-memory matrix and the row flags."""
        self._source = None
        mapped = isinstance(self._matrix, np.memmap)
        if mapped or need > len(self._matrix):
            grow = len(self._matrix) * 2 if need > len(self._matrix) else len(self._matrix) + len(self._matrix) // 4
            cap = max(need, grow, 1024)
            matrix = np.zeros((cap, self.dimension), dtype=np.float32)
            matrix[:len(self._ids)] = self._matrix[:len(self._ids)]
            self._matrix = matrix  # the memory map (if any) is let go here
        if need > len(self._alive):
            alive = np.zeros(max(need, len(self._matrix)), dtype=bool)
            alive[:len(self._alive)] = self._alive
            self._alive = alive

    def _compact(self) -> None:
        size = len(self._ids)
        keep = np.flatnonzero(self._alive[:size])
        if len(keep) == size:
            return
        self._source = None
        self._matrix = np.ascontiguousarray(self._matrix[keep]) if len(keep) else \
            np.zeros((1024, self.dimension), dtype=np.float32)
        if len(self._matrix) < 1024:
            self._matrix = np.concatenate([self._matrix, np.zeros((1024 - len(self._matrix), self.dimension),
                                                                  dtype=np.float32)])
        self._alive = np.zeros(len(self._matrix), dtype=bool)
        self._alive[:len(keep)] = True
        self._ids = [self._ids[int(i)] for i in keep]
        self._pos_map = None
        for column in self._scope.values():
            column.values = np.concatenate([column.values[keep],
                                            np.full(max(1024, len(keep)), -1, dtype=np.int32)])


def similarities(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """matrix @ query, on the calling thread.

    numpy's einsum loops in C without BLAS: a matrix-vector product is bound by memory, and
    OpenBLAS's threads for it (`matrix @ query`) spin after every call, taking the CPU from the
    rest of the search on a busy machine (10,000 x 384: 1.4 ms on one thread, 8 ms on two at
    load 4, and the whole search's CPU doubled; bench/scale_bench.py). The sums agree with
    BLAS's to 1e-7 and do not depend on the thread count or the matrix's alignment.
    """
    return np.asarray(np.einsum("ij,j->i", matrix, query))


def _names(codes: Mapping[str, int]) -> list[str]:
    """A column's values listed by code (codes are 0..n-1 in the order they were first seen)."""
    out = [""] * len(codes)
    for value, code in codes.items():
        out[code] = value
    return out
