"""`dssm es upload-model` and `dssm search --backend es-plugin` against the real server: the plugin
answers what `dssm search --backend es` (fusion in Python) answers for the same index and query."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from indexer import es_plugin
from plugin_fixtures import GOLDEN_MODEL, es_plugin_client, model_name  # noqa: F401

pytestmark = pytest.mark.es

DOCS = [{"id": "d1", "title": "Debian", "text": "debian package manager"},
        {"id": "d2", "title": "Kernel", "text": "the debian linux kernel image"},
        {"id": "d3", "title": "", "text": "python web framework"},
        {"id": "d4", "title": "Editors", "text": "terminal text editor"}]


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def records(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


@pytest.fixture
def indexed(es_plugin_client, es_alias, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    result = run("index", "build", "--model", GOLDEN_MODEL, "--corpus", corpus, "--es-index", es_alias, "--quiet")
    assert result.exit_code == 0, result.output
    return es_alias


def test_upload_then_search_like_the_python_hybrid(es_plugin_client, indexed, model_name):
    result = run("es", "upload-model", model_name, GOLDEN_MODEL)
    assert result.exit_code == 0, result.output
    assert es_plugin.get_model(es_plugin_client, model_name)["dims"] == 8
    for fusion in ("linear", "rrf"):
        common = ("--es-index", indexed, "--fusion", fusion, "--k", "3", "--json", "--explain", "debian kernel")
        plugin = records(run("search", "--backend", "es-plugin", "--model", model_name, *common))
        python = records(run("search", "--backend", "es", "--model", GOLDEN_MODEL, *common))
        assert [r["id"] for r in plugin] == [r["id"] for r in python]
        assert [r["score"] for r in plugin] == pytest.approx([r["score"] for r in python], abs=1e-5)
        assert plugin[0]["explain"]["lexical"]["rank"] == python[0]["explain"]["lexical"]["rank"]
    default_model = records(run("search", "--backend", "es-plugin", "--es-index", indexed, "--json", "debian"))
    assert default_model and default_model[0]["title"]


def test_plugin_errors_are_one_line(es_plugin_client, indexed):
    result = run("search", "--backend", "es-plugin", "--es-index", indexed, "--model", "no-such-model", "debian")
    assert result.exit_code == 1 and "unknown model [no-such-model]" in result.output
    result = run("es", "upload-model", "Bad Name", GOLDEN_MODEL)
    assert result.exit_code == 2 and "model name" in result.output
