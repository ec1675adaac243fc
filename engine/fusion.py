"""Pure functions that normalise each retrieval signal and fuse them into one score.

For a candidate memory m and a query q, with every signal scaled to [0, 1]:

    semantic(m) = max(0, cosine(embed(q), embed(m)))
    keyword(m)  = bm25(m) / max_c bm25(c)        over the candidates c of this query,
                  damped by (1 - exp(-max_c bm25(c) / bm25_scale)) so that a query whose best
                  keyword match is weak (only common words) cannot give any memory a full 1.0
    entity(m)   = sum of idf(e) over query entities e linked to m / sum of idf(e) over all query
                  entities found in the scope
    time(m)     = 1 when m's event date or message time falls in the query's date window,
                  else decays as exp(-days_outside / 30); for "when ..." questions without a
                  window, 1 when m carries an event date, else 0

    fused(m) = (w_s * semantic + w_k * keyword + w_e * entity + w_t * time) / (w_s + w_k)
    final(m) = fused(m) + w_c * max(fused(n) for n in the conversational neighbours of m)

Dividing by w_s + w_k keeps the fused score on the scale of the two text signals, so a
memory matching both perfectly scores about 1 and entity/time act as bonuses. A threshold
given to search gates this fused score, so a strong keyword-only hit survives a threshold
that its weaker cosine alone would fail (mem0 drops those).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

SIGNALS = ("semantic", "keyword", "entity", "time")  # context is added after fusion


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each signal counts; see the module docstring for the formula."""

    semantic: float = 1.0
    keyword: float = 1.0
    entity: float = 0.3
    time: float = 0.3
    context: float = 0.0
    bm25_scale: float = 4.0

    def get(self, signal: str) -> float:
        return float(getattr(self, signal))


def normalise_semantic(scores: Mapping[str, float]) -> dict[str, float]:
    """Cosine similarities clipped to [0, 1]."""
    return {k: min(1.0, max(0.0, v)) for k, v in scores.items()}


def normalise_keyword(scores: Mapping[str, float], scale: float) -> dict[str, float]:
    """BM25 divided by the best score of the query, damped when that best score is weak."""
    if not scores:
        return {}
    top = max(scores.values())
    if top <= 0:
        return {k: 0.0 for k in scores}
    confidence = 1.0 - math.exp(-top / scale) if scale > 0 else 1.0
    return {k: confidence * v / top for k, v in scores.items()}


def fuse(signals: Mapping[str, Mapping[str, float]], weights: Weights) -> list[tuple[str, float, dict[str, float]]]:
    """Weighted sum over every candidate seen by any signal, best first, with its breakdown.

    `signals` maps a signal name to already-normalised scores in [0, 1]; a candidate a signal
    did not return scores 0 for it.
    """
    candidates: set[str] = set()
    for scores in signals.values():
        candidates.update(scores)
    denom = (weights.semantic + weights.keyword) or 1.0
    out = []
    for cid in candidates:
        breakdown = {name: float(signals.get(name, {}).get(cid, 0.0)) for name in SIGNALS}
        total = sum(weights.get(name) * breakdown[name] for name in SIGNALS) / denom
        out.append((cid, total, breakdown))
    out.sort(key=lambda item: (-item[1], item[0]))
    return out


def spread_to_neighbours(scores: Mapping[str, float], neighbours: Mapping[str, list[str]],
                         weight: float) -> dict[str, float]:
    """context(m) = weight * max fused score of m's conversational neighbours (0 if none).

    A turn's meaning often lives next to it (an answer follows its question), so a memory
    adjacent to a strong match gets part of that match's score; neighbours that were no
    candidate of their own enter this way.
    """
    if weight <= 0:
        return {}
    out: dict[str, float] = {}
    for cid, score in scores.items():
        for nid in neighbours.get(cid, ()):
            value = weight * score
            if value > out.get(nid, 0.0):
                out[nid] = value
    return out


def reciprocal_rank_fusion(rankings: Mapping[str, list[str]], k: int = 60) -> list[tuple[str, float]]:
    """Classic RRF: sum of 1 / (k + rank) over the rankings a candidate appears in."""
    totals: dict[str, float] = {}
    for ranking in rankings.values():
        for rank, cid in enumerate(ranking, start=1):
            totals[cid] = totals.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def time_score(days_outside: float, decay_days: float = 30.0) -> float:
    """1 inside the window, then exponential decay with the distance in days."""
    return 1.0 if days_outside <= 0 else math.exp(-days_outside / decay_days)
