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
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..records import Scope
from ..store.scope_column import ScopeColumn

STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves also get got really very much oh yeah yes okay ok hey hi lol its it's im i'm
""".split())

SNAPSHOT_FILE = "bm25.npz"
SNAPSHOT_IDS = "bm25_ids.json"
FORMAT = 2  # snapshot layout; another value (or none) is not loaded

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


def best_sums(pos: np.ndarray, val: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n positions with the largest sum of their values, best first, ties by position.

    One pass over the postings whatever the number of documents they cover (a bincount, then a
    partition): a query whose words are in most memories costs a few array passes, not a sort
    of every matching document.
    """
    sums = np.bincount(pos, weights=val)
    present = np.flatnonzero(np.bincount(pos))
    scores = sums[present]
    if len(present) > n:
        cut = np.partition(scores, len(scores) - n)[len(scores) - n]  # the n-th largest sum
        above = np.flatnonzero(scores > cut)
        ties = np.flatnonzero(scores == cut)[:n - len(above)]  # lowest positions first, as a stable sort
        keep = np.concatenate([above, ties])
        present, scores = present[keep], scores[keep]
    order = np.lexsort((present, -scores))
    return [(int(present[i]), float(scores[i])) for i in order]


def _names(codes: Mapping[str, int]) -> list[str]:
    """A column's values listed by code (codes are 0..n-1 in the order they were first seen)."""
    out = [""] * len(codes)
    for value, code in codes.items():
        out[code] = value
    return out


