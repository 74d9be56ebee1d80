"""The dssm_embed ingest processor against the real server: vectors computed in the cluster equal the
Python encoder's document vectors (Encoder.encode([encoder_text], side="document"))."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
from elasticsearch import ApiError

from dssm.export import load_encoder
from plugin_fixtures import GOLDEN_MODEL, es_plugin_client, model_name, plugin_model  # noqa: F401

pytestmark = pytest.mark.es

DOCS = {
    "a": {"title": "Debian", "text": "debian package manager"},
    "b": {"title": "", "text": "Привет, мир! 日本語 😀 x²"},
    "c": {"text": "only text, no title field"},
    "d": {"title": "ÀÉÎ ﬁ Straße", "text": "word " * 300},
    "e": {"title": "!!!", "text": "..."},            # no features: zero vector, left unset
}


@pytest.fixture
def pipeline(es_plugin_client, plugin_model):
    name = f"dssm-test-{uuid.uuid4().hex[:10]}"
    es_plugin_client.ingest.put_pipeline(id=name, processors=[
        {"dssm_embed": {"model": plugin_model, "fields": ["title", "text"], "target_field": "vector"}}])
    yield name
    es_plugin_client.ingest.delete_pipeline(id=name)


@pytest.fixture
def vector_index(es_plugin_client, es_alias):
    es_plugin_client.indices.create(index=es_alias, settings={"number_of_replicas": 0}, mappings={"properties": {
        "title": {"type": "text"}, "text": {"type": "text"},
        "vector": {"type": "dense_vector", "dims": 8, "similarity": "cosine", "index_options": {"type": "hnsw"}}}})
    return es_alias


def encoder_text(doc: dict) -> str:
    """indexer/documents.py Document.encoder_text: title and text, one line apart."""
    title, text = doc.get("title", ""), doc["text"]
    return f"{title}\n{text}" if title else text


def test_ingest_vectors_equal_the_python_encoder(es_plugin_client, pipeline, vector_index):
    for doc_id, doc in DOCS.items():
        es_plugin_client.index(index=vector_index, id=doc_id, document=doc, pipeline=pipeline, refresh=True)
    encoder = load_encoder(GOLDEN_MODEL)
    expected = encoder.encode([encoder_text(doc) for doc in DOCS.values()], side="document")
    for doc_id, vector in zip(DOCS, expected):
        source = es_plugin_client.get(index=vector_index, id=doc_id)["_source"]
        assert "passages" not in source, doc_id            # the index has no _meta.passages
        if not vector.any():
            assert "vector" not in source, doc_id
            continue
        assert np.abs(np.asarray(source["vector"]) - vector).max() <= 1e-5, doc_id


def test_simulate_with_one_field_and_a_missing_field(es_plugin_client, plugin_model):
    processor = {"dssm_embed": {"model": plugin_model, "field": "text", "target_field": "emb"}}
    result = es_plugin_client.ingest.simulate(pipeline={"processors": [processor]}, docs=[
        {"_source": {"text": "debian package manager"}}, {"_source": {"title": "no text"}}])
    encoder = load_encoder(GOLDEN_MODEL)
    first, second = result["docs"]
    expected = encoder.encode(["debian package manager"], side="document")[0]
    assert np.abs(np.asarray(first["doc"]["_source"]["emb"]) - expected).max() <= 1e-5
    assert "none of the fields" in str(second["error"]["reason"])
    ignore = {"dssm_embed": dict(processor["dssm_embed"], ignore_missing=True)}
    skipped = es_plugin_client.ingest.simulate(pipeline={"processors": [ignore]}, docs=[{"_source": {"x": 1}}])
    assert skipped["docs"][0]["doc"]["_source"] == {"x": 1}


def test_unknown_model_fails_the_document(es_plugin_client):
    processor = {"dssm_embed": {"model": "no-such-model", "field": "text"}}
    result = es_plugin_client.ingest.simulate(pipeline={"processors": [processor]}, docs=[{"_source": {"text": "x"}}])
    assert "unknown model [no-such-model]" in str(result["docs"][0]["error"]["reason"])


@pytest.mark.parametrize("config, field", [
    ({"field": "text"}, "model"),
    ({"model": "m", "field": "text", "fields": ["title"]}, "fields"),
    ({"model": "Bad Name", "field": "text"}, "model"),
    ({"model": "m", "field": "text", "passages": "12:0"}, "passages"),
    ({"model": "m", "fields": ["a", "b", "c"], "passages": "12:6:2"}, "fields"),
])
def test_bad_processor_config_is_400(es_plugin_client, config, field):
    with pytest.raises(ApiError) as info:
        es_plugin_client.ingest.put_pipeline(id=f"dssm-test-{uuid.uuid4().hex[:10]}", processors=[{"dssm_embed": config}])
    assert info.value.meta.status == 400 and f"[{field}]" in str(info.value.body)


@pytest.mark.parametrize("setting", ["from the index's _meta", "explicit"])
def test_ingest_writes_the_passages_build_writes(es_plugin_client, plugin_model, es_alias, setting):
    """Into an index built with passages (its `_meta.passages`, written to through its alias) or with an
    explicit `passages` setting, the nested field holds the whole vector, then the passages' (zero ones
    left out), as `dssm index build --passages` writes it (indexer/es_bulk.py); nested kNN finds them;
    `passages: none` writes none."""
    from indexer.passages import passage_texts

    vector = {"type": "dense_vector", "dims": 8, "similarity": "cosine", "index_options": {"type": "hnsw"}}
    from_meta = setting != "explicit"
    target = f"{es_alias}-1" if from_meta else es_alias
    es_plugin_client.indices.create(index=target, settings={"number_of_replicas": 0}, mappings={
        **({"_meta": {"passages": {"window": 3, "stride": 2, "limit": 2}}} if from_meta else {}),
        "properties": {"title": {"type": "text"}, "text": {"type": "text"}, "vector": vector,
                       "passages": {"type": "nested", "properties": {"vector": vector}}}})
    if from_meta:
        es_plugin_client.indices.put_alias(index=target, name=es_alias)
    processor = {"model": plugin_model, "fields": ["title", "text"], **({} if from_meta else {"passages": "3:2:2"})}
    pipelines = {name: f"dssm-test-{uuid.uuid4().hex[:10]}" for name in ("passages", "none")}
    es_plugin_client.ingest.put_pipeline(id=pipelines["passages"], processors=[{"dssm_embed": processor}])
    es_plugin_client.ingest.put_pipeline(id=pipelines["none"], processors=[{"dssm_embed": {**processor, "passages": "none"}}])
    try:
        for doc_id, doc in DOCS.items():
            es_plugin_client.index(index=es_alias, id=doc_id, document=doc, pipeline=pipelines["passages"], refresh=True)
        es_plugin_client.index(index=es_alias, id="whole-only", document=DOCS["d"], pipeline=pipelines["none"], refresh=True)
    finally:
        for name in pipelines.values():
            es_plugin_client.ingest.delete_pipeline(id=name)
    encoder = load_encoder(GOLDEN_MODEL)
    for doc_id, doc in DOCS.items():
        texts = [encoder_text(doc)] + passage_texts(doc.get("title", ""), doc["text"], 3, 2, limit=2)
        expected = [v for v in encoder.encode(texts, side="document") if v.any()]
        nested = es_plugin_client.get(index=es_alias, id=doc_id)["_source"]["passages"]
        assert len(nested) == len(expected), doc_id
        for got, want in zip(nested, expected):
            assert np.abs(np.asarray(got["vector"]) - want).max() <= 1e-5, doc_id
    counts = {doc_id: len(es_plugin_client.get(index=es_alias, id=doc_id)["_source"]["passages"]) for doc_id in DOCS}
    assert counts == {"a": 1, "b": 3, "c": 3, "d": 3, "e": 0}   # whole + at most 2; 3 words: no window; no features
    whole_only = es_plugin_client.get(index=es_alias, id="whole-only")["_source"]
    assert "passages" not in whole_only and "vector" in whole_only
    query = encoder.encode(["debian package manager"], side="query")[0]
    hits = es_plugin_client.search(index=es_alias, knn={"field": "passages.vector", "query_vector": query.tolist(),
                                                        "k": 3, "num_candidates": 10})["hits"]["hits"]
    assert hits and hits[0]["_id"] == "a"
