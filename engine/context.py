"""Memories -> the text block a language model is given, within a word budget (answers and chat)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .records import MemoryRecord, ScoredMemory


@dataclass(frozen=True, slots=True)
class MemoryContext:
    """The memories given to a model: the formatted block, which ids it holds, and its size."""

    text: str
    memory_ids: tuple[str, ...]
    words: int


def format_memory(record: MemoryRecord) -> str:
    """One memory as a prompt line: when it was said (or is about), who said it, what."""
    when = record.event_date or record.timestamp.date().isoformat()
    who = record.actor or record.role
    prefix = f"[{when}] {who}: " if who else f"[{when}] "
    return prefix + " ".join(record.memory.split())


def build_context(hits: Sequence[ScoredMemory | MemoryRecord], budget_words: int) -> MemoryContext:
    """Take memories best first until the next one would pass `budget_words` words.

    The first memory is always kept (cut to the budget if it alone is longer), so a non-empty
    search never yields an empty context. Word counts are whitespace words of the lines given.
    """
    if budget_words < 1:
        raise ValueError("budget_words must be at least 1")
    lines: list[str] = []
    ids: list[str] = []
    used = 0
    for hit in hits:
        record = hit.record if isinstance(hit, ScoredMemory) else hit
        line = format_memory(record)
        n = len(line.split())
        if used + n > budget_words:
            if lines:
                break
            line = " ".join(line.split()[:budget_words])
            n = budget_words
        lines.append(line)
        ids.append(record.id)
        used += n
    return MemoryContext(text="\n".join(lines), memory_ids=tuple(ids), words=used)
