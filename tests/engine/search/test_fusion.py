"""engine/search/fusion.py: signals are normalised to [0, 1] and fused into a score in [0, 1] whose parts add up."""
from __future__ import annotations

import math

import pytest

from engine.search.fusion import (Weights, context_share, fuse, neighbour_scores, normalise_keyword,
                           normalise_semantic, reciprocal_rank_fusion, shares, time_score, with_context)


def test_semantic_is_clipped_to_zero_one():
    assert normalise_semantic({"a": -0.2, "b": 0.5, "c": 1.2}) == {"a": 0.0, "b": 0.5, "c": 1.0}


def test_keyword_is_relative_to_the_best_and_damped_when_the_best_is_weak():
    strong = normalise_keyword({"a": 12.0, "b": 6.0}, scale=4.0)
    weak = normalise_keyword({"a": 0.5, "b": 0.25}, scale=4.0)
    assert strong["a"] == pytest.approx(1 - math.exp(-3)) and strong["b"] == pytest.approx(strong["a"] / 2)
    assert weak["a"] < 0.12  # only common words matched: no full marks
    assert normalise_keyword({}, 4.0) == {} and normalise_keyword({"a": 0.0}, 4.0) == {"a": 0.0}


def test_fused_scores_stay_in_zero_one_and_a_perfect_match_scores_one():
    w = Weights(semantic=1.0, keyword=1.0, entity=0.3, time=0.3)
    fused = fuse({"semantic": {"a": 1.0, "b": 0.5}, "keyword": {"a": 1.0}, "entity": {"a": 1.0},
                  "time": {"a": 1.0, "c": 1.0}}, w)
    scores = {cid: s for cid, s, _ in fused}
    assert scores["a"] == pytest.approx(1.0)
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert [cid for cid, _, _ in fused] == ["a", "b", "c"]  # b: 0.5 / 2.6, c: 0.3 / 2.6


def test_only_the_query_signals_share_the_score():
    w = Weights(semantic=1.0, keyword=1.0, entity=0.3, time=0.3)
    fused = fuse({"semantic": {"a": 0.8}, "keyword": {"a": 0.4}}, w)
    assert fused[0][1] == pytest.approx(0.6) and set(fused[0][2]) == {"semantic", "keyword"}


def test_weighted_parts_add_up_to_the_final_score():
    w = Weights(semantic=1.0, keyword=1.0, entity=0.1, time=0.2, context=0.5)
    signals = {"semantic": {"a": 0.7, "b": 0.2}, "keyword": {"a": 0.9}, "entity": {"b": 1.0}}
    fused = fuse(signals, w)
    base = {cid: s for cid, s, _ in fused}
    context = neighbour_scores(base, {"a": ["b"], "b": ["a"]})
    part = shares(signals, w, with_context=True)
    assert sum(part.values()) == pytest.approx(1.0) and part["context"] == pytest.approx(1 / 3)
    for cid, score, breakdown in fused:
        final = with_context(score, context[cid], w)
        values = {**breakdown, "context": context[cid]}
        assert sum(part[n] * values[n] for n in part) == pytest.approx(final)
        assert 0.0 <= final <= 1.0


def test_ranking_equals_the_unnormalised_formula():
    """score = (base + w_c * max neighbour base) / constant: the order of hits is that of the sum."""
    w = Weights(semantic=1.0, keyword=1.0, entity=0.1, time=0.2, context=0.5)
    signals = {"semantic": {"a": 0.9, "b": 0.3, "c": 0.6, "d": 0.1}, "keyword": {"b": 1.0, "d": 0.2},
               "time": {"c": 1.0}}
    fused = fuse(signals, w)
    base = {cid: s for cid, s, _ in fused}
    neighbours = {"a": ["d"], "d": ["a", "c"], "c": ["d"], "b": []}
    context = neighbour_scores(base, neighbours)
    ours = sorted(base, key=lambda c: -with_context(base[c], context.get(c, 0.0), w))
    raw = {c: sum(w.get(n) * signals[n].get(c, 0.0) for n in signals) for c in base}
    old = sorted(raw, key=lambda c: -(raw[c] + w.context * max((raw[n] for n in neighbours[c]), default=0.0)))
    assert ours == old


def test_neighbour_scores_take_the_best_neighbour():
    assert neighbour_scores({"a": 0.9, "b": 0.4}, {"a": ["x"], "b": ["x", "y"]}) == {"x": 0.9, "y": 0.4}
    assert context_share(Weights(context=0.0)) == 0.0


def test_time_score_and_rrf():
    assert time_score(0) == 1.0 and time_score(30) == pytest.approx(math.exp(-1))
    ranked = reciprocal_rank_fusion({"dense": ["a", "b"], "bm25": ["b", "c"]})
    assert [c for c, _ in ranked] == ["b", "a", "c"]


def test_totals_are_fuses_scores_and_breakdown_its_parts():
    from engine.search.fusion import breakdown, totals

    signals = {"semantic": {"a": 0.71, "b": 0.33, "c": 0.1}, "keyword": {"a": 0.2, "d": 0.9},
               "entity": {"c": 0.043, "e": 0.121}, "time": {"a": 1.0, "e": 0.4}}
    w = Weights(semantic=1.0, keyword=1.0, entity=0.3, time=0.3)
    fused = fuse(signals, w)
    assert totals(signals, w) == {cid: score for cid, score, _ in fused}  # exactly, not approximately
    assert all(breakdown(signals, cid) == parts for cid, _, parts in fused)
    assert breakdown(signals, "nobody") == {"semantic": 0.0, "keyword": 0.0, "entity": 0.0, "time": 0.0}
