"""Connection settings and errors; these need no server (a closed or silent port stands in for one)."""
from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner

from cli import main
from indexer.es_config import EsError, connect, load_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_closed_port_gives_a_one_line_error_quickly():
    config = load_config(url=f"http://127.0.0.1:{free_port()}", timeout=2)
    start = time.monotonic()
    with pytest.raises(EsError, match=r"cannot connect to Elasticsearch at http://127\.0\.0\.1:\d+; is it running\?"):
        connect(config)
    assert time.monotonic() - start < 2


def test_silent_server_times_out_within_the_timeout():
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = load_config(url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=1)
        start = time.monotonic()
        with pytest.raises(EsError, match="did not answer within 1 s") as error:
            connect(config)
        assert time.monotonic() - start < 3
    assert "\n" not in str(error.value)


def test_environment_and_precedence(monkeypatch, tmp_path):
    file = tmp_path / "es.json"
    file.write_text('{"url": "http://file:9200", "api_key": "FILEKEY"}')
    monkeypatch.setenv("DSSM_ES_CONFIG", str(file))
    monkeypatch.setenv("DSSM_ES_URL", "http://env:9200")
    config = load_config()
    assert (config.url, config.api_key, config.timeout) == ("http://env:9200", "FILEKEY", 10.0)
    assert load_config(url="http://arg:9200").url == "http://arg:9200"


def test_secrets_never_show(monkeypatch):
    monkeypatch.setenv("DSSM_ES_URL", "http://me:URLSECRET@127.0.0.1:9")
    monkeypatch.setenv("DSSM_ES_API_KEY", "KEYSECRET")
    config = load_config(timeout=1)
    assert "KEYSECRET" not in repr(config)
    assert config.safe_url == "http://127.0.0.1:9"
    with pytest.raises(EsError) as error:
        connect(config)
    assert "SECRET" not in str(error.value)


def test_bad_settings_name_the_fix(monkeypatch):
    monkeypatch.setenv("DSSM_ES_USER", "elastic")
    with pytest.raises(ValueError, match="needs both DSSM_ES_USER and DSSM_ES_PASSWORD"):
        load_config()
    monkeypatch.delenv("DSSM_ES_USER")
    with pytest.raises(ValueError, match="must start with http"):
        load_config(url="localhost:9200")
    monkeypatch.setenv("DSSM_ES_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="DSSM_ES_TIMEOUT must be a number"):
        load_config()


def test_cli_usage_errors_need_no_server():
    def run(*args):
        return CliRunner().invoke(main, list(args))
    assert "need --backend es" in run("search", "--index", "x", "--filter", "{}", "q").output
    assert "--index is required" in run("search", "q").output
    assert "nothing to build" in run("index", "build", "--model", "m", "--corpus", "c.jsonl").output
    assert "--backend es needs --es-index" in run("search", "--backend", "es", "q").output
