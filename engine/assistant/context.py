"""Memories -> the text block a language model is given, within a word budget (answers and chat)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Sequence

from ..records import MemoryRecord, ScoredMemory


@dataclass(frozen=True, slots=True)
class MemoryContext:
    """The memories given to a model: the formatted block, which ids it holds, and its size."""

    text: str
    memory_ids: tuple[str, ...]
    words: int


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def human_date(iso: str) -> str:
    """ISO dates as people (and answers) write them: "2023-05-08" -> "8 May 2023";
    a whole month "May 2023", a whole year "2023", another range "1 May 2023 to 7 May 2023"."""
    try:
        if "/" not in iso:
            if len(iso) == 7:
                return f"{_MONTHS[int(iso[5:7]) - 1]} {iso[:4]}"
            d = date.fromisoformat(iso[:10])
            return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"
        a, b = (date.fromisoformat(x[:10]) for x in iso.split("/", 1))
    except (ValueError, IndexError):
        return iso
    if (a.month, a.day, b.month, b.day) == (1, 1, 12, 31) and a.year == b.year:
        return str(a.year)
    if a.day == 1 and (b + timedelta(days=1)).day == 1 and (a.year, a.month) == (b.year, b.month):
        return f"{_MONTHS[a.month - 1]} {a.year}"
    return f"{human_date(a.isoformat())} to {human_date(b.isoformat())}"


def format_memory(record: MemoryRecord) -> str:
    """One memory as a prompt line: when it was said (or is about), who said it, what.

    A message whose text already starts with "Name:" is not given the name twice.
    """
    when = human_date(record.event_date or record.timestamp.date().isoformat())
    text = " ".join(record.memory.split())
    if when in text:  # a fact that already says its date ("... on 7 May 2023.")
        when = human_date(record.timestamp.date().isoformat()) if record.event_date else when
    who = record.actor or record.role
    if who and (text.startswith(f"{who}:") or record.memory_type != "message"):
        who = None  # facts name their subject in the text ("Caroline went ...")
    prefix = f"[{when}] {who}: " if who else f"[{when}] "
    return prefix + text


def build_context(hits: Sequence[ScoredMemory | MemoryRecord], budget_words: int) -> MemoryContext:
    """Take memories best first while they fit in `budget_words` words.

    A memory too long for the words left is skipped and shorter ones after it still get in, so
    the budget is used; the order stays best first. The first memory is always kept (cut to the
    budget if it alone is longer), so a non-empty search never yields an empty context. Word
    counts are whitespace words of the lines given.
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
                if budget_words - used < 8:  # not even a short memory fits any more
                    break
                continue
            line = " ".join(line.split()[:budget_words])
            n = budget_words
        lines.append(line)
        ids.append(record.id)
        used += n
    return MemoryContext(text="\n".join(lines), memory_ids=tuple(ids), words=used)
