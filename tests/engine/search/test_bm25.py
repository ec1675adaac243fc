"""engine/search/bm25.py: our inverted-index BM25 scores exactly as rank-bm25 with the same idf."""
from __future__ import annotations

import math

import pytest
from rank_bm25 import BM25Okapi

from engine.search.bm25 import KeywordIndex, tokenize
from engine.records import Scope

CORPUS = [
    "Maya adopted a grey cat named Pixel last spring",
    "Maya's sister Ingrid lives in Bergen and teaches piano",
    "I started a new job at Nordlys Energy in Oslo",
    "Ingrid and Tomas went hiking near Bergen",
    "The cat knocked the piano books off the shelf",
    "Tomas is training for the Oslo marathon",
    "I cycle to work on a new road bike",
    "Piano lessons start again in September",
]
QUERIES = ["where does Ingrid live", "piano", "cat Pixel", "Oslo marathon training", "new bike for work"]


class LuceneIdfBM25(BM25Okapi):
    """rank-bm25's Okapi BM25 with the always-positive idf our index documents."""

    def _calc_idf(self, nd):  # noqa: ANN001 (rank-bm25's signature)
        self.idf = {w: math.log1p((self.corpus_size - f + 0.5) / (f + 0.5)) for w, f in nd.items()}


@pytest.fixture
def index():
    idx = KeywordIndex()
    idx.add_many((f"m{i}", text, Scope(user_id="maya")) for i, text in enumerate(CORPUS))
    return idx


@pytest.mark.parametrize("query", QUERIES)
def test_scores_equal_rank_bm25_with_the_same_idf(index, query):
    reference = LuceneIdfBM25([tokenize(t) for t in CORPUS], k1=1.5, b=0.75)
    expected = reference.get_scores(tokenize(query))
    ours = dict(index.search(query, {"user_id": "maya"}, n=100))
    for i, score in enumerate(expected):
        assert ours.get(f"m{i}", 0.0) == pytest.approx(score, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("query", ["piano", "Bergen", "Oslo"])
def test_single_term_ranking_equals_plain_rank_bm25(index, query):
    """With one term the idf is a constant factor, so even rank-bm25's own idf ranks alike."""
    reference = BM25Okapi([tokenize(t) for t in CORPUS])
    scores = reference.get_scores(tokenize(query))
    expected = sorted((f"m{i}" for i, s in enumerate(scores) if s != 0), key=lambda k: -scores[int(k[1:])])
    assert [mid for mid, _ in index.search(query, {"user_id": "maya"}, n=100)] == expected


def test_scope_restricts_results_and_statistics(index):
    index.add_many([("x1", "Piano piano piano", Scope(user_id="other"))])
    assert {mid for mid, _ in index.search("piano", {"user_id": "maya"}, 10)} == {"m1", "m4", "m7"}
    assert [mid for mid, _ in index.search("piano", {"user_id": "other"}, 10)] == ["x1"]
    assert index.search("piano", {"user_id": "nobody"}, 10) == []
    assert index.document_frequency(tokenize("piano")[0], {"user_id": "maya"}) == (3, 8)


def test_updates_and_removals_take_effect_at_once(index):
    index.remove("m0")
    assert "m0" not in dict(index.search("cat", {"user_id": "maya"}, 10))
    index.add_many([("m4", "A text about bikes", Scope(user_id="maya"))])  # replaces m4
    assert dict(index.search("cat", {"user_id": "maya"}, 10)) == {}
    assert "m4" in dict(index.search("bikes", {"user_id": "maya"}, 10))
    assert len(index) == 7


def test_tokenize_stems_and_drops_stop_words():
    assert tokenize("The Paintings of Maya's sisters") == ["paint", "maya", "sister"]
    assert tokenize("and the of") == []


def test_words_in_most_memories_give_the_best_n_of_all_matches_ties_in_insertion_order():
    """16 words, 12 in each memory: every score ties with many others."""
    import random

    rnd = random.Random(2)
    vocab = ("garden tomato soil water seed plant compost sunlight shade rain harvest basil pepper "
             "weed root leaf").split()
    texts = [" ".join(rnd.sample(vocab, 12)) for _ in range(300)]
    idx = KeywordIndex()
    idx.add_many((f"d{i:03d}", text, Scope(user_id="u")) for i, text in enumerate(texts))
    query = "tomato basil compost soil root"
    reference = LuceneIdfBM25([tokenize(t) for t in texts], k1=1.5, b=0.75).get_scores(tokenize(query))
    everything = idx.search(query, {"user_id": "u"}, n=1000)
    assert len(everything) == sum(1 for s in reference if s > 0)
    expected = sorted(everything, key=lambda pair: (-pair[1], pair[0]))  # ids are in insertion order
    assert everything == expected
    for mid, score in everything:
        assert score == pytest.approx(reference[int(mid[1:])], rel=1e-5)
    assert len({score for _, score in everything}) < len(everything) / 4  # mostly ties
    for n in (1, 7, 50, 299):
        assert idx.search(query, {"user_id": "u"}, n) == expected[:n]
