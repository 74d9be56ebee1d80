"""HybridSearcher: modes, fusion options, explain, bad input, exact re-rank, no TensorFlow on the path."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pytest import approx

from indexer.build import build_index
from indexer.fusion import minmax
from indexer.query import HybridSearcher, SearchOptions

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample_corpus.jsonl"


@pytest.fixture(scope="module")
def searcher(tiny_model, tmp_path_factory) -> HybridSearcher:
    out = tmp_path_factory.mktemp("search") / "index"
    corpus = out.parent / "corpus.jsonl"
    corpus.write_text("\n".join(SAMPLE.read_text().splitlines()[:500]) + "\n")
    build_index(tiny_model, corpus, out, n_trees=10, search_k=5000)
    return HybridSearcher.open(out)


def test_hybrid_is_the_linear_fusion_of_both_sides(searcher):
    query = "library for image processing"
    options = SearchOptions(k=5, candidates=50, norm="minmax")
    lexical, semantic = searcher.retrieve(query, options)
    fused = searcher.search(query, options)
    n_lexical, n_semantic = minmax(lexical), minmax(semantic)
    for doc_id, score in fused.hits:
        assert score == approx(0.5 * n_semantic.get(doc_id, 0.0) + 0.5 * n_lexical.get(doc_id, 0.0))
    assert len(fused.hits) == 5 and len(fused.explanations) == 5


def test_rrf_and_modes(searcher):
    query = "python documentation"
    lexical, semantic = searcher.retrieve(query, SearchOptions(candidates=100))
    fused = searcher.search(query, fusion="rrf", rrf_k=10, k=3)
    top = fused.hits.ids[0]
    expected = sum(1 / (10 + hits.rank_of(top)) for hits in (lexical, semantic) if top in hits)
    assert fused.hits.scores[0] == approx(expected)
    assert searcher.search(query, mode="lexical", k=3).hits == lexical.top(3)
    assert searcher.search(query, mode="semantic", k=3).hits == semantic.top(3)


def test_semantic_scores_are_cosines(searcher):
    vector = searcher.embed("network tools")
    assert vector.shape == (16,) and np.linalg.norm(vector) == approx(1.0, abs=1e-5)
    hits = searcher.backend.semantic(vector, 5, -1)
    rows = [searcher.backend.ids.index(doc_id) for doc_id in hits.ids]
    assert hits.scores == approx(searcher.backend.vectors[rows] @ vector, abs=1e-5)


def test_exact_rerank_matches_brute_force(searcher):
    vector = searcher.embed("terminal emulator")
    exact = searcher.backend.vectors @ vector
    best = np.argsort(-exact)[:5]
    hits = searcher.backend.semantic(vector, 5, -1, exact=True)
    assert hits.ids == tuple(searcher.backend.ids[row] for row in best)
    assert hits.scores == approx(exact[best], abs=1e-6)


def test_default_semantic_search_is_exact_below_the_size_limit(searcher, monkeypatch):
    """500 documents: the default (no search_k) scores every vector; an explicit search_k asks Annoy."""
    from indexer import embedded
    backend = searcher.backend
    vector = searcher.embed("font family for the desktop")
    exact = backend.vectors @ vector
    best = np.argsort(-exact, kind="stable")[:20]
    hits = backend.semantic(vector, 20)
    assert set(hits.ids) == {backend.ids[row] for row in best}
    assert hits.scores == approx(np.sort(exact[best])[::-1], abs=1e-6)
    asked = []
    monkeypatch.setattr(backend.annoy, "search", lambda *args: asked.append(args) or (np.zeros(0, int), np.zeros(0)))
    backend.semantic(vector, 20)
    assert not asked                                               # exact: Annoy not consulted
    backend.semantic(vector, 20, 100)
    assert asked and asked[-1][2] == 100                           # explicit search_k: Annoy
    monkeypatch.setattr(embedded, "EXACT_MAX_VALUES", 500 * 16 - 1)        # 500 documents of 16 dims
    backend.semantic(vector, 20)
    assert len(asked) == 2 and asked[-1][2] == 5000                # above the limit: the manifest's search_k
    assert not backend.semantic(np.zeros_like(vector), 20)


def test_punctuation_only_query_is_empty_not_an_error(searcher):
    assert len(searcher.search("?!(*)", k=5).hits) == 0
    fused = searcher.search("C++ (compiler", k=5)          # FTS-like syntax is plain text
    assert len(fused.hits) == 5


@pytest.mark.parametrize("overrides, message", [
    ({"k": 0}, "k must be a positive integer"), ({"alpha": 1.5}, "alpha must be in"),
    ({"alpha": -0.1}, "alpha must be in"), ({"mode": "both"}, "unknown mode"),
    ({"fusion": "max"}, "unknown fusion"), ({"norm": "l2"}, "unknown normalisation"),
    ({"rrf_k": 0}, "rank constant"), ({"candidates": 0}, "candidates"), ({"search_k": 0}, "search_k"),
])
def test_bad_options(searcher, overrides, message):
    with pytest.raises(ValueError, match=message):
        searcher.search("library", **overrides)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query(searcher, query):
    with pytest.raises(ValueError, match="empty query"):
        searcher.search(query)


def test_filters_are_refused_by_the_embedded_index(searcher):
    with pytest.raises(ValueError, match="Elasticsearch"):
        searcher.search("library", filter={"term": {"title": "x"}})


def test_search_path_never_imports_tensorflow(searcher):
    code = (f"import sys; from indexer.query import HybridSearcher; "
            f"s = HybridSearcher.open({str(searcher.backend.directory)!r}); s.search('library tools'); "
            f"import cli; "
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')); "
            f"print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_documents_without_features_never_match_the_exact_search(tiny_model, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "image viewer"}\n{"id": "b", "text": "!!!"}\n{"id": "c", "text": "text editor"}\n')
    build_index(tiny_model, corpus, tmp_path / "index", n_trees=2)
    searcher = HybridSearcher.open(tmp_path / "index")
    assert searcher.backend.manifest["counts"]["zero_vectors"] == 1
    hits = searcher.backend.semantic(searcher.embed("picture viewer"), 10)
    assert sorted(hits.ids) == ["a", "c"]


def test_hybrid_runs_the_lexical_side_in_a_worker_thread_with_the_same_results(searcher, monkeypatch):
    import threading

    threads = {}
    lexical = searcher.backend.lexical

    def recording(query, k, filter=None):
        threads.setdefault("lexical", set()).add(threading.get_ident())
        return lexical(query, k, filter)

    monkeypatch.setattr(searcher.backend, "lexical", recording)
    options = SearchOptions(k=10, candidates=50)
    queries = ["library for image processing", "python xml parser", "font", "game for kids"]
    parallel = [searcher.search(query, options).hits for query in queries]
    assert threading.get_ident() not in threads["lexical"]                # never in the caller's thread
    searcher.parallel = False
    try:
        threads.clear()
        sequential = [searcher.search(query, options).hits for query in queries]
        assert threads["lexical"] == {threading.get_ident()}
    finally:
        searcher.parallel = True
    assert parallel == sequential
    threads.clear()
    searcher.search(queries[0], options, mode="lexical")                 # one side only: no thread
    assert threads["lexical"] == {threading.get_ident()}


def test_an_error_on_the_lexical_side_reaches_the_caller(searcher, monkeypatch):
    def failing(query, k, filter=None):
        raise ValueError("lexical side failed")

    monkeypatch.setattr(searcher.backend, "lexical", failing)
    with pytest.raises(ValueError, match="lexical side failed"):
        searcher.search("library", SearchOptions())
