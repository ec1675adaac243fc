"""Pure functions that normalise each retrieval signal and fuse them into one score in [0, 1].

For a candidate memory m and a query q, every signal is scaled to [0, 1]:

    semantic(m) = max(0, cosine(embed(q), embed(m)))
    keyword(m)  = bm25(m) / max_c bm25(c)        over the candidates c of this query,
                  damped by (1 - exp(-max_c bm25(c) / bm25_scale)) so that a query whose best
                  keyword match is weak (only common words) cannot give any memory a full 1.0
    entity(m)   = sum of idf(e) over query entities e linked to m / sum of idf(e) over all query
                  entities found in the scope
    time(m)     = 1 when m's event date or message time falls in the query's date window,
                  else decays as exp(-days_outside / 30); for "when ..." questions without a
                  window, 1 when m carries an event date, else 0
    context(m)  = the best base score of m's conversational neighbours (the turns stored just
                  before and after it in the same add() call), 0 when it has none

The signals a query uses (entity only when it names a known entity, time only when it asks
about a date, context only when neighbours are looked up) share the score by weight:

    base(m)  = sum_i w_i * signal_i(m) / sum_i w_i          i over the query's signals but context
    score(m) = (1 - c) * base(m) + c * context(m)           c = w_c / (1 + w_c)

So every score lies in [0, 1], a memory that matches every signal perfectly scores 1, and the
parts shown to a person, share_i * signal_i (see `shares`), add up to the score. Within one
query this is the earlier formula base + w_c * max base(n) divided by a constant, so the
ranking is unchanged. A threshold given to search gates the final score, so a strong
keyword-only hit survives a threshold that its weaker cosine alone would fail (mem0 drops those).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

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


def fuse(signals: Mapping[str, Mapping[str, float]], weights: Weights
         ) -> list[tuple[str, float, dict[str, float]]]:
    """base(m) for every candidate seen by any signal, best first, with each signal's value.

    `signals` maps a signal name to already-normalised scores in [0, 1]; a candidate a signal
    did not return scores 0 for it. Only the signals given take part (see the module docstring).
    """
    active = [name for name in SIGNALS if name in signals]
    candidates: set[str] = set()
    for scores in signals.values():
        candidates.update(scores)
    denom = sum(weights.get(name) for name in active) or 1.0
    out = []
    for cid in candidates:
        breakdown = {name: float(signals[name].get(cid, 0.0)) for name in active}
        total = sum(weights.get(name) * breakdown[name] for name in active) / denom
        out.append((cid, total, breakdown))
    out.sort(key=lambda item: (-item[1], item[0]))
    return out


def totals(signals: Mapping[str, Mapping[str, float]], weights: Weights) -> dict[str, float]:
    """base(m) of every candidate, exactly as `fuse` computes it, without the per-signal parts."""
    active = [(weights.get(name), signals[name]) for name in SIGNALS if name in signals]
    denom = sum(w for w, _ in active) or 1.0
    candidates: set[str] = set()
    for scores in signals.values():
        candidates.update(scores)
    return {cid: sum(w * float(scores.get(cid, 0.0)) for w, scores in active) / denom for cid in candidates}


def breakdown(signals: Mapping[str, Mapping[str, float]], cid: str) -> dict[str, float]:
    """Each signal's value for one candidate (0 where the signal did not return it)."""
    return {name: float(signals[name].get(cid, 0.0)) for name in SIGNALS if name in signals}


def context_share(weights: Weights) -> float:
    """c = w_c / (1 + w_c): the part of the final score that comes from the neighbours."""
    return weights.context / (1.0 + weights.context) if weights.context > 0 else 0.0


def shares(active: Iterable[str], weights: Weights, with_context: bool) -> dict[str, float]:
    """Each signal's share of the final score; they sum to 1 (the weights a person sees)."""
    names = [n for n in active if n in SIGNALS]
    denom = sum(weights.get(n) for n in names) or 1.0
    c = context_share(weights) if with_context else 0.0
    out = {n: (1.0 - c) * weights.get(n) / denom for n in names}
    if with_context:
        out["context"] = c
    return out


def with_context(base: float, context: float, weights: Weights) -> float:
    """score = (1 - c) * base + c * context."""
    c = context_share(weights)
    return (1.0 - c) * base + c * context


def neighbour_scores(scores: Mapping[str, float], neighbours: Mapping[str, list[str]]) -> dict[str, float]:
    """context(m) = the best base score among m's conversational neighbours.

    A turn's meaning often lives next to it (an answer follows its question), so a memory
    adjacent to a strong match gets part of that match's score; neighbours that were no
    candidate of their own enter this way.
    """
    out: dict[str, float] = {}
    for cid, score in scores.items():
        for nid in neighbours.get(cid, ()):
            if score > out.get(nid, 0.0):
                out[nid] = score
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
