"""The plugin on a two-node cluster (scripts/es_cluster2.sh: loopback, one shard plus one replica):
a model uploaded once through node 1 serves searches and ingest on node 2, with the same answer."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from dssm.export import load_encoder
from es_fixtures import REQUIRE_ENV
from indexer import es_plugin
from indexer.es_index import IndexOptions, build
from plugin_fixtures import GOLDEN_MODEL, es_plugin_client  # noqa: F401

pytestmark = [pytest.mark.es, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "es_cluster2.sh"
DOCS = [("a", "Debian", "debian package manager"), ("b", "Kernel", "the linux kernel image"),
        ("c", "", "python web framework"), ("d", "Editors", "terminal text editor")]


def unavailable(message: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {message}", pytrace=False)
    pytest.skip(message)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def two_nodes(es_plugin_client):
    """Clients to node 1 and node 2 of a cluster started for this module on free ports, stopped after.

    Runs only where the single dev/CI node with the plugin is up (make es-up), whose ES_HOME it reuses."""
    ports = free_ports(4)
    env = dict(os.environ, CLUSTER2_HTTP1=str(ports[0]), CLUSTER2_HTTP2=str(ports[1]),
               CLUSTER2_TRANSPORT1=str(ports[2]), CLUSTER2_TRANSPORT2=str(ports[3]))
    script = lambda command, **kw: subprocess.run([SCRIPT, command], capture_output=True, text=True, env=env, **kw)  # noqa: E731
    started = script("up", timeout=400)
    try:
        if started.returncode != 0:
            unavailable(f"no two-node cluster: {started.stderr.strip().splitlines()[-1:]}")
        clients = [Elasticsearch(url, request_timeout=60) for url in script("urls", check=True).stdout.strip().split(",")]
        health = clients[0].cluster.health(wait_for_nodes="2", wait_for_status="green", timeout="60s")
        assert health["number_of_nodes"] == 2
        if not all(any(p["component"] == "dssm" for p in c.cat.plugins(format="json")) for c in clients):
            unavailable("the cluster nodes have no dssm plugin (make plugin && make es-up)")
        yield clients
    finally:
        script("down", timeout=120)


def test_model_uploaded_once_serves_both_nodes(two_nodes):
    node1, node2 = two_nodes
    encoder = load_encoder(GOLDEN_MODEL)
    es_plugin.upload_model(node1, "cluster-test", GOLDEN_MODEL)
    vectors = encoder.encode([f"{t}\n{x}" if t else x for _, t, x in DOCS], side="document")
    build(node1, "cluster-test", [(i, t, x, v) for (i, t, x), v in zip(DOCS, vectors)], encoder.fingerprint,
          IndexOptions(dims=encoder.dim, replicas=1))
    node1.cluster.health(index="cluster-test", wait_for_status="green", timeout="60s")
    answers = [es_plugin.search(client, "cluster-test", "debian kernel", size=4, fusion="rrf")
               for client in (node2, node1)]
    assert [h["_id"] for h in answers[0]["hits"]["hits"]] == [h["_id"] for h in answers[1]["hits"]["hits"]]
    assert answers[0]["model"] == {"name": "cluster-test", "fingerprint": encoder.fingerprint}
    assert es_plugin.get_model(node2, "cluster-test")["fingerprint"] == encoder.fingerprint

    node2.ingest.put_pipeline(id="cluster-test", processors=[
        {"dssm_embed": {"model": "cluster-test", "fields": ["title", "text"]}}])
    result = node2.ingest.simulate(id="cluster-test", docs=[{"_source": {"title": "Debian", "text": "apt"}}])
    expected = encoder.encode(["Debian\napt"], side="document")[0]
    assert np.abs(np.asarray(result["docs"][0]["doc"]["_source"]["vector"]) - expected).max() <= 1e-5
