import keras
import numpy as np
import tensorflow as tf

from dssm.optim import LazyAdam


def sparse_gradient(rows, values, shape):
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows, tf.int64), tf.constant(shape, tf.int64))


def test_lazy_adam_updates_only_the_touched_rows_as_adam_would(kernels):
    start = np.arange(24, dtype=np.float32).reshape(6, 4) / 10
    lazy, dense = keras.Variable(start), keras.Variable(start)
    lazy_opt, dense_opt = LazyAdam(0.1), keras.optimizers.Adam(0.1)
    lazy_opt.build([lazy])
    dense_opt.build([dense])
    first = sparse_gradient([1, 4], [[1, -2, 3, 0.5], [0.1, 0.2, -0.3, 4]], (6, 4))
    lazy_opt.apply([first], [lazy])
    dense_opt.apply([tf.convert_to_tensor(first)], [dense])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), atol=1e-6)   # first step: Adam exactly
    assert not np.allclose(lazy.numpy()[[1, 4]], start[[1, 4]])

    second = sparse_gradient([2], [[1, 1, 1, 1]], (6, 4))
    lazy_opt.apply([second], [lazy])
    dense_opt.apply([tf.convert_to_tensor(second)], [dense])
    np.testing.assert_allclose(lazy.numpy()[2], dense.numpy()[2], atol=1e-6)   # the touched row: as Adam
    assert not np.allclose(lazy.numpy()[[1, 4]], dense.numpy()[[1, 4]])  # Adam's momentum moves rows 1, 4 on
    np.testing.assert_array_equal(lazy.numpy()[[0, 3, 5]], start[[0, 3, 5]])    # untouched rows never move


def test_lazy_adam_sums_repeated_rows(kernels):
    """Replicas' slices arrive concatenated: a repeated row gets the sum of its gradients."""
    start = np.zeros((3, 2), np.float32)
    lazy, dense = keras.Variable(start), keras.Variable(start)
    lazy_opt, dense_opt = LazyAdam(0.1), keras.optimizers.Adam(0.1)
    lazy_opt.build([lazy])
    dense_opt.build([dense])
    lazy_opt.apply([sparse_gradient([1, 1], [[1, 2], [3, -4]], (3, 2))], [lazy])
    dense_opt.apply([tf.constant([[0, 0], [4, -2], [0, 0]], tf.float32)], [dense])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), atol=1e-6)


def test_dense_gradients_take_the_adam_step():
    start = np.ones((2, 2), np.float32)
    lazy, dense = keras.Variable(start), keras.Variable(start)
    for optimizer, variable in ((LazyAdam(0.1), lazy), (keras.optimizers.Adam(0.1), dense)):
        optimizer.build([variable])
        for _ in range(3):
            optimizer.apply([tf.constant([[1, -1], [0.5, 2]], tf.float32)], [variable])
    np.testing.assert_array_equal(lazy.numpy(), dense.numpy())
