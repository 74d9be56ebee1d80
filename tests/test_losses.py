import math

import numpy as np
from keras import ops
from pytest import approx

from dssm.losses import batch_all_triplet_loss, distance, softmax_loss, triplet_loss


def unit(*v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_triplet_cosine_by_hand():
    q = np.stack([unit(1, 0), unit(1, 0)])
    p = np.stack([unit(1, 1), unit(1, 0)])
    n = np.stack([unit(1, 0), unit(0, 1)])
    # row 0: D(q,p) = 1 - cos45 = 0.29289, D(q,n) = 0 -> 0.29289 + 0.2; row 1: 0 - 1 + 0.2 < 0 -> 0
    expected = ((1 - math.sqrt(0.5)) + 0.2 + 0.0) / 2
    assert float(triplet_loss(q, p, n, margin=0.2)) == approx(expected, rel=1e-5)


def test_triplet_squared_l2_by_hand():
    q, p, n = unit(1, 0)[None], unit(0, 1)[None], unit(-1, 0)[None]
    # D(q,p) = 2, D(q,n) = 4 -> [2 - 4 + 1]+ = 0; with margin 3 -> 1
    assert float(triplet_loss(q, p, n, margin=1.0, kind="sqeuclidean")) == approx(0.0)
    assert float(triplet_loss(q, p, n, margin=3.0, kind="sqeuclidean")) == approx(1.0)
    assert ops.convert_to_numpy(distance(q, n, "sqeuclidean"))[0] == approx(4.0)


def test_triplet_valid_mask_leaves_rows_out():
    q = np.stack([unit(1, 0), unit(1, 0)])
    p = np.stack([unit(0, 1), unit(1, 0)])
    n = np.stack([unit(1, 0), unit(0, 1)])
    loss = triplet_loss(q, p, n, margin=0.5, valid=np.array([True, False]))
    assert float(loss) == approx(1.0 - 0.0 + 0.5)


def test_softmax_by_hand_with_masked_duplicate():
    scores = np.array([[0.9, 0.1, 0.9], [0.2, 0.5, 0.0]], dtype=np.float32)
    mask = np.array([[True, False, True], [False, True, False]])
    # row 0: column 2 is another positive -> masked; row 1 keeps all three
    row0 = -(20 * 0.9 - math.log(math.exp(20 * 0.9) + math.exp(20 * 0.1)))
    row1 = -(20 * 0.5 - math.log(math.exp(20 * 0.2) + math.exp(20 * 0.5) + math.exp(0.0)))
    loss = softmax_loss(scores, np.array([0, 1]), mask, gamma=20.0)
    assert float(loss) == approx((row0 + row1) / 2, abs=1e-6)   # float32 log-sum-exp


def test_batch_all_averages_only_active_triplets():
    scores = np.array([[0.8, 0.7, 0.1], [0.0, 0.5, 0.6]], dtype=np.float32)
    positives = np.array([0.8, 0.5], dtype=np.float32)
    mask = np.eye(2, 3, dtype=bool)
    # cosine distances: row0 pos 0.2; negs 0.3 -> 0.2-0.3+0.2 = 0.1, 0.9 -> <0
    # row1 pos 0.5; negs 1.0 -> -0.3 (inactive), 0.4 -> 0.3 ; mean of active = (0.1 + 0.3) / 2
    assert float(batch_all_triplet_loss(scores, positives, mask, margin=0.2)) == approx(0.2, rel=1e-5)


def test_distillation_loss_is_the_kl_of_the_in_batch_softmaxes():
    from dssm.losses import distillation_loss
    student = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.3]], dtype="float32")
    teacher = np.array([[0.8, 0.5, 0.1], [0.1, 0.9, 0.6]], dtype="float32")
    p = np.exp(10 * teacher) / np.exp(10 * teacher).sum(axis=1, keepdims=True)
    q = np.exp(5 * student) / np.exp(5 * student).sum(axis=1, keepdims=True)
    expected = np.mean(np.sum(p * np.log(p / q), axis=1))
    assert float(distillation_loss(student, teacher, 5.0, 10.0)) == approx(expected, abs=1e-5)
    assert float(distillation_loss(teacher, teacher, 7.0, 7.0)) == approx(0.0, abs=1e-6)
