"""VAL@FAR on crafted score distributions, thresholds in the manifest, search dropping semantic hits."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pytest import approx

import cli
from indexer.calibration import (calibrate, pair_cosines, stored_threshold, threshold_at_far, val_at_far,
                                 val_far)
from indexer.manifest import read_manifest, verify_files
from indexer.query import HybridSearcher, SearchOptions

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def test_threshold_on_a_uniform_grid():
    negatives = np.arange(1000) / 1000                  # 0.000 .. 0.999
    threshold = threshold_at_far(negatives, 0.01)       # 10 false accepts allowed: 0.990 .. 0.999
    assert 0.989 < threshold <= np.nextafter(0.989, 1)
    assert np.mean(negatives >= threshold) == approx(10 / 1000)
    assert np.mean(negatives >= np.nextafter(threshold, -1)) == approx(11 / 1000)   # any lower admits one more


def test_val_at_far_on_a_crafted_distribution():
    # 10,000 non-pairs i/10,000; 1,000 pairs 0.9 + j/10,000 (0.9000 .. 0.9999)
    negatives = np.arange(10_000) / 10_000
    positives = 0.9 + np.arange(1000) / 10_000
    result = val_at_far(positives, negatives, 1e-3)
    # FAR 1e-3 allows the 10 highest non-pairs (0.9990 .. 0.9999): threshold just above 0.9989
    assert result["threshold"] == approx(0.9989) and result["threshold"] > 0.9989
    assert result["far"] == approx(10 / 10_000)
    # pairs >= threshold: 0.9990 .. 0.9999, i.e. 10 of 1,000
    assert result["val"] == approx(10 / 1000)
    loose = val_at_far(positives, negatives, 0.1)        # threshold just above 0.8999: every pair accepted
    assert loose["val"] == 1.0 and loose["far"] == approx(0.1)


def test_ties_never_exceed_the_target():
    negatives = np.array([0.5] * 100)
    threshold = threshold_at_far(negatives, 0.1)
    assert threshold > 0.5 and val_far(np.array([0.5, 0.6]), negatives, threshold) == (0.5, 0.0)


def test_gaussian_val_matches_the_normal_tail():
    rng = np.random.default_rng(0)
    negatives, positives = rng.normal(0.0, 0.1, 100_000), rng.normal(0.6, 0.1, 100_000)
    result = val_at_far(positives, negatives, 1e-3)
    assert result["threshold"] == approx(0.309, abs=0.01)       # 0.1 * z(0.999) = 0.309
    assert result["val"] == approx(0.9982, abs=0.002)           # P(N(0.6, 0.1) >= 0.309) = Phi(2.91)


def test_bad_targets():
    with pytest.raises(ValueError, match="false-accept rate"):
        threshold_at_far(np.zeros(10), 0.0)
    with pytest.raises(ValueError, match="no non-matching"):
        threshold_at_far(np.zeros(0), 0.1)


def test_calibrate_leaves_out_unmeasurable_rates_and_lookup():
    section = calibrate(np.linspace(0.5, 1, 50), np.arange(1000) / 1000)
    assert list(section["thresholds"]) == ["0.1", "0.01", "0.001"] and section["non_pairs"] == 1000
    manifest = {"calibration": section}
    assert stored_threshold(manifest, 0.001) == section["thresholds"]["0.001"]["threshold"]
    assert stored_threshold(manifest, 0.005) == section["thresholds"]["0.001"]["threshold"]  # the largest <= 0.005
    with pytest.raises(ValueError, match="dssm calibrate"):
        stored_threshold(manifest, 1e-4)
    with pytest.raises(ValueError, match="not both"):
        stored_threshold(manifest, 0.01, 0.3)


def test_pair_cosines(small_index):
    searcher = HybridSearcher.open(small_index)
    index = searcher.backend
    queries, qrels = {"q1": "image library", "q2": "network"}, {"q1": {index.ids[3]: 1, "absent": 1}, "q2": {index.ids[7]: 2}}
    positives, negatives = pair_cosines(index, searcher.encoder, queries, qrels, non_pairs_per_query=20, seed=1)
    vectors = searcher.encoder.encode(list(queries.values()), side="query")
    assert positives == approx([index.vectors[3] @ vectors[0], index.vectors[7] @ vectors[1]], abs=1e-6)
    assert negatives.shape == (40,)
    again = pair_cosines(index, searcher.encoder, queries, qrels, non_pairs_per_query=20, seed=1)[1]
    assert np.array_equal(negatives, again)


def test_pair_cosines_of_a_passage_index_are_its_search_scores(tiny_model, tmp_path):
    """With passages a document scores its best vector: calibration must see what --max-far cuts."""
    from indexer.build import build_index

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[:120]) + "\n")
    build_index(tiny_model, corpus, tmp_path / "index", n_trees=5, passages={"window": 12, "stride": 6, "limit": 2})
    searcher = HybridSearcher.open(tmp_path / "index")
    index = searcher.backend
    queries = {f"q{n}": text for n, text in enumerate(["image library", "network tools", "python bindings"])}
    qrels = {"q0": {index.ids[3]: 1}, "q1": {index.ids[7]: 1}, "q2": {index.ids[11]: 1}}
    positives, negatives = pair_cosines(index, searcher.encoder, queries, qrels, non_pairs_per_query=30, seed=1)
    vectors = searcher.encoder.encode(list(queries.values()), side="query")
    search = [dict(index.semantic_all(vector, len(index.ids), float64=True)) for vector in vectors]
    assert positives == approx([search[n][index.ids[row]] for n, row in enumerate((3, 7, 11))], abs=1e-9)
    whole = [float(index.vectors[row] @ vectors[n]) for n, row in enumerate((3, 7, 11))]
    assert all(p >= w - 1e-6 for p, w in zip(positives, whole)) and any(p > w + 1e-4 for p, w in zip(positives, whole))
    assert negatives.shape == (90,)


def test_min_similarity_drops_semantic_hits(small_index):
    searcher = HybridSearcher.open(small_index)
    query = "library for image processing"
    semantic = searcher.search(query, mode="semantic", k=20).hits
    cut = semantic.scores[4]
    kept = searcher.search(query, mode="semantic", k=20, min_similarity=cut).hits
    assert kept.ids == semantic.ids[:sum(score >= cut for score in semantic.scores)]
    lexical, dropped = searcher.retrieve(query, SearchOptions(min_similarity=cut))
    assert all(score >= cut for score in dropped.scores) and len(lexical) > 0


def test_cli_calibrate_then_search_with_max_far(small_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(small_index, index)
    ids = HybridSearcher.open(index).backend.ids
    queries, qrels = tmp_path / "q.jsonl", tmp_path / "qrels.tsv"
    queries.write_text("".join(f'{{"qid": "q{n}", "query": "package {doc_id}"}}\n' for n, doc_id in enumerate(ids[:40])))
    qrels.write_text("".join(f"q{n}\t{doc_id}\t1\n" for n, doc_id in enumerate(ids[:40])))
    runner = CliRunner()
    result = runner.invoke(cli.main, ["calibrate", "--index", str(index), "--queries", str(queries), "--qrels", str(qrels)])
    assert result.exit_code == 0, result.output
    assert "40 matching pairs, 4,000 random non-pairs" in result.stdout
    manifest = read_manifest(index)
    verify_files(index, manifest, "full")
    threshold = manifest["calibration"]["thresholds"]["0.01"]["threshold"]
    searched = runner.invoke(cli.main, ["search", "--index", str(index), "--mode", "semantic", "--json", "--k", "50",
                                        "--max-far", "0.01", "package"])
    assert searched.exit_code == 0, searched.output
    assert all(float(line.split('"score": ')[1].rstrip("}")) >= threshold for line in searched.stdout.splitlines())
    refused = runner.invoke(cli.main, ["search", "--index", str(index), "--max-far", "0.0001", "package"])
    assert refused.exit_code == 2 and "dssm calibrate" in refused.output


class FakeIndex:
    ids = ["a", "b", "c"]
    vectors = np.eye(3, dtype=np.float32)

    def exact_scores(self, rows, vector):
        return self.vectors[rows].astype(np.float64) @ vector


class FakeEncoder:
    def encode(self, texts, side="query"):
        return np.array([[0.1, 0.2, 0.7]] * len(texts), dtype=np.float32)


def test_non_pairs_never_use_a_relevant_document():
    positives, negatives = pair_cosines(FakeIndex(), FakeEncoder(), {"q": "x"}, {"q": {"a": 1, "c": 1}}, 50, seed=3)
    assert positives == approx([0.1, 0.7]) and negatives == approx([0.2] * 50)