class KeywordIndex:
    """BM25 over all memories of a store; searches are restricted to a scope."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._pos_map: dict[str, int] | None = {}  # id -> position of the live documents
        self._alive = np.zeros(1024, dtype=bool)
        self._length = np.zeros(1024, dtype=np.float32)
        self._scope = {"user_id": ScopeColumn(), "agent_id": ScopeColumn(), "run_id": ScopeColumn()}
        self._postings: dict[str, tuple[list[int], list[int]]] = {}
        self._frozen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # postings loaded from a snapshot: term -> t, its entries are _base_pos/_base_tf
        # [_base_offsets[t]:_base_offsets[t + 1]]
        self._base: dict[str, int] = {}
        self._base_terms: list[str] = []
        self._base_offsets = np.zeros(1, dtype=np.int64)
        self._base_pos = np.zeros(0, dtype=np.int32)
        self._base_tf = np.zeros(0, dtype=np.float32)
        self._source: Path | None = None  # the snapshot folder this was loaded from, while unchanged

    @property
    def _pos(self) -> dict[str, int]:
        """id -> position of the live documents, built on first use after a load (searches
        never need it)."""
        if self._pos_map is None:
            self._pos_map = dict(zip(self._ids, range(len(self._ids))))
        return self._pos_map

    def __len__(self) -> int:
        return int(np.count_nonzero(self._alive[:len(self._ids)]))

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._pos

    def add_many(self, items: Iterable[tuple[str, str, Scope]]) -> None:
        """Index (id, text, scope) triples; an id already present is replaced."""
        with self._lock:
            for memory_id, text, scope in items:
                self._source = None
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
                self._source = None

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
                start, end = int(self._base_offsets[base]), int(self._base_offsets[base + 1])
                pos_parts.append(self._base_pos[start:end].astype(np.int64))
                tf_parts.append(self._base_tf[start:end])
            if plist is not None:
                pos_parts.append(np.asarray(plist[0], dtype=np.int64))
                tf_parts.append(np.asarray(plist[1], dtype=np.float32))
            arr = (np.concatenate(pos_parts), np.concatenate(tf_parts))
            self._frozen[term] = arr
        return arr

    # -- snapshot: the index opens without re-tokenising every memory -----------------
    def save(self, folder: Path) -> None:
        """Write the live documents' postings (compacted) as bm25.npz + bm25_ids.json, each
        replaced atomically; nothing is written when the index is unchanged since it was
        loaded from this folder. Array work only: no Python loop over documents or postings."""
        with self._lock:
            if self._source is not None and self._source == folder and \
                    all((folder / name).is_file() for name in (SNAPSHOT_FILE, SNAPSHOT_IDS)):
                return
            size = len(self._ids)
            alive = np.flatnonzero(self._alive[:size])
            remap = np.full(size, -1, dtype=np.int64)
            remap[alive] = np.arange(len(alive))
            # every posting as (term number, document, tf): the snapshot's, then those added since
            terms = list(self._base_terms)
            number = dict(self._base)
            term_parts = [np.repeat(np.arange(len(self._base_terms), dtype=np.int64),
                                    np.diff(self._base_offsets))]
            pos_parts = [self._base_pos.astype(np.int64)]
            tf_parts = [self._base_tf.astype(np.float32)]
            if self._postings:
                added = list(self._postings.items())
                for term, _ in added:
                    if term not in number:
                        number[term] = len(terms)
                        terms.append(term)
                lengths = np.fromiter((len(plist[0]) for _, plist in added), dtype=np.int64, count=len(added))
                codes = np.fromiter((number[term] for term, _ in added), dtype=np.int64, count=len(added))
                term_parts.append(np.repeat(codes, lengths))
                pos_parts.append(np.fromiter(chain.from_iterable(p[0] for _, p in added), dtype=np.int64,
                                             count=int(lengths.sum())))
                tf_parts.append(np.fromiter(chain.from_iterable(p[1] for _, p in added), dtype=np.float32,
                                            count=int(lengths.sum())))
            term_of = np.concatenate(term_parts)
            doc = remap[np.concatenate(pos_parts)]
            tf = np.concatenate(tf_parts)
            keep = doc >= 0
            term_of, doc, tf = term_of[keep], doc[keep], tf[keep]
            used = np.zeros(len(terms), dtype=bool)
            used[term_of] = True
            renumber = np.cumsum(used) - 1  # drop terms left without a live document
            term_of = renumber[term_of]
            order = np.lexsort((doc, term_of))
            term_of, doc, tf = term_of[order], doc[order], tf[order]
            kept_terms = [t for t, u in zip(terms, used.tolist()) if u]
            offsets = np.zeros(len(kept_terms) + 1, dtype=np.int64)
            np.cumsum(np.bincount(term_of, minlength=len(kept_terms)), out=offsets[1:])
            scopes = np.stack([column.values[:size][alive] for column in self._scope.values()], axis=1) \
                if len(alive) else np.zeros((0, len(self._scope)), dtype=np.int32)
            names = {key: _names(column.codes) for key, column in self._scope.items()}
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / (SNAPSHOT_FILE + ".tmp")
            with open(tmp, "wb") as fh:
                np.savez(fh, length=self._length[alive], offsets=offsets, pos=doc.astype(np.int32),
                         tf=tf.astype(np.float32), scopes=scopes.astype(np.int32))
            tmp_ids = folder / (SNAPSHOT_IDS + ".tmp")
            tmp_ids.write_text(json.dumps({"format": FORMAT, "ids": [self._ids[int(i)] for i in alive],
                                           "terms": kept_terms, "scope_names": names}), encoding="utf-8")
            tmp.replace(folder / SNAPSHOT_FILE)
            tmp_ids.replace(folder / SNAPSHOT_IDS)

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex | None":
        """The saved index, or None when there is none usable (the caller then rebuilds it).

        Loading reads a few arrays and two lists; nothing loops over documents or terms in Python.
        """
        try:
            meta = json.loads((folder / SNAPSHOT_IDS).read_text(encoding="utf-8"))
            with np.load(folder / SNAPSHOT_FILE) as data:
                length, offsets = data["length"], data["offsets"]
                pos, tf, scopes = data["pos"], data["tf"], data["scopes"]
        except (OSError, ValueError, KeyError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None
        ids, terms, names = meta.get("ids"), meta.get("terms"), meta.get("scope_names")
        if not isinstance(ids, list) or not isinstance(terms, list) or not isinstance(names, dict):
            return None
        n = len(ids)
        if len(length) != n or len(offsets) != len(terms) + 1 or scopes.shape != (n, 3) \
                or len(pos) != len(tf) or (len(offsets) and int(offsets[-1]) != len(pos)) \
                or (len(pos) and (int(pos.min()) < 0 or int(pos.max()) >= n)):
            return None
        index = cls()
        cap = max(1024, n + n // 4)
        index._ids = ids
        index._pos_map = None  # every loaded document is alive
        index._alive = np.zeros(cap, dtype=bool)
        index._alive[:n] = True
        index._length = np.zeros(cap, dtype=np.float32)
        index._length[:n] = length
        for k, (key, column) in enumerate(index._scope.items()):
            values = names.get(key) or []
            if n and (int(scopes[:, k].max()) >= len(values) or int(scopes[:, k].min()) < -1):
                return None
            column.codes = {value: code for code, value in enumerate(values)}
            column.values = np.full(cap, -1, dtype=np.int32)
            column.values[:n] = scopes[:, k]
        index._base_terms = terms
        index._base = dict(zip(terms, range(len(terms))))
        index._base_offsets = np.asarray(offsets, dtype=np.int64)
        index._base_pos, index._base_tf = pos, tf
        index._source = folder
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
            return [(self._ids[int(p)], float(v)) for p, v in best_sums(np.concatenate(acc_pos),
                                                                        np.concatenate(acc_val), n)]

    def document_frequency(self, term: str, scope: dict[str, str]) -> tuple[int, int]:
        """(documents containing the stemmed term, documents) inside a scope."""
        with self._lock:
            mask = self.scope_mask(scope)
            if mask is None:
                return 0, 0
            arr = self._arrays(term)
            df = int(mask[arr[0]].sum()) if arr is not None else 0
            return df, int(mask.sum())
