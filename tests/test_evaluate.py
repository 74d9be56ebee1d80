"""Metrics on tiny hand-made runs (expected values as formulas), run files, qrels/queries checks."""
from __future__ import annotations

import math

import pytest
from pytest import approx

from indexer.evaluate import (evaluate_runs, format_table, parse_metrics, per_query, typo_losses,
                              write_trec_run)
from indexer.hits import Hits
from indexer.judgements import Judgements, read_qrels, read_queries

MEASURES = parse_metrics("ndcg@10,mrr@10,recall@100,map")


def log2(x: float) -> float:
    return math.log2(x)


def test_binary_relevance_by_hand():
    qrels = {"q1": {"a": 1, "b": 1}}
    run = {"q1": Hits(["x", "a", "y", "b"], [4.0, 3.0, 2.0, 1.0])}
    values = evaluate_runs({"m": run}, qrels, MEASURES)["m"]
    assert values["ndcg@10"] == approx((1 / log2(3) + 1 / log2(5)) / (1 / log2(2) + 1 / log2(3)))
    assert values["mrr@10"] == approx(1 / 2)
    assert values["recall@100"] == approx(1.0)
    assert values["map"] == approx((1 / 2 + 2 / 4) / 2)


def test_graded_gains_are_linear_as_in_trec_eval():
    qrels = {"q": {"c": 2, "d": 1}}
    run = {"q": Hits(["d", "c"], [2.0, 1.0])}
    values = evaluate_runs({"m": run}, qrels, parse_metrics("ndcg@10"))["m"]
    assert values["ndcg@10"] == approx((1 / log2(2) + 2 / log2(3)) / (2 / log2(2) + 1 / log2(3)))


def test_cutoffs():
    qrels = {"q": {"r": 1}}
    ids = [f"d{i:03d}" for i in range(11)] + ["r"]          # r is 12th
    run = {"q": Hits(ids, [100.0 - i for i in range(12)])}
    values = evaluate_runs({"m": run}, qrels, parse_metrics("ndcg@10,mrr@10,recall@100,recall@5,map"))["m"]
    assert values["ndcg@10"] == 0.0 and values["mrr@10"] == 0.0 and values["recall@5"] == 0.0
    assert values["recall@100"] == 1.0 and values["map"] == approx(1 / 12)


def test_a_query_without_hits_counts_zero_in_the_mean():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run = {"q1": Hits(["a"], [1.0]), "q2": Hits.empty()}      # q3 absent altogether
    values = evaluate_runs({"m": run}, qrels, MEASURES)["m"]
    assert values["mrr@10"] == approx((1 + 0 + 0) / 3)
    assert values["ndcg@10"] == approx(1 / 3)
    assert per_query(run, qrels, MEASURES)["recall@100"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}


def test_ties_keep_our_order_not_trec_evals():
    # Hits order ties by id ascending: a then b. trec_eval alone would put b first (docno descending).
    qrels = {"q": {"b": 1}}
    run = {"q": Hits(["b", "a"], [1.0, 1.0])}
    assert evaluate_runs({"m": run}, qrels, parse_metrics("mrr@10"))["m"]["mrr@10"] == approx(1 / 2)


def test_runs_for_unjudged_queries_are_ignored():
    qrels = {"q1": {"a": 1}}
    run = {"q1": Hits(["a"], [1.0]), "other": Hits(["z"], [1.0])}
    assert evaluate_runs({"m": run}, qrels, MEASURES)["m"]["map"] == approx(1.0)


@pytest.mark.parametrize("text", ["foo", "ndcg", "map@10", "ndcg@0", "mrr@-1", ""])
def test_unknown_metrics_are_refused(text):
    with pytest.raises(ValueError, match="metric"):
        parse_metrics(text)


def test_metric_names():
    assert [str(m) for m in parse_metrics("NDCG@5, mrr@3,recall@20,precision@1,p@2,map").values()] == \
        ["nDCG@5", "RR@3", "R@20", "P@1", "P@2", "AP"]


def test_trec_run_file(tmp_path):
    path = tmp_path / "runs" / "hybrid.run"
    write_trec_run(path, {"q1": Hits(["b", "a"], [0.5, 0.5]), "q2": Hits.empty()}, "tag")
    assert path.read_text() == "q1 Q0 a 1 0.500000 tag\nq1 Q0 b 2 0.500000 tag\n"


