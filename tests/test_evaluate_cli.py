"""`dssm evaluate` through click's CliRunner on the data/ sample (tiny untrained model, 5,000 documents)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from indexer.build import build_index
from indexer.query import HybridSearcher

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
QUERIES, QRELS = DATA / "sample_dev_queries.jsonl", DATA / "sample_qrels.tsv"


def run(*args):
    return CliRunner().invoke(cli.main, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def sample_index(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "index"
    build_index(tiny_model, DATA / "sample_corpus.jsonl", out, n_trees=10)
    return out


@pytest.fixture(scope="module")
def evaluated(sample_index, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs")
    result = run("evaluate", "--index", sample_index, "--queries", QUERIES, "--qrels", QRELS, "--json",
                 "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), run_dir


def read_run(path: Path) -> dict[str, list[str]]:
    ranked: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc_id, rank, _, _ = line.split()
        ranked.setdefault(qid, []).append(doc_id)
        assert int(rank) == len(ranked[qid])
    return ranked


def test_every_mode_every_metric(evaluated):
    report, _ = evaluated
    assert report["queries"]["evaluated"] == 200 and report["queries"]["unknown_documents"] == 0
    assert set(report["scores"]) == {"lexical", "semantic", "hybrid"}
    for row in report["scores"].values():
        assert set(row) == {"ndcg@10", "mrr@10", "recall@100", "map"}
        assert all(0.0 <= value <= 1.0 for value in row.values())


def test_lexical_ndcg_recomputed_from_the_run_file(evaluated):
    # one relevant document per sample query: nDCG@10 = mean of 1/log2(rank + 1) over ranks <= 10
    report, run_dir = evaluated
    relevant = dict(line.split("\t")[:2] for line in QRELS.read_text().splitlines())
    ranked = read_run(run_dir / "lexical.run")
    gains = [1 / math.log2(ranked[qid].index(doc) + 2) if doc in ranked.get(qid, [])[:10] else 0.0
             for qid, doc in relevant.items()]
    assert report["scores"]["lexical"]["ndcg@10"] == pytest.approx(sum(gains) / len(gains))
    found = [doc in ranked.get(qid, []) for qid, doc in relevant.items()]
    assert report["scores"]["lexical"]["recall@100"] == pytest.approx(sum(found) / len(found))


def test_hybrid_run_is_what_search_returns(evaluated, sample_index):
    _, run_dir = evaluated
    ranked = read_run(run_dir / "hybrid.run")
    searcher = HybridSearcher.open(sample_index)
    for record in map(json.loads, QUERIES.read_text().splitlines()[:5]):
        hits = searcher.search(record["query"], candidates=100, k=10).hits
        assert list(hits.ids) == ranked[record["qid"]][:10]


def test_table_and_typos(sample_index):
    result = run("evaluate", "--index", sample_index, "--queries", QUERIES, "--qrels", QRELS, "--modes", "lexical,hybrid",
                 "--typos", "--typos-per", "query", "--metrics", "ndcg@10,recall@20")
    assert result.exit_code == 0, result.output
    assert "200 queries evaluated" in result.stdout and "| lexical |" in result.stdout
    assert "hybrid: ndcg@10 loss" in result.stdout and "| semantic |" not in result.stdout


def test_problems_in_the_qrels_are_reported(sample_index, tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(QRELS.read_text() + "d00009\tno-such-doc\t1\nnot-a-query\ttclcurl\t1\n")
    queries = tmp_path / "queries.jsonl"
    queries.write_text(QUERIES.read_text() + '{"qid": "extra", "query": "unjudged"}\n')
    result = run("evaluate", "--index", sample_index, "--queries", queries, "--qrels", qrels, "--json", "--modes", "lexical")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["queries"]
    assert counts == {"evaluated": 200, "unknown_queries": 1, "unknown_query_judgements": 1, "unknown_documents": 1,
                      "without_qrels": 1, "without_relevant": 0}
    assert "1 relevant judgements name documents absent from the index" in result.stderr
    assert "1 queries have no qrels (skipped)" in result.stderr


@pytest.mark.parametrize("extra, message", [
    (("--metrics", "ndcg@10,bogus"), "unknown metric 'bogus'"),
    (("--modes", "lexical,fuzzy"), "unknown modes ['fuzzy']"),
    (("--backend", "solr"), "--backend solr cannot be evaluated; use embedded or es"),
    (("--alpha", "2"), "alpha must be in [0, 1]"),
    (("--depth", "0"), "0 is not in the range x>=1"),
])
def test_bad_options_exit_2_with_one_line(sample_index, extra, message):
    result = run("evaluate", "--index", sample_index, "--queries", QUERIES, "--qrels", QRELS, *extra)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_empty_files_exit_2(sample_index, tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    for args in (("--queries", empty, "--qrels", QRELS), ("--queries", QUERIES, "--qrels", empty)):
        result = run("evaluate", "--index", sample_index, *args)
        assert result.exit_code == 2 and "is empty" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_one_mode_alone_gives_the_same_numbers(evaluated, sample_index):
    report, _ = evaluated
    for mode in ("lexical", "semantic"):
        result = run("evaluate", "--index", sample_index, "--queries", QUERIES, "--qrels", QRELS, "--modes", mode, "--json")
        assert json.loads(result.stdout)["scores"] == {mode: report["scores"][mode]}


def test_backend_es_errors_are_one_line():
    import socket
    judged = ["--queries", QUERIES, "--qrels", QRELS]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = run("evaluate", "--backend", "es", "--index", "x", "--es-url", f"http://127.0.0.1:{port}", *judged)
    assert down.exit_code == 1 and "cannot connect" in down.output and down.output.count("\n") == 1
    tune = run("tune-fusion", "--backend", "es", "--index", "x", *judged)
    assert tune.exit_code == 2 and "tune-fusion stores its result in an embedded index" in tune.output
    url = run("evaluate", "--index", "x", "--es-url", "http://127.0.0.1:9200", *judged)
    assert url.exit_code == 2 and "--es-url needs --backend es" in url.output
    plugin = run("evaluate", "--backend", "es-plugin", "--index", "x", *judged)
    assert plugin.exit_code == 2 and "evaluate it with --backend es" in plugin.output
