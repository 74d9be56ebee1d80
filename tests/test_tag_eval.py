"""Tag prediction quality (indexer/tag_eval.py) on hand-made cases whose numbers can be recomputed."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pytest import approx

from dssm.export import load_encoder
from dssm.tagdata import load_tagged, read_tag_list
from indexer.tag_eval import (bm25_scorer, cosine_scorer, evaluate_tagging, precision_recall, prior_scorer,
                              tag_query, top_k)

DATA = Path(__file__).resolve().parent.parent / "data"
TAGS = ["a", "b", "c", "d", "e"]        # "d" and "e" are the unseen tags
SCORES = np.array([[0.9, 0.1, 0.5, 0.7, 0.0],     # text 0: gold a, c, e
                   [0.0, 0.0, 0.0, 0.0, 0.0],     # text 1: gold b (every score tied)
                   [0.2, 0.8, 0.1, 0.3, 0.6]],    # text 2: gold b, d
                  dtype=np.float32)
GOLD = [["a", "c", "e"], ["b"], ["b", "d", "not-scored"]]


def fixed(texts):
    return SCORES[:len(texts)]


def test_top_k_breaks_ties_by_tag_name():
    assert top_k(SCORES, TAGS, 3) == [["a", "d", "c"], ["a", "b", "c"], ["b", "e", "d"]]
    assert top_k(np.zeros((1, 3)), ["z", "x", "y"], 2) == [["x", "y"]]


def test_precision_recall_is_trec_eval_p_and_r():
    result = precision_recall([["a", "b"], ["c", "d"], ["a", "c"]], [{"a"}, {"c", "d", "e"}, set()], k=2)
    assert result["P@2"] == approx((1 / 2 + 2 / 2) / 2)
    assert result["R@2"] == approx((1 / 1 + 2 / 3) / 2)
    assert (result["texts"], result["skipped"]) == (2, 1)


def test_both_protocols_score_seen_and_unseen_apart():
    report = evaluate_tagging(fixed, TAGS, ["t0", "t1", "t2"], GOLD, unseen=["d", "e"], k=2)
    restricted, generalised = report["restricted"], report["generalised"]
    # restricted seen (a, b, c): top 2 = [a, c], [a, b] (ties by name), [b, a]; seen gold {a,c}, {b}, {b}
    assert restricted["seen"]["P@2"] == approx((2 / 2 + 1 / 2 + 1 / 2) / 3)
    assert restricted["seen"]["R@2"] == approx((2 / 2 + 1 / 1 + 1 / 1) / 3)
    # restricted unseen (d, e): top 2 = [d, e], [e, d]; gold {e} and {d}; text 1 has none and is skipped
    assert restricted["unseen"]["P@2"] == approx((1 / 2 + 1 / 2) / 2)
    assert restricted["unseen"]["R@2"] == approx(1.0)
    assert (restricted["unseen"]["texts"], restricted["unseen"]["skipped"]) == (2, 1)
    # generalised: top 2 of all = [a, d], [a, b], [b, e]
    assert generalised["seen"]["P@2"] == approx((1 / 2 + 1 / 2 + 1 / 2) / 3)
    assert generalised["seen"]["R@2"] == approx((1 / 2 + 1 / 1 + 1 / 1) / 3)
    assert generalised["unseen"]["P@2"] == approx((0 / 2 + 0 / 2) / 2)
    assert generalised["unseen"]["R@2"] == 0.0


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="k must be"):
        evaluate_tagging(fixed, TAGS, ["t0"], [["a"]], ["d"], k=0)
    with pytest.raises(ValueError, match="not among the scored tags"):
        evaluate_tagging(fixed, TAGS, ["t0"], [["a"]], ["zz"])
    with pytest.raises(ValueError, match="expected \\[texts, tags\\]"):
        evaluate_tagging(lambda texts: np.zeros((1, 2)), TAGS, ["t0"], [["a"]], ["d"])


def test_bm25_scorer_is_okapi_bm25_of_the_tag_words():
    texts = ["written in python python", "a game"]
    scores = bm25_scorer(["implemented-in::python", "game::arcade", "zzz"])(texts)
    assert tag_query("implemented-in::python") == "implemented in python"
    assert scores.shape == (2, 3) and scores.dtype == np.float32
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))                      # every term is in one of 2 texts
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 3)                              # |text 0| = 4, average length 3
    assert scores[0, 0] == approx(idf * 1 * 2.2 / (1 + norm) + idf * 2 * 2.2 / (2 + norm), rel=1e-5)
    assert scores[1, 1] == approx(idf * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * 2 / 3)), rel=1e-5)
    assert scores[0, 1] == scores[1, 0] == scores[0, 2] == 0.0


def test_prior_scorer_ranks_by_training_frequency():
    scores = prior_scorer(["a", "b", "c"], [["a", "b"], ["b"], ["b", "a"]])(["x", "y"])
    assert scores.tolist() == [[2, 3, 0], [2, 3, 0]]


def test_cosine_scorer_is_text_vectors_times_tag_vectors(tiny_model):
    encoder = load_encoder(tiny_model)
    tags = encoder.encode(["role::program", "game::arcade"], side="document")
    scores = cosine_scorer(encoder, tags)(["a game", "a program"])
    assert scores.shape == (2, 2)
    assert scores == approx(encoder.encode(["a game", "a program"], side="query") @ tags.T, abs=1e-6)


def test_baselines_on_the_shipped_sample():
    train, test = load_tagged(DATA / "sample_tags_train.jsonl"), load_tagged(DATA / "sample_tags_test.jsonl")
    seen, unseen = read_tag_list(DATA / "sample_tags_seen.txt"), read_tag_list(DATA / "sample_tags_unseen.txt")
    tags = seen + unseen
    prior = evaluate_tagging(prior_scorer(tags, train.tags), tags, test.texts, test.tags, unseen)
    bm25 = evaluate_tagging(bm25_scorer(tags), tags, test.texts, test.tags, unseen)
    assert prior["restricted"]["seen"]["P@5"] > 0.2          # role::program, devel::library ... are common
    assert prior["generalised"]["unseen"]["R@5"] == 0.0      # unseen tags have no training frequency
    assert bm25["restricted"]["unseen"]["R@5"] > 0.0
    assert prior["restricted"]["unseen"]["skipped"] == sum(1 for tags in test.tags if not set(tags) & set(unseen))
