"""Building an Elasticsearch index against the real server: alias swap, rejects, refusals."""
from __future__ import annotations

import json

import pytest

from indexer.es_index import BuildError, IndexOptions, build, read_meta

pytestmark = pytest.mark.es

FINGERPRINT = "f" * 64
OPTIONS = IndexOptions(dims=4, replicas=0)
DOCS = [
    ("a", "Red apple", "a red apple is a fruit", [1.0, 0.0, 0.0, 0.0]),
    ("b", "Apple pie", "green apple pie with cinnamon", [0.8, 0.6, 0.0, 0.0]),
    ("c", "Ocean", "blue ocean", [0.0, 0.0, 1.0, 0.0]),
    ("d", "Waves", "ocean waves and blue water over the sand", [0.0, 0.0, 0.6, 0.8]),
]


def aliased(client, alias: str) -> list[str]:
    return sorted(client.indices.get_alias(name=alias))


def test_build_writes_a_new_index_and_points_the_alias_at_it(es_client, es_alias, tmp_path):
    report = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS, rejects_path=tmp_path / "r.jsonl")
    assert report.indexed == 4 and report.rejected == 0 and report.rejects_path is None
    assert report.index.startswith(es_alias + "-")
    assert aliased(es_client, es_alias) == [report.index]
    assert es_client.count(index=es_alias)["count"] == 4
    meta = read_meta(es_client, es_alias)[report.index]
    assert (meta["format"], meta["dims"], meta["model_fingerprint"], meta["count"]) == \
        ("dssm-search-es", 4, FINGERPRINT, 4)
    vector = es_client.indices.get_mapping(index=report.index)[report.index]["mappings"]["properties"]["vector"]
    assert vector["index_options"] == {"type": "hnsw", "m": 16, "ef_construction": 100}
    assert not (tmp_path / "r.jsonl").exists()


def test_rebuild_keeps_serving_the_old_index_until_the_swap(es_client, es_alias):
    first = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    seen_during_bulk = []

    def second_corpus():
        yield DOCS[0]
        seen_during_bulk.append((aliased(es_client, es_alias), es_client.count(index=es_alias)["count"]))
        yield from DOCS[1:3]

    second = build(es_client, es_alias, second_corpus(), FINGERPRINT, OPTIONS, chunk_size=1)
    assert seen_during_bulk == [([first.index], 4)]
    assert aliased(es_client, es_alias) == [second.index]
    assert es_client.count(index=es_alias)["count"] == 3
    assert second.old_indices == [first.index] and second.deleted_old
    assert not es_client.indices.exists(index=first.index)


def test_keep_old_keeps_the_previous_index(es_client, es_alias):
    first = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    second = build(es_client, es_alias, DOCS[:2], FINGERPRINT, OPTIONS, keep_old=True)
    assert aliased(es_client, es_alias) == [second.index]
    assert es_client.indices.exists(index=first.index) and not second.deleted_old


def test_bad_documents_go_to_the_rejects_file_and_fail_the_build(es_client, es_alias, tmp_path):
    first = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    bad = DOCS[:2] + [("x", "Wrong", "three dims", [1.0, 0.0, 0.0])]
    rejects = tmp_path / "rejects.jsonl"
    with pytest.raises(BuildError, match=r"1 documents were rejected \(limit 0\)"):
        build(es_client, es_alias, bad, FINGERPRINT, OPTIONS, rejects_path=rejects)
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in lines] == [("x", 400)]
    assert lines[0]["document"]["vector"] == [1.0, 0.0, 0.0] and "dimension" in lines[0]["error"]
    assert aliased(es_client, es_alias) == [first.index]  # still the old index
    assert sorted(es_client.indices.get(index=f"{es_alias}-*")) == [first.index]  # failed one removed


def test_rejects_within_the_limit_are_reported_and_the_rest_is_served(es_client, es_alias, tmp_path):
    bad = DOCS + [("x", "Wrong", "three dims", [1.0, 0.0, 0.0])]
    report = build(es_client, es_alias, bad, FINGERPRINT, OPTIONS, rejects_path=tmp_path / "r.jsonl",
                   max_rejects=1)
    assert (report.indexed, report.rejected) == (4, 1)
    assert "1 rejected" in report.summary()
    assert es_client.count(index=es_alias)["count"] == 4


def test_zero_vector_documents_are_indexed_without_a_vector(es_client, es_alias):
    docs = DOCS + [("e", "", "!!!", [0.0, 0.0, 0.0, 0.0])]
    report = build(es_client, es_alias, docs, FINGERPRINT, OPTIONS)
    assert (report.indexed, report.without_vector) == (5, 1)
    assert "vector" not in es_client.get(index=es_alias, id="e")["_source"]


def test_refuses_other_dims_unless_forced(es_client, es_alias):
    build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    wider = IndexOptions(dims=8, replicas=0)
    docs8 = [(i, t, x, list(v) + [0.0] * 4) for i, t, x, v in DOCS]
    with pytest.raises(ValueError, match="holds 4-dim vectors but the model has 8; pass --force"):
        build(es_client, es_alias, docs8, FINGERPRINT, wider)
    report = build(es_client, es_alias, docs8, FINGERPRINT, wider, force=True)
    assert read_meta(es_client, es_alias)[report.index]["dims"] == 8


def test_refuses_a_foreign_alias_unless_forced(es_client, es_alias):
    foreign = f"{es_alias}-foreign"
    es_client.indices.create(index=foreign, aliases={es_alias: {}})
    with pytest.raises(ValueError, match="was not built by dssm-search"):
        build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    report = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS, force=True)
    assert aliased(es_client, es_alias) == [report.index]
    assert not es_client.indices.exists(index=foreign)


def test_refuses_a_concrete_index_with_the_alias_name_unless_forced(es_client, es_alias):
    es_client.indices.create(index=es_alias)
    with pytest.raises(ValueError, match="is an existing index, not an alias; pass --force"):
        build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    report = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS, force=True)
    assert aliased(es_client, es_alias) == [report.index]


def test_bad_names_and_options_are_refused_before_any_request(es_client):
    with pytest.raises(ValueError, match="lowercase"):
        build(es_client, "Bad*Name", DOCS, FINGERPRINT, OPTIONS)
    with pytest.raises(ValueError, match="ef_construction >= m"):
        build(es_client, "ok", DOCS, FINGERPRINT, IndexOptions(dims=4, m=32, ef_construction=16))


def test_count_check_fails_the_build_and_keeps_the_alias(es_client, es_alias):
    first = build(es_client, es_alias, DOCS, FINGERPRINT, OPTIONS)
    twice = DOCS + [DOCS[0]]  # 5 acknowledged writes, 4 documents
    with pytest.raises(BuildError, match="count check failed: .* holds 4 documents but 5 were acknowledged"):
        build(es_client, es_alias, twice, FINGERPRINT, OPTIONS)
    assert aliased(es_client, es_alias) == [first.index]
