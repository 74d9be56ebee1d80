"""Annoy over unit vectors: cosine = 1 - d^2/2, save/load, zero rows, on-disk build, recall."""
from __future__ import annotations

import numpy as np
import pytest
from pytest import approx

from indexer.annoy_index import AnnoySearcher, build_annoy, cosine_from_angular
from indexer.vectors import VectorWriter, exact_search, open_vectors


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_cosine_from_angular_distance():
    # orthogonal unit vectors: d = sqrt(2) -> cos 0; identical: d = 0 -> cos 1; opposite: d = 2 -> cos -1
    assert cosine_from_angular([0.0, np.sqrt(2.0), 2.0]) == approx([1.0, 0.0, -1.0])


@pytest.mark.parametrize("on_disk_build", [False, True])
def test_save_load_and_exact_cosines(tmp_path, on_disk_build):
    vectors = unit_vectors(300, 16)
    assert build_annoy(vectors, tmp_path / "a.ann", n_trees=10, on_disk_build=on_disk_build) == 300
    searcher = AnnoySearcher(tmp_path / "a.ann", 16, items=300)
    rows, cosines = searcher.search(vectors[7], k=5, search_k=-1)
    assert rows[0] == 7 and cosines[0] == approx(1.0, abs=1e-5)
    assert cosines == approx(vectors[rows] @ vectors[7], abs=1e-5)
    assert list(cosines) == sorted(cosines, reverse=True)


def test_zero_rows_are_left_out(tmp_path):
    vectors = unit_vectors(20, 8)
    vectors[[3, 11]] = 0.0
    assert build_annoy(vectors, tmp_path / "a.ann", n_trees=4) == 18
    searcher = AnnoySearcher(tmp_path / "a.ann", 8, items=18)
    rows, _ = searcher.search(vectors[0], k=20, search_k=-1)
    assert set(rows) == set(range(20)) - {3, 11}
    assert len(searcher.search(np.zeros(8, np.float32), k=5)[0]) == 0  # zero query: no neighbours


def test_empty_index(tmp_path):
    assert build_annoy(np.zeros((0, 8), np.float32), tmp_path / "a.ann", n_trees=2) == 0
    assert len(AnnoySearcher(tmp_path / "a.ann", 8, items=0).search(unit_vectors(1, 8)[0], k=3)[0]) == 0


def test_recall_at_10_against_brute_force(tmp_path):
    vectors, queries = unit_vectors(3000, 16), unit_vectors(50, 16, seed=1)
    build_annoy(vectors, tmp_path / "a.ann", n_trees=20)
    searcher = AnnoySearcher(tmp_path / "a.ann", 16, items=3000)
    recall = np.mean([len(set(searcher.search(q, 10, search_k=4000)[0]) & set(exact_search(vectors, q, 10)[0])) / 10
                      for q in queries])
    assert recall >= 0.95


def test_vector_file_roundtrip_and_size_check(tmp_path):
    writer = VectorWriter(tmp_path / "v.f32", 4)
    writer.append(["a", "b"], np.eye(2, 4, dtype=np.float32))
    writer.append(["c"], np.ones((1, 4), np.float32) / 2)
    writer.close()
    vectors = open_vectors(tmp_path / "v.f32", 3, 4)
    assert vectors.shape == (3, 4) and writer.ids == ["a", "b", "c"] and vectors[2, 0] == 0.5
    with pytest.raises(ValueError, match="wrong size"):
        open_vectors(tmp_path / "v.f32", 4, 4)
    with pytest.raises(ValueError, match="shape"):
        VectorWriter(tmp_path / "w.f32", 4).append(["x"], np.zeros((1, 3), np.float32))
