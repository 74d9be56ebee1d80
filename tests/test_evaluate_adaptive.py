"""Per-query fusion weight (stretch): features, gains, and a fit that finds a perfectly predictable alpha."""
from __future__ import annotations

import numpy as np
from pytest import approx

from indexer import adaptive_fusion as af
from indexer.hits import Hits


def test_features_by_hand():
    lexical, semantic = Hits(["a", "b"], [4.0, 1.0]), Hits(["b", "c"], [0.8, 0.5])
    x = af.features("two words", lexical, semantic, depth=4)
    assert x.shape == (len(af.FEATURES),)
    assert x == approx([np.log1p(2), np.log1p(4.0), 3 / 4, 2 / 4, 0.8, 0.3, 1 / 10])
    assert af.features("q", Hits.empty(), Hits.empty(), 4) == approx([np.log1p(1), 0, 0, 0, 0, 0, 0])


def test_gains_are_per_alpha_ndcg():
    # 'z' is last lexically, first semantically: with minmax it ranks first only when alpha > 0.5
    candidates = {"q": (Hits(["a", "z"], [2.0, 1.0]), Hits(["z", "a"], [0.9, 0.5]))}
    g = af.gains(candidates, {"q": {"z": 1}}, "minmax")
    expected = [1 / np.log2(3)] * 6 + [1.0] * 5                 # alpha 0 .. 0.5, then 0.6 .. 1
    assert g.shape == (1, len(af.ALPHAS)) and g[0] == approx(expected)


def test_fit_learns_a_feature_that_decides_alpha():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    g = np.zeros((200, len(af.ALPHAS)))
    g[x[:, 0] > 0, 10] = 1.0          # positive first feature: alpha 1 wins, else alpha 0
    g[x[:, 0] <= 0, 0] = 1.0
    model = af.fit(x, g, "minmax", l2=1e-4)
    chosen = model.alphas(x)
    assert np.mean(chosen == np.where(x[:, 0] > 0, 1.0, 0.0)) >= 0.95
