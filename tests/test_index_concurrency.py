"""Readers isolated from writers, and writers that survive kill -9, on the embedded index.

- searches in other processes while `index add`/`delete` run: 0 failures;
- a search opened before any number of writes keeps serving the version it opened;
- kill -9 of a build/add/delete at random moments leaves the old or the new index, and the next writer
  removes what the killed ones left;
- an index lost between the two renames of an older writer's swap (`.INDEX.old-PID`) is put back by
  the next open or write, with a line on stderr;
- an index written before generations opens as it is and is converted by its next write.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dssm.export import load_encoder, replace_directory
from indexer.build import add_documents, build_index, delete_documents
from indexer.embedded import EmbeddedIndex
from indexer.query import HybridSearcher

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample_corpus.jsonl"
PASSAGES = {"window": 12, "stride": 6, "limit": 2}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSSM_CACHE_DIR", str(tmp_path / "cache"))


def write_corpus(path: Path, start: int, stop: int) -> Path:
    path.write_text("\n".join(SAMPLE.read_text().splitlines()[start:stop]) + "\n")
    return path


def corpus_ids(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}


@pytest.fixture()
def index(tiny_model, tmp_path) -> Path:
    build_index(tiny_model, write_corpus(tmp_path / "corpus.jsonl", 0, 150), tmp_path / "index", n_trees=5,
                passages=PASSAGES)
    return tmp_path / "index"


def indexed_ids(index: Path) -> set[str]:
    opened = EmbeddedIndex.open(index)
    try:
        return set(opened.ids)
    finally:
        opened.close()


def leftovers(index: Path) -> list[str]:
    """What writers leave when killed: temporaries beside or inside the index, generations not in use."""
    beside = [path.name for path in index.parent.iterdir()
              if path.name.startswith(f".{index.name}.") and not path.name.endswith(".lock")]
    inside = [path.name for path in index.iterdir() if ".tmp-" in path.name] if index.is_dir() else []
    generations = [path.name for path in index.iterdir() if path.name.startswith("g-")] if index.is_dir() else []
    return beside + inside + (generations if len(generations) > 2 else [])


READER = """
import json, os, sys, time
sys.path.insert(0, {root!r})
from dssm.export import load_encoder
from indexer.query import HybridSearcher
encoder = load_encoder({model!r})
searches, failures = 0, []
deadline = time.monotonic() + 30
while not os.path.exists({stop!r}) and time.monotonic() < deadline:
    try:
        searcher = HybridSearcher.open({index!r}, encoder=encoder)
        searcher.search("library for image processing", k=5)
        searcher.search("network tools", k=5, mode="semantic", search_k=100)
        searcher.backend.close()
        searches += 1
    except Exception as error:
        failures.append(f"{{type(error).__name__}}: {{error}}")
print(json.dumps({{"searches": searches, "failures": failures}}))
"""


def test_searches_during_adds_and_deletes_never_fail(index, tiny_model, tmp_path):
    stop = tmp_path / "stop"
    script = READER.format(root=str(ROOT), model=str(tiny_model), stop=str(stop), index=str(index))
    readers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    try:
        time.sleep(1.0)                                             # the readers are searching
        added = write_corpus(tmp_path / "added.jsonl", 150, 170)
        encoder = load_encoder(tiny_model)
        for _ in range(5):
            add_documents(index, added, encoder=encoder)
            delete_documents(index, corpus_ids(added))
    finally:
        stop.touch()
        results = [json.loads(reader.communicate(timeout=60)[0]) for reader in readers]
    assert sum(result["searches"] for result in results) >= 10
    assert [failure for result in results for failure in result["failures"]] == []


def test_a_search_keeps_the_version_it_opened(index, tiny_model, tmp_path):
    encoder = load_encoder(tiny_model)
    searcher = HybridSearcher.open(index, encoder=encoder)
    before = searcher.search("library for image processing", k=5).hits
    deleted = list(before.ids)[:2]
    delete_documents(index, deleted)
    add_documents(index, write_corpus(tmp_path / "added.jsonl", 150, 160), encoder=encoder)
    delete_documents(index, corpus_ids(tmp_path / "added.jsonl"))    # the opened generation is gone now
    assert not (index / "g-000001").exists()
    assert searcher.search("library for image processing", k=5).hits == before
    assert searcher.titles(deleted).keys() == set(deleted)
    assert not set(deleted) & set(HybridSearcher.open(index, encoder=encoder).search("library for image processing").hits.ids)


OPERATION = """
import sys
sys.path.insert(0, {root!r})
from indexer.build import add_documents, build_index, delete_documents
operation, index, corpus = sys.argv[1:4]
if operation == "build":
    build_index({model!r}, corpus, index, n_trees=5, batch_size=16, passages={passages!r})
elif operation == "add":
    add_documents(index, corpus, batch_size=16)
else:
    delete_documents(index, [line.split('"id": "')[1].split('"')[0] for line in open(corpus) if line.strip()])
