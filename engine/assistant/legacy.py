"""Memories that earlier versions of the assistant stored from its own replies and the user's questions."""
from __future__ import annotations

from typing import Any

from .chat import CHAT_PREFIX
from .intent import classify
from ..arguments import MAX_PAGE
from ..records import MemoryRecord


def chat_leftovers(memory: Any) -> list[MemoryRecord]:
    """Every memory of an assistant chat that is not something the user stated.

    Before the assistant kept only the user's statements, each exchange was added whole: the
    model's replies (role "assistant"), the user's questions and requests, and the facts drawn
    from them became memories. Those are listed here, oldest first, so a person can remove them;
    the user's own statements and what was drawn from them only are left alone.
    """
    runs = [s.value for s in memory.scopes() if s.kind == "run_id" and s.value.startswith(CHAT_PREFIX)]
    found: list[MemoryRecord] = []
    for run in runs:
        records = memory.list_records(filters={"run_id": run}, top_k=MAX_PAGE, oldest_first=True)
        bad_episodes = {r.id for r in records if r.memory_type == "message" and _not_stated(r)}
        for r in records:
            if r.memory_type == "message":
                if r.id in bad_episodes:
                    found.append(r)
                continue
            sources = [e for e in memory.linked_records(r.id) if e.memory_type == "message"]
            if r.role == "assistant" or (sources and all(e.id in bad_episodes or _not_stated(e) for e in sources)):
                found.append(r)
    return found


def _not_stated(record: MemoryRecord) -> bool:
    return record.role == "assistant" or classify(record.memory).to_remember is None
