import keras
import numpy as np
import pytest
from keras import ops
from pytest import approx

from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig
from dssm.export import Encoder, random_weights, tower_prefixes
from dssm.featurise import Featuriser
from dssm.model import DSSMModel
from dssm.tower import make_towers

FEATURISER = FeaturiserConfig(buckets=512, max_features=64)
TEXTS = ["hello world", "", "Привет мир", "!!!", "a much longer text about debian packages and fonts"]


def build(model: DSSMModel, ids):
    model({"query": ids, "pos": ids})
    return model


def test_one_variable_set_for_both_towers():
    ids = Featuriser(FEATURISER).padded(TEXTS)
    shared = build(DSSMModel(FEATURISER, TowerConfig(layers=(8, 8, 4)), TrainConfig()), ids)
    assert shared.query_tower is shared.document_tower
    assert len(shared.trainable_variables) == 6          # embedding, bias_0, kernel_1, bias_1, kernel_2, bias_2
    asymmetric = build(DSSMModel(FEATURISER, TowerConfig(layers=(8, 8, 4), shared=False), TrainConfig()), ids)
    assert asymmetric.query_tower is not asymmetric.document_tower
    assert len(asymmetric.trainable_variables) == 12


@pytest.mark.parametrize("fused_tensorflow_kernel", [True, False])
def test_keras_tower_equals_numpy_encoder(monkeypatch, fused_tensorflow_kernel):
    if not fused_tensorflow_kernel:                    # the keras.ops path other backends take
        monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    tower_config = TowerConfig(layers=(16, 12, 8))
    weights = random_weights(FEATURISER, tower_config, seed=5)
    tower, _ = make_towers(FEATURISER, tower_config)
    ids = Featuriser(FEATURISER).padded(TEXTS)
    tower(ids)
    by_name = {v.path.split("/")[-1]: v for v in tower.weights}
    for name, array in weights.items():
        by_name[name.split("/")[-1]].assign(array)
    keras_vectors = ops.convert_to_numpy(tower(ids))                         # [texts, 8]
    config = {"featuriser": vars(FEATURISER), "tower": {"layers": [16, 12, 8]},
              "towers": tower_prefixes(tower_config), "fingerprint": ""}
    numpy_vectors = Encoder(config, weights).encode(TEXTS)
    assert keras_vectors.shape == numpy_vectors.shape == (len(TEXTS), 8)
    assert np.abs(keras_vectors - numpy_vectors).max() <= 1e-5
    assert np.linalg.norm(numpy_vectors[0]) == approx(1.0, abs=1e-5)
    assert not numpy_vectors[1].any() and not numpy_vectors[3].any()        # no features -> zero vector


def test_tensorflow_embedding_bag_gradient_equals_autodiff(monkeypatch, kernels):
    """The hand-written gradient (transposed segment sum over touched rows, or the fused kernel) equals
    TensorFlow's autodiff of the plain gather-and-sum bag, with repeated ids in a text, empty texts and
    the last bucket."""
    import tensorflow as tf

    from dssm.tower import Tower, _tf_embedding_bag

    rng = np.random.default_rng(3)
    table = tf.constant(rng.normal(size=(513, 6)).astype(np.float32))
    ids = np.array([[5, 5, 9, 512, 0, 0], [0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 9, 9, 0, 0, 0]], np.int32)
    upstream = tf.constant(rng.normal(size=(4, 6)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(table)
        fast = _tf_embedding_bag(table, tf.constant(ids))
        fast_total = tf.reduce_sum(fast * upstream)
    fast_grad = tape.gradient(fast_total, table)
    assert isinstance(fast_grad, tf.IndexedSlices)
    assert sorted(fast_grad.indices.numpy()) == [1, 2, 3, 4, 5, 6, 9, 512]     # only the touched rows

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")                # the keras.ops path
    plain_tower = Tower(512, (6,))
    plain_tower.embedding = table
    with tf.GradientTape() as tape:
        tape.watch(table)
        plain = plain_tower.embedding_bag(tf.constant(ids))
        plain_total = tf.reduce_sum(plain * upstream)
    plain_grad = tf.convert_to_tensor(tape.gradient(plain_total, table))
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), atol=1e-6)
    np.testing.assert_allclose(tf.convert_to_tensor(fast_grad).numpy(), plain_grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("top", [512, 70000])                     # 16-bit radix sort, and wider ids
def test_grouping_order_sorts_stably(top):
    from dssm.tower import _grouping_order

    ids = np.random.default_rng(4).integers(1, top, 5000).astype(np.int32)
    order = _grouping_order(ids).numpy()
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))
