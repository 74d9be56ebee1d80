"""The fused training kernels (dssm/native): checks TensorFlow's own ops cannot make for them.

Their maths against TensorFlow's ops runs in test_tower.py and test_optim.py (the `kernels` fixture);
compiling them into the cache on first use, in test_native_cache.py.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import native_library
from dssm.optim import LazyAdam


def test_an_id_outside_the_table_is_refused():
    library = native_library()
    table = tf.zeros((10, 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="id 10 is outside the table's 10 rows"):
        library.dssm_embedding_bag(table, tf.constant([[1, 10]], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="id 11 is outside"):
        library.dssm_embedding_bag_grad(tf.zeros((1, 4)), tf.constant([[11, 0]], tf.int32), 10)


def test_the_gradient_is_deterministic_and_lists_touched_rows_ascending():
    library = native_library()
    rng = np.random.default_rng(5)
    ids = tf.constant(rng.integers(0, 300, size=(64, 40)).astype(np.int32))
    upstream = tf.constant(rng.normal(size=(64, 48)).astype(np.float32))
    rows, values = library.dssm_embedding_bag_grad(upstream, ids, 300)
    again_rows, again_values = library.dssm_embedding_bag_grad(upstream, ids, 300)
    expected_rows = np.unique(ids.numpy()[ids.numpy() > 0])
    np.testing.assert_array_equal(rows.numpy(), expected_rows)
    np.testing.assert_array_equal(again_rows.numpy(), rows.numpy())
    np.testing.assert_array_equal(again_values.numpy(), values.numpy())          # bit for bit
    assert values.shape == (len(expected_rows), 48)


def test_sparse_adam_leaves_an_earlier_read_of_the_variable_alone(monkeypatch):
    """The update is in place, unless a tensor read before it shares the buffer: then it copies first."""
    library = native_library()
    monkeypatch.setattr("dssm.tower._native_ops", lambda: library)
    start = np.arange(12, dtype=np.float32).reshape(4, 3)
    variable = keras.Variable(start)
    optimizer = LazyAdam(0.1)
    optimizer.build([variable])
    before = tf.convert_to_tensor(variable.value)   # a read that shares the variable's buffer
    gradient = tf.IndexedSlices(tf.ones((1, 3)), tf.constant([2], tf.int64), tf.constant([4, 3], tf.int64))
    optimizer.apply([gradient], [variable])
    np.testing.assert_array_equal(before.numpy(), start)
    assert not np.allclose(variable.numpy()[2], start[2])


def test_sparse_adam_matches_adam_over_steps_with_repeated_rows_in_any_order(kernels):
    start = np.random.default_rng(6).normal(size=(5, 3)).astype(np.float32)
    lazy, dense = keras.Variable(start), keras.Variable(start)
    lazy_opt, dense_opt = LazyAdam(0.05), keras.optimizers.Adam(0.05)
    lazy_opt.build([lazy])
    dense_opt.build([dense])
    rows = tf.constant([3, 1, 3, 4, 1, 2], tf.int64)                  # every row but 0, some twice
    values = np.random.default_rng(7).normal(size=(6, 3)).astype(np.float32)
    summed = np.zeros_like(start)
    np.add.at(summed, rows.numpy(), values)
    for _ in range(3):
        lazy_opt.apply([tf.IndexedSlices(tf.constant(values), rows, tf.constant([5, 3], tf.int64))], [lazy])
        dense_opt.apply([tf.constant(summed)], [dense])
    np.testing.assert_allclose(lazy.numpy()[1:], dense.numpy()[1:], atol=1e-5)
    np.testing.assert_array_equal(lazy.numpy()[0], start[0])
