"""Degenerate queries x modes x (exact, Annoy) x (passages, none) on the embedded index: a result
(perhaps empty) or a one-line ValueError, never a traceback. Issue 16 item 5: `dssm search --index IDX
--search-k 100 "???"` on an index with passages ended in UnboundLocalError.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from dssm.export import load_encoder
from indexer.build import build_index
from indexer.query import HybridSearcher

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_corpus.jsonl"
QUERIES = {"no letters": "???", "one letter": "a", "10,000 characters": ("image library " * 715)[:10_000],
           "emoji": "\U0001F980\U0001F525\u2764\ufe0f"}
WITHOUT_FEATURES = {"no letters"}      # its query vector is zero: no semantic hit (emoji have trigrams)


@pytest.fixture(scope="module")
def indexes(tiny_model, tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("degenerate")
    corpus = work / "corpus.jsonl"
    corpus.write_text("\n".join(SAMPLE.read_text().splitlines()[:120]) + "\n")
    for name, passages in (("passages", {"window": 12, "stride": 6, "limit": 2}), ("none", None)):
        build_index(tiny_model, corpus, work / name, n_trees=5, passages=passages)
    return {"passages": work / "passages", "none": work / "none"}


@pytest.fixture(scope="module")
def searchers(indexes, tiny_model) -> dict[str, HybridSearcher]:
    encoder = load_encoder(tiny_model)
    return {name: HybridSearcher.open(path, encoder=encoder) for name, path in indexes.items()}


@pytest.mark.parametrize("passages", ["passages", "none"])
@pytest.mark.parametrize("search_k", [None, 100], ids=["exact", "annoy"])
@pytest.mark.parametrize("mode", ["hybrid", "lexical", "semantic"])
@pytest.mark.parametrize("query", list(QUERIES))
def test_degenerate_queries_give_a_result(searchers, passages, search_k, mode, query):
    fused = searchers[passages].search(QUERIES[query], mode=mode, search_k=search_k, k=5)
    assert len(fused.hits) <= 5 and len(fused.explanations) == len(fused.hits)
    if query in WITHOUT_FEATURES and mode == "semantic":
        assert len(fused.hits) == 0
    if query == "10,000 characters":
        assert len(fused.hits) == 5                               # real words: both sides find documents
    assert all(-1.0 - 1e-6 <= score for _, score in fused.hits)


def test_cli_search_through_annoy_with_a_query_without_letters(indexes):
    result = CliRunner().invoke(cli.main, ["search", "--index", str(indexes["passages"]), "--search-k", "100", "???"])
    assert result.exit_code == 0, result.output
    assert result.exception is None
