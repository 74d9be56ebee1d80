"""The embedded index's lexical analysis in Elasticsearch (the dssm plugin's `dssm_<name>` analyzers),
against the real server: the golden terms through `_analyze`, and an Elasticsearch build ranking its
BM25 like the embedded index built from the same corpus.

Measured on the sample corpus (5,000 documents), lexical top 10 of the 200 sample dev queries, embedded
`english` against Elasticsearch: `dssm_english` (+ `dssm_english_search` for queries) mean top-10 overlap
0.984 (min 0.90), same top 1 in 198/200 (first 30 queries: 0.990, 30/30); `dssm_english` for queries too
(repeated query terms counted twice): 0.968, 196/200; `standard`: 0.639, 164/200 (first 30: 0.663,
26/30). The rest is Lucene's lossy length norms (docs/ELASTICSEARCH.md).
"""
from __future__ import annotations

import json
import statistics
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from es_fixtures import delete_with_prefix
from indexer.embedded import EmbeddedIndex
from indexer.es_config import EsError
from indexer.es_documents import from_embedded_index
from indexer.es_index import EsIndex, IndexOptions, build, read_meta, resolve_analysis
from plugin_fixtures import es_plugin_client  # noqa: F401

pytestmark = pytest.mark.es

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "sample_corpus.jsonl"
QUERIES = [json.loads(line)["query"] for line in (ROOT / "data" / "sample_dev_queries.jsonl").read_text().splitlines()[:30]]
GOLDEN = json.loads((ROOT / "tests" / "golden" / "analysis_cases.json").read_text(encoding="utf-8"))["cases"]
# thresholds between dssm_english (0.990, 30/30 measured) and standard (0.663, 26/30)
MIN_MEAN_OVERLAP, MIN_SAME_TOP1 = 0.95, 28


def analyze(client, analyzer: str, text: str) -> list[str]:
    return [token["token"] for token in client.indices.analyze(analyzer=analyzer, text=text)["tokens"]]


def test_analyze_gives_the_golden_terms(es_plugin_client):
    for case in GOLDEN:
        name, text = case["analyzer"], case["text"]
        assert analyze(es_plugin_client, f"dssm_{name}", text) == case["terms"], (name, text)
        assert analyze(es_plugin_client, f"dssm_{name}_search", text) == list(dict.fromkeys(case["terms"])), (name, text)


def test_tokenizer_cuts_the_featurisers_words_with_offsets_into_the_text(es_plugin_client):
    tokens = es_plugin_client.indices.analyze(tokenizer="dssm_tokenizer", text="C++ Straße, ﬁne")["tokens"]
    assert [(t["token"], t["start_offset"], t["end_offset"]) for t in tokens] == [
        ("c", 0, 1), ("strasse", 4, 10), ("fine", 12, 15)]


def agreement(embedded: EmbeddedIndex, es: EsIndex) -> tuple[float, int]:
    """(mean top-10 overlap, queries with the same top 1) of the lexical side over QUERIES."""
    overlaps, same_top1 = [], 0
    for query in QUERIES:
        ours, theirs = embedded.lexical(query, 10).ids, es.lexical(query, 10).ids
        overlaps.append(len(set(ours) & set(theirs)) / max(len(ours), len(theirs), 1))
        same_top1 += ours[:1] == theirs[:1]
    return statistics.mean(overlaps), same_top1


@pytest.fixture(scope="module")
def built(es_plugin_client, tmp_path_factory):
    """The sample corpus in an embedded index (analyzer english) and, from the same run, in Elasticsearch."""
    from conftest import TINY_FEATURISER, TINY_TOWER
    from dssm.export import random_weights, save_model

    directory = tmp_path_factory.mktemp("analysis")
    model, out, alias = directory / "tiny", directory / "index", f"dssm-test-{uuid.uuid4().hex[:10]}"
    save_model(model, TINY_FEATURISER, TINY_TOWER, random_weights(TINY_FEATURISER, TINY_TOWER, seed=7))
    result = CliRunner().invoke(main, ["index", "build", "--model", str(model), "--corpus", str(CORPUS), "--out",
                                       str(out), "--analyzer", "english", "--passages", "none",
                                       "--es-index", alias, "--quiet"])
    assert result.exit_code == 0, result.output
    yield EmbeddedIndex.open(out), alias, out
    delete_with_prefix(es_plugin_client, alias)
    delete_with_prefix(es_plugin_client, alias + "-standard")


