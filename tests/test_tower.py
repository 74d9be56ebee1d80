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
