"""A growable column of scope codes, shared by the in-memory indexes (vectors and BM25)."""
from __future__ import annotations

import numpy as np


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