def test_es_build_ranks_like_the_embedded_index(es_plugin_client, built):
    embedded, alias, _ = built
    assert embedded.manifest["bm25"]["analyzer"] == "english"
    (meta,) = read_meta(es_plugin_client, alias).values()
    assert meta["analyzer"] == "dssm_english"
    assert meta["bm25"] == {"analyzer": "english", "es_analyzer": "dssm_english", "exact": True,
                            "es_search_analyzer": "dssm_english_search"}
    (mapping,) = es_plugin_client.indices.get_mapping(index=alias).values()
    assert mapping["mappings"]["properties"]["body"] == {
        "type": "text", "analyzer": "dssm_english", "search_analyzer": "dssm_english_search"}
    overlap, same_top1 = agreement(embedded, EsIndex.open(es_plugin_client, alias))
    assert overlap >= MIN_MEAN_OVERLAP and same_top1 >= MIN_SAME_TOP1, (overlap, same_top1)


def test_the_standard_analyzer_would_fail_that_check(es_plugin_client, built):
    embedded, alias, out = built
    model_info, rows = from_embedded_index(out)
    build(es_plugin_client, alias + "-standard", rows, model_info["fingerprint"],
          IndexOptions(dims=model_info["dim"], analyzer="standard", replicas=0))
    overlap, same_top1 = agreement(embedded, EsIndex.open(es_plugin_client, alias + "-standard"))
    assert overlap < MIN_MEAN_OVERLAP and same_top1 < MIN_SAME_TOP1, (overlap, same_top1)


def test_resolution_plugin_override_fallback_and_failure(es_plugin_client):
    for name in ("simple", "english", "russian"):
        analysis = resolve_analysis(es_plugin_client, name)
        assert (analysis.analyzer, analysis.search_analyzer, analysis.exact) == (f"dssm_{name}", f"dssm_{name}_search", True)
        assert analysis.warning() is None
    override = resolve_analysis(es_plugin_client, "english", override="standard")
    assert (override.analyzer, override.follows, override.exact, override.warning()) == ("standard", None, False, None)
    with pytest.raises(EsError, match="no analyzer 'nope'; choose another --es-analyzer"):
        resolve_analysis(es_plugin_client, "english", override="nope")
    # a cluster without the plugin (no analyzer has this prefix): Elasticsearch's own analyzer with a
    # warning where it has one (`standard` always; `english` only with the analysis-common module)
    fallback = resolve_analysis(es_plugin_client, "simple", plugin_prefix="dssm_absent")
    assert (fallback.analyzer, fallback.exact) == ("standard", False)
    assert "rankings may differ slightly" in fallback.warning()
    try:
        english = resolve_analysis(es_plugin_client, "english", plugin_prefix="dssm_absent")
    except EsError as error:  # the integ-test server: no analysis-common
        assert "\n" not in str(error) and "install the plugin" in str(error)
    else:
        assert (english.analyzer, english.exact, english.meta()["analyzer"]) == ("english", False, "english")


def test_cli_refuses_an_unknown_es_analyzer_before_encoding(es_plugin_client, es_alias, tmp_path):
    result = CliRunner().invoke(main, ["index", "build", "--model", str(tmp_path / "no-model"), "--corpus",
                                       str(CORPUS), "--es-index", es_alias, "--es-analyzer", "nope"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: Elasticsearch has no analyzer 'nope'; choose another --es-analyzer, or leave it out to use "
        "dssm_english (the dssm plugin)")
    assert es_plugin_client.indices.get(index=f"{es_alias}*") == {}
