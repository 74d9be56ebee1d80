"""Passage vectors (MaxP) in the embedded index: windows, build, search, add/delete, CLI errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from dssm.export import load_encoder
from indexer.build import add_documents, build_index, delete_documents
from indexer.embedded import EmbeddedIndex
from indexer.manifest import read_manifest
from indexer.passages import parse_passages, passage_texts

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_corpus.jsonl"
PASSAGES = {"window": 6, "stride": 3}
QUERIES = ["python library for xml", "font for handwriting", "network configuration tool", "game player"]


def test_passage_windows_cover_the_text_after_the_title():
    words = [f"w{n}" for n in range(10)]
    assert passage_texts("T", " ".join(words), 4, 2) == [
        "T w0 w1 w2 w3", "T w2 w3 w4 w5", "T w4 w5 w6 w7", "T w6 w7 w8 w9"]
    assert passage_texts("T", " ".join(words[:9]), 4, 3) == [            # the last window ends the text
        "T w0 w1 w2 w3", "T w3 w4 w5 w6", "T w5 w6 w7 w8"]
    assert passage_texts("T", "short text", 4, 2) == [] == passage_texts("", "", 4, 2)   # the whole document
    assert passage_texts("T", " ".join(words), 4, 2, limit=2) == ["T w0 w1 w2 w3", "T w2 w3 w4 w5"]  # the first 2
    assert passage_texts("T", " ".join(words), 4, 2, limit=9) == passage_texts("T", " ".join(words), 4, 2)


@pytest.mark.parametrize("spec", ["12", "a:b", "0:0", "6:12", "12:0", "-4:2", "12:6:0", "12:6:x", "12:6:2:1"])
def test_bad_passage_specs_name_the_fix(spec):
    with pytest.raises(ValueError, match="W:S or W:S:N"):
        parse_passages(spec)
    assert parse_passages("12:6") == {"window": 12, "stride": 6} and parse_passages(None) is None
    assert parse_passages("12:6:2") == {"window": 12, "stride": 6, "limit": 2}


def corpus_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def corpus(tmp_path) -> Path:
    return corpus_file(tmp_path / "corpus.jsonl", SAMPLE.read_text().splitlines()[:120])


def maxp_reference(model: Path, corpus: Path, query: str, passages: dict = PASSAGES) -> dict[str, float]:
    """Each document's best cosine over its whole text and its passages, straight from the encoder."""
    encoder = load_encoder(model)
    vector = encoder.encode([query])[0]
    best = {}
    for record in map(json.loads, corpus.read_text().splitlines()):
        texts = [f"{record['title']} {record['text']}"] + passage_texts(record["title"], record["text"], **passages)
        best[record["id"]] = float(np.max(encoder.encode(texts, side="document") @ vector))
    return best


@pytest.mark.parametrize("passages", [PASSAGES, {**PASSAGES, "limit": 2}])    # all windows, the first two
def test_semantic_scores_are_the_best_passage_exact_and_through_annoy(tiny_model, corpus, tmp_path, passages):
    manifest = build_index(tiny_model, corpus, tmp_path / "index", n_trees=10, passages=passages)
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    assert manifest["passages"] == {**passages, "count": sum(len(passage_texts(r["title"], r["text"], **passages))
                                                               for r in records)}
    assert {"passages.f32", "passage_rows.i32"} <= set(manifest["files"])
    index = EmbeddedIndex.open(tmp_path / "index", verify="full")
    encoder = load_encoder(tiny_model)
    for query in QUERIES:
        reference = maxp_reference(tiny_model, corpus, query, passages)
        expected = sorted(reference, key=lambda doc_id: (-reference[doc_id], doc_id))[:10]
        vector = encoder.encode([query])[0]
        exact = index.semantic(vector, 10)                                      # small index: exact
        assert list(exact.ids) == expected
        np.testing.assert_allclose(exact.scores, [reference[d] for d in expected], atol=1e-5)
        for exact_rerank in (False, True):                                     # every Annoy node inspected
            annoy = index.semantic(vector, 10, num_candidates=10**6, exact=exact_rerank)
            assert list(annoy.ids) == expected
            np.testing.assert_allclose(annoy.scores, [reference[d] for d in expected], atol=1e-4)
    build_index(tiny_model, corpus, tmp_path / "plain", n_trees=5)
    whole_only = EmbeddedIndex.open(tmp_path / "plain")                         # one vector per document
    plain = whole_only.semantic(vector, len(records))
    assert whole_only.passages is None
    assert all(reference[doc_id] >= score - 1e-6 for doc_id, score in zip(plain.ids, plain.scores))
    assert sum(reference[doc_id] > score + 1e-4 for doc_id, score in zip(plain.ids, plain.scores)) > len(records) // 2
    index.close()


