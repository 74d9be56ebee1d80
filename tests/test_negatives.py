import keras
import numpy as np
from keras import ops

from dssm.negatives import (has_negative, hardest_negatives, hardest_positives, random_negatives,
                            random_positives, semi_hard_negatives)

SCORES = np.array([[0.90, 0.80, 0.50, 0.95],
                   [0.10, 0.60, 0.55, 0.20],
                   [0.30, 0.40, 0.70, 0.65]], dtype=np.float32)
POSITIVE = np.array([[True, False, False, False],
                     [False, True, False, False],
                     [False, False, True, False]])
POS_SCORES = np.array([0.90, 0.60, 0.70], dtype=np.float32)


def numpy(x):
    return ops.convert_to_numpy(x).tolist()


def test_batch_hard_picks_most_similar_negative():
    assert numpy(hardest_negatives(SCORES, POSITIVE)) == [3, 2, 3]


def test_semi_hard_is_less_similar_than_positive_but_closest():
    # row 0: negatives below 0.90 -> 0.80 (col 1); row 1: below 0.60 -> 0.55 (col 2);
    # row 2: below 0.70 -> 0.65 (col 3)
    chosen = numpy(semi_hard_negatives(SCORES, POS_SCORES, POSITIVE))
    assert chosen == [1, 2, 3]
    margin = 0.2
    for row, col in enumerate(chosen):       # inside the margin: D(q,p) < D(q,n) < D(q,p) + margin
        assert POS_SCORES[row] - margin < SCORES[row, col] < POS_SCORES[row]


def test_semi_hard_falls_back_to_easiest_when_all_negatives_are_harder():
    scores = np.array([[0.5, 0.9, 0.7]], dtype=np.float32)
    chosen = numpy(semi_hard_negatives(scores, np.array([0.5], np.float32), np.array([[True, False, False]])))
    assert chosen == [2]


def test_random_never_returns_a_positive_and_is_seeded():
    mask = np.array([[True, True, False, False, True]] * 50)
    scores = np.zeros(mask.shape, np.float32)
    first = numpy(random_negatives(scores, mask, keras.random.SeedGenerator(1)))
    again = numpy(random_negatives(scores, mask, keras.random.SeedGenerator(1)))
    assert first == again
    assert set(first) <= {2, 3} and set(first) == {2, 3}


def test_positive_strategies_and_rows_without_negatives():
    mask = np.array([[True, False, True], [True, True, True]])
    scores = np.array([[0.9, 0.0, 0.4], [0.1, 0.2, 0.3]], dtype=np.float32)
    assert numpy(hardest_positives(scores, mask)) == [2, 0]
    picked = numpy(random_positives(mask, keras.random.SeedGenerator(3)))
    assert picked[0] in (0, 2)
    assert numpy(has_negative(mask)) == [True, False]


def test_random_choices_are_uniform_over_the_allowed_columns():
    mask = np.array([[False, True, False, True, True, False]] * 3000)
    picked = np.asarray(numpy(random_positives(mask, keras.random.SeedGenerator(5))))
    counts = np.bincount(picked, minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    assert np.all(np.abs(counts[[1, 3, 4]] - 1000) < 100), counts         # 4 sigma is about 100
    negatives = np.asarray(numpy(random_negatives(np.zeros(mask.shape, np.float32), mask, keras.random.SeedGenerator(5))))
    assert np.all(np.abs(np.bincount(negatives, minlength=6)[[0, 2, 5]] - 1000) < 100)


def test_bm25_mined_negatives_exclude_positives_and_follow_bm25():
    from dssm.bm25 import BM25, mine_negatives

    documents = ["red apple pie", "green apple", "apple apple tart", "blue sky", "apple"]
    top = BM25(documents).top(["apple pie", "sky"], k=3)
    assert top[0, 0] == 0 and set(top[0].tolist()) <= {0, 1, 2, 4}
    assert top[1].tolist() == [3, -1, -1]                      # only one document mentions "sky"
    mined = mine_negatives(documents, ["apple pie", "apple pie", "sky"], np.array([0, 2, 3]),
                           np.array([0, 0, 1]), depth=2)
    assert mined.shape == (3, 2)
    assert 0 not in mined[0] and 2 not in mined[0]            # both positives of the shared query excluded
    assert mined[0].tolist() == mined[1].tolist()
    assert mined[2].tolist() == [-1, -1]                      # nothing else matches "sky"
