"""The plugin's model registry (PUT|GET|DELETE /_dssm/model/{name}) against the real server."""
from __future__ import annotations

import base64
import json

import pytest
from elasticsearch import ApiError

from indexer import es_plugin
from plugin_fixtures import GOLDEN_MODEL, es_plugin_client, model_name, plugin_model  # noqa: F401

pytestmark = pytest.mark.es

GOLDEN_FINGERPRINT = json.loads((GOLDEN_MODEL / "config.json").read_text())["fingerprint"]


def status_and_reason(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        call()
    body = info.value.body if isinstance(info.value.body, dict) else {}
    return info.value.meta.status, str(body.get("error", {}).get("reason", ""))


def test_upload_get_delete(es_plugin_client, model_name):
    answer = es_plugin.upload_model(es_plugin_client, model_name, GOLDEN_MODEL)
    assert (answer["result"], answer["fingerprint"], answer["dims"]) == ("created", GOLDEN_FINGERPRINT, 8)
    meta = es_plugin.get_model(es_plugin_client, model_name)
    assert meta["fingerprint"] == GOLDEN_FINGERPRINT and meta["tower"]["layers"] == [16, 16, 8]
    assert es_plugin.upload_model(es_plugin_client, model_name, GOLDEN_MODEL)["result"] == "updated"
    listed = {model["name"]: model["fingerprint"] for model in es_plugin.list_models(es_plugin_client)}
    assert listed[model_name] == GOLDEN_FINGERPRINT
    assert es_plugin.delete_model(es_plugin_client, model_name)["acknowledged"] is True
    status, reason = status_and_reason(lambda: es_plugin.get_model(es_plugin_client, model_name))
    assert status == 404 and model_name in reason


def body_with(**changes) -> dict:
    body = es_plugin.model_upload_body(GOLDEN_MODEL)
    for name, value in changes.items():
        body["weights"][name.replace("__", "/")] = value
    return body


def put(client, name, body):
    return lambda: es_plugin.request(client, "PUT", f"/_dssm/model/{name}", body)


@pytest.mark.parametrize("body, field", [
    (body_with(tower__bias_0=base64.b64encode(b"\0" * 60).decode()), "tower/bias_0"),   # 15 floats, shape [16]
    (body_with(tower__embedding="not base64!"), "weights.tower/embedding"),
    (body_with(extra="AAAA"), "weights.extra"),
    ({"config": {}, "weights": {}}, "config"),
    ({"weights": {}}, "config"),
    ({"config": json.loads((GOLDEN_MODEL / "config.json").read_text()), "weights": {}}, "tower/"),
])
def test_invalid_models_are_400(es_plugin_client, model_name, body, field):
    status, reason = status_and_reason(put(es_plugin_client, model_name, body))
    assert status == 400 and field in reason


def test_config_shapes_must_match_the_tower(es_plugin_client, model_name):
    body = es_plugin.model_upload_body(GOLDEN_MODEL)
    body["config"]["featuriser"]["buckets"] = 2048    # embedding must then be [2049, 16]
    status, reason = status_and_reason(put(es_plugin_client, model_name, body))
    assert status == 400 and "tower/embedding" in reason and "[2049, 16]" in reason


def test_body_over_the_size_limit_is_400(es_plugin_client, model_name):
    es_plugin_client.cluster.put_settings(transient={"dssm.model.max_upload_size": "10kb"})
    try:
        status, reason = status_and_reason(put(es_plugin_client, model_name, es_plugin.model_upload_body(GOLDEN_MODEL)))
    finally:
        es_plugin_client.cluster.put_settings(transient={"dssm.model.max_upload_size": None})
    assert status == 400 and "dssm.model.max_upload_size" in reason


def test_bad_names_are_refused(es_plugin_client):
    status, reason = status_and_reason(lambda: es_plugin.request(es_plugin_client, "GET", "/_dssm/model/Upper"))
    assert status == 400 and "[name]" in reason
    with pytest.raises(ValueError, match="model name"):
        es_plugin.upload_model(es_plugin_client, "../x", GOLDEN_MODEL)