def test_annoy_hits_carry_their_documents_exact_best_passage(tiny_model, corpus, tmp_path):
    """With few Annoy nodes inspected, the item found is not always a document's best: every hit is
    re-scored over all its vectors, so its score is the exact MaxP cosine."""
    build_index(tiny_model, corpus, tmp_path / "index", n_trees=10, passages={**PASSAGES, "limit": 2})
    index = EmbeddedIndex.open(tmp_path / "index")
    encoder = load_encoder(tiny_model)
    for query in QUERIES:
        vector = encoder.encode([query])[0]
        truth = index.semantic_all(vector, len(index.ids), float64=True)
        exact = dict(zip(truth.ids, truth.scores))
        hits = index.semantic(vector, 10, num_candidates=40)
        assert len(hits) == 10
        np.testing.assert_allclose(hits.scores, [exact[doc_id] for doc_id in hits.ids], atol=1e-9)
    index.close()


def test_best_among_scores_in_blocks_as_at_once(tiny_model, corpus, tmp_path, monkeypatch):
    """A filter can keep every document: their passages are scored a block at a time, same result."""
    import indexer.passages

    build_index(tiny_model, corpus, tmp_path / "index", n_trees=5, passages=PASSAGES)
    index = EmbeddedIndex.open(tmp_path / "index")
    vector = load_encoder(tiny_model).encode([QUERIES[0]])[0]
    rows = np.arange(len(index.ids))[::-1].copy()                   # any order
    whole = np.asarray(index.vectors[rows], dtype=np.float64) @ vector.astype(np.float64)
    at_once = index.passages.best_among(rows, whole, vector)
    monkeypatch.setattr(indexer.passages, "BEST_BLOCK", 7)
    blocked = index.passages.best_among(rows, whole, vector)
    np.testing.assert_allclose(blocked, at_once, atol=1e-12)                  # BLAS sums in blocks
    truth = dict(index.semantic_all(vector, len(index.ids), float64=True))
    np.testing.assert_allclose(at_once, [truth[index.ids[row]] for row in rows], atol=1e-12)
    index.close()


def test_add_and_delete_keep_each_document_with_its_passages(tiny_model, tmp_path):
    lines = SAMPLE.read_text().splitlines()[:90]
    build_index(tiny_model, corpus_file(tmp_path / "a.jsonl", lines[:60]), tmp_path / "index", n_trees=5,
                passages=PASSAGES)
    deleted = [json.loads(line)["id"] for line in lines[10:40:3]]
    delete_documents(tmp_path / "index", deleted)
    add_documents(tmp_path / "index", corpus_file(tmp_path / "b.jsonl", lines[60:]))
    final = [line for line in lines if json.loads(line)["id"] not in deleted]
    build_index(tiny_model, corpus_file(tmp_path / "final.jsonl", final), tmp_path / "fresh", n_trees=5,
                passages=PASSAGES)
    updated, fresh = EmbeddedIndex.open(tmp_path / "index"), EmbeddedIndex.open(tmp_path / "fresh")
    assert updated.ids == fresh.ids and updated.manifest["passages"] == fresh.manifest["passages"]
    np.testing.assert_array_equal(updated.passages.rows, fresh.passages.rows)
    np.testing.assert_allclose(np.asarray(updated.passages.vectors), np.asarray(fresh.passages.vectors), atol=1e-6)
    vector = load_encoder(tiny_model).encode([QUERIES[0]])[0]
    assert updated.semantic(vector, 10) == fresh.semantic(vector, 10)


def test_cli_refuses_bad_passages(tiny_model, corpus, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli.main, ["index", "build", "--model", str(tiny_model), "--corpus", str(corpus),
                                   "--out", str(tmp_path / "x"), "--passages", "6:12"])
    assert bad.exit_code == 2 and "W:S" in bad.output and not (tmp_path / "x").exists()
    ok = runner.invoke(cli.main, ["index", "build", "--model", str(tiny_model), "--corpus", str(corpus),
                                  "--out", str(tmp_path / "z"), "--passages", "12:6", "--quiet"])
    assert ok.exit_code == 0 and "passages of 12:6" in ok.output


