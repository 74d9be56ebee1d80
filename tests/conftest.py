"""Shared fixtures: tiny deterministic models and data; Elasticsearch fixtures live in es_fixtures.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import random_weights, save_model
from es_fixtures import *  # noqa: F401,F403

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"

TINY_FEATURISER = FeaturiserConfig(buckets=4096, max_features=256)
TINY_TOWER = TowerConfig(layers=(32, 32, 16))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained but deterministic model directory (buckets 4096, layers 32-32-16)."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    save_model(out, TINY_FEATURISER, TINY_TOWER, random_weights(TINY_FEATURISER, TINY_TOWER, seed=7))
    return out


@pytest.fixture(scope="session")
def small_index(tiny_model, tmp_path_factory) -> Path:
    """An embedded index of the first 300 sample documents under tiny_model. Read-only: copy it to change it."""
    from indexer.build import build_index

    out = tmp_path_factory.mktemp("small-index") / "index"
    corpus = out.parent / "corpus.jsonl"
    corpus.write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[:300]) + "\n")
    build_index(tiny_model, corpus, out, n_trees=5)
    return out


def native_library():
    """The fused training kernels (dssm/native), built by `make install`: required when
    DSSM_REQUIRE_NATIVE=1 (CI), else a test that needs them skips."""
    import os

    from dssm import native

    library = native.ops()
    if library is None:
        if os.environ.get("DSSM_REQUIRE_NATIVE") == "1":
            pytest.fail("the fused kernels are not built: run `python -m dssm.native`")
        pytest.skip("the fused kernels are not built (python -m dssm.native)")
    return library


@pytest.fixture(params=["tensorflow", "native"])
def kernels(request, monkeypatch) -> str:
    """Runs a test twice: on TensorFlow's own ops, and on the fused kernels of dssm/native."""
    import dssm.tower

    library = native_library() if request.param == "native" else None
    monkeypatch.setattr(dssm.tower, "_native_ops", lambda: library)
    return request.param
