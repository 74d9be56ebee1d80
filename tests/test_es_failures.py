"""Elasticsearch going away during a build, against real servers (issue 17 finding 6).

A throwaway node of this module (the unpacked ES_HOME of `scripts/es.sh`, its own data, config copy and
free ports, security off) is killed with SIGKILL or frozen with SIGSTOP in the middle of a bulk; the
build must stop within the client timeout with one line, write no rejects, and the next build must
delete the half-built index. The orphan of a killed build process is tested on the shared server.
The node is always stopped (SIGCONT, then SIGKILL) and its directory removed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from es_fixtures import ES_SCRIPT, delete_with_prefix, free_port
from indexer.es_config import client_for, load_config
from indexer.es_index import BuildError, IndexOptions, build, read_meta

pytestmark = pytest.mark.es

ROOT = Path(__file__).resolve().parent.parent
FINGERPRINT = "f" * 64
OPTIONS = IndexOptions(dims=4, replicas=0)
TIMEOUT = 3.0  # the client timeout of these tests (DSSM_ES_TIMEOUT)
ABORT_BOUND_S = 3 * TIMEOUT  # abort within the client timeout; the rest is slack for 2 shared cores


def tiny_docs(count: int, prefix: str = "d"):
    for i in range(count):
        yield f"{prefix}{i}", f"title {i}", f"text of document {i}", [1.0, (i % 7) / 7, (i % 5) / 5, 0.5]


class Node:
    """A single-node ES on free ports in its own directory; `start` keeps the data of an earlier start."""

    def __init__(self) -> None:
        paths = dict(line.split("=", 1) for line in subprocess.run(
            [str(ES_SCRIPT), "env"], capture_output=True, text=True, check=True).stdout.split())
        self.home, self.user, self.java = paths["ES_HOME"], paths["ES_USER"], paths["ES_JAVA_HOME"]
        self.port, self.transport = free_port(), free_port()
        self.dir = Path(self.home).parent / f"failures-{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid: int | None = None

    def start(self) -> None:
        if not self.dir.exists():
            for sub in ("data", "logs"):
                (self.dir / sub).mkdir(parents=True)
            shutil.copytree(Path(self.home) / "config", self.dir / "config")
            if os.getuid() == 0:
                subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(self.dir)], check=True)
        prefix = ["runuser", "-u", self.user, "--"] if os.getuid() == 0 else []
        subprocess.run([*prefix, "env", f"ES_JAVA_HOME={self.java}", f"ES_PATH_CONF={self.dir}/config",
                        "ES_JAVA_OPTS=-Xms384m -Xmx384m", f"{self.home}/bin/elasticsearch", "-d",
                        "-p", str(self.dir / "es.pid"), "-Ecluster.name=dssm-failures", "-Enode.name=failures-1",
                        "-Ediscovery.type=single-node", "-Expack.security.enabled=false",
                        "-Enetwork.host=127.0.0.1", f"-Ehttp.port={self.port}", f"-Etransport.port={self.transport}",
                        f"-Epath.data={self.dir}/data", f"-Epath.logs={self.dir}/logs",
                        "-Ecluster.routing.allocation.disk.threshold_enabled=false"],
                       check=True, capture_output=True, timeout=180)
        self.pid = int((self.dir / "es.pid").read_text())
        self.client().options(request_timeout=65).cluster.health(wait_for_status="yellow", timeout="60s")

    def client(self):
        return client_for(load_config(url=self.url, timeout=TIMEOUT))

    def signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def kill(self) -> None:
        if self.pid is not None:
            for number in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(self.pid, number)
                except ProcessLookupError:
                    break
            for _ in range(100):  # the node is not our child: wait until it is gone
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            self.pid = None


@pytest.fixture
def node(es_client):
    """A throwaway node for one test (needs the main server, so it skips or fails the same way)."""
    started = Node()
    try:
        started.start()
        yield started
    finally:
        started.kill()
        shutil.rmtree(started.dir, ignore_errors=True)


def bounded(function, seconds: float):
    """Run `function` in a thread for at most `seconds`: (result or exception, elapsed); fails if it runs on."""
    outcome: list = []

    def target():
        try:
            outcome.append(function())
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the build still ran after {seconds} s"
    return outcome[0], time.monotonic() - start


def indices_of(client, alias: str) -> list[str]:
    return sorted(name for name in client.indices.get(index=f"{alias}-*", ignore_unavailable=True))


def test_a_killed_node_aborts_the_bulk_within_the_timeout_and_the_next_build_cleans_up(node, es_alias, tmp_path):
    client, killed_at = node.client(), []

    def corpus():
        for i, doc in enumerate(tiny_docs(3000)):
            if i == 1000:
                node.kill()
                killed_at.append(time.monotonic())
            yield doc

    rejects = tmp_path / "rejects.jsonl"
    error, _ = bounded(lambda: build(client, es_alias, corpus(), FINGERPRINT, OPTIONS, chunk_size=100,
                                     rejects_path=rejects, max_rejects=10 ** 6, timeout=TIMEOUT), 60)
    assert isinstance(error, BuildError), error
    assert time.monotonic() - killed_at[0] < ABORT_BOUND_S
    assert "stopped answering" in str(error) and "\n" not in str(error) and "alias" in str(error)
    assert not rejects.exists()  # a refused connection is not a rejected document

    node.start()  # same data: the half-built index is there, no alias on it
    client = node.client()
    (orphan,) = indices_of(client, es_alias)
    assert not client.indices.exists_alias(name=es_alias)
    report = build(client, es_alias, tiny_docs(50), FINGERPRINT, OPTIONS, timeout=TIMEOUT)
    assert indices_of(client, es_alias) == [report.index] == sorted(client.indices.get_alias(name=es_alias))
    assert report.orphans_removed == [orphan]
    assert client.count(index=es_alias)["count"] == 50
    client.indices.delete(index=report.index)


def test_a_frozen_node_fails_the_cli_build_in_one_line_with_exit_1(node, tiny_model, es_alias, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "title": f"title {i}", "text": f"words number {i}"}) + "\n"
                              for i in range(20000)))
    command = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); from cli import main; main()",
               str(ROOT), "index", "build", "--model", str(tiny_model), "--corpus", str(corpus), "--passages", "none",
               "--es-index", es_alias, "--es-url", node.url, "--max-rejects", "1000000", "--quiet"]
    client = node.client()
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, DSSM_ES_TIMEOUT=str(TIMEOUT)))
    try:
        while process.poll() is None:  # freeze the node once documents arrive
            stats = client.indices.stats(index=f"{es_alias}-*", metric="indexing")
            if stats.get("_all", {}).get("primaries", {}).get("indexing", {}).get("index_total", 0) > 0:
                node.signal(signal.SIGSTOP)
                frozen_at = time.monotonic()
                break
            time.sleep(0.02)
        assert process.poll() is None, f"the build ended before the node was frozen: {process.communicate()}"
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail("the build still ran 60 s after the node froze")
        elapsed = time.monotonic() - frozen_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        node.signal(signal.SIGCONT)
    assert process.returncode == 1, (out, err)
    assert elapsed < ABORT_BOUND_S + 2  # + the deletion tried before giving up
    assert err.startswith("Error: Elasticsearch stopped answering during the bulk") and err.count("\n") == 1, err
    assert f"the next build deletes {es_alias}-" in err
    assert not list(tmp_path.glob("*.rejects.jsonl"))

    client = node.client()
    client.cluster.health(wait_for_status="yellow", timeout="30s")
    # the delete the failed build sent to the frozen node may still be queued there and run once it
    # resumes: let the index list settle, then the next build removes whatever orphan is left
    left, settled_at = indices_of(client, es_alias), time.monotonic()
    while time.monotonic() - settled_at < 3:
        time.sleep(0.2)
        if (now := indices_of(client, es_alias)) != left:
            left, settled_at = now, time.monotonic()
    assert len(left) <= 1
    report = build(client, es_alias, tiny_docs(10), FINGERPRINT, OPTIONS, timeout=TIMEOUT)
    assert indices_of(client, es_alias) == [report.index] and report.orphans_removed == left
    delete_with_prefix(client, es_alias)


KILLED_BUILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from elasticsearch import Elasticsearch
from indexer.es_index import IndexOptions, build

def corpus():
    for i in range(100000):
        if i % 100 == 0:
            print(i, flush=True)
            time.sleep(0.05)
        yield f"k{i}", "t", "x", [1.0, 0.0, 0.0, 1.0]

build(Elasticsearch(sys.argv[2]), sys.argv[3], corpus(), "f" * 64, IndexOptions(dims=4, replicas=0), chunk_size=100)
"""


def test_the_next_build_removes_only_the_orphans_of_killed_builds(es_client, es_config, es_alias):
    kept = build(es_client, es_alias, tiny_docs(5), FINGERPRINT, OPTIONS).index
    serving = build(es_client, es_alias, tiny_docs(6), FINGERPRINT, OPTIONS, keep_old=True).index
    foreign = f"{es_alias}-20000101000000000000"  # our name pattern, not our _meta
    es_client.indices.create(index=foreign, mappings={"_meta": {"format": "someone-else"}})
    process = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(ROOT), es_config.url, es_alias],
                               stdout=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:  # kill -9 once a few chunks went in
            if int(line) >= 500:
                break
    finally:
        process.kill()
        process.wait()
    (orphan,) = set(indices_of(es_client, es_alias)) - {kept, serving, foreign}

    report = build(es_client, es_alias, tiny_docs(7), FINGERPRINT, OPTIONS, keep_old=True)
    assert indices_of(es_client, es_alias) == sorted([kept, serving, foreign, report.index])
    assert report.orphans_removed == [orphan] and orphan in report.summary()
    assert "building" not in read_meta(es_client, report.index)[report.index]
    assert read_meta(es_client, es_alias)[report.index]["count"] == 7
