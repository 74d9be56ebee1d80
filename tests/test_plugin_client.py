"""indexer/es_plugin.py without a server: the upload body and reading the endpoint's answer."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from indexer import es_plugin
from plugin_fixtures import GOLDEN_MODEL


def test_upload_body_carries_config_and_every_weight_in_base64():
    body = es_plugin.model_upload_body(GOLDEN_MODEL)
    config = json.loads((GOLDEN_MODEL / "config.json").read_text())
    assert body["config"] == config
    assert list(body["weights"]) == [entry["name"] for entry in config["weights"]]
    embedding = np.frombuffer(base64.b64decode(body["weights"]["tower/embedding"]), dtype="<f4")
    assert embedding.shape == (1025 * 16,)   # shape [buckets + 1, layers[0]] of the tiny model


def test_model_names_are_checked_before_any_request():
    es_plugin.check_model_name("demo-1.v2")
    for bad in ("", "Demo", "../x", "a/b", "_x", "x" * 101):
        with pytest.raises(ValueError, match="model name"):
            es_plugin.check_model_name(bad)


def test_endpoint_answer_becomes_fused_hits():
    response = {"fusion": {"method": "linear"}, "hits": {"total": 2, "max_score": 0.75, "hits": [
        {"_id": "b", "_score": 0.75, "_source": {"title": "B"}, "_explanation": {
            "fused": 0.75, "method": "linear",
            "lexical": {"score": 2.0, "rank": 1, "normalised": 1.0, "weight": 0.5, "part": 0.5},
            "semantic": {"score": 0.2, "rank": 2, "normalised": 0.5, "weight": 0.5, "part": 0.25}}},
        {"_id": "a", "_score": 0.5, "_source": {}, "_explanation": {
            "fused": 0.5, "method": "linear",
            "lexical": {"score": None, "rank": None, "normalised": 0.0, "weight": 0.5, "part": 0.0},
            "semantic": {"score": 0.9, "rank": 1, "normalised": 1.0, "weight": 0.5, "part": 0.5}}}]}}
    fused = es_plugin.fused_from_response(response)
    assert fused.hits.ids == ("b", "a") and fused.hits.scores == (0.75, 0.5)
    assert fused.explain("b").lexical.part + fused.explain("b").semantic.part == pytest.approx(0.75)
    assert fused.explain("a").lexical.rank is None
    assert es_plugin.titles(response) == {"b": "B", "a": ""}


def test_cli_es_plugin_usage_errors_need_no_server():
    from click.testing import CliRunner

    from cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(arg) for arg in args])

    result = run("search", "--backend", "es-plugin", "debian")
    assert result.exit_code == 2 and "--es-index" in result.output
    result = run("search", "--backend", "es-plugin", "--es-index", "x", "--model", GOLDEN_MODEL, "debian")
    assert result.exit_code == 2 and "name of an uploaded model" in result.output
    result = run("search", "--backend", "es-plugin", "--es-index", "x", "--mode", "lexical", "debian")
    assert result.exit_code == 2 and "--backend es" in result.output
    result = run("es", "upload-model", "Bad Name", GOLDEN_MODEL)
    assert result.exit_code == 2 and "model name" in result.output
