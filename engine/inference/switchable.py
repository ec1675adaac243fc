"""An embedder whose model can be replaced while in use (a store moving to another precision)."""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from .embeddings import Embedder


class SwitchableEmbedder:
    """Embeds with the current model; `switch` puts another one of the same dimension in its place.

    A writer embeds outside the store's write lock and commits inside it, so vectors made just
    before a switch could reach the new collection: `is_stale` says whether the last embed of
    the calling thread used a model that has been replaced since (the write path embeds again).
    """

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.name: str = inner.name
        self.dimension: int = inner.dimension
        self._generation = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def inner(self) -> Embedder:
        return self._inner

    def load(self) -> None:
        load = getattr(self._inner, "load", None)
        if load is not None:
            load()
            self.dimension = self._inner.dimension

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            inner, generation = self._inner, self._generation
        self._local.generation = generation
        return inner.embed_batch(texts)

    def embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embed_batch([text])[0], dtype=np.float32)

    def is_stale(self) -> bool:
        """True when this thread's last embed ran on a model replaced since."""
        return getattr(self._local, "generation", self._generation) != self._generation

    def switch(self, inner: Embedder) -> None:
        if inner.dimension != self._inner.dimension:
            raise ValueError(f"cannot switch a {self._inner.dimension}-d embedder to {inner.dimension} dims")
        with self._lock:
            self._inner = inner
            self.name, self.dimension = inner.name, inner.dimension
            self._generation += 1

    def __getattr__(self, name: str) -> Any:  # precision, batch size ... of the model in use
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)
