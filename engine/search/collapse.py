"""One search hit per piece of evidence: a fact and the episode it came from share one slot."""
from __future__ import annotations

from typing import Sequence

from ..records import EPISODE, ScoredMemory

PREFERENCES = ("best", "episode", "fact")


def evidence_key(hit: ScoredMemory) -> str:
    """The message a memory came from (its first source); a memory without one stands alone."""
    sources = hit.record.source_message_ids
    return sources[0] if sources else hit.record.id


def collapse(hits: Sequence[ScoredMemory], top_k: int, *, prefer: str = "best") -> list[ScoredMemory]:
    """Keep one hit per source message, best groups first, at most top_k.

    Hits are grouped by `evidence_key`; a group ranks by its best score. Which member shows:
    "best" the highest-scoring one, "episode" the message as said when it is among the hits,
    "fact" an extracted fact when one is among the hits. The shown hit carries the group's best
    score, so the order never depends on the preference.
    """
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)}, not {prefer!r}")
    groups: dict[str, list[ScoredMemory]] = {}
    for hit in hits:
        groups.setdefault(evidence_key(hit), []).append(hit)
    out: list[ScoredMemory] = []
    for members in groups.values():  # dicts keep insertion order: best group first
        best = members[0]
        shown = best
        if prefer == "episode":
            shown = next((m for m in members if m.record.memory_type == EPISODE), best)
        elif prefer == "fact":
            shown = next((m for m in members if m.record.memory_type != EPISODE), best)
        if shown is not best:
            shown = ScoredMemory(shown.record, best.score, shown.signals)
        out.append(shown)
        if len(out) >= top_k:
            break
    return out
