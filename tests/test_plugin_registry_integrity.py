"""The model registry verifies what it stores (issue 17, finding 7), against the real server.

The plugin computes a model's fingerprint itself (docs/FORMAT.md 2.3: sha256 of the canonical config and
the weights in manifest order) and refuses an upload whose weights do not give the fingerprint it claims,
so nobody can store zeros under another model's fingerprint; a stored model whose chunks were changed
afterwards is refused when a node loads it, and uploading the real model again repairs it.

Each test uses its own freshly exported model (a random seed, so a fingerprint no other test uses) and
deletes every name it uploaded. To make a node read a model back from `.dssm-models` rather than serve
the copy it decoded at upload, the tests fill the per-node cache (`dssm.model.cache_size`, default 4)
with other names first.
"""
from __future__ import annotations

import base64
import shutil
import uuid
import warnings

import numpy as np
import pytest
from elasticsearch import ApiError

from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import fingerprint, load_encoder, read_config, random_weights, save_model
from indexer import es_plugin
from plugin_fixtures import es_plugin_client  # noqa: F401

pytestmark = pytest.mark.es

REGISTRY_INDEX = ".dssm-models"
CACHE_FILLERS = 6          # more than the default dssm.model.cache_size (4)
TEXT = "debian package manager"


def export_model(directory, layers=(16, 8)):
    """A tiny exported model with random weights under `directory`; returns its path."""
    featuriser, tower = FeaturiserConfig(buckets=1024, max_features=128), TowerConfig(layers=layers)
    save_model(directory, featuriser, tower, random_weights(featuriser, tower, seed=uuid.uuid4().int % 2**31))
    return directory


def zeroed_copy(model_dir, directory):
    """The same model directory with every weight file zeroed (config.json, fingerprint included, kept)."""
    shutil.copytree(model_dir, directory)
    for entry in read_config(directory)["weights"]:
        path = directory / entry["file"]
        path.write_bytes(b"\0" * path.stat().st_size)
    return directory


@pytest.fixture
def names(es_plugin_client):
    """Hands out fresh model names `dssm-test-<hex>` and deletes all of them from the registry afterwards."""
    issued: list[str] = []

    def new_name() -> str:
        issued.append(f"dssm-test-{uuid.uuid4().hex[:10]}")
        return issued[-1]

    yield new_name
    for name in issued:
        try:
            es_plugin.delete_model(es_plugin_client, name)
        except ApiError:
            pass                                  # never stored (refused), or already deleted


def upload_error(client, name, model_dir) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        es_plugin.upload_model(client, name, model_dir)
    body = info.value.body if isinstance(info.value.body, dict) else {}
    return info.value.meta.status, str(body.get("error", {}).get("reason", ""))


def fill_cache(client, names, tmp_path):
    """Uploads another model under more names than a node caches, so earlier uploads must be read back."""
    filler = export_model(tmp_path / "filler")
    for _ in range(CACHE_FILLERS):
        es_plugin.upload_model(client, names(), filler)


def served_vector(client, model: str, text: str = TEXT) -> dict:
    """The dssm_embed processor's answer for one document: {"vector": [...]} or {"error": "..."}."""
    answer = client.ingest.simulate(
        pipeline={"processors": [{"dssm_embed": {"model": model, "fields": ["text"], "target_field": "vector",
                                                 "passages": "none"}}]},
        docs=[{"_source": {"text": text}}])["docs"][0]
    if "error" in answer:
        return {"error": str(answer["error"].get("reason", answer["error"]))}
    return {"vector": answer["doc"]["_source"].get("vector")}


def assert_serves(client, model: str, model_dir) -> None:
    expected = load_encoder(model_dir).encode([TEXT], side="document")[0]
    served = served_vector(client, model)
    assert served.get("vector") is not None, f"model [{model}] served no vector: {served}"
    assert np.abs(np.asarray(served["vector"]) - expected).max() <= 1e-5


def test_upload_with_weights_that_do_not_give_its_fingerprint_is_refused(es_plugin_client, names, tmp_path):
    real = export_model(tmp_path / "real")
    poisoned = zeroed_copy(real, tmp_path / "poisoned")
    claimed = read_config(real)["fingerprint"]
    computed = fingerprint(read_config(poisoned), poisoned)        # what the zeroed weights really give
    assert computed != claimed
    name = names()
    status, reason = upload_error(es_plugin_client, name, poisoned)
    assert status == 400, reason
    assert claimed in reason and computed in reason, reason          # both fingerprints named
    with pytest.raises(ApiError) as info:                            # nothing was stored under the name
        es_plugin.get_model(es_plugin_client, name)
    assert info.value.meta.status == 404


def test_changed_config_under_the_same_fingerprint_is_refused(es_plugin_client, names, tmp_path):
    real = export_model(tmp_path / "real")
    body = es_plugin.model_upload_body(real)
    body["config"]["featuriser"]["max_features"] = 64               # other features, same claimed fingerprint
    with pytest.raises(ApiError) as info:
        es_plugin.request(es_plugin_client, "PUT", f"/_dssm/model/{names()}", body)
    assert info.value.meta.status == 400
    assert body["config"]["fingerprint"] in str(info.value.body)


def test_poisoned_upload_leaves_the_real_model_intact(es_plugin_client, names, tmp_path):
    real = export_model(tmp_path / "real")
    poisoned = zeroed_copy(real, tmp_path / "poisoned")
    try:                                                             # the attack (refused since the fix)
        es_plugin.upload_model(es_plugin_client, names(), poisoned)
    except ApiError:
        pass
    victim = names()
    answer = es_plugin.upload_model(es_plugin_client, victim, real)
    assert (answer["result"], answer["fingerprint"]) == ("created", read_config(real)["fingerprint"])
    fill_cache(es_plugin_client, names, tmp_path)                   # served from .dssm-models, as after a restart
    assert_serves(es_plugin_client, victim, real)


def test_tampered_stored_chunk_is_refused_and_a_new_upload_repairs_it(es_plugin_client, names, tmp_path):
    real = export_model(tmp_path / "real")
    name = names()
    meta = es_plugin.upload_model(es_plugin_client, name, real)
    chunk_id = f"chunk:{meta['fingerprint']}:0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                             # writing to a hidden dot-index
        stored = es_plugin_client.get(index=REGISTRY_INDEX, id=chunk_id)["_source"]
        zeros = base64.b64encode(b"\0" * len(base64.b64decode(stored["data"]))).decode("ascii")
        es_plugin_client.index(index=REGISTRY_INDEX, id=chunk_id, document={**stored, "data": zeros}, refresh=True)
    fill_cache(es_plugin_client, names, tmp_path)

    served = served_vector(es_plugin_client, name)
    assert "error" in served, f"a tampered model was served: {served}"
    assert meta["fingerprint"] in served["error"] and "fingerprint" in served["error"], served

    assert es_plugin.upload_model(es_plugin_client, name, real)["result"] == "updated"
    fill_cache(es_plugin_client, names, tmp_path)
    assert_serves(es_plugin_client, name, real)
