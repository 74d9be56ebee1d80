"""Choosing positives and negatives inside a batch: pure, seeded functions on a score matrix.

`scores` is the cosine matrix float [batch, candidates] between each query (row) and each candidate
document (column); `positive_mask` bool [batch, candidates] marks the documents relevant to the query
(its own positive and any duplicate). No function ever returns a positive as a negative; a row
without any negative is flagged by `has_negative`. Offline BM25 mining is `dssm.bm25.mine_negatives`.
"""
from __future__ import annotations

from dssm.backend import load_keras
from dssm.config import NEGATIVE_STRATEGIES, POSITIVE_STRATEGIES

keras = load_keras()
ops, random = keras.ops, keras.random

NEG_INF = -1e9


def has_negative(positive_mask):
    """bool [batch]: the row has at least one candidate that is not a positive."""
    return ops.any(ops.logical_not(positive_mask), axis=1)


def _argmax_where(values, allowed):
    """Index of the largest value where allowed (ties: lowest index). int [batch]."""
    return ops.argmax(ops.where(allowed, values, NEG_INF), axis=1)


def random_negatives(scores, positive_mask, seed):
    """A uniformly random non-positive candidate per query."""
    noise = random.uniform(ops.shape(scores), seed=seed)
    return _argmax_where(noise, ops.logical_not(positive_mask))


def hardest_negatives(scores, positive_mask):
    """Batch-hard (Hermans et al. 2017): the most similar non-positive candidate."""
    return _argmax_where(scores, ops.logical_not(positive_mask))


def semi_hard_negatives(scores, positive_scores, positive_mask):
    """FaceNet semi-hard (Schroff et al. 2015), as TensorFlow Addons implements it.

    The most similar negative that is still less similar than the positive
    (D(q,n) > D(q,p), the smallest such D); where none exists, the least similar negative.
    positive_scores: float [batch], the score of each query's positive.
    """
    negative = ops.logical_not(positive_mask)
    easier = ops.logical_and(negative, ops.less(scores, ops.expand_dims(positive_scores, 1)))
    semi_hard = _argmax_where(scores, easier)
    easiest = _argmax_where(-scores, negative)
    return ops.where(ops.any(easier, axis=1), semi_hard, easiest)


def random_positives(positive_mask, seed):
    """A uniformly random positive per query (a query with several relevant documents)."""
    noise = random.uniform(ops.shape(positive_mask), seed=seed)
    return _argmax_where(noise, positive_mask)


def hardest_positives(scores, positive_mask):
    """The least similar positive per query."""
    return _argmax_where(-scores, positive_mask)




def check_strategy(negatives: str, positives: str = "random") -> None:
    if negatives not in NEGATIVE_STRATEGIES:
        raise ValueError(f"unknown negative strategy {negatives!r}; choose from {list(NEGATIVE_STRATEGIES)}")
    if positives not in POSITIVE_STRATEGIES:
        raise ValueError(f"unknown positive strategy {positives!r}; choose from {list(POSITIVE_STRATEGIES)}")