def test_table_and_losses():
    scores = {"lexical": {"ndcg@10": 0.5, "map": 0.4}, "hybrid": {"ndcg@10": 0.6, "map": 0.5}}
    table = format_table(scores)
    assert "| hybrid | 0.6000 | 0.5000 | 1.200 |" in table
    losses = typo_losses(scores, {"lexical": {"ndcg@10": 0.25, "map": 0.4}, "hybrid": {"ndcg@10": 0.45, "map": 0.5}})
    assert losses["lexical"]["ndcg@10"] == approx(1 - 0.25 / 0.5) and losses["hybrid"]["ndcg@10"] == approx(0.25)


# --- queries and qrels ---------------------------------------------------------------------------


def test_judgements_count_every_problem():
    queries = {"q1": "a", "q2": "b", "q3": "c", "q4": "d"}
    qrels = {"q1": {"d1": 1, "gone": 1, "d2": 0}, "q2": {"d1": 0}, "x": {"d1": 1, "d2": 1}}
    judged = Judgements.check(queries, qrels, ["d1", "d2"])
    assert list(judged.queries) == ["q1"] and judged.qrels == {"q1": {"d1": 1, "gone": 1, "d2": 0}}
    assert judged.counts() == {"evaluated": 1, "unknown_queries": 1, "unknown_query_judgements": 2,
                               "unknown_documents": 1, "without_qrels": 2, "without_relevant": 1}
    assert len(judged.warnings()) == 4


def test_judgements_refuse_disjoint_files():
    with pytest.raises(ValueError, match="qids"):
        Judgements.check({"q1": "a"}, {"other": {"d": 1}}, None)


def test_read_files(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"qid": 1, "query": "a b"}\n\n{"qid": "2", "query": "c"}\n')
    (tmp_path / "q.tsv").write_text("1\ta b\n")
    (tmp_path / "r.tsv").write_text("1 d1 1\n# comment\n2 0 d2 2\n")
    assert read_queries(tmp_path / "q.jsonl") == {"1": "a b", "2": "c"}
    assert read_queries(tmp_path / "q.tsv") == {"1": "a b"}
    assert read_qrels(tmp_path / "r.tsv") == {"1": {"d1": 1}, "2": {"d2": 2}}


@pytest.mark.parametrize("name, text, message", [
    ("q.jsonl", "", "empty"),
    ("q.jsonl", '{"qid": "1"}\n', "q.jsonl:1: a query needs"),
    ("q.jsonl", '{"qid": "1", "query": "a"}\n{"qid": "1", "query": "b"}\n', "q.jsonl:2: query id '1' appears twice"),
    ("q.jsonl", "{bad\n", "q.jsonl:1: invalid JSON"),
    ("r.tsv", "\n\n", "empty"),
    ("r.tsv", "1 d1\n", "r.tsv:1: expected"),
    ("r.tsv", "1 d1 high\n", "r.tsv:1: relevance 'high'"),
])
def test_bad_files(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    reader = read_queries if name.startswith("q") else read_qrels
    with pytest.raises(ValueError, match=message):
        reader(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_qrels(tmp_path / "none.tsv")


# --- any backend: HybridSearcher over an object with lexical() and semantic() ---------------------


class FakeBackend:
    """Two fixed lists, whatever the query; no `ids`, like a remote backend."""

    def lexical(self, query, k, filter=None):
        return Hits(["a", "b", "c"], [3.0, 2.0, 1.0]).top(k)

    def semantic(self, vector, k, num_candidates=None, filter=None):
        return Hits(["c", "d"], [0.9, 0.1]).top(k)


class FakeEncoder:
    def encode(self, texts, side="query"):
        return [[1.0]] * len(texts)


def test_evaluate_runs_on_any_backend(tmp_path):
    from indexer.evaluate import document_ids, evaluate
    from indexer.query import HybridSearcher, SearchOptions

    searcher = HybridSearcher(FakeBackend(), FakeEncoder())
    judged = Judgements.check({"q": "text"}, {"q": {"c": 1}}, document_ids(searcher))
    assert not judged.documents_checked and "not checked" in judged.warnings()[-1]
    scores = evaluate(searcher, judged.queries, judged.qrels, ["lexical", "semantic", "hybrid"],
                      parse_metrics("mrr@10"), depth=10, options=SearchOptions(fusion="rrf", rrf_k=1),
                      run_dir=tmp_path)
    # rrf with constant 1: c = 1/(1+3) + 1/(1+1) = 0.75 beats a = 1/2
    assert scores == {"lexical": {"mrr@10": approx(1 / 3)}, "semantic": {"mrr@10": 1.0}, "hybrid": {"mrr@10": 1.0}}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hybrid.run", "lexical.run", "semantic.run"]
