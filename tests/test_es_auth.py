"""Credentials against a real node with security on (`scripts/es.sh up-secure`)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from indexer.es_config import EsError, connect, load_config
from indexer.es_index import EsIndex, IndexOptions, build

pytestmark = pytest.mark.es

DOCS = [("a", "Red apple", "a red apple", [1.0, 0.0]), ("b", "Sky", "blue sky", [0.0, 1.0])]


def secure_env(monkeypatch, url: str, **variables: str) -> None:
    monkeypatch.setenv("DSSM_ES_URL", url)
    for name in ("DSSM_ES_API_KEY", "DSSM_ES_USER", "DSSM_ES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_basic_auth_works(es_secure, monkeypatch):
    """API keys cannot be made on this server: the `.security` index needs analysis-common
    (`pattern_capture`), absent from the integ-test zip; a wrong key is tested below."""
    url, user, password = es_secure
    secure_env(monkeypatch, url, DSSM_ES_USER=user, DSSM_ES_PASSWORD=password)
    client = connect(load_config(timeout=5))
    report = build(client, "dssm-auth-test", DOCS, "f" * 64, IndexOptions(dims=2, replicas=0))
    try:
        assert EsIndex.open(client, "dssm-auth-test").semantic([1.0, 0.0], k=1).ids == ("a",)
    finally:
        client.indices.delete(index=report.index)


def test_wrong_password_is_a_clear_error_without_the_secret(es_secure, monkeypatch):
    url, user, _ = es_secure
    secure_env(monkeypatch, url, DSSM_ES_USER=user, DSSM_ES_PASSWORD="not-the-password")
    with pytest.raises(EsError, match=r"refused our credentials \(401\); check DSSM_ES_API_KEY or "
                                      r"DSSM_ES_USER/DSSM_ES_PASSWORD") as error:
        connect(load_config(timeout=5))
    assert "not-the-password" not in str(error.value)


def test_wrong_api_key_from_the_cli_exits_1_with_one_line(es_secure, monkeypatch):
    url, _, _ = es_secure
    secure_env(monkeypatch, url, DSSM_ES_API_KEY="bm9wZTpub3BlCg==")
    result = CliRunner().invoke(main, ["search", "--backend", "es", "--es-index", "x", "anything"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Elasticsearch at http://127.0.0.1:") and "(401)" in result.output
    assert "bm9wZTpub3BlCg" not in result.output and result.output.count("\n") == 1


def test_https_to_a_plain_http_server_names_the_tls_settings(es_client, es_config):
    url = es_config.url.replace("http://", "https://", 1)
    with pytest.raises(EsError, match="TLS with Elasticsearch at https://.* failed .*check the URL scheme and DSSM_ES_CA_CERTS"):
        connect(load_config(url=url, timeout=5))
