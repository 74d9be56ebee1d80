"""Fixtures for tests against a real Elasticsearch (`make es-up`), imported by conftest.py.

No server at DSSM_ES_URL (default http://127.0.0.1:9200): the `es` tests skip with a message, or
fail when DSSM_REQUIRE_ES=1 (CI), so CI cannot pass without them. Every test gets its own index
names and deletes exactly those indices afterwards (wildcard deletes are refused by ES).
"""
from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from indexer.es_config import EsError, connect, load_config

REQUIRE_ENV = "DSSM_REQUIRE_ES"


@pytest.fixture(scope="session")
def es_config():
    return load_config(timeout=5)


@pytest.fixture(scope="session")
def es_client(es_config):
    """A client to the test server, or skip (fail with DSSM_REQUIRE_ES=1) when there is none."""
    try:
        client = connect(es_config)
    except EsError as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {error} (start it: make es-up)", pytrace=False)
        pytest.skip(f"no Elasticsearch for the es tests: {error}")
    client.cluster.health(wait_for_status="yellow", timeout="30s")
    return client


def delete_with_prefix(client, prefix: str) -> None:
    """Delete every index named `prefix` or `prefix-*`, one exact name at a time."""
    names = client.indices.get(index=f"{prefix}*", expand_wildcards="all", ignore_unavailable=True)
    for name in names:
        if name == prefix or name.startswith(prefix + "-"):
            client.indices.delete(index=name)


@pytest.fixture
def es_alias(es_client):
    """A fresh alias name `dssm-test-<hex>`; its indices are deleted after the test."""
    name = f"dssm-test-{uuid.uuid4().hex[:10]}"
    yield name
    delete_with_prefix(es_client, name)


ES_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "es.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def es_secure(es_client):
    """(url, user, password) of this session's own node with security on (`scripts/es.sh up-secure`
    on free ports), stopped afterwards. Needs the main server (es_client) so that it skips, or fails
    under DSSM_REQUIRE_ES=1, the same way."""
    env = dict(os.environ, ES_SECURE_PORT=str(free_port()), ES_SECURE_TRANSPORT_PORT=str(free_port()))
    up = subprocess.run([str(ES_SCRIPT), "up-secure"], capture_output=True, text=True, timeout=300, env=env)
    if up.returncode != 0:
        message = f"scripts/es.sh up-secure failed: {up.stderr.strip()[-2000:]}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    paths = dict(line.split("=", 1) for line in subprocess.run(
        [str(ES_SCRIPT), "env"], capture_output=True, text=True, check=True).stdout.split())
    credentials = Path(paths["ES_HOME"]).parent / f"secure-{env['ES_SECURE_PORT']}" / "credentials"
    user, password = credentials.read_text().strip().split(":", 1)
    yield up.stdout.strip().splitlines()[-1], user, password
    subprocess.run([str(ES_SCRIPT), "down-secure"], capture_output=True, timeout=120, env=env)