"""


def test_kill_9_at_random_moments_leaves_the_old_or_the_new_index(index, tiny_model, tmp_path, capfd):
    script = OPERATION.format(root=str(ROOT), model=str(tiny_model), passages=PASSAGES)
    base = tmp_path / "corpus.jsonl"
    added = write_corpus(tmp_path / "added.jsonl", 150, 190)
    rebuilt = write_corpus(tmp_path / "rebuilt.jsonl", 40, 190)
    started = time.monotonic()                    # how long one write takes here, kills spread over it
    subprocess.run([sys.executable, "-c", script, "add", str(index), str(added)], check=True)
    duration = time.monotonic() - started
    plan = [("delete", added), ("build", rebuilt), ("build", base), ("add", added), ("delete", added),
            ("build", base), ("add", added), ("delete", added)]
    rng, killed = random.Random(17), 0
    for operation, corpus in plan:
        before = indexed_ids(index)
        if (operation == "delete") != (corpus_ids(added) <= before) and operation != "build":
            continue                                # the add before it was killed: nothing to delete
        after = {"build": corpus_ids(corpus), "add": before | corpus_ids(corpus), "delete": before - corpus_ids(corpus)}
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-c", script, operation, str(index), str(corpus)],
                                   stderr=subprocess.DEVNULL)
        while process.poll() is None and time.monotonic() - started < rng.uniform(0.3, 1.0) * duration:
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        else:
            duration = min(duration, time.monotonic() - started)      # faster than the first: kill sooner
        process.wait()
        assert indexed_ids(index) in (before, after[operation])        # opens, and is one of the two
    assert killed >= 3
    kill_inside_a_writer(index, tmp_path, script)                     # at least one leftover, surely
    assert leftovers(index)
    capfd.readouterr()
    delete_documents(index, [sorted(indexed_ids(index))[0]])
    assert leftovers(index) == []
    assert "removed" in capfd.readouterr().err


def kill_inside_a_writer(index: Path, tmp_path: Path, script: str) -> None:
    """Run an add that kills itself (SIGKILL) once its new generation is half written."""
    hook = script.replace("from indexer.build import", "import os, signal, indexer.build\n"
                          "original = indexer.build.finish\n"
                          "def finish(*args, **kwargs):\n"
                          "    os.kill(os.getpid(), signal.SIGKILL)\n"
                          "indexer.build.finish = finish\nfrom indexer.build import")
    corpus = write_corpus(tmp_path / "one.jsonl", 190, 191)
    result = subprocess.run([sys.executable, "-c", hook, "add", str(index), str(corpus)], capture_output=True)
    assert result.returncode == -signal.SIGKILL


def lose_between_renames(index: Path) -> Path:
    """What a writer killed between the two renames of a directory swap leaves: no INDEX, the good copy in
    `.INDEX.old-PID` (PID: the killed writer's)."""
    script = ("import os, signal, sys\nindex = sys.argv[1]\n"
              "os.rename(index, os.path.join(os.path.dirname(index), f'.{os.path.basename(index)}.old-{os.getpid()}'))\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", script, str(index)]).returncode == -signal.SIGKILL
    assert not index.exists()
    return next(index.parent.glob(f".{index.name}.old-*"))


def test_an_index_lost_between_renames_is_put_back_by_the_next_search(index, capfd):
    ids = indexed_ids(index)
    capfd.readouterr()
    old = lose_between_renames(index)
    assert indexed_ids(index) == ids and not old.exists()
    message = capfd.readouterr().err
    assert f"recovered {index}" in message and old.name in message and len(message.splitlines()) == 1


def test_an_index_lost_between_renames_is_put_back_by_the_next_write(index, tiny_model, tmp_path, capfd):
    ids = indexed_ids(index)
    lose_between_renames(index)
    add_documents(index, write_corpus(tmp_path / "added.jsonl", 150, 155), encoder=load_encoder(tiny_model))
    assert indexed_ids(index) == ids | corpus_ids(tmp_path / "added.jsonl")
    assert "recovered" in capfd.readouterr().err and leftovers(index) == []


def test_replace_directory_puts_back_what_a_killed_swap_left(tmp_path, capfd):
    target, new = tmp_path / "model", tmp_path / "new"
    target.mkdir()
    (target / "config.json").write_text("old")
    lose_between_renames(target)
    new.mkdir()
    (new / "config.json").write_text("new")
    replace_directory(new, target)
    assert (target / "config.json").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["model"]
    assert "recovered" in capfd.readouterr().err


def test_an_index_from_before_generations_opens_and_is_converted_by_its_next_write(index, tiny_model, tmp_path):
    flat = tmp_path / "flat"
    shutil.copytree(index, flat)            # follows the links: files straight in the directory, as before
    shutil.rmtree(flat / "current")
    for path in flat.glob("g-*"):
        shutil.rmtree(path)
    ids = indexed_ids(flat)
    assert ids == indexed_ids(index) and not (flat / "current").exists()
    add_documents(flat, write_corpus(tmp_path / "added.jsonl", 150, 155), encoder=load_encoder(tiny_model))
    assert (flat / "current").is_symlink() and all((flat / name).is_symlink()
                                                   for name in json.loads((flat / "manifest.json").read_text())["files"])
    assert indexed_ids(flat) == ids | corpus_ids(tmp_path / "added.jsonl")
    assert np.array_equal(EmbeddedIndex.open(flat).vectors[:3], EmbeddedIndex.open(index).vectors[:3])
