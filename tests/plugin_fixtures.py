"""Fixtures for the es-plugin tests (tests/test_plugin_*.py): a server with the dssm plugin installed.

On top of es_fixtures.py: `es_plugin_client` skips (fails with DSSM_REQUIRE_ES=1) when the server has
no `dssm` plugin (build and install it: make plugin && make es-up); `plugin_model` uploads the golden
tiny model under a fresh name and deletes it afterwards.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from es_fixtures import REQUIRE_ENV
from indexer import es_plugin

GOLDEN_MODEL = Path(__file__).resolve().parent / "golden" / "tiny_model"


@pytest.fixture(scope="session")
def es_plugin_client(es_client):
    plugins = es_client.cat.plugins(format="json")
    if not any(p.get("component") == "dssm" for p in plugins):
        message = "the Elasticsearch server has no dssm plugin (make plugin && make es-up)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {message}", pytrace=False)
        pytest.skip(message)
    return es_client


@pytest.fixture
def model_name(es_plugin_client):
    """A fresh model name `dssm-test-<hex>`, deleted from the registry after the test."""
    name = f"dssm-test-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        es_plugin.delete_model(es_plugin_client, name)
    except Exception:  # noqa: BLE001 - not uploaded, or already deleted by the test
        pass


@pytest.fixture
def plugin_model(es_plugin_client, model_name) -> str:
    """The golden tiny model uploaded as `model_name`."""
    es_plugin.upload_model(es_plugin_client, model_name, GOLDEN_MODEL)
    return model_name
