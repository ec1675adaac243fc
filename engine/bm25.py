"""Keyword index: BM25 over memory text with per-scope statistics, updated in place on writes.

rank-bm25's classes keep one Python dict per document and loop over every document for each
query term, and they fix their statistics at construction, so they would need a rebuild on
every write and take tens of milliseconds per term at 100k memories. This index keeps
inverted postings (term -> document positions and term frequencies as numpy arrays), so a
query touches only the documents that contain its terms, and writes append or tombstone.
Scoring is Okapi BM25 (k1=1.5, b=0.75 as rank-bm25) with the always-positive idf
log(1 + (N - df + 0.5) / (df + 0.5)), where N, df and the average length are counted inside
the scope being searched. tests/engine/test_bm25.py checks that it scores exactly as
rank-bm25's BM25Okapi given the same idf (rank-bm25 is a test dependency only).
"""
from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .records import Scope

STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves also get got really very much oh yeah yes okay ok hey hi lol its it's im i'm
""".split())

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-case words without stop words, stemmed (Snowball English): 'Paintings' -> 'paint'."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok.endswith("'s"):
            tok = tok[:-2]
        if tok and tok not in STOP_WORDS:
            out.append(_stem(tok))
    return out


class ScopeColumn:
    """A growable int32 array of scope codes (-1 = not set) with a value -> code map."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values = np.full(1024, -1, dtype=np.int32)

    def set(self, pos: int, value: str | None) -> None:
        if pos >= len(self.values):
            self.values = np.concatenate([self.values, np.full(len(self.values), -1, dtype=np.int32)])
        self.values[pos] = -1 if value is None else self.codes.setdefault(value, len(self.codes))

    def mask(self, value: str, size: int) -> np.ndarray | None:
        code = self.codes.get(value)
        return None if code is None else self.values[:size] == code


