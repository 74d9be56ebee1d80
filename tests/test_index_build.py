"""Embedded index directory: manifest, checksums, model mismatch, atomic build, add/delete, corpora."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import load_encoder, random_weights, save_model
from indexer.build import add_documents, build_index, delete_documents
from indexer.documents import CorpusError, iter_documents
from indexer.embedded import EmbeddedIndex
from indexer.manifest import describe_files, sha256_file, verify_files
from indexer.query import HybridSearcher

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_corpus.jsonl"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture()
def corpus(tmp_path) -> Path:
    lines = SAMPLE.read_text().splitlines()[:200]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def built(tiny_model, corpus, tmp_path) -> Path:
    build_index(tiny_model, corpus, tmp_path / "index", n_trees=5, search_k=1000)
    return tmp_path / "index"


class CountingEncoder:
    """Wraps an encoder, counts the texts it encodes, and can fail after `fail_after` batches."""

    def __init__(self, encoder, fail_after: int | None = None) -> None:
        self.encoder, self.fail_after, self.texts, self.batches = encoder, fail_after, 0, 0
        self.dim, self.fingerprint = encoder.dim, encoder.fingerprint

    def encode(self, texts, side="query", batch_size=1024):
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.batches += 1
        self.texts += len(texts)
        return self.encoder.encode(texts, side=side, batch_size=batch_size)


def test_manifest_records_model_params_counts_and_checksums(built, tiny_model):
    manifest = json.loads((built / "manifest.json").read_text())
    encoder = load_encoder(tiny_model)
    assert manifest["format"] == "dssm-search-index" and manifest["format_version"] == 1
    assert manifest["model"] == {"fingerprint": encoder.fingerprint, "path": str(tiny_model.resolve()), "dim": 16}
    assert manifest["metric"] == "angular"
    assert manifest["annoy"]["n_trees"] == 5 and manifest["annoy"]["search_k"] == 1000
    assert manifest["counts"]["documents"] == 200 == manifest["bm25"]["documents"]
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(built / name) and entry["bytes"] == (built / name).stat().st_size
    assert (built / "vectors.f32").stat().st_size == 200 * 16 * 4
    assert [p.name for p in built.parent.iterdir() if p.name.startswith(".index.")] == [".index.lock"]


def test_vectors_are_the_document_tower(built, tiny_model, corpus):
    index = EmbeddedIndex.open(built)
    first = next(iter_documents(corpus))
    expected = load_encoder(tiny_model).encode([first.encoder_text()], side="document")[0]
    assert index.ids[0] == first.id and np.allclose(index.vectors[0], expected)


def test_another_model_is_refused_naming_both_fingerprints(built, tmp_path, tiny_model):
    featuriser, tower = FeaturiserConfig(buckets=4096, max_features=256), TowerConfig(layers=(32, 32, 16))
    other = tmp_path / "other"
    save_model(other, featuriser, tower, random_weights(featuriser, tower, seed=8))
    with pytest.raises(ValueError) as error:
        HybridSearcher.open(built, model_dir=other)
    message = str(error.value)
    assert load_encoder(tiny_model).fingerprint[:16] in message and load_encoder(other).fingerprint[:16] in message
    assert "dssm index build" in message


def test_corrupt_and_truncated_files_are_refused(built):
    data = bytearray((built / "vectors.f32").read_bytes())
    data[100] ^= 0xFF
    (built / "vectors.f32").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="vectors.f32 fails its sha256"):
        EmbeddedIndex.open(built)
    (built / "annoy.ann").write_bytes((built / "annoy.ann").read_bytes()[:-10])
    with pytest.raises(ValueError, match="annoy.ann has .* bytes.*truncated"):
        EmbeddedIndex.open(built)


def test_quick_check_samples_full_check_reads_everything(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(3 * 1024 * 1024))
    manifest = {"files": describe_files(tmp_path, ["big.bin"])}
    data = bytearray(big.read_bytes())
    data[len(data) // 2] = 1                               # outside the first and last MiB
    big.write_bytes(bytes(data))
    verify_files(tmp_path, manifest, "quick")
    with pytest.raises(ValueError, match="big.bin fails its sha256"):
        verify_files(tmp_path, manifest, "full")
    data[10] = 1                                           # inside the first MiB
    big.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="big.bin fails its sha256"):
        verify_files(tmp_path, manifest, "quick")


def test_incomplete_manifest_is_refused(built):
    manifest = json.loads((built / "manifest.json").read_text())
    del manifest["model"]["fingerprint"]
    (built / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="lacks model.fingerprint"):
        EmbeddedIndex.open(built)
    (built / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is corrupt"):
        EmbeddedIndex.open(built)


def test_missing_or_foreign_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        EmbeddedIndex.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a dssm index"):
        EmbeddedIndex.open(tmp_path / "empty")


def test_crash_mid_build_leaves_the_old_index_usable(built, tiny_model, corpus):
    before = HybridSearcher.open(built).search("library", k=5).hits
    failing = CountingEncoder(load_encoder(tiny_model), fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        build_index(tiny_model, corpus, built, encoder=failing, batch_size=50)
    assert failing.batches == 1
    assert HybridSearcher.open(built).search("library", k=5).hits == before
    assert [p.name for p in built.parent.iterdir() if p.name.startswith(".") and p.suffix != ".lock"] == []


def test_one_writer_at_a_time(built, tmp_path):
    from indexer.build import index_lock

    with index_lock(built):
        with pytest.raises(ValueError, match="another build, add or delete is writing"):
            delete_documents(built, [EmbeddedIndex.open(built).ids[0]])
    assert EmbeddedIndex.open(built).manifest["counts"]["documents"] == 200


def test_out_that_is_not_an_index_is_not_replaced(tiny_model, corpus, tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="holds a directory of 1 entries that dssm-search did not write, not a dssm-search document index"):
        build_index(tiny_model, corpus, precious)
    assert (precious / "thesis.tex").read_text() == "keep me"


def test_add_encodes_only_new_documents(built, tiny_model, tmp_path):
    new = write_jsonl(tmp_path / "new.jsonl", [
        {"id": "zz-quokka", "title": "zz-quokka", "text": "quokka marsupial tracker"},
        {"id": "zz-wombat", "title": "zz-wombat", "text": "wombat burrow planner"}])
    counting = CountingEncoder(load_encoder(tiny_model))
    manifest = add_documents(built, new, encoder=counting)
    assert counting.texts == 2 and manifest["counts"]["documents"] == 202
    searcher = HybridSearcher.open(built)
    assert searcher.search("quokka", mode="lexical").hits.ids == ("zz-quokka",)
    assert searcher.search("wombat burrow", k=3).hits.ids[0] == "zz-wombat"


def test_add_existing_id_refused_or_replaced(built, corpus, tmp_path):
    first = next(iter_documents(corpus))
    again = write_jsonl(tmp_path / "again.jsonl", [{"id": first.id, "title": first.title, "text": "axolotl"}])
    with pytest.raises(ValueError, match="already in the index.*--on-duplicate last"):
        add_documents(built, again)
    manifest = add_documents(built, again, on_duplicate="last")
    assert manifest["counts"]["documents"] == 200
    searcher = HybridSearcher.open(built)
    assert searcher.search("axolotl", mode="lexical").hits.ids == (first.id,)
    assert searcher.titles([first.id]) == {first.id: first.title}


def test_add_and_delete_keep_tuned_fusion_and_calibration(built, corpus):
    from indexer.manifest import update_sections

    update_sections(built, {"fusion": {"fusion": "linear", "alpha": 0.3, "norm": "zscore"}})
    first = list(iter_documents(corpus))[0]
    manifest = delete_documents(built, [first.id])
    assert manifest["fusion"] == {"fusion": "linear", "alpha": 0.3, "norm": "zscore"}
    verify_files(built, manifest)


def test_delete(built, corpus):
    first, second = list(iter_documents(corpus))[:2]
    manifest = delete_documents(built, [first.id])
    assert manifest["counts"]["documents"] == 199
    index = EmbeddedIndex.open(built)
    assert first.id not in index.ids and second.id in index.ids
    assert first.id not in index.lexical(first.text, k=200)
    with pytest.raises(ValueError, match="not in the index.*nothing was deleted"):
        delete_documents(built, [second.id, "no-such-id"])
    assert second.id in EmbeddedIndex.open(built).ids


def test_duplicate_ids_listed_or_resolved(tiny_model, tmp_path):
    corpus = write_jsonl(tmp_path / "dup.jsonl", [
        {"id": "a", "title": "", "text": "first a"}, {"id": "b", "title": "", "text": "bee"},
        {"id": "a", "title": "", "text": "second a"}])
    with pytest.raises(CorpusError, match=r"1 duplicate ids: 'a' \(lines 1, 3\).*--on-duplicate last"):
        build_index(tiny_model, corpus, tmp_path / "index")
    assert not (tmp_path / "index").exists()
    build_index(tiny_model, corpus, tmp_path / "index", on_duplicate="last", n_trees=2)
    index = EmbeddedIndex.open(tmp_path / "index")
    assert index.ids == ["b", "a"] and index.lexical("second", k=5).ids == ("a",)


def test_tsv_and_csv_corpora(tmp_path):
    (tmp_path / "c.tsv").write_text("id\ttitle\ttext\nx\tX\thello world\ny\t\tbye\n")
    (tmp_path / "c.csv").write_text('id,text\nx,"hello, world"\n')
    assert [d.id for d in iter_documents(tmp_path / "c.tsv")] == ["x", "y"]
    assert next(iter_documents(tmp_path / "c.csv")).text == "hello, world"


@pytest.mark.parametrize("content, message", [
    ('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', r"bad\.jsonl:2: not valid JSON"),
    ('{"title": "no id", "text": "x"}\n', r"bad\.jsonl:1: missing or empty \"id\""),
    ('{"id": "a", "text": 3}\n', r"bad\.jsonl:1: .*must be strings"),
    ('[1, 2]\n', r"bad\.jsonl:1: expected an object"),
])
def test_corpus_errors_name_file_and_line(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(CorpusError, match=message):
        list(iter_documents(tmp_path / "bad.jsonl"))


def test_empty_corpus_refused(tiny_model, tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no documents"):
        build_index(tiny_model, tmp_path / "empty.jsonl", tmp_path / "index")
