"""indexer/tags.py: tag vectors (zero-shot names, one-shot example means), the tag index, prediction."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dssm.export import load_encoder
from indexer import tags as tagging
from indexer.tags import TagFilter, TagIndex, build_tag_index, read_tag_examples, read_tags, tag_vectors

TAGS = ["implemented-in::python", "implemented-in::perl", "works-with-format::xml", "uitoolkit::gtk",
        "use::viewing", "works-with::image", "role::documentation", "devel::library"]
TEXTS = ["a python library for parsing xml", "GTK image viewer", "perl documentation", "!!!"]


@pytest.fixture(scope="module")
def encoder(tiny_model):
    return load_encoder(tiny_model)


@pytest.fixture(scope="module")
def tag_dir(tiny_model, encoder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tags") / "tags"
    build_tag_index(tiny_model, TAGS, out, examples={"use::viewing": ["an image viewer", "a picture browser"]},
                    n_trees=5, encoder=encoder)
    return out


def brute_force(encoder, vectors: np.ndarray, texts: list[str], k: int) -> list[list[tuple[str, float]]]:
    scores = encoder.encode(texts, side="query").astype(np.float64) @ vectors.astype(np.float64).T
    return [[(TAGS[row], score[row]) for row in sorted(range(len(TAGS)), key=lambda r: (-score[r], r))[:k]]
            for score in scores]


def test_zero_shot_tag_is_its_name_on_the_document_tower(encoder):
    vectors = tag_vectors(encoder, TAGS)
    assert vectors.shape == (len(TAGS), encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, encoder.encode(TAGS, side="document"), atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_one_shot_tag_is_the_normalised_mean_of_its_examples_query_vectors(encoder):
    examples = ["an image viewer", "a picture browser", "???"]  # "???" has no features: left out of the mean
    vectors = tag_vectors(encoder, ["use::viewing", "devel::library"], {"use::viewing": examples})
    query = encoder.encode(examples[:2], side="query")
    mean = (query[0] + query[1]) / np.linalg.norm(query[0] + query[1])
    np.testing.assert_allclose(vectors[0], mean, atol=1e-6)
    np.testing.assert_allclose(vectors[1], encoder.encode(["devel::library"], side="document")[0], atol=1e-7)


def test_one_shot_tag_whose_examples_have_no_words_is_refused(encoder):
    with pytest.raises(ValueError, match="'x::y'.*none of its 2 example texts"):
        tag_vectors(encoder, ["x::y"], {"x::y": ["!!!", "..."]})


def test_manifest_records_kind_model_counts_and_checksums(tag_dir, encoder):
    manifest = json.loads((tag_dir / "manifest.json").read_text())
    assert (manifest["format"], manifest["format_version"], manifest["kind"]) == ("dssm-search-tags", 1, "tags")
    assert manifest["model"]["fingerprint"] == encoder.fingerprint and manifest["model"]["dim"] == encoder.dim
    assert manifest["counts"] == {"tags": len(TAGS), "one_shot": 1, "zero_vectors": 0}
    assert json.loads((tag_dir / "tags.json").read_text()) == TAGS
    assert (tag_dir / "vectors.f32").stat().st_size == len(TAGS) * encoder.dim * 4
    from indexer.manifest import sha256_file
    assert {name: entry["sha256"] for name, entry in manifest["files"].items()} == {
        name: sha256_file(tag_dir / name) for name in ("tags.json", "vectors.f32", "annoy.ann")}


def test_predict_exact_equals_brute_force_and_annoy_agrees_on_a_small_set(tag_dir, encoder):
    index = TagIndex.open(tag_dir, encoder)
    assert index.exact  # 8 tags: exact search
    expected = brute_force(encoder, np.asarray(index.vectors), TEXTS[:3], k=3)
    for mode in (True, False):
        got = index.predict(TEXTS[:3], k=3, exact=mode, search_k=-1 if not mode else None)
        assert [[tag for tag, _ in tags] for tags in got] == [[tag for tag, _ in tags] for tags in expected]
        for tags, want in zip(got, expected):
            assert [score for _, score in tags] == pytest.approx([score for _, score in want], abs=2e-5)


def test_predict_filters_by_min_similarity_and_gives_no_tags_to_a_text_without_features(tag_dir, encoder):
    index = TagIndex.open(tag_dir, encoder)
    assert index.predict(TEXTS, k=len(TAGS))[3] == []  # "!!!": zero vector, no tags
    everything = index.predict(TEXTS[:1], k=len(TAGS))[0]
    floor = everything[3][1]
    assert everything[4][1] < floor
    assert index.predict(TEXTS[:1], k=len(TAGS), min_similarity=floor)[0] == everything[:4]
    assert index.predict(TEXTS[:1], k=2, min_similarity=floor)[0] == everything[:2]
    with pytest.raises(ValueError, match="k .* positive integer"):
        index.predict(TEXTS, k=0)
    with pytest.raises(TypeError):
        index.predict("one string")


def test_a_tag_index_of_another_model_is_refused_naming_both_fingerprints(tag_dir, tmp_path):
    from dssm.config import FeaturiserConfig, TowerConfig
    from dssm.export import random_weights, save_model

    featuriser, tower = FeaturiserConfig(buckets=4096, max_features=256), TowerConfig(layers=(32, 32, 16))
    other = tmp_path / "other"
    fingerprint = save_model(other, featuriser, tower, random_weights(featuriser, tower, seed=99))
    built_with = json.loads((tag_dir / "manifest.json").read_text())["model"]["fingerprint"]
    with pytest.raises(ValueError) as error:
        tagging.open_tag_index(tag_dir, other)
    message = str(error.value)
    assert built_with[:16] in message and fingerprint[:16] in message and "dssm tag index --model" in message
    assert "\n" not in message


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupt_or_truncated_files_are_refused(tag_dir, encoder, tmp_path, damage):
    copy = tmp_path / "tags"
    shutil.copytree(tag_dir, copy)
    path = copy / "vectors.f32"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[5] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-4]))
    else:
        path.unlink()
    with pytest.raises(ValueError, match=r"vectors\.f32 .*(checksum|truncated|missing)|missing vectors\.f32"):
        TagIndex.open(copy, encoder)


def test_not_a_tag_index_is_refused(small_index, encoder):
    with pytest.raises(ValueError, match="is not a tag index.*dssm tag index"):
        TagIndex.open(small_index, encoder)


def test_rebuild_replaces_the_index_atomically_and_a_failed_build_leaves_the_old_one(tiny_model, encoder, tmp_path):
    out = tmp_path / "tags"
    build_tag_index(tiny_model, TAGS[:2], out, encoder=encoder)
    build_tag_index(tiny_model, TAGS, out, encoder=encoder)
    assert json.loads((out / "tags.json").read_text()) == TAGS
    with pytest.raises(ValueError):
        build_tag_index(tiny_model, TAGS[:3], out, examples={"x::y": ["!!!"]}, encoder=encoder)
    assert json.loads((out / "tags.json").read_text()) == TAGS
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tags"]  # no temp dirs left behind


def test_example_tags_missing_from_the_list_are_added(tiny_model, encoder, tmp_path):
    manifest = build_tag_index(tiny_model, TAGS[:2], tmp_path / "t", examples={"new::tag": ["a new thing"]},
                               encoder=encoder)
    assert json.loads((tmp_path / "t" / "tags.json").read_text()) == [*TAGS[:2], "new::tag"]
    assert manifest["counts"]["one_shot"] == 1


def test_read_tags_from_a_list_or_a_tagged_jsonl_file(tmp_path):
    listed = tmp_path / "tags.txt"
    listed.write_text("b::x\n\na::y\n")
    assert read_tags(listed) == ["b::x", "a::y"]
    tagged = tmp_path / "tagged.jsonl"
    tagged.write_text('{"text": "t1", "tags": ["b::x", "a::y"]}\n{"text": "t2", "tags": ["a::y", "c"]}\n')
    assert read_tags(tagged) == ["b::x", "a::y", "c"]
    listed.write_text("a\n!!!\n")
    with pytest.raises(ValueError, match="no letter or digit"):
        read_tags(listed)
    listed.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match="duplicate tags"):
        read_tags(listed)


def test_read_tag_examples_groups_examples_by_tag(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text('{"tag": "a", "example": "one"}\n{"tag": "b", "example": ["two", "three"]}\n'
                    '{"tag": "a", "example": "four", "id": "x"}\n')
    assert read_tag_examples(path) == {"a": ["one", "four"], "b": ["two", "three"]}
    path.write_text('{"tag": "a", "example": ""}\n')
    with pytest.raises(ValueError, match=":1: \"example\" must be a non-empty text"):
        read_tag_examples(path)


def test_tag_filter_for_elasticsearch_needs_every_tag():
    assert TagFilter.of([]) is None
    assert TagFilter.of(["a", "b", "a"]).es_query() == {
        "bool": {"filter": [{"terms": {"tags": ["a"]}}, {"terms": {"tags": ["b"]}}]}}
    with pytest.raises(ValueError, match="empty"):
        TagFilter.of([" "])


@pytest.mark.slow
def test_two_hundred_thousand_tags(tiny_model, encoder, tmp_path):
    """The issue's scale: 200,000 tags (synthetic word::word strings) with the tiny random model
    (~10 s on 2 cores, most of it featurising the tags); Annoy search agrees with exact search."""
    words = sorted({word for line in (Path(__file__).parent.parent / "data" / "sample_corpus.jsonl").open()
                    for word in json.loads(line)["text"].lower().split() if word.isalpha()})
    rng = np.random.default_rng(0)
    tags = list(dict.fromkeys(f"{words[a]}::{words[b]}" for a, b in rng.integers(0, len(words), (230_000, 2))))[:200_000]
    assert len(tags) == 200_000
    manifest = build_tag_index(tiny_model, tags, tmp_path / "tags", n_trees=10, encoder=encoder)
    assert manifest["counts"]["tags"] == 200_000 and manifest["annoy"]["items"] == 200_000
    index = TagIndex.open(tmp_path / "tags", encoder)
    assert not index.exact
    texts = TEXTS[:3] + ["command line tool to convert images", "a library for network sockets"]
    exact = index.predict(texts, k=10, exact=True)
    approximate = index.predict(texts, k=10)
    recall = np.mean([len({t for t, _ in a} & {t for t, _ in e}) / 10 for a, e in zip(approximate, exact)])
    assert recall >= 0.9
    assert all(tag in tags for predicted in approximate for tag, _ in predicted)
