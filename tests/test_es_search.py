"""Lexical (BM25) and semantic (kNN) retrieval through the real Elasticsearch server."""
from __future__ import annotations

import numpy as np
import pytest

from dssm.export import load_encoder
from indexer.es_index import EsIndex, IndexOptions, build
from test_es_index import DOCS, FINGERPRINT, OPTIONS

pytestmark = pytest.mark.es


@pytest.fixture
def tiny_index(es_client, es_alias) -> EsIndex:
    build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    return EsIndex.open(es_client, es_alias, fingerprint=FINGERPRINT, dims=4)


def test_lexical_finds_the_documents_with_the_word(tiny_index):
    hits = tiny_index.lexical("apple", k=10)
    assert set(hits.ids) == {"a", "b"}
    ocean = tiny_index.lexical("ocean", k=10)
    assert ocean.ids == ("c", "d")  # BM25: the shorter document first
    assert ocean.scores[0] > ocean.scores[1] > 0


def test_semantic_scores_are_cosines(tiny_index):
    hits = tiny_index.semantic([1.0, 0.0, 0.0, 0.0], k=2)
    assert hits.ids == ("a", "b")
    assert hits.scores == pytest.approx((1.0, 0.8), abs=1e-6)  # ES (1 + cos) / 2 turned back into cos
    assert tiny_index.semantic([0.0, 0.0, -1.0, 0.0], k=4).score_of("c") == pytest.approx(-1.0, abs=1e-6)


def test_filter_applies_to_both_sides(tiny_index):
    only_b = {"term": {"id": "b"}}
    assert tiny_index.lexical("apple", k=10, filter=only_b).ids == ("b",)
    assert tiny_index.semantic([1.0, 0.0, 0.0, 0.0], k=2, filter=only_b).ids == ("b",)


def test_zero_query_vector_has_no_semantic_hits(tiny_index):
    assert len(tiny_index.semantic([0.0] * 4, k=3)) == 0


def test_open_refuses_another_model(es_client, tiny_index):
    with pytest.raises(ValueError, match="holds 4-dim vectors but the model has 8"):
        EsIndex.open(es_client, tiny_index.name, dims=8)
    with pytest.raises(ValueError, match="was built with model ffffffffffff, not 000000000000"):
        EsIndex.open(es_client, tiny_index.name, fingerprint="0" * 64)
    with pytest.raises(ValueError, match="no Elasticsearch index or alias"):
        EsIndex.open(es_client, tiny_index.name + "-missing")
    with pytest.raises(ValueError, match="query vector has 3 dims"):
        tiny_index.semantic([1.0, 0.0, 0.0], k=1)


def test_documents_encoded_by_a_model_find_themselves(es_client, es_alias, tiny_model):
    encoder = load_encoder(tiny_model)
    texts = ["debian package manager", "python web framework", "linux kernel module", "fast json parser"]
    vectors = encoder.encode(texts, side="document")
    assert vectors.shape == (4, encoder.dim) and vectors.dtype == np.float32
    docs = [(f"doc{i}", "", text, vector) for i, (text, vector) in enumerate(zip(texts, vectors))]
    build(es_client, es_alias, docs, encoder.fingerprint, IndexOptions(dims=encoder.dim, replicas=0))
    index = EsIndex.open(es_client, es_alias, fingerprint=encoder.fingerprint, dims=encoder.dim)
    query = encoder.encode(["python web framework"], side="query")[0]
    hits = index.semantic(query, k=4)
    assert hits.ids[0] == "doc1" and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    expected = vectors @ query  # exact cosines of unit vectors
    for doc_id, score in hits:
        assert score == pytest.approx(float(expected[int(doc_id[3:])]), abs=1e-5)