class KeywordIndex:
    """BM25 over all memories of a store; searches are restricted to a scope."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._alive = np.zeros(1024, dtype=bool)
        self._length = np.zeros(1024, dtype=np.float32)
        self._scope = {"user_id": ScopeColumn(), "agent_id": ScopeColumn(), "run_id": ScopeColumn()}
        self._postings: dict[str, tuple[list[int], list[int]]] = {}
        self._frozen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # postings loaded from a snapshot: term -> (start, end) into _base_pos/_base_tf
        self._base: dict[str, tuple[int, int]] = {}
        self._base_pos = np.zeros(0, dtype=np.int32)
        self._base_tf = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._pos

    def add_many(self, items: Iterable[tuple[str, str, Scope]]) -> None:
        """Index (id, text, scope) triples; an id already present is replaced."""
        with self._lock:
            for memory_id, text, scope in items:
                if memory_id in self._pos:
                    self.remove(memory_id)
                pos = len(self._ids)
                self._ids.append(memory_id)
                self._pos[memory_id] = pos
                if pos >= len(self._alive):
                    grow = len(self._alive)
                    self._alive = np.concatenate([self._alive, np.zeros(grow, dtype=bool)])
                    self._length = np.concatenate([self._length, np.zeros(grow, dtype=np.float32)])
                tokens = tokenize(text)
                self._alive[pos] = True
                self._length[pos] = len(tokens)
                for key, column in self._scope.items():
                    column.set(pos, getattr(scope, key))
                counts: dict[str, int] = {}
                for tok in tokens:
                    counts[tok] = counts.get(tok, 0) + 1
                for tok, tf in counts.items():
                    plist = self._postings.setdefault(tok, ([], []))
                    plist[0].append(pos)
                    plist[1].append(tf)
                    self._frozen.pop(tok, None)

    def remove(self, memory_id: str) -> None:
        """Forget a memory (its postings stay as tombstones, masked out at query time)."""
        with self._lock:
            pos = self._pos.pop(memory_id, None)
            if pos is not None:
                self._alive[pos] = False

    def _arrays(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        arr = self._frozen.get(term)
        if arr is None:
            base = self._base.get(term)
            plist = self._postings.get(term)
            if base is None and plist is None:
                return None
            pos_parts: list[np.ndarray] = []
            tf_parts: list[np.ndarray] = []
            if base is not None:
                pos_parts.append(self._base_pos[base[0]:base[1]].astype(np.int64))
                tf_parts.append(self._base_tf[base[0]:base[1]])
            if plist is not None:
                pos_parts.append(np.asarray(plist[0], dtype=np.int64))
                tf_parts.append(np.asarray(plist[1], dtype=np.float32))
            arr = (np.concatenate(pos_parts), np.concatenate(tf_parts))
            self._frozen[term] = arr
        return arr

    # -- snapshot: the index opens without re-tokenising every memory -----------------
    def save(self, folder: Path) -> None:
        """Write the live documents' postings (compacted) as bm25.npz + bm25_ids.json."""
        with self._lock:
            size = len(self._ids)
            alive = np.flatnonzero(self._alive[:size])
            remap = np.full(size, -1, dtype=np.int64)
            remap[alive] = np.arange(len(alive))
            terms: list[str] = []
            offsets = [0]
            pos_parts: list[np.ndarray] = []
            tf_parts: list[np.ndarray] = []
            for term in set(self._base) | set(self._postings):
                arr = self._arrays(term)
                self._frozen.pop(term, None)
                if arr is None:
                    continue
                new = remap[arr[0]]
                keep = new >= 0
                if not keep.any():
                    continue
                terms.append(term)
                pos_parts.append(new[keep].astype(np.int32))
                tf_parts.append(arr[1][keep])
                offsets.append(offsets[-1] + int(keep.sum()))
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / "bm25.npz.tmp"
            with open(tmp, "wb") as fh:
                np.savez(fh, length=self._length[alive], offsets=np.asarray(offsets, dtype=np.int64),
                         pos=np.concatenate(pos_parts) if pos_parts else np.zeros(0, dtype=np.int32),
                         tf=np.concatenate(tf_parts) if tf_parts else np.zeros(0, dtype=np.float32))
            tmp_ids = folder / "bm25_ids.json.tmp"
            tmp_ids.write_text(json.dumps({"ids": [self._ids[int(i)] for i in alive], "terms": terms}),
                               encoding="utf-8")
            tmp.replace(folder / "bm25.npz")
            tmp_ids.replace(folder / "bm25_ids.json")

    @classmethod
    def load(cls, folder: Path, scopes: Mapping[str, Scope]) -> "KeywordIndex | None":
        """The saved index with documents not in `scopes` (id -> scope) dropped; None if unusable.

        Memories in `scopes` but not in the snapshot are left for the caller to add.
        """
        try:
            meta = json.loads((folder / "bm25_ids.json").read_text(encoding="utf-8"))
            with np.load(folder / "bm25.npz") as data:
                length, offsets = data["length"], data["offsets"]
                pos, tf = data["pos"], data["tf"]
        except (OSError, ValueError, KeyError):
            return None
        ids, terms = meta.get("ids", []), meta.get("terms", [])
        if len(length) != len(ids) or len(offsets) != len(terms) + 1:
            return None
        index = cls()
        n = len(ids)
        cap = max(1024, n * 2)
        index._ids = list(ids)
        index._alive = np.zeros(cap, dtype=bool)
        index._length = np.zeros(cap, dtype=np.float32)
        index._length[:n] = length
        found = [scopes.get(memory_id) for memory_id in ids]
        index._pos = {memory_id: p for p, (memory_id, scope) in enumerate(zip(ids, found)) if scope is not None}
        index._alive[:n] = [scope is not None for scope in found]
        for key, column in index._scope.items():
            codes = column.codes
            values = [getattr(scope, key) if scope is not None else None for scope in found]
            column.values = np.full(cap, -1, dtype=np.int32)
            column.values[:n] = [-1 if v is None else codes.setdefault(v, len(codes)) for v in values]
        index._base = {t: (int(offsets[i]), int(offsets[i + 1])) for i, t in enumerate(terms)}
        index._base_pos, index._base_tf = pos, tf
        return index

    def scope_mask(self, scope: dict[str, str]) -> np.ndarray | None:
        """Documents alive and inside the scope; None when the scope names an unknown value."""
        size = len(self._ids)
        mask = self._alive[:size].copy()
        for key, value in scope.items():
            column_mask = self._scope[key].mask(value, size)
            if column_mask is None:
                return None
            mask &= column_mask
        return np.asarray(mask, dtype=bool)

    def search(self, query: str | Sequence[str], scope: dict[str, str], n: int) -> list[tuple[str, float]]:
        """The n best (id, bm25) pairs in the scope, best first; only documents with a query term."""
        terms = list(dict.fromkeys(tokenize(query) if isinstance(query, str) else query))
        with self._lock:
            if not terms or not self._ids:
                return []
            mask = self.scope_mask(scope)
            if mask is None:
                return []
            total = int(mask.sum())
            if total == 0:
                return []
            avgdl = float(self._length[:len(mask)][mask].mean()) or 1.0
            scores: dict[int, float] = {}
            acc_pos: list[np.ndarray] = []
            acc_val: list[np.ndarray] = []
            for term in terms:
                arr = self._arrays(term)
                if arr is None:
                    continue
                pos, tf = arr
                keep = mask[pos]
                pos, tf = pos[keep], tf[keep]
                if not len(pos):
                    continue
                df = len(pos)
                idf = np.log1p((total - df + 0.5) / (df + 0.5))
                dl = self._length[pos]
                val = idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * dl / avgdl))
                acc_pos.append(pos)
                acc_val.append(val)
            if not acc_pos:
                return []
            allpos = np.concatenate(acc_pos)
            allval = np.concatenate(acc_val)
            uniq, inverse = np.unique(allpos, return_inverse=True)
            sums = np.zeros(len(uniq), dtype=np.float64)
            np.add.at(sums, inverse, allval)
            order = np.argsort(-sums, kind="stable")[:n]
            del scores
            return [(self._ids[int(uniq[i])], float(sums[i])) for i in order]

    def document_frequency(self, term: str, scope: dict[str, str]) -> tuple[int, int]:
        """(documents containing the stemmed term, documents) inside a scope."""
        with self._lock:
            mask = self.scope_mask(scope)
            if mask is None:
                return 0, 0
            arr = self._arrays(term)
            df = int(mask[arr[0]].sum()) if arr is not None else 0
            return df, int(mask.sum())
