"""Hybrid fusion (rag.retrieve.fuse) on constructed candidate scores: neither half is outvoted by its scale."""
import pytest

from rag.retrieve import fuse, spread


def _top(scores: dict, k: int = 5) -> list:
    return sorted(scores, key=lambda p: (-scores[p], p))[:k]


def _ladder(first: int, best: float, rest: list[float]) -> dict[int, float]:
    """Pages first, first+1, ... scored best, then rest."""
    return {first + i: s for i, s in enumerate([best, *rest])}


# ten candidates a half, each about as decisive (best to 10th: bm25 12 -> 6, cosine 0.64 -> 0.32, spread 0.5)
BM25 = [9.0, 8.6, 8.2, 7.8, 7.4, 7.0, 6.6, 6.3, 6.0]
COSINES = [0.48, 0.46, 0.44, 0.42, 0.40, 0.38, 0.36, 0.34, 0.32]


def test_a_page_only_bm25_finds_and_one_only_dense_finds_both_reach_the_top_5():
    lexical = _ladder(100, 12.0, BM25)  # page 100: an exact code only bm25 matches
    dense = _ladder(200, 0.64, COSINES)  # page 200: a paraphrase only the embedding sees
    top = _top(fuse(dense, lexical))
    assert 100 in top and 200 in top
    # the shipped-before rule (w = 0.8 here, raw cosines) ranked page 200 past the 10th


def test_the_more_decisive_half_leads_whichever_it_is():
    """Generic question words give a flat bm25; a steep dense ranking then picks the page (and the mirror case)."""
    flat_bm25 = {1: 10.0, 3: 9.6, 4: 9.4, 5: 9.2, 6: 9.0, 2: 8.6, 7: 8.4, 8: 8.2, 9: 7.6, 10: 7.0}  # spread 0.3
    steep_dense = {2: 0.60, 1: 0.40, 3: 0.39, 4: 0.38, 5: 0.38, 6: 0.37, 7: 0.37, 8: 0.37, 9: 0.36, 10: 0.36}  # 0.4
    assert _top(fuse(steep_dense, flat_bm25), 1) == [2]
    steep_bm25 = {1: 10.0, 2: 4.0, 3: 3.9, 4: 3.8, 5: 3.7, 6: 3.6, 7: 3.5, 8: 3.4, 9: 3.3, 10: 3.2}
    flat_dense = {2: 0.52, 1: 0.47, 3: 0.50, 4: 0.49, 5: 0.49, 6: 0.48, 7: 0.48, 8: 0.47, 9: 0.47, 10: 0.46}
    assert _top(fuse(flat_dense, steep_bm25), 1) == [1]
    # the old rule followed bm25 in both (its 0.25 on the dense side and raw cosines): page 1 first in the first case


@pytest.mark.parametrize("cos_scale, bm25_scale", [(0.5, 1.0), (1.6, 1.0), (1.0, 7.0), (1.0, 0.1)])
def test_the_order_does_not_depend_on_either_half_s_scale(cos_scale, bm25_scale):
    """A model whose cosines run 0.2-0.3 instead of 0.4-0.6, or bm25 over longer pages, ranks alike."""
    lexical = {**_ladder(100, 12.0, BM25), 200: 6.5, 201: 8.0}
    dense = {**_ladder(200, 0.64, COSINES), 100: 0.33, 102: 0.5}
    scaled = fuse({p: s * cos_scale for p, s in dense.items()}, {p: s * bm25_scale for p, s in lexical.items()})
    assert _top(scaled, 10) == _top(fuse(dense, lexical), 10)


def test_a_half_that_finds_nothing_leaves_the_other_s_order():
    lexical = _ladder(100, 12.0, BM25)
    assert _top(fuse({}, lexical), 10) == _top(lexical, 10)
    dense = _ladder(200, 0.64, COSINES)
    assert _top(fuse(dense, {}), 10) == _top(dense, 10)
    assert spread({}) == 0.0 and fuse({}, {}) == {}


def test_negative_cosines_count_as_zero_and_do_not_flip_the_dense_half():
    """All cosines under 0 (a question unlike every page): dense adds nothing; bm25 orders."""
    lexical = {1: 5.0, 2: 4.0, 3: 3.0}
    dense = {3: -0.05, 2: -0.10, 1: -0.20}
    assert _top(fuse(dense, lexical), 3) == [1, 2, 3]


def test_structure_facts_lift_a_page_above_both_halves():
    lexical = _ladder(100, 12.0, BM25)
    dense = _ladder(200, 0.64, COSINES)
    assert _top(fuse(dense, lexical, facts={107: 1.0}), 1) == [107]
