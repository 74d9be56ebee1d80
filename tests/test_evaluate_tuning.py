"""Fusion tuning: the grid, the split, the sweep on crafted candidates, the manifest update, search defaults."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest import approx

import cli
from indexer.build import index_lock
from indexer.evaluate import evaluate_runs, mode_run, parse_metrics
from indexer.hits import Hits
from indexer.manifest import MANIFEST_FILE, read_manifest, update_sections, verify_files
from indexer.query import HybridSearcher, SearchOptions, tuned_options
from indexer.tuning import ALPHAS, grid, save_fusion, split_queries, tune_fusion

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def test_grid():
    assert ALPHAS[0] == 0.0 and ALPHAS[-1] == 1.0 and len(ALPHAS) == 21 and ALPHAS[7] == 0.35
    settings = grid(100)
    assert len(settings) == 21 * 2 + 11 and all(options.candidates == 100 for options in settings)
    assert [options.fusion for options in settings].count("rrf") == 11


def test_split_is_seeded_disjoint_and_complete():
    qids = [f"q{n}" for n in range(10)]
    tune, held = split_queries(qids, 0.3, seed=1)
    assert (tune, held) == split_queries(list(reversed(qids)), 0.3, seed=1)
    assert len(tune) == 7 and len(held) == 3 and sorted(tune + held) == sorted(qids)
    assert split_queries(qids, 0.0, 1) == (split_queries(qids, 0.0, 1)[0], []) and len(split_queries(qids, 0.0, 1)[0]) == 10
    with pytest.raises(ValueError, match="holdout"):
        split_queries(qids, 1.0, 1)


def crafted():
    """The relevant document 'z' is last on the lexical side and first on the semantic side.

    minmax: z gets alpha, 'a' gets 1 - alpha; at alpha 0.5 they tie and 'a' wins (id order), so the
    first setting of the grid that ranks z first is linear minmax alpha 0.55.
    """
    lexical, semantic = Hits(["a", "z"], [2.0, 1.0]), Hits(["z", "a"], [0.9, 0.5])
    candidates = {f"q{n}": (lexical, semantic) for n in range(4)}
    return candidates, {qid: {"z": 1} for qid in candidates}


def test_sweep_finds_the_first_best_setting():
    candidates, qrels = crafted()
    result = tune_fusion(candidates, qrels, ["q0", "q1"], ["q2", "q3"], "ndcg@10", candidates_per_side=20)
    assert result.best == SearchOptions(fusion="linear", alpha=0.55, norm="minmax", candidates=20)
    assert result.tuned == approx(1.0) and result.held_out == approx(1.0)
    assert result.default_tuned == approx(1 / math.log2(3)) and result.default_held_out == approx(1 / math.log2(3))
    sweep = dict((options, value) for options, value in result.sweep)
    assert sweep[SearchOptions(fusion="linear", alpha=0.5, norm="minmax", candidates=20)] == approx(1 / math.log2(3))
    # rrf: z has ranks (2, 1) and a has (1, 2): equal sums, a first by id
    assert sweep[SearchOptions(fusion="rrf", rrf_k=60, candidates=20)] == approx(1 / math.log2(3))


def test_sweep_scores_are_those_of_evaluate():
    candidates, qrels = crafted()
    options = SearchOptions(alpha=0.8, norm="zscore")
    expected = evaluate_runs({"h": mode_run(candidates, "hybrid", options, 10)}, qrels, parse_metrics("ndcg@10"))
    result = tune_fusion(candidates, qrels, list(candidates), [], "ndcg@10")
    sweep = {(o.fusion, o.alpha, o.norm): value for o, value in result.sweep}
    assert sweep[("linear", 0.8, "zscore")] == approx(expected["h"]["ndcg@10"]) and result.held_out is None


@pytest.fixture
def index_copy(small_index, tmp_path) -> Path:
    shutil.copytree(small_index, tmp_path / "index")
    return tmp_path / "index"


def test_saved_setting_keeps_the_index_valid_and_becomes_the_default(index_copy):
    candidates, qrels = crafted()
    result = tune_fusion(candidates, qrels, list(candidates), [], "ndcg@10", candidates_per_side=30)
    section = save_fusion(index_copy, result, source="crafted")
    manifest = read_manifest(index_copy)
    verify_files(index_copy, manifest, "full")
    assert manifest["fusion"] == section and section["alpha"] == 0.55 and section["tuned_on"] == "crafted"
    assert sorted(path.name for path in index_copy.iterdir() if path.name.startswith(".")) == []
    searcher = HybridSearcher.open(index_copy)
    assert searcher.defaults == SearchOptions(alpha=0.55, norm="minmax", candidates=30)
    query = "library for image processing"
    assert searcher.search(query).hits == searcher.search(query, SearchOptions(alpha=0.55, norm="minmax", candidates=30)).hits
    assert searcher.search(query, alpha=0.2).explanations[0].semantic.weight == 0.2     # explicit wins


def test_update_refuses_unknown_sections_a_corrupt_index_and_a_concurrent_writer(index_copy):
    before = (index_copy / MANIFEST_FILE).read_text()
    with pytest.raises(ValueError, match="unknown manifest sections"):
        update_sections(index_copy, {"model": {}})
    with index_lock(index_copy.resolve()):
        with pytest.raises(ValueError, match="another build"):
            update_sections(index_copy, {"fusion": {"alpha": 0.3}})
    (index_copy / "ids.json").write_text("[]")
    with pytest.raises(ValueError, match="rebuild"):
        update_sections(index_copy, {"fusion": {"alpha": 0.3}})
    assert (index_copy / MANIFEST_FILE).read_text() == before


def test_an_invalid_stored_setting_names_the_fix():
    with pytest.raises(ValueError, match="re-run `dssm tune-fusion`"):
        tuned_options({"fusion": {"fusion": "linear", "alpha": 3}})
    assert tuned_options({}) == SearchOptions()


def test_cli_tune_fusion_then_search_uses_it(index_copy):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["tune-fusion", "--index", str(index_copy), "--queries",
                                      str(DATA / "sample_dev_queries.jsonl"), "--qrels", str(DATA / "sample_qrels.tsv")])
    assert result.exit_code == 0, result.output
    assert "best:" in result.stdout and "held out" in result.stdout
    assert "queries have no qrels" not in result.stderr
    assert "relevant judgements name documents absent" in result.stderr   # 300-document index: most are absent
    fusion = read_manifest(index_copy)["fusion"]
    assert fusion["candidates"] == 100 and fusion["tune_queries"] == 100 and fusion["held_out_queries"] == 100
    searched = runner.invoke(cli.main, ["search", "--index", str(index_copy), "--json", "--explain", "image library"])
    explain = json.loads(searched.stdout.splitlines()[0])["explain"]
    if fusion["fusion"] == "linear":
        assert explain["semantic"]["weight"] == fusion["alpha"]
    given = runner.invoke(cli.main, ["search", "--index", str(index_copy), "--json", "--explain", "--fusion", "rrf",
                                     "image library"])
    assert json.loads(given.stdout.splitlines()[0])["explain"]["method"] == "rrf"


def test_cli_dry_run_leaves_the_manifest(index_copy):
    before = (index_copy / MANIFEST_FILE).read_text()
    result = CliRunner().invoke(cli.main, ["tune-fusion", "--index", str(index_copy), "--queries",
                                           str(DATA / "sample_dev_queries.jsonl"), "--qrels", str(DATA / "sample_qrels.tsv"),
                                           "--dry-run", "--holdout", "0"])
    assert result.exit_code == 0 and (index_copy / MANIFEST_FILE).read_text() == before


def test_cli_json_prints_the_whole_sweep(index_copy):
    result = CliRunner().invoke(cli.main, ["tune-fusion", "--index", str(index_copy), "--queries",
                                           str(DATA / "sample_dev_queries.jsonl"), "--qrels", str(DATA / "sample_qrels.tsv"),
                                           "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["sweep"]) == len(grid(100)) and report["metric"] == "ndcg@10"
    assert report["tuned"] == max(row["tuned"] for row in report["sweep"]) and report["held_out"] is not None
