"""`dssm index build|add|delete` and `dssm search` through click's CliRunner, end to end on data/."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import random_weights, save_model

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TRAINED = [ROOT / "models" / "demo", ROOT / "models" / "debdesc-default"]  # make demo / the debdesc training
TRAINED_MODEL = next((model for model in TRAINED if (model / "config.json").is_file()), None)


def run(*args: str):
    return CliRunner().invoke(cli.main, [str(arg) for arg in args])


def sample_queries() -> list[tuple[str, str]]:
    relevant = dict(line.split("\t")[:2] for line in (DATA / "sample_qrels.tsv").read_text().splitlines())
    records = [json.loads(line) for line in (DATA / "sample_dev_queries.jsonl").read_text().splitlines()]
    return [(record["query"], relevant[record["qid"]]) for record in records]


@pytest.fixture(scope="module")
def sample_index(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "index"
    result = run("index", "build", "--model", tiny_model, "--corpus", DATA / "sample_corpus.jsonl", "--out", out,
                 "--n-trees", 10, "--quiet")
    assert result.exit_code == 0, result.output
    assert "5,000 documents" in result.output
    return out


def found_in_top_10(index: Path, extra: tuple = ()) -> float:
    hits = 0
    for query, relevant in sample_queries():
        result = run("search", "--index", index, "--json", "--k", 10, *extra, query)
        assert result.exit_code == 0, result.output
        hits += relevant in [json.loads(line)["id"] for line in result.output.splitlines()]
    return hits / len(sample_queries())


def test_end_to_end_sample_finds_the_relevant_document(sample_index):
    assert found_in_top_10(sample_index) >= 0.60


@pytest.mark.slow
@pytest.mark.skipif(TRAINED_MODEL is None, reason="needs a trained model (make demo)")
def test_end_to_end_with_a_trained_model(tmp_path):
    out = tmp_path / "trained-index"
    result = run("index", "build", "--model", TRAINED_MODEL, "--corpus", DATA / "sample_corpus.jsonl", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    hybrid, semantic = found_in_top_10(out), found_in_top_10(out, ("--mode", "semantic"))
    assert hybrid >= 0.60 and semantic >= 0.30


def test_table_output_and_explain(sample_index):
    result = run("search", "--index", sample_index, "--k", 3, "--alpha", 0.2, "--explain", "Tcl bindings to libcurl")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[0] == "1" and "tclcurl" in lines[0]
    assert any(line.strip().startswith("lexical") for line in lines)
    assert any("fused" in line and "=" in line for line in lines)


def test_json_lines_with_explain(sample_index):
    result = run("search", "--index", sample_index, "--json", "--explain", "--fusion", "rrf", "--k", 4, "curl")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["rank"] for r in records] == [1, 2, 3, 4]
    for record in records:
        explain = record["explain"]
        parts = sum(side["part"] for side in (explain["lexical"], explain["semantic"]))
        assert parts == pytest.approx(record["score"]) and explain["method"] == "rrf"


@pytest.mark.parametrize("args, message", [
    (("--k", 0), "k must be a positive integer"),
    (("--k", -3), "k must be a positive integer"),
    (("--alpha", 1.5), "alpha must be in [0, 1]"),
    (("--alpha", -0.5), "alpha must be in [0, 1]"),
    (("--mode", "fuzzy"), "unknown mode"),
    (("--norm", "l2"), "unknown normalisation"),
])
def test_bad_options_exit_2_with_one_line(sample_index, args, message):
    result = run("search", "--index", sample_index, *args, "curl")
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_exit_2(sample_index, query):
    result = run("search", "--index", sample_index, query)
    assert result.exit_code == 2 and "empty query" in result.output


def test_punctuation_only_query_is_not_an_error(sample_index):
    for query in ("?!", "C++ AND (NEAR", '"unbalanced', "*"):
        assert run("search", "--index", sample_index, query).exit_code == 0


def test_missing_index_exit_2(tmp_path):
    result = run("search", "--index", tmp_path / "nope", "curl")
    assert result.exit_code == 2 and "does not exist" in result.output and "dssm index build" in result.output


def test_mismatched_model_exit_2(sample_index, tmp_path):
    featuriser, tower = FeaturiserConfig(buckets=4096, max_features=256), TowerConfig(layers=(32, 32, 16))
    save_model(tmp_path / "other", featuriser, tower, random_weights(featuriser, tower, seed=99))
    result = run("search", "--index", sample_index, "--model", tmp_path / "other", "curl")
    assert result.exit_code == 2 and "fingerprint" in result.output and "dssm index build" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_corrupt_index_exit_2(tiny_model, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[:50]) + "\n")
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "i", "--quiet").exit_code == 0
    path = tmp_path / "i" / "bm25.impacts.npy"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    result = run("search", "--index", tmp_path / "i", "curl")
    assert result.exit_code == 2 and "checksum" in result.output and "Traceback" not in result.output


def test_build_errors_exit_2(tiny_model, tmp_path):
    (tmp_path / "dup.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    result = run("index", "build", "--model", tiny_model, "--corpus", tmp_path / "dup.jsonl", "--out", tmp_path / "i")
    assert result.exit_code == 2 and "duplicate ids: 'a' (lines 1, 2)" in result.output
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "x"}\nnot json\n')
    result = run("index", "build", "--model", tiny_model, "--corpus", tmp_path / "bad.jsonl", "--out", tmp_path / "i")
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output
    result = run("index", "build", "--model", tmp_path / "no-model", "--corpus", tmp_path / "bad.jsonl", "--out", tmp_path / "i")
    assert result.exit_code == 2 and "not a dssm model directory" in result.output


def test_add_and_delete(tiny_model, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[:50]) + "\n")
    index = tmp_path / "i"
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", index, "--quiet").exit_code == 0
    (tmp_path / "new.jsonl").write_text('{"id": "zz-quokka", "title": "zz-quokka", "text": "quokka tracker"}\n')
    result = run("index", "add", "--index", index, "--corpus", tmp_path / "new.jsonl", "--quiet")
    assert result.exit_code == 0 and "51 documents" in result.output
    result = run("search", "--index", index, "--mode", "lexical", "--json", "quokka")
    assert json.loads(result.output.splitlines()[0])["id"] == "zz-quokka"
    assert run("index", "add", "--index", index, "--corpus", tmp_path / "new.jsonl").exit_code == 2
    result = run("index", "delete", "--index", index, "zz-quokka")
    assert result.exit_code == 0 and "50 documents" in result.output
    assert run("search", "--index", index, "--mode", "lexical", "quokka").output.strip() == "no hits"
    result = run("index", "delete", "--index", index, "zz-quokka")
    assert result.exit_code == 2 and "not in the index" in result.output


@pytest.mark.parametrize("command", [("search",), ("index",), ("index", "build"), ("index", "add"), ("index", "delete")])
def test_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_analyzer_is_recorded_used_by_search_and_checked_on_add(tiny_model, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "title": "a", "text": "a library of running compilers"}\n'
                      '{"id": "b", "title": "b", "text": "the fonts of the desktop"}\n')
    english, simple = tmp_path / "english", tmp_path / "simple"
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", english, "--quiet")
    assert result.exit_code == 0 and "BM25 analyzer english" in result.output
    assert json.loads((english / "manifest.json").read_text())["bm25"]["analyzer"] == "english"
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", simple, "--quiet",
               "--analyzer", "simple").exit_code == 0
    lexical = ("search", "--mode", "lexical", "--json", "libraries")
    assert json.loads(run(*lexical[:1], "--index", english, *lexical[1:]).output.splitlines()[0])["id"] == "a"
    assert run(*lexical[:1], "--index", simple, *lexical[1:]).output.strip() == ""  # no stemming: no match
    (tmp_path / "new.jsonl").write_text('{"id": "c", "title": "c", "text": "compiled fonts"}\n')
    result = run("index", "add", "--index", english, "--corpus", tmp_path / "new.jsonl", "--analyzer", "russian")
    assert result.exit_code == 2 and "analysed with 'english', not 'russian'" in result.output
    assert run("index", "add", "--index", english, "--corpus", tmp_path / "new.jsonl", "--quiet").exit_code == 0
    assert json.loads((english / "manifest.json").read_text())["bm25"]["analyzer"] == "english"  # kept
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", english, "--analyzer", "klingon")
    assert result.exit_code == 2 and "klingon" in result.output


def test_an_index_without_a_recorded_analyzer_reads_as_simple(tiny_model, tmp_path):
    from indexer.build import build_index
    from indexer.manifest import MANIFEST_FILE

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "title": "a", "text": "the running compilers"}\n')
    build_index(tiny_model, corpus, tmp_path / "i", analyzer_name="simple")
    path = tmp_path / "i" / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    del manifest["bm25"]["analyzer"]  # an index built before analyzers were recorded
    path.write_text(json.dumps(manifest))
    result = run("search", "--index", tmp_path / "i", "--mode", "lexical", "--json", "the")
    assert json.loads(result.output.splitlines()[0])["id"] == "a"  # `the` is a stop word only in english
