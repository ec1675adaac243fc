"""add(): messages stored as episodes, the facts extracted from them, deduplicated, in one commit.

Every non-system message is kept as said, as a memory of type "message" (an episode). With
extraction, facts are added on top, each linked to its episodes through their messages; a fact
that repeats a known fact (same text, or a vector above `extraction.duplicate_threshold`) is
not stored and reported as NONE (mem0's ADD-only update).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..config import LociConfig
from ..errors import ExtractionError
from ..extraction import Candidate, ExtractionResult, Extractor
from ..extraction.temporal import resolve_event_date
from ..inference.embeddings import Embedder
from ..records import EPISODE, MemoryRecord, Message, Scope, content_hash
from ..search.reader import Reader
from ..search.retrieval import SearchOptions
from ..store.ledger import Ledger, utcnow
from ..store.vectors import VectorStore
from ..store.writer import Writer
from .model_owner import Models

Progress = Callable[[int, int], None]


def event(rec: MemoryRecord, kind: str) -> dict[str, Any]:
    """One entry of add()'s "results" (mem0's shape, with Loci's role, type and event date)."""
    return {"id": rec.id, "memory": rec.memory, "event": kind, "actor_id": rec.actor, "role": rec.role,
            "memory_type": rec.memory_type, "event_date": rec.event_date}


def new_record(text: str, scope: Scope, meta: Mapping[str, Any], when: datetime, role: str | None,
               actor: str | None, memory_type: str | None, event_date: str | None,
               sources: tuple[str, ...], entities: tuple[str, ...]) -> MemoryRecord:
    """A memory not stored yet; its event date is read from its text when not given."""
    now = utcnow()
    if event_date is None:
        window = resolve_event_date(text, when)
        event_date = window.iso() if window else None
    return MemoryRecord(id=str(uuid.uuid4()), memory=text, hash=content_hash(text), scope=scope,
                        created_at=now, updated_at=now, timestamp=when, metadata=dict(meta),
                        role=role, actor=actor, memory_type=memory_type, event_date=event_date,
                        source_message_ids=sources, entities=entities)


def episodes(msgs: Sequence[Message], scope: Scope, meta: Mapping[str, Any]) -> list[MemoryRecord]:
    """Every non-system message as a searchable memory of type "message", text as said."""
    return [new_record(m.content, scope, {**meta, **m.metadata}, m.timestamp, m.role, m.name,
                       EPISODE, None, (m.id,), ()) for m in msgs if m.role != "system"]


