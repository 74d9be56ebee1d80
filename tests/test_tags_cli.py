"""`dssm tag index|predict`, `index build|add --with-tags`, `search --tag` and `dssm dedup` (CliRunner).

The tests marked `es` build and search a real Elasticsearch (`scripts/es.sh up`); they skip without one.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from conftest import DATA

TAGS = ["implemented-in::python", "implemented-in::perl", "works-with-format::xml", "uitoolkit::gtk",
        "use::viewing", "works-with::image", "role::documentation", "devel::library", "interface::commandline"]


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def json_lines(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def tag_files(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tag-files")
    (directory / "tags.txt").write_text("\n".join(TAGS) + "\n")
    (directory / "examples.jsonl").write_text(json.dumps({"tag": "use::viewing", "example": "an image viewer"}) + "\n")
    (directory / "corpus.jsonl").write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[:60]) + "\n")
    (directory / "more.jsonl").write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[60:70]) + "\n")
    return directory


@pytest.fixture(scope="module")
def tag_index(tiny_model, tag_files) -> Path:
    out = tag_files / "tag-index"
    result = run("tag", "index", "--model", tiny_model, "--tags", tag_files / "tags.txt", "--out", out,
                 "--tag-examples", tag_files / "examples.jsonl", "--n-trees", 3)
    assert result.exit_code == 0, result.output
    assert f"{len(TAGS)} tags (1 one-shot from examples)" in result.output
    return out


@pytest.fixture(scope="module")
def tagged_index(tiny_model, tag_files, tag_index) -> Path:
    out = tag_files / "index"
    result = run("index", "build", "--model", tiny_model, "--corpus", tag_files / "corpus.jsonl", "--out", out,
                 "--with-tags", tag_index, "--tag-k", 3, "--tag-min-similarity", -1, "--n-trees", 3, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_predict_texts_as_table_and_json(tag_index):
    table = run("tag", "predict", "--tags-index", tag_index, "--k", 2, "python xml parser", "gtk image viewer")
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0] == "python xml parser" and len(table.output.splitlines()) == 6
    records = json_lines(run("tag", "predict", "--tags-index", tag_index, "--k", 3, "--json", "python xml parser"))
    assert records[0]["text"] == "python xml parser" and len(records[0]["tags"]) == 3
    assert all(tag in TAGS and -1 <= similarity <= 1 for tag, similarity in records[0]["tags"])
    floor = records[0]["tags"][1][1]
    kept = json_lines(run("tag", "predict", "--tags-index", tag_index, "--k", 3, "--min-similarity", floor, "--json",
                          "python xml parser"))
    assert [tag for tag, _ in kept[0]["tags"]] == [tag for tag, _ in records[0]["tags"][:2]]


def test_predict_a_corpus_in_batch(tag_index, tag_files):
    records = json_lines(run("tag", "predict", "--tags-index", tag_index, "--corpus", tag_files / "corpus.jsonl", "--k", 2))
    assert len(records) == 60 and set(records[0]) == {"id", "tags"} and len(records[0]["tags"]) == 2
    single = json_lines(run("tag", "predict", "--tags-index", tag_index, "--k", 2, "--json",
                            json.loads((tag_files / "corpus.jsonl").read_text().splitlines()[0])["text"]))
    assert [tag for tag, _ in single[0]["tags"]] == [tag for tag, _ in records[0]["tags"]]


@pytest.mark.parametrize("content, message", [
    ("a::b\nc\na::b\n", "duplicate tags ['a::b']"),
    ("a::b\n!!!\n", "no letter or digit"),
    ("\n\n", "no tags"),
])
def test_bad_tag_lists_are_one_line_errors(tiny_model, tmp_path, content, message):
    tags = tmp_path / "tags.txt"
    tags.write_text(content)
    result = run("tag", "index", "--model", tiny_model, "--tags", tags, "--out", tmp_path / "out")
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_predict_needs_texts_or_a_corpus_and_the_right_model(tag_index, tmp_path, tag_files):
    assert run("tag", "predict", "--tags-index", tag_index).exit_code == 2
    result = run("tag", "predict", "--tags-index", tmp_path, "x")
    assert result.exit_code == 2 and "not a tag index" in result.output
    result = run("tag", "predict", "--tags-index", tag_index, "--model", Path(__file__).parent / "golden" / "tiny_model", "x")
    assert result.exit_code == 2 and "was built with model fingerprint" in result.output


def test_index_stores_tags_and_search_shows_and_filters_them(tagged_index, tag_index):
    manifest = json.loads((tagged_index / "manifest.json").read_text())
    assert manifest["tagging"] == {"index": str(tag_index.resolve()), "tags": len(TAGS), "k": 3, "min_similarity": -1}
    hits = json_lines(run("search", "--index", tagged_index, "--json", "--k", 5, "library"))
    assert hits and all(len(hit["tags"]) == 3 for hit in hits)
    table = run("search", "--index", tagged_index, "--k", 2, "library")
    assert table.output.count(" tags ") == 2
    wanted = hits[0]["tags"][0][0]
    filtered = json_lines(run("search", "--index", tagged_index, "--json", "--k", 50, "--tag", wanted, "library"))
    assert filtered and all(wanted in [tag for tag, _ in hit["tags"]] for hit in filtered)
    both = [hits[0]["tags"][0][0], hits[0]["tags"][1][0]]
    filtered = json_lines(run("search", "--index", tagged_index, "--json", "--k", 50, "--tag", both[0], "--tag", both[1],
                              "library"))
    assert hits[0]["id"] in [hit["id"] for hit in filtered]
    assert all(set(both) <= {tag for tag, _ in hit["tags"]} for hit in filtered)
    for mode in ("lexical", "semantic"):
        assert all(wanted in [tag for tag, _ in hit["tags"]] for hit in json_lines(
            run("search", "--index", tagged_index, "--json", "--mode", mode, "--tag", wanted, "library")))
    nothing = run("search", "--index", tagged_index, "--tag", "no::such-tag", "library")
    assert nothing.exit_code == 0 and "no hits" in nothing.output


def test_an_untagged_index_prints_no_tags(small_index):
    hits = json_lines(run("search", "--index", small_index, "--json", "--k", 2, "library"))
    assert hits and "tags" not in hits[0]
    result = run("search", "--index", small_index, "--tag", "x", "library")
    assert result.exit_code == 0 and "no hits" in result.output


def test_index_add_tags_new_documents_as_the_index_was_and_delete_drops_them(tagged_index, tag_files, tmp_path):
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(tagged_index, copy)
    result = run("index", "add", "--index", copy, "--corpus", tag_files / "more.jsonl", "--quiet")
    assert result.exit_code == 0, result.output
    added = json.loads((tag_files / "more.jsonl").read_text().splitlines()[0])["id"]
    from indexer.embedded import EmbeddedIndex

    index = EmbeddedIndex.open(copy)
    assert len(index.tags([added])[added]) == 3 and index.manifest["tagging"]["k"] == 3
    index.close()
    assert run("index", "delete", "--index", copy, added).exit_code == 0
    index = EmbeddedIndex.open(copy)
    assert index.tags([added]) == {} and index.manifest["tagging"]["k"] == 3
    index.close()


def test_with_tags_of_another_model_is_refused_before_encoding(tiny_model, tag_files, tmp_path):
    other = tmp_path / "tags"
    golden = Path(__file__).parent / "golden" / "tiny_model"
    assert run("tag", "index", "--model", golden, "--tags", tag_files / "tags.txt", "--out", other).exit_code == 0
    result = run("index", "build", "--model", tiny_model, "--corpus", tag_files / "corpus.jsonl", "--out",
                 tmp_path / "index", "--with-tags", other, "--quiet")
    assert result.exit_code == 2 and "was built with model fingerprint" in result.output
    assert not (tmp_path / "index").exists()


def test_dedup_lists_planted_copies_and_reads_the_calibrated_threshold(tiny_model, tag_files, tmp_path):
    records = [json.loads(line) for line in (tag_files / "corpus.jsonl").read_text().splitlines()]
    copy = dict(records[3], id="the-copy")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(record) + "\n" for record in records + [copy]))
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "index",
               "--n-trees", 3, "--quiet").exit_code == 0
    pairs = json_lines(run("dedup", "--index", tmp_path / "index", "--threshold", 0.99999, "--json"))
    assert {"a": records[3]["id"], "b": "the-copy"} in [{"a": p["a"], "b": p["b"]} for p in pairs]
    assert [p["similarity"] for p in pairs] == sorted((p["similarity"] for p in pairs), reverse=True)
    table = run("dedup", "--index", tmp_path / "index", "--threshold", 0.99999)
    assert records[3]["id"][:30] in table.output and "1 pair with cosine >= 0.99999 among 61 documents" in table.output
    result = run("dedup", "--index", tmp_path / "index", "--max-far", 0.001)
    assert result.exit_code == 2 and "dssm calibrate" in result.output
    from indexer.manifest import update_sections

    update_sections(tmp_path / "index", {"calibration": {"thresholds": {"0.001": {"threshold": 0.99999}}}})
    calibrated = json_lines(run("dedup", "--index", tmp_path / "index", "--max-far", 0.001, "--json"))
    assert calibrated == pairs
    assert run("dedup", "--index", tmp_path / "index", "--max-far", 0.001, "--threshold", 0.9).exit_code == 2


# --- Elasticsearch -------------------------------------------------------------------------------


@pytest.mark.es
def test_es_index_stores_tags_and_search_filters_by_them(es_client, es_alias, tagged_index, tiny_model):
    index_dir = tagged_index.parent / "es-index"
    corpus = tagged_index.parent / "corpus.jsonl"
    tag_index = tagged_index.parent / "tag-index"
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", index_dir, "--with-tags", tag_index,
                 "--tag-k", 3, "--tag-min-similarity", -1, "--es-index", es_alias, "--quiet")
    assert result.exit_code == 0, result.output
    embedded = json_lines(run("search", "--index", index_dir, "--json", "--k", 5, "--mode", "lexical", "library"))
    es = json_lines(run("search", "--backend", "es", "--es-index", es_alias, "--json", "--k", 5, "--mode", "lexical",
                        "library"))
    by_id = {hit["id"]: hit["tags"] for hit in embedded}
    for hit in es:  # ES stores the very tags of the embedded index (same run)
        if hit["id"] in by_id:
            assert [tag for tag, _ in hit["tags"]] == [tag for tag, _ in by_id[hit["id"]]]
            assert [s for _, s in hit["tags"]] == pytest.approx([s for _, s in by_id[hit["id"]]], abs=1e-5)
    wanted = es[0]["tags"][0][0]
    for mode in ("lexical", "semantic", "hybrid"):
        filtered = json_lines(run("search", "--backend", "es", "--es-index", es_alias, "--json", "--k", 50, "--mode", mode,
                                  "--tag", wanted, "library"))
        assert filtered and all(wanted in [tag for tag, _ in hit["tags"]] for hit in filtered)
        local = json_lines(run("search", "--index", index_dir, "--json", "--k", 50, "--mode", mode, "--tag", wanted, "library"))
        assert {hit["id"] for hit in filtered} == {hit["id"] for hit in local} or mode == "hybrid"
    both = es[0]["tags"][0][0], es[0]["tags"][1][0]
    filtered = json_lines(run("search", "--backend", "es", "--es-index", es_alias, "--json", "--k", 50, "--tag", both[0],
                              "--tag", both[1], "--filter", json.dumps({"term": {"id": es[0]["id"]}}), "library"))
    assert [hit["id"] for hit in filtered] == [es[0]["id"]]
    mapping = es_client.indices.get_mapping(index=es_alias)
    assert next(iter(mapping.values()))["mappings"]["properties"]["tags"] == {"type": "keyword"}


@pytest.mark.es
def test_es_only_build_tags_the_corpus_itself(es_client, es_alias, tag_files, tag_index, tiny_model):
    result = run("index", "build", "--model", tiny_model, "--corpus", tag_files / "corpus.jsonl", "--with-tags", tag_index,
                 "--tag-k", 2, "--tag-min-similarity", -1, "--es-index", es_alias, "--quiet")
    assert result.exit_code == 0, result.output
    hits = json_lines(run("search", "--backend", "es", "--es-index", es_alias, "--model", tiny_model, "--json", "library"))
    assert hits and all(len(hit["tags"]) == 2 for hit in hits)
    predicted = {record["id"]: record["tags"] for record in json_lines(
        run("tag", "predict", "--tags-index", tag_index, "--corpus", tag_files / "corpus.jsonl", "--k", 2))}
    for hit in hits:
        assert [tag for tag, _ in hit["tags"]] == [tag for tag, _ in predicted[hit["id"]]]
