"""Losses: plain functions of L2-normalised embeddings, chosen by name from `LOSSES`.

- triplet (query-anchored): mean of [D(q, d+) - D(q, d-) + margin]+ with D = 1 - cos or squared L2;
- batch-all triplet: the same over every (query, negative) pair of the batch, averaged over the
  triplets with a positive loss (Hermans et al. 2017);
- softmax (Huang et al. 2013, eq. 4-5): -log softmax(gamma * cos(q, d)) at the positive, over the
  positive and the other candidates (in-batch negatives, plus mined ones), other positives masked;
- layer-wise triplet regulariser: the triplet loss on every hidden layer's normalised output.
"""
from __future__ import annotations

from dssm.backend import load_keras
from dssm.config import DISTANCES, LOSSES
from dssm.negatives import NEG_INF

keras = load_keras()
ops = keras.ops


def distance(a, b, kind: str = "cosine"):
    """Row-wise distance between unit vectors [batch, dim] -> [batch]."""
    if kind == "cosine":
        return 1.0 - ops.sum(a * b, axis=-1)
    if kind == "sqeuclidean":
        return ops.sum(ops.square(a - b), axis=-1)
    raise ValueError(f"unknown distance {kind!r}; choose from {list(DISTANCES)}")


def _masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def triplet_loss(query, positive, negative, margin: float = 0.2, kind: str = "cosine", valid=None):
    """mean([D(q,p) - D(q,n) + margin]+) over rows (rows with valid=False are left out)."""
    losses = ops.relu(distance(query, positive, kind) - distance(query, negative, kind) + margin)
    return ops.mean(losses) if valid is None else _masked_mean(losses, valid)


def batch_all_triplet_loss(scores, positive_scores, positive_mask, margin: float = 0.2, kind: str = "cosine"):
    """Every (query, negative) pair of the batch; mean over the triplets whose loss is > 0.

    scores: cos [batch, candidates]; positive_scores: cos(q, own positive) [batch]. For unit vectors
    squared L2 = 2 - 2 cos, so both distances are computed from cosines.
    """
    if kind not in DISTANCES:
        raise ValueError(f"unknown distance {kind!r}; choose from {list(DISTANCES)}")
    to_distance = (lambda s: 1.0 - s) if kind == "cosine" else (lambda s: 2.0 - 2.0 * s)
    losses = ops.relu(ops.expand_dims(to_distance(positive_scores), 1) - to_distance(scores) + margin)
    active = ops.logical_and(ops.logical_not(positive_mask), ops.greater(losses, 1e-12))
    return _masked_mean(losses, active)


def softmax_loss(scores, positive_index, positive_mask, gamma: float = 20.0):
    """DSSM softmax: cross-entropy of softmax(gamma * scores) at positive_index; other positives masked.

    scores: cos [batch, candidates]; positive_index: int [batch]; positive_mask: bool [batch, candidates].
    """
    candidates = ops.shape(scores)[1]
    target = ops.one_hot(positive_index, candidates, dtype="bool")
    keep = ops.logical_or(target, ops.logical_not(positive_mask))
    logits = ops.where(keep, gamma * scores, NEG_INF)
    log_probs = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    return -ops.mean(ops.sum(ops.where(target, log_probs, 0.0), axis=1))


def distillation_loss(scores, teacher_scores, gamma: float, teacher_gamma: float):
    """KL(teacher || student) of the in-batch softmaxes: each query's distribution over the batch's
    documents under softmax(teacher_gamma * teacher cosines) against softmax(gamma * cosines).
    [batch, batch] each; the teacher is constant (e.g. a pretrained sentence encoder's vectors)."""
    teacher = ops.stop_gradient(teacher_gamma * teacher_scores)
    teacher_log = teacher - ops.logsumexp(teacher, axis=1, keepdims=True)
    student_log = gamma * scores - ops.logsumexp(gamma * scores, axis=1, keepdims=True)
    return ops.mean(ops.sum(ops.exp(teacher_log) * (teacher_log - student_log), axis=1))


def layerwise_triplet_loss(query_hidden, positive_hidden, negative_hidden, margin: float, kind: str, valid=None):
    """Triplet loss on each hidden layer's L2-normalised output, summed over the layers."""
    from dssm.tower import l2_normalise

    total = 0.0
    for q, p, n in zip(query_hidden, positive_hidden, negative_hidden):
        total = total + triplet_loss(l2_normalise(q), l2_normalise(p), l2_normalise(n), margin, kind, valid)
    return total




def check_loss(name: str, kind: str = "cosine") -> None:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    if kind not in DISTANCES:
        raise ValueError(f"unknown distance {kind!r}; choose from {list(DISTANCES)}")
