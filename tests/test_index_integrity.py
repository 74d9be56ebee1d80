"""Search never serves a damaged embedded index: byte flips in the middle of every file, values out of
range behind a matching checksum, random bytes in Annoy (no SIGSEGV), and the per-identity hash cache.

The sampled check of old ("quick": first and last MiB) missed changes in the middle of files over
2 MiB; the index here is small, so `SAMPLE_BYTES` is set to 64 bytes while it is built and opened:
every file is then "large", and only a check of the whole file finds a change in its middle.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import indexer.manifest
from dssm.export import load_encoder
from indexer.build import build_index
from indexer.embedded import EmbeddedIndex
from indexer.manifest import sample_sha256, sha256_file
from indexer.query import HybridSearcher

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample_corpus.jsonl"
PASSAGES = {"window": 12, "stride": 6, "limit": 2}


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """SAMPLE_BYTES = 64 and a private hash cache, for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(indexer.manifest, "SAMPLE_BYTES", 64)
        patch.setenv("DSSM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield patch


@pytest.fixture(scope="module")
def source(sampled, tiny_model, tmp_path_factory) -> Path:
    """An index of 150 sample documents with passages (every kind of file). Read-only: copy it."""
    work = tmp_path_factory.mktemp("integrity")
    corpus = work / "corpus.jsonl"
    corpus.write_text("\n".join(SAMPLE.read_text().splitlines()[:150]) + "\n")
    build_index(tiny_model, corpus, work / "index", n_trees=5, passages=PASSAGES)
    return work / "index"


@pytest.fixture()
def index(source, tmp_path) -> Path:
    shutil.copytree(source, tmp_path / "index", symlinks=True)
    return tmp_path / "index"


def generation_dir(index: Path) -> Path:
    """Where the files are: the generation `current` points to (written here, not imported, so that
    these tests also run on code from before generations and fail there)."""
    link = index / "current"
    return index / os.readlink(link) if link.is_symlink() else index


def flip_middle(path: Path, count: int = 8) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + count] = bytes(byte ^ 0xA5 for byte in data[middle:middle + count])
    path.write_bytes(bytes(data))


def rehash(index: Path, name: str) -> None:
    """Make the manifest agree with `name` as it is now (a file damaged before it was checksummed)."""
    path = generation_dir(index) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][name].update(sha256=sha256_file(index / name), sample_sha256=sample_sha256(index / name),
                                   bytes=(index / name).stat().st_size)
    path.write_text(json.dumps(manifest))


def files_of(source: Path) -> list[str]:
    return sorted(json.loads((source / "manifest.json").read_text())["files"])


@pytest.mark.parametrize("name", ["documents.sqlite", "vectors.f32", "ids.json", "annoy.ann", "bm25.impacts.npy",
                                  "bm25.indptr.npy", "bm25.rows.npy", "bm25.terms.txt", "passages.f32",
                                  "passage_rows.i32"])
def test_a_byte_flip_in_the_middle_of_any_file_is_refused_by_search(index, tiny_model, name):
    assert name in files_of(index)
    flip_middle(index / name)
    with pytest.raises(ValueError) as error:
        HybridSearcher.open(index, encoder=load_encoder(tiny_model)).search("library for images")
    message = str(error.value)
    assert name in message and "\n" not in message
    assert f"dssm index verify --index {index}" in message and "dssm index build" in message


def test_a_warm_open_hashes_nothing_and_a_file_changed_since_is_hashed_again(index, monkeypatch, tmp_path):
    monkeypatch.setattr(indexer.manifest, "SETTLED_NS", 0)       # the index was written a moment ago
    monkeypatch.setenv("DSSM_CACHE_DIR", str(tmp_path / "cache"))
    hashed = []
    monkeypatch.setattr(indexer.manifest, "sha256_file", lambda path: hashed.append(path.name) or sha256_file(path))
    EmbeddedIndex.open(index).close()
    assert sorted(hashed) == files_of(index)                      # cold: the whole of every file
    hashed.clear()
    EmbeddedIndex.open(index).close()
    assert hashed == []                                           # warm: a stat per file
    EmbeddedIndex.open(index, verify="full").close()
    assert sorted(hashed) == files_of(index)                      # full: every file again
    hashed.clear()
    flip_middle(index / "vectors.f32")
    with pytest.raises(ValueError, match="vectors.f32 fails its sha256 checksum"):
        EmbeddedIndex.open(index)
    assert hashed == ["vectors.f32"]


def test_a_stored_vector_of_wrong_norm_is_refused_not_served(index, tiny_model):
    """The issue's "cosine 42,470": a corrupt row behind a matching checksum is never a hit."""
    encoder = load_encoder(tiny_model)
    query = "image processing library"
    vectors = np.fromfile(index / "vectors.f32", dtype="<f4").reshape(-1, encoder.dim)
    vectors[7] = 5000 * encoder.encode([query], side="query")[0]
    vectors.tofile(generation_dir(index) / "vectors.f32")
    rehash(index, "vectors.f32")
    searcher = HybridSearcher.open(index, encoder=encoder)
    for options in ({"mode": "semantic"}, {"mode": "hybrid"}, {"mode": "semantic", "exact_rerank": True}):
        with pytest.raises(ValueError, match="vectors.f32.*(norm|cosine)"):
            searcher.search(query, **options)


def test_passage_rows_out_of_range_are_refused(index):
    rows = np.fromfile(index / "passage_rows.i32", dtype="<i4")
    rows[len(rows) // 2] = 10 ** 6
    rows.tofile(generation_dir(index) / "passage_rows.i32")
    rehash(index, "passage_rows.i32")
    with pytest.raises(ValueError, match="passage_rows.i32 holds document rows out of range"):
        EmbeddedIndex.open(index)


def test_annoy_items_beyond_the_index_are_refused(index):
    from annoy import AnnoyIndex

    manifest = json.loads((index / "manifest.json").read_text())
    annoy = AnnoyIndex(manifest["model"]["dim"], "angular")
    for item in (0, 1, 10 ** 5):
        annoy.add_item(item, np.random.default_rng(item).normal(size=manifest["model"]["dim"]).tolist())
    annoy.build(2)
    annoy.save(str(generation_dir(index) / "annoy.ann"))
    rehash(index, "annoy.ann")
    with pytest.raises(ValueError, match="annoy.ann holds item ids up to 100000"):
        EmbeddedIndex.open(index)


def test_random_bytes_in_annoy_never_crash_the_process(index, tmp_path):
    """Annoy segfaults on some damaged files: search must refuse them before Annoy reads them."""
    script = f"""
import os, shutil, sys
import numpy as np
sys.path.insert(0, {str(ROOT)!r})
import indexer.manifest
indexer.manifest.SAMPLE_BYTES = 64
from indexer.embedded import EmbeddedIndex
rng = np.random.default_rng(5)
for trial in range(6):
    copy = {str(tmp_path)!r} + f"/copy{{trial}}"
    shutil.copytree({str(index)!r}, copy, symlinks=True)
    path = os.path.join(copy, "annoy.ann")
    data = bytearray(open(path, "rb").read())
    start = int(rng.integers(64, len(data) - 4096))
    data[start:start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    open(path, "wb").write(bytes(data))
    try:
        EmbeddedIndex.open(copy).semantic(np.ones(16, dtype=np.float32) / 4, 10, num_candidates=1000)
        print("served")
    except ValueError as error:
        print("refused", "annoy.ann" in str(error))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={"DSSM_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:-1] == ["refused True"] * 6
