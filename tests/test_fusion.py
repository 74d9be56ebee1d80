"""Fusion rules of docs/FORMAT.md section 3, as formulas a reader can recompute."""
from __future__ import annotations

import math

import pytest
from pytest import approx

from indexer.fusion import fuse, linear, minmax, one_side, rrf, rrf_scores, zscore
from indexer.hits import Hits

LEXICAL = Hits(["a", "b", "c"], [12.0, 8.0, 4.0])   # BM25
SEMANTIC = Hits(["c", "d", "a"], [0.9, 0.5, 0.1])   # cosine


def test_hits_sorted_by_score_then_id():
    hits = Hits(["b", "a", "c", "d"], [1.0, 1.0, 2.0, -1.0])
    assert hits.ids == ("c", "a", "b", "d")
    assert hits.scores == (2.0, 1.0, 1.0, -1.0)
    assert hits.rank_of("c") == 1 and hits.rank_of("b") == 3 and hits.rank_of("z") is None


def test_hits_reject_bad_input():
    with pytest.raises(ValueError, match="one score per id"):
        Hits(["a"], [1.0, 2.0])
    with pytest.raises(ValueError, match="unique"):
        Hits(["a", "a"], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        Hits(["a"], [math.nan])


def test_minmax():
    assert minmax(LEXICAL) == {"a": 1.0, "b": approx((8 - 4) / (12 - 4)), "c": 0.0}


def test_minmax_single_hit_and_constant_scores_get_one():
    assert minmax(Hits(["a"], [3.5])) == {"a": 1.0}
    assert minmax(Hits(["a", "b"], [2.0, 2.0])) == {"a": 1.0, "b": 1.0}
    assert minmax(Hits.empty()) == {}


def test_zscore_population_std():
    mean, std = 8.0, math.sqrt((16 + 0 + 16) / 3)
    assert zscore(LEXICAL) == {"a": approx(4 / std), "b": approx(0.0), "c": approx(-4 / std)}
    assert mean == sum(LEXICAL.scores) / 3


def test_zscore_constant_scores_get_zero():
    assert zscore(Hits(["a", "b"], [2.0, 2.0])) == {"a": 0.0, "b": 0.0}
    assert zscore(Hits(["a"], [7.0])) == {"a": 0.0}


def test_rrf_formula_and_missing_documents():
    fused = rrf(LEXICAL, SEMANTIC, rank_constant=60, k=10)
    # a: lexical rank 1, semantic rank 3; c: lexical 3, semantic 1; b: lexical 2 only; d: semantic 2 only
    assert fused.hits.score_of("a") == approx(1 / (60 + 1) + 1 / (60 + 3))
    assert fused.hits.score_of("c") == approx(1 / (60 + 3) + 1 / (60 + 1))
    assert fused.hits.score_of("b") == approx(1 / (60 + 2))
    assert fused.hits.score_of("d") == approx(1 / (60 + 2))
    # a and c tie exactly, as do b and d: ties by id ascending
    assert fused.hits.ids == ("a", "c", "b", "d")
    assert fused.explain("b").semantic.rank is None and fused.explain("b").semantic.part == 0.0


def test_rrf_rank_constant_and_any_number_of_lists():
    scores = rrf_scores([LEXICAL, SEMANTIC, Hits(["d"], [1.0])], rank_constant=1)
    assert scores["d"] == approx(1 / (1 + 2) + 1 / (1 + 1))
    with pytest.raises(ValueError, match="rank constant"):
        rrf(LEXICAL, SEMANTIC, rank_constant=0)


def test_linear_minmax_formula():
    fused = linear(LEXICAL, SEMANTIC, alpha=0.25, norm="minmax", k=10)
    n_sem = {"c": 1.0, "d": (0.5 - 0.1) / (0.9 - 0.1), "a": 0.0}
    n_lex = {"a": 1.0, "b": 0.5, "c": 0.0}
    for doc_id in "abcd":
        expected = 0.25 * n_sem.get(doc_id, 0.0) + 0.75 * n_lex.get(doc_id, 0.0)
        assert fused.hits.score_of(doc_id) == approx(expected)
    assert fused.hits.ids == ("a", "b", "c", "d")  # 0.75, 0.375, 0.25, 0.125


def test_linear_zscore_missing_document_gets_list_minimum():
    fused = linear(LEXICAL, SEMANTIC, alpha=0.5, norm="zscore", k=10)
    lexical_minimum = -4 / math.sqrt(32 / 3)
    d = fused.explain("d")
    assert d.lexical.rank is None and d.lexical.normalised == approx(lexical_minimum)
    assert d.fused == approx(0.5 * zscore(SEMANTIC)["d"] + 0.5 * lexical_minimum)


def test_explanation_parts_sum_to_fused():
    for fused in (linear(LEXICAL, SEMANTIC, alpha=0.3), rrf(LEXICAL, SEMANTIC)):
        for explanation in fused.explanations:
            assert explanation.lexical.part + explanation.semantic.part == approx(explanation.fused)
            assert "=" in explanation.formula()
    a = linear(LEXICAL, SEMANTIC, alpha=0.3).explain("a")
    assert (a.lexical.score, a.lexical.rank, a.semantic.score, a.semantic.rank) == (12.0, 1, 0.1, 3)


def test_single_hit_is_kept():
    fused = linear(Hits(["x"], [0.3]), Hits.empty(), alpha=0.5, norm="minmax")
    assert fused.hits.ids == ("x",) and fused.hits.scores == (approx(0.5 * 0 + 0.5 * 1.0),)
    fused = linear(Hits(["x"], [0.3]), Hits.empty(), alpha=0.5, norm="zscore")   # std 0 -> z = 0, still kept
    assert fused.hits.ids == ("x",) and fused.hits.scores == (approx(0.0),)


def test_one_side_empty_semantic_still_answers():
    fused = linear(Hits.empty(), SEMANTIC, alpha=0.5, norm="minmax")
    assert fused.hits.ids == ("c", "d", "a")
    assert fused.hits.scores == approx((0.5, 0.5 * 0.5, 0.0))


def test_constant_scores_ties_by_id():
    fused = linear(Hits(["z", "y"], [1.0, 1.0]), Hits(["x", "w"], [0.2, 0.2]), alpha=0.5, norm="minmax")
    assert fused.hits.ids == ("w", "x", "y", "z") and set(fused.hits.scores) == {0.5}


@pytest.mark.parametrize("alpha, first", [(0.0, "a"), (1.0, "c")])
def test_alpha_bounds_pick_one_side(alpha, first):
    fused = linear(LEXICAL, SEMANTIC, alpha=alpha, norm="minmax")
    assert fused.hits.ids[0] == first and fused.hits.scores[0] == 1.0


@pytest.mark.parametrize("alpha", [-0.01, 1.01, math.nan])
def test_alpha_out_of_range_refused(alpha):
    with pytest.raises(ValueError, match="alpha must be in"):
        linear(LEXICAL, SEMANTIC, alpha=alpha)


def test_k_cuts_and_is_checked():
    assert len(rrf(LEXICAL, SEMANTIC, k=2).hits) == 2
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fuse(LEXICAL, SEMANTIC, "rrf", k=0)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match=r"choose from \['minmax', 'zscore'\]"):
        linear(LEXICAL, SEMANTIC, norm="maxsim")
    with pytest.raises(ValueError, match=r"choose from \['linear', 'rrf'\]"):
        fuse(LEXICAL, SEMANTIC, "borda")


def test_one_side_keeps_raw_scores():
    fused = one_side(LEXICAL, "lexical", k=2)
    assert fused.hits.ids == ("a", "b") and fused.hits.scores == (12.0, 8.0)
    assert fused.explain("a").semantic is None and fused.explain("a").lexical.rank == 1


def test_empty_both_sides():
    assert len(linear(Hits.empty(), Hits.empty()).hits) == 0
    assert len(rrf(Hits.empty(), Hits.empty()).hits) == 0
