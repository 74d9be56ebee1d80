"""indexer/dedup.py: near-duplicate pairs from an index's stored vectors, exact and through Annoy."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import DATA
from indexer.dedup import DEFAULT_THRESHOLD, Pair, dedup_threshold, exact_neighbours, near_duplicates
from indexer.passages import parse_passages


def test_exact_neighbours_by_hand():
    # cos(0,1) = 0.8, cos(1,2) = 0.6, cos(0,2) = 0; row 3 has no features
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    # k = 1: row 0 -> 1 (0.8), row 1 -> 0 (0.8), row 2 -> 1 (0.6); (0, 1) once
    assert exact_neighbours(vectors, 1, 0.5) == pytest.approx({(0, 1): 0.8, (1, 2): 0.6})
    assert exact_neighbours(vectors, 1, 0.7) == pytest.approx({(0, 1): 0.8})
    assert exact_neighbours(vectors, 3, -1.0) == pytest.approx({(0, 1): 0.8, (1, 2): 0.6, (0, 2): 0.0})


def test_pairs_are_sorted_by_similarity_then_ids_each_once():
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    index = SimpleNamespace(ids=["d", "c", "b", "a"], vectors=vectors, annoy=None, manifest={})
    pairs = near_duplicates(index, threshold=0.5, k=3)
    assert pairs == [Pair("d", "a", 1.0), Pair("c", "a", 0.8), Pair("d", "c", 0.8), Pair("c", "b", 0.6)]


@pytest.fixture(scope="module", params=[None, "12:6:2"], ids=["one-vector", "passages"])
def planted(tiny_model, tmp_path_factory, request):
    """200 sample documents plus exact copies of 5 of them under new ids, indexed with the tiny model
    (one vector per document, or with passages: their items share the Annoy trees)."""
    from indexer.build import build_index
    from indexer.embedded import EmbeddedIndex

    records = [json.loads(line) for line in (DATA / "sample_corpus.jsonl").read_text().splitlines()[:200]]
    copies = [dict(record, id=record["id"] + "-copy") for record in records[10:15]]
    directory = tmp_path_factory.mktemp("dedup")
    corpus = directory / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(record) + "\n" for record in records + copies))
    build_index(tiny_model, corpus, directory / "index", n_trees=10, passages=parse_passages(request.param))
    return EmbeddedIndex.open(directory / "index"), [(record["id"], record["id"] + "-copy") for record in records[10:15]]


def test_exact_copies_are_found_with_similarity_one(planted):
    index, copies = planted
    pairs = near_duplicates(index, threshold=0.9999, k=5)
    found = {tuple(sorted((pair.a, pair.b))) for pair in pairs if pair.similarity >= 0.99999}
    assert {tuple(sorted(pair)) for pair in copies} <= found
    assert len({(pair.a, pair.b) for pair in pairs}) == len(pairs)  # each pair once


def test_annoy_finds_the_same_pairs_as_the_exact_search(planted):
    index, _ = planted
    exact = near_duplicates(index, threshold=0.995, k=20, exact=True)
    approximate = near_duplicates(index, threshold=0.995, k=20, exact=False, search_k=100_000)
    assert exact and [(p.a, p.b) for p in approximate] == [(p.a, p.b) for p in exact]
    assert [p.similarity for p in approximate] == pytest.approx([p.similarity for p in exact], abs=1e-5)


def test_threshold_from_calibration_or_a_clear_error():
    manifest = {"calibration": {"thresholds": {"0.01": {"threshold": 0.42}, "0.001": {"threshold": 0.61}}}}
    assert dedup_threshold(manifest, None, 0.001) == 0.61
    assert dedup_threshold(manifest, None, 0.005) == 0.61
    assert dedup_threshold(manifest, 0.8, None) == 0.8
    assert dedup_threshold({}, None, None) == DEFAULT_THRESHOLD
    with pytest.raises(ValueError, match="dssm calibrate.*--threshold"):
        dedup_threshold({}, None, 0.001)
    with pytest.raises(ValueError, match="not both"):
        dedup_threshold(manifest, 0.8, 0.001)


def test_bad_arguments_are_refused():
    index = SimpleNamespace(ids=["a"], vectors=np.ones((1, 2), dtype=np.float32), annoy=None, manifest={})
    with pytest.raises(ValueError, match="cosine in"):
        near_duplicates(index, threshold=1.5)
    with pytest.raises(ValueError, match="positive integer"):
        near_duplicates(index, k=0)
    assert near_duplicates(index, threshold=0.0) == []  # one document: no pair
