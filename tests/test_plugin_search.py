"""POST /{index}/_dssm/search against the real server: the same ids and order as the Python
client-side hybrid (EsIndex.lexical + EsIndex.semantic + indexer.fusion) on the same index, and a 400
naming the field for every bad input."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
from elasticsearch import ApiError

from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import load_encoder, random_weights, save_model
from es_fixtures import delete_with_prefix
from indexer import es_plugin, fusion
from indexer.es_index import EsIndex, IndexOptions, build
from plugin_fixtures import GOLDEN_MODEL, es_plugin_client, model_name, plugin_model  # noqa: F401

pytestmark = pytest.mark.es

CORPUS = [
    ("d01", "Debian", "debian package manager apt and dpkg"),
    ("d02", "Python", "python web framework for fast apis"),
    ("d03", "Linux", "linux kernel module loader"),
    ("d04", "", "fast json parser written in python"),
    ("d05", "Kernel", "the debian linux kernel image and headers"),
    ("d06", "Editors", "a text editor for the terminal: vim, nano"),
    ("d07", "Fonts", "unicode fonts: Привет мир, 日本語, emoji 😀"),
    ("d08", "Mail", "mail transfer agent and spam filter"),
    ("d09", "Database", "relational database server, sql engine"),
    ("d10", "Kernel tools", "tools for the linux kernel: perf, ftrace"),
    ("d11", "!!!", "..."),   # no features: indexed without a vector
    ("d12", "Packages", "package archive mirror for debian and ubuntu"),
]
QUERIES = ["debian kernel", "python", "fast parser", "linux kernel tools", "мир шрифты", "package"]


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(GOLDEN_MODEL)


@pytest.fixture(scope="module")
def corpus_index(es_plugin_client, encoder):
    """The corpus, indexed once per module by the Python indexer (vectors from the Python encoder)."""
    es_alias = f"dssm-test-{uuid.uuid4().hex[:10]}"
    texts = [f"{title}\n{text}" if title else text for _, title, text in CORPUS]
    vectors = encoder.encode(texts, side="document")
    documents = [(doc_id, title, text, vector) for (doc_id, title, text), vector in zip(CORPUS, vectors)]
    build(es_plugin_client, es_alias, documents, encoder.fingerprint, IndexOptions(dims=encoder.dim, replicas=0))
    yield es_alias
    delete_with_prefix(es_plugin_client, es_alias)


def client_side(client, index, encoder, query, method, k, **options) -> fusion.Fused:
    """The Python hybrid: two round trips, fusion in Python."""
    es_index = EsIndex.open(client, index)
    filter_ = options.pop("filter", None)
    lexical = es_index.lexical(query, k=k, filter=filter_)
    semantic = es_index.semantic(encoder.encode([query], side="query")[0], k=k, filter=filter_)
    return fusion.fuse(lexical, semantic, method, k=k, **options)


CASES = [
    ("linear", {}),
    ("linear", {"alpha": 0.3, "norm": "zscore"}),
    ("linear", {"alpha": 0.8, "norm": "minmax"}),
    ("rrf", {}),
    ("rrf", {"rank_constant": 5}),
]


@pytest.mark.parametrize("method, options", CASES)
def test_endpoint_equals_the_python_hybrid(es_plugin_client, corpus_index, plugin_model, encoder, method, options):
    for query in QUERIES:
        expected = client_side(es_plugin_client, corpus_index, encoder, query, method, 5, **options)
        answer = es_plugin.search(es_plugin_client, corpus_index, query, size=5, model=plugin_model,
                                  fusion=method, **options)
        got = es_plugin.response_hits(answer)
        assert got.ids == expected.hits.ids, query
        # kNN scores are float32 and the Python side sends its query vector rounded to 8 decimals
        assert got.scores == pytest.approx(expected.hits.scores, abs=1e-5), query
        assert answer["model"] == {"name": plugin_model, "fingerprint": encoder.fingerprint}


def test_default_model_is_the_index_fingerprint(es_plugin_client, corpus_index, plugin_model, encoder):
    answer = es_plugin.search(es_plugin_client, corpus_index, "debian kernel", size=3)   # no "model"
    assert answer["model"]["fingerprint"] == encoder.fingerprint
    assert len(answer["hits"]["hits"]) == 3


def test_explain_filter_and_paging(es_plugin_client, corpus_index, plugin_model, encoder):
    answer = es_plugin.search(es_plugin_client, corpus_index, "debian kernel", size=4, model=plugin_model,
                              explain=True)
    expected = client_side(es_plugin_client, corpus_index, encoder, "debian kernel", "linear", 4)
    for hit in answer["hits"]["hits"]:
        mine, theirs = hit["_explanation"], expected.explain(hit["_id"]).as_dict()
        assert hit["_source"]["id"] == hit["_id"] and "vector" not in hit["_source"]
        for side in ("lexical", "semantic"):
            assert mine[side]["rank"] == theirs[side]["rank"]
            assert mine[side]["normalised"] == pytest.approx(theirs[side]["normalised"], abs=1e-5)
            assert mine[side]["part"] == pytest.approx(theirs[side]["part"], abs=1e-5)
        assert mine["fused"] == pytest.approx(mine["lexical"]["part"] + mine["semantic"]["part"])
    second_page = es_plugin.search(es_plugin_client, corpus_index, "debian kernel", size=2, from_=2,
                                   model=plugin_model, rank_window_size=4)
    assert [h["_id"] for h in second_page["hits"]["hits"]] == list(expected.hits.ids[2:4])
    only = {"terms": {"id": ["d01", "d03"]}}
    filtered = es_plugin.search(es_plugin_client, corpus_index, "debian kernel", size=5, model=plugin_model,
                                filter=only, fusion="rrf")
    expected = client_side(es_plugin_client, corpus_index, encoder, "debian kernel", "rrf", 5, filter=only)
    assert es_plugin.response_hits(filtered).ids == expected.hits.ids
    assert set(expected.hits.ids) <= {"d01", "d03"}


def other_model(tmp_path, layers) -> str:
    featuriser, tower = FeaturiserConfig(buckets=1024, max_features=128), TowerConfig(layers=layers)
    out = tmp_path / "other"
    save_model(out, featuriser, tower, random_weights(featuriser, tower, seed=99))
    return out


def error_of(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        call()
    body = info.value.body if isinstance(info.value.body, dict) else {}
    return info.value.meta.status, str(body.get("error", {}).get("reason", ""))


def test_another_models_fingerprint_is_refused_unless_overridden(es_plugin_client, corpus_index, model_name, tmp_path):
    es_plugin.upload_model(es_plugin_client, model_name, other_model(tmp_path, (16, 16, 8)))
    status, reason = error_of(lambda: es_plugin.search(es_plugin_client, corpus_index, "debian", model=model_name))
    assert status == 400 and "[model]" in reason and "allow_model_mismatch" in reason
    answer = es_plugin.search(es_plugin_client, corpus_index, "debian", model=model_name, allow_model_mismatch=True)
    assert answer["model"]["name"] == model_name


def test_dims_mismatch_is_400(es_plugin_client, corpus_index, model_name, tmp_path):
    es_plugin.upload_model(es_plugin_client, model_name, other_model(tmp_path, (16, 4)))
    status, reason = error_of(lambda: es_plugin.search(es_plugin_client, corpus_index, "debian", model=model_name,
                                                       allow_model_mismatch=True))
    assert status == 400 and "dims mismatch" in reason


BAD_BODIES = [
    ({"size": 3}, "[query]"),
    ({"query": "x", "size": 10001}, "[size]"),
    ({"query": "x", "size": -1}, "[size]"),
    ({"query": "x", "from": 9995, "size": 10}, "[from]"),
    ({"query": "x", "model": "no-such-model"}, "[model]"),
    ({"query": "x", "model": "Bad Name"}, "[model]"),
    ({"query": "x", "fusion": "borda"}, "[fusion]"),
    ({"query": "x", "filter": "id:d01"}, "[filter]"),
    ({"query": "x", "filter": ["term"]}, "[filter]"),
    ({"query": "x", "filter": {"no_such_query": {}}}, "[filter]"),
    ({"query": "x", "alpha": 1.5}, "[alpha]"),
    ({"query": "x", "norm": "l2"}, "[norm]"),
    ({"query": "x", "rank_constant": 0}, "[rank_constant]"),
    ({"query": "x", "num_candidates": 10001}, "[num_candidates]"),
    ({"query": "x", "unknown": 1}, "[unknown]"),
    ({"query": 5}, "[query]"),
]


@pytest.mark.parametrize("body, field", BAD_BODIES)
def test_bad_input_is_400_naming_the_field(es_plugin_client, corpus_index, plugin_model, body, field):
    status, reason = error_of(lambda: es_plugin.request(es_plugin_client, "POST", f"/{corpus_index}/_dssm/search", body))
    assert status == 400 and field in reason


@pytest.mark.parametrize("raw", [b'{"query": "x",', b"[1, 2]", b"not json"])
def test_malformed_json_is_400(es_plugin_client, corpus_index, raw):
    with pytest.raises(ApiError) as info:
        es_plugin_client.perform_request("POST", f"/{corpus_index}/_dssm/search",
                                         headers=es_plugin.JSON_HEADERS, body=raw)   # bytes go as they are
    assert info.value.meta.status == 400 and "malformed JSON" in str(info.value.body)


def test_index_without_meta_or_body_field(es_plugin_client, es_alias, plugin_model, encoder):
    """An index not built by the Python indexer: no _meta (a model must be named), no body field
    (BM25 over title and text), no dense_vector field named otherwise (400 naming vector_field)."""
    es_plugin_client.indices.create(index=es_alias, settings={"number_of_replicas": 0}, mappings={"properties": {
        "title": {"type": "text"}, "text": {"type": "text"},
        "emb": {"type": "dense_vector", "dims": 8, "similarity": "cosine", "index_options": {"type": "hnsw"}}}})
    vector = encoder.encode(["Debian\ndebian package manager"], side="document")[0].tolist()
    es_plugin_client.index(index=es_alias, id="x", refresh=True,
                           document={"title": "Debian", "text": "debian package manager", "emb": vector})
    status, reason = error_of(lambda: es_plugin.search(es_plugin_client, es_alias, "debian", vector_field="emb"))
    assert status == 400 and "[model]" in reason and "model_fingerprint" in reason
    status, reason = error_of(lambda: es_plugin.search(es_plugin_client, es_alias, "debian", model=plugin_model))
    assert status == 400 and "[vector_field]" in reason
    answer = es_plugin.search(es_plugin_client, es_alias, "debian", model=plugin_model, vector_field="emb",
                              explain=True)
    hit = answer["hits"]["hits"][0]
    assert hit["_id"] == "x" and hit["_explanation"]["lexical"]["rank"] == 1
    assert hit["_explanation"]["semantic"]["score"] == pytest.approx(
        float(np.dot(vector, encoder.encode(["debian"], side="query")[0])), abs=1e-5)


def test_index_with_passages_is_searched_by_best_passage(es_plugin_client, es_alias, plugin_model, encoder):
    """An index built with --passages: the endpoint's kNN runs on the nested passage vectors (a document
    scored by its best one), exactly as the Python backend does, and hits carry no vectors."""
    from indexer.passages import passage_texts

    texts = [f"{title}\n{text}" if title else text for _, title, text in CORPUS]
    vectors = encoder.encode(texts, side="document")
    documents = [(doc_id, title, text, vector, [], encoder.encode(passage_texts(title, text, 2, 1), side="document"))
                 for (doc_id, title, text), vector in zip(CORPUS, vectors)]
    build(es_plugin_client, es_alias, documents, encoder.fingerprint,
          IndexOptions(dims=encoder.dim, replicas=0, passages={"window": 2, "stride": 1}))
    assert EsIndex.open(es_plugin_client, es_alias).meta["passages"] == {"window": 2, "stride": 1}
    differs = False
    for query in QUERIES:
        expected = client_side(es_plugin_client, es_alias, encoder, query, "linear", 5)
        answer = es_plugin.search(es_plugin_client, es_alias, query, size=5, model=plugin_model)
        got = es_plugin.response_hits(answer)
        assert got.ids == expected.hits.ids, query
        assert got.scores == pytest.approx(expected.hits.scores, abs=1e-5), query
        assert all(set(hit["_source"]).isdisjoint({"vector", "passages"}) for hit in answer["hits"]["hits"])
        whole = es_plugin.search(es_plugin_client, es_alias, query, size=5, model=plugin_model, vector_field="vector")
        differs |= es_plugin.response_hits(whole).scores != got.scores
    assert differs                                      # the passages change the scores: they were searched