def test_a_document_without_features_is_counted_and_never_matches(tiny_model, tmp_path):
    lines = SAMPLE.read_text().splitlines()[:20] + [json.dumps({"id": "empty", "title": "", "text": "!!! ???"})]
    manifest = build_index(tiny_model, corpus_file(tmp_path / "c.jsonl", lines), tmp_path / "index", n_trees=5,
                           passages=PASSAGES)
    assert manifest["counts"] == {"documents": 21, "zero_vectors": 1}
    index = EmbeddedIndex.open(tmp_path / "index")
    vector = load_encoder(tiny_model).encode([QUERIES[1]])[0]
    assert len(index.semantic(vector, 30)) == 20 and "empty" not in index.semantic(vector, 30).ids
    exact, approximate = index.semantic(vector, 10), index.semantic(vector, 10, num_candidates=10_000)
    assert exact.ids == approximate.ids and "empty" not in approximate.ids


def test_explain_shows_the_passage_that_scored(tiny_model, corpus, tmp_path):
    build_index(tiny_model, corpus, tmp_path / "index", n_trees=5, passages=PASSAGES)
    records = {r["id"]: r for r in map(json.loads, corpus.read_text().splitlines())}
    out = CliRunner().invoke(cli.main, ["search", "--index", str(tmp_path / "index"), "--mode", "semantic", "--json",
                                        "--explain", "--k", "20", QUERIES[0]])
    assert out.exit_code == 0, out.output
    hits = [json.loads(line) for line in out.output.splitlines()]
    shown = [hit for hit in hits if "passage" in hit["explain"]]
    assert shown
    for hit in shown:
        record = records[hit["id"]]
        assert hit["explain"]["passage"]["text"] in passage_texts(record["title"], record["text"], **PASSAGES)
        assert hit["explain"]["passage"]["cosine"] == pytest.approx(hit["score"], abs=1e-5)   # it gave the score
    plain = CliRunner().invoke(cli.main, ["search", "--index", str(tmp_path / "index"), "--mode", "semantic",
                                          "--explain", QUERIES[0]])
    assert plain.exit_code == 0 and "passage  cosine" in plain.output


def cli_hits(result) -> list[tuple[str, float]]:
    assert result.exit_code == 0, result.output
    return [(record["id"], record["score"]) for record in map(json.loads, result.output.splitlines())]


@pytest.mark.es
@pytest.mark.parametrize("from_embedded", [True, False])
def test_elasticsearch_scores_the_best_passage_like_the_embedded_index(es_client, es_alias, tiny_model, corpus,
                                                                      tmp_path, from_embedded):
    """Nested kNN over the whole vector and the passages gives the embedded index's MaxP hits and
    cosines, whether the ES index is filled from the embedded one or encoded from the corpus (there with
    the first two windows only)."""
    from indexer.es_index import EsIndex

    runner = CliRunner()
    spec = f"{PASSAGES['window']}:{PASSAGES['stride']}" + ("" if from_embedded else ":2")
    embedded = tmp_path / "index"
    build = ["index", "build", "--model", str(tiny_model), "--corpus", str(corpus), "--passages", spec, "--quiet"]
    if from_embedded:
        result = runner.invoke(cli.main, [*build, "--out", str(embedded), "--es-index", es_alias])
    else:
        result = runner.invoke(cli.main, [*build, "--es-index", es_alias])
        assert result.exit_code == 0, result.output
        result = runner.invoke(cli.main, [*build, "--out", str(embedded)])
    assert result.exit_code == 0, result.output
    for query in QUERIES:
        local = cli_hits(runner.invoke(cli.main, ["search", "--index", str(embedded), "--mode", "semantic",
                                                  "--exact-rerank", "--json", query]))
        remote = cli_hits(runner.invoke(cli.main, ["search", "--backend", "es", "--es-index", es_alias,
                                                   "--mode", "semantic", "--json", query]))
        assert [doc_id for doc_id, _ in remote] == [doc_id for doc_id, _ in local]
        assert [score for _, score in remote] == pytest.approx([score for _, score in local], abs=1e-5)
    assert EsIndex.open(es_client, es_alias).meta["passages"] == parse_passages(spec)


def test_index_build_encodes_the_first_two_windows_by_default_and_none_turns_passages_off(tiny_model, corpus,
                                                                                          tmp_path):
    runner = CliRunner()
    build = ["index", "build", "--model", str(tiny_model), "--corpus", str(corpus), "--quiet"]
    result = runner.invoke(cli.main, [*build, "--out", str(tmp_path / "default")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    expected = sum(len(passage_texts(r["title"], r["text"], 12, 6, limit=2)) for r in records)
    assert read_manifest(tmp_path / "default")["passages"] == {"window": 12, "stride": 6, "limit": 2, "count": expected}
    assert f"{expected:,} passages of 12:6:2" in result.output and expected > len(records) // 2
    result = runner.invoke(cli.main, [*build, "--out", str(tmp_path / "none"), "--passages", "none"])
    assert result.exit_code == 0, result.output
    assert "passages" not in read_manifest(tmp_path / "none") and "passages" not in result.output
