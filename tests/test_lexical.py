"""Embedded BM25: the formula by hand, tokenisation, and user text that never raises."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pytest import approx

from indexer.analysis import analyzer
from indexer.lexical import Bm25Index, build_bm25

TEXTS = ["GNU C and C++ compiler", "C, C++ and Objective-C compiler based on LLVM",
         "interactive high-level object-oriented language", "NEAR protocol tools AND utilities"]


def open_bm25(tmp_path, texts, analysis="simple"):
    params = build_bm25(texts, tmp_path, analyzer(analysis))
    assert params["analyzer"] == analysis
    return Bm25Index.open(tmp_path, params["documents"], analyzer(analysis)), params


def test_bm25_formula_by_hand(tmp_path):
    index, params = open_bm25(tmp_path, ["a b", "a"])
    assert params["average_length"] == 1.5
    # "b": df 1 of N 2 -> idf ln(1 + 1.5/1.5); doc 0 has tf 1 and length 2
    expected_b = math.log(2) * 1 * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * 2 / 1.5))
    # "a": df 2 -> idf ln(1 + 0.5/2.5); doc 1 has tf 1 and length 1
    expected_a1 = math.log(1.2) * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * 1 / 1.5))
    assert index.scores("b") == approx([expected_b, 0.0])
    assert index.scores("a")[1] == approx(expected_a1)
    assert index.scores("b b B")[0] == approx(expected_b)  # distinct query terms, case-folded


def test_search_returns_top_k_rows(tmp_path):
    index, _ = open_bm25(tmp_path, TEXTS)
    rows, scores = index.search("compiler LLVM", k=10)
    order = np.argsort(-scores)
    assert list(rows[order]) == [1, 0] and scores[order][0] > scores[order][1] > 0
    rows, _ = index.search("language", k=1)
    assert list(rows) == [2]


def test_ties_at_the_cut_are_all_returned(tmp_path):
    index, _ = open_bm25(tmp_path, ["same words", "same words", "other"])
    rows, scores = index.search("same", k=1)
    assert sorted(rows) == [0, 1] and scores[0] == scores[1]


def test_simple_analysis_is_the_featurisers_tokens():
    assert analyzer("simple").analyze("C++ and Foo-bar, ÉTÉ ﬁ") == ["c", "and", "foo", "bar", "été", "fi"]


def test_english_index_matches_other_forms_of_a_word(tmp_path):
    texts = ["a library for running compilers", "the fonts of the desktop"]
    index, params = open_bm25(tmp_path, texts, "english")
    rows, _ = index.search("libraries that run a compiler", k=5)
    assert list(rows) == [0]
    assert list(index.search("font", k=5)[0]) == [1]
    assert index.search("the of a", k=5)[0].size == 0  # stop words only: no lexical hit
    (tmp_path / "simple").mkdir()
    simple, _ = open_bm25(tmp_path / "simple", texts, "simple")
    assert simple.search("libraries", k=5)[0].size == 0  # without stemming the forms differ


@pytest.mark.parametrize("analysis", ["simple", "english", "russian"])
@pytest.mark.parametrize("query", [
    "C++", "foo AND", "AND", "OR", "NOT", "NEAR", "NEAR(a b)", '"unbalanced', "'single", "(", ")",
    "a*", "*", "title:gcc", "^gcc", "-x", "+y", "{title}: c", 'say "hello" (world) OR', "\\", "\x00",
    "日本語", "e\u0301", "\u0301", "🙂 gcc", "x" * 10000,
])
def test_user_text_never_raises(tmp_path, query, analysis):
    index, _ = open_bm25(tmp_path, TEXTS, analysis)
    rows, scores = index.search(query, k=5)
    assert len(rows) == len(scores) <= 5


def test_special_words_are_plain_words(tmp_path):
    index, _ = open_bm25(tmp_path, TEXTS)
    assert list(index.search("NEAR", k=5)[0]) == [3]
    assert set(index.search("C++", k=5)[0]) == {0, 1}


@pytest.mark.parametrize("query", ["", "   ", "?!", "++ -- ()", "🙂"])
def test_punctuation_only_query_has_no_lexical_hits(tmp_path, query):
    index, _ = open_bm25(tmp_path, TEXTS)
    assert len(index.search(query, k=5)[0]) == 0


def test_empty_corpus(tmp_path):
    index, params = open_bm25(tmp_path, [])
    assert params["documents"] == 0 and len(index.search("anything", k=5)[0]) == 0
