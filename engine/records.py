"""Frozen records passed between engine layers and to front ends."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Mapping

EXPIRATION_KEY = "expiration_date"  # metadata key holding a memory's expiry day (mem0's payload key)
CONVERSATION_KEY = "conversation"  # metadata key holding the title of the chat a memory was imported from
SCOPE_KEYS = ("user_id", "agent_id", "run_id")  # who a memory belongs to, as mem0 names it
EPISODE = "message"  # memory_type of a message stored as said (an episode)


def conversation_title(value: Any) -> str | None:
    """A conversation title as shown: the stripped text, or None for anything else or blank."""
    return value.strip() or None if isinstance(value, str) else None


def content_hash(text: str) -> str:
    """Stable hash of a memory's text, used to skip exact duplicates and re-embedding."""
    return hashlib.md5(" ".join(text.split()).casefold().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a memory belongs to: any of user, agent and session (run)."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("user_id", self.user_id), ("agent_id", self.agent_id),
                                  ("run_id", self.run_id)) if v is not None}

    @property
    def is_empty(self) -> bool:
        return self.user_id is None and self.agent_id is None and self.run_id is None


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation message as given to add() and kept for provenance."""

    id: str
    role: str
    content: str
    timestamp: datetime
    name: str | None = None
    scope: Scope = field(default_factory=Scope)
    created_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # per-message extras (infer=False)


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One stored memory with everything known about it."""

    id: str
    memory: str
    hash: str
    scope: Scope
    created_at: datetime
    updated_at: datetime
    timestamp: datetime  # when the source message was said
    metadata: Mapping[str, Any] = field(default_factory=dict)
    role: str | None = None  # role of who said it (user / assistant)
    actor: str | None = None  # name of who said it, when known
    memory_type: str | None = None  # fact, preference, event, plan, procedural_memory ...
    event_date: str | None = None  # ISO date or "start/end" range the memory is about
    source_message_ids: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()

    @property
    def expiration_date(self) -> str | None:
        """The YYYY-MM-DD day after which the memory is hidden (kept in metadata, as mem0 does)."""
        value = self.metadata.get(EXPIRATION_KEY)
        return value if isinstance(value, str) else None

    @property
    def conversation(self) -> str | None:
        """The title of the chat this memory was imported from (metadata CONVERSATION_KEY), if any."""
        return conversation_title(self.metadata.get(CONVERSATION_KEY))

    def is_expired(self, today: date | None = None) -> bool:
        """True once the expiration day has passed (UTC), as mem0 counts it."""
        day = self.expiration_date
        if not day:
            return False
        try:
            return date.fromisoformat(day) < (today or datetime.now(timezone.utc).date())
        except ValueError:
            return False

    def to_dict(self) -> dict[str, Any]:
        """The mem0-compatible dict shape (plus Loci's extra keys); empty metadata is None."""
        meta = {k: v for k, v in self.metadata.items() if k != EXPIRATION_KEY}
        out: dict[str, Any] = {
            "id": self.id,
            "memory": self.memory,
            "hash": self.hash,
            "metadata": meta or None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "user_id": self.scope.user_id,
            "agent_id": self.scope.agent_id,
            "run_id": self.scope.run_id,
            "timestamp": self.timestamp.isoformat(),
            "role": self.role,
            "actor_id": self.actor,
            "memory_type": self.memory_type,
            "event_date": self.event_date,
            "source_message_ids": list(self.source_message_ids),
            "entities": list(self.entities),
            "expiration_date": self.expiration_date,
        }
        return out


@dataclass(frozen=True, slots=True)
class ScoredMemory:
    """A search hit: the record, its fused score and every signal's score."""

    record: MemoryRecord
    score: float
    signals: Mapping[str, float] = field(default_factory=dict)  # each signal's value in [0, 1]
    weights: Mapping[str, float] = field(default_factory=dict)  # each signal's share; sums to 1

    def to_dict(self, explain: bool = False, threshold: float | None = None) -> dict[str, Any]:
        out = self.record.to_dict()
        out["score"] = self.score
        if explain:
            out["explain"] = dict(self.signals)
            if self.weights:
                out["explain_weights"] = dict(self.weights)
            out["score_details"] = self.score_details(threshold)
        return out

    def score_details(self, threshold: float | None = None) -> dict[str, Any]:
        """mem0's explain keys (semantic_score, bm25_score, entity_boost, ...) from Loci's signals."""
        signals = dict(self.signals)
        raw = sum(v for v in signals.values())
        return {"semantic_score": signals.get("semantic", 0.0), "bm25_score": signals.get("keyword", 0.0),
                "entity_boost": signals.get("entity", 0.0), "time_score": signals.get("time", 0.0),
                "context_score": signals.get("context", 0.0), "raw_score": raw,
                "final_score": self.score, "threshold": threshold}


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One entry of a memory's audit log."""

    id: str
    memory_id: str
    event: str  # ADD, UPDATE, DELETE
    old_memory: str | None
    new_memory: str | None
    actor: str | None
    role: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory_id": self.memory_id,
            "event": self.event,
            "old_memory": self.old_memory,
            "new_memory": self.new_memory,
            "actor_id": self.actor,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.created_at.isoformat(),  # mem0's key: when this change happened
            "is_deleted": self.event == "DELETE",
        }


@dataclass(frozen=True, slots=True)
class Entity:
    """A person, place or thing mentioned by memories of one scope."""

    name: str
    label: str
    memory_count: int