class Adder:
    """Turns checked messages into stored memories through the Writer."""

    def __init__(self, ledger: Ledger, vectors: VectorStore, embedder: Embedder, writer: Writer,
                 reader: Reader, models: Models, config: LociConfig) -> None:
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._writer = writer
        self._reader = reader
        self._models = models
        self._config = config  # read at each call: settings changed in place take effect

    def add(self, msgs: list[Message], scope: Scope, meta: dict[str, Any], *, infer: bool,
            memory_type: str | None, prompt: str | None, progress: Progress | None,
            cancel: Any) -> dict[str, Any]:
        """Store the messages (and, unless infer=False, what extraction draws from them)."""
        if not infer and memory_type is None:
            return self._add_raw(msgs, scope, meta)
        return self._add_inferred(msgs, scope, meta, memory_type, prompt, progress, cancel)

    def _add_raw(self, msgs: list[Message], scope: Scope, meta: dict[str, Any]) -> dict[str, Any]:
        records = episodes(msgs, scope, meta)
        vectors = self._embedder.embed_batch([r.memory for r in records])  # no lock: writers embed at once
        self._writer.commit(records, vectors, msgs)
        return {"results": [event(r, "ADD") for r in records]}

    def _add_inferred(self, msgs: list[Message], scope: Scope, meta: dict[str, Any],
                      memory_type: str | None, prompt: str | None, progress: Progress | None,
                      cancel: Any) -> dict[str, Any]:
        """Episodes (every message as said) plus the facts extracted from them, linked by message id.

        Returns mem0's shape: "results" holds the new facts only; the episodes stored alongside
        are listed under "episodes", and each fact names its episodes under "episode_ids".
        """
        extractor = self._models.extractor()
        new = [m for m in msgs if m.role != "system"]
        last = new[-1] if new else msgs[-1]
        if memory_type == "procedural_memory":
            return self._add_procedure(extractor, msgs, scope, meta, prompt, last)
        context = self._ledger.recent_messages(scope.as_dict(), self._config.extraction.context_messages)
        result = extractor.extract(new, context=context, existing=self._existing(extractor, new, scope),
                                   prompt=prompt, progress=progress, cancel=cancel)
        stored = episodes(msgs, scope, meta)
        facts = [self._fact(cand, new, last, scope, meta) for cand in result.candidates]
        if cancel is not None and getattr(cancel, "is_cancelled", False):
            raise ExtractionError("The import was cancelled; nothing was stored.")
        events = self._commit_with_facts(stored, facts, scope, msgs)
        return _report(stored, facts, events, result, new)

    def _add_procedure(self, extractor: Extractor, msgs: list[Message], scope: Scope,
                       meta: dict[str, Any], prompt: str | None, last: Message) -> dict[str, Any]:
        """memory_type="procedural_memory": one summary of the whole exchange (mem0's agent memory)."""
        summary = extractor.summarize_procedure(msgs, prompt=prompt)
        record = new_record(summary, scope, meta, last.timestamp, "assistant", None,
                            "procedural_memory", None, tuple(m.id for m in msgs), ())
        with self._writer.lock:
            self._writer.commit([record], self._embedder.embed_batch([summary]), msgs)
        return {"results": [event(record, "ADD")]}

    def _existing(self, extractor: Extractor, new: list[Message], scope: Scope) -> list[str]:
        """Known facts like the new messages, shown to a model that is asked not to repeat them."""
        if not new or not extractor.wants_existing:
            return []
        hits = self._reader.search(" ".join(m.content for m in new)[:2000],
                                   top_k=self._config.extraction.similar_memories,
                                   filters={**scope.as_dict(), "memory_type": {"ne": EPISODE}},
                                   threshold=None, reference_date=None, options=SearchOptions(),
                                   show_expired=False)
        return [s.record.memory for s in hits]

    @staticmethod
    def _fact(cand: Candidate, new: list[Message], last: Message, scope: Scope,
              meta: Mapping[str, Any]) -> MemoryRecord:
        sources = tuple(new[i] for i in cand.source_indices if 0 <= i < len(new)) or (last,)
        head = sources[0]
        return new_record(cand.text, scope, {**meta, **head.metadata}, head.timestamp, head.role,
                          head.name, cand.memory_type, cand.event_date, tuple(m.id for m in sources),
                          tuple(cand.entities))

    def _commit_with_facts(self, stored: list[MemoryRecord], facts: list[MemoryRecord], scope: Scope,
                           msgs: list[Message]) -> list[dict[str, Any]]:
        """Embed, drop known facts and commit episodes and new facts at once; one event per fact.

        Embedding runs outside the write lock (another add can save meanwhile); the duplicate check
        and the commit hold it, so two adds at once cannot both store the same new fact.
        """
        texts = [r.memory for r in stored + facts]
        vectors = self._embedder.embed_batch(texts)
        with self._writer.lock:
            vectors = self._writer.current_vectors(texts, vectors)
            fact_vectors = vectors[len(stored):]
            keep, events = self.dedupe(facts, fact_vectors, scope)
            kept = [facts[i] for i in keep]
            rows = np.concatenate([vectors[:len(stored)], fact_vectors[keep]]) if keep else vectors[:len(stored)]
            self._writer.commit(stored + kept, rows, msgs)
        return events

    def dedupe(self, records: list[MemoryRecord], vectors: np.ndarray,
               scope: Scope) -> tuple[list[int], list[dict[str, Any]]]:
        """ADD-only: drop exact or near duplicates of known facts (reported as NONE).

        Episodes are never duplicates: a fact that repeats its own message still adds the
        speaker's name and absolute dates, and the search collapses the two (engine/search/collapse.py).
        """
        keep: list[int] = []
        events: list[dict[str, Any]] = []
        threshold = self._config.extraction.duplicate_threshold
        where = scope.as_dict()
        for i, rec in enumerate(records):
            same = self._ledger.find_hash(where, rec.hash, exclude_type=EPISODE)
            if same is None:
                for j in keep:
                    if float(vectors[i] @ vectors[j]) >= threshold or records[j].hash == rec.hash:
                        same = records[j].id
                        break
            if same is None:
                same = self._similar_fact(vectors[i], where, threshold)
            if same is None:
                keep.append(i)
                events.append(event(rec, "ADD"))
            else:
                events.append({"id": same, "memory": rec.memory, "event": "NONE"})
        return keep, events

    def _similar_fact(self, vector: np.ndarray, where: dict[str, str], threshold: float) -> str | None:
        """A stored fact (not an episode) of the scope whose vector is at least `threshold` alike."""
        hits = [h for h in self._vectors.search(vector, 4, where) if h[1] >= threshold]
        known = self._ledger.get_many([h[0] for h in hits]) if hits else {}
        return next((h[0] for h in hits if h[0] in known and known[h[0]].memory_type != EPISODE), None)


def _report(stored: list[MemoryRecord], facts: list[MemoryRecord], events: list[dict[str, Any]],
            result: ExtractionResult, new: list[Message]) -> dict[str, Any]:
    """add()'s answer: new facts under "results" (with their episodes), episodes, what was dropped."""
    episode_of = {r.source_message_ids[0]: r.id for r in stored}
    for fact, entry in zip(facts, events):
        entry["episode_ids"] = [episode_of[m] for m in fact.source_message_ids if m in episode_of]
    out: dict[str, Any] = {"results": events, "episodes": [event(r, "ADD") for r in stored]}
    if result.dropped:
        out["dropped"] = list(result.dropped)
    if result.uncovered:
        out["uncovered_messages"] = [new[i].id for i in result.uncovered if 0 <= i < len(new)]
    return out
