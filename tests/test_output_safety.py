"""Issue 17 finding 1: a command that writes a directory never replaces another kind of thing silently."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import DATA

from cli import main


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join((DATA / "sample_corpus.jsonl").read_text().splitlines()[:30]) + "\n")
    return path


def user_folder(path):
    path.mkdir()
    (path / "thesis.txt").write_text("years of work")
    return path


def test_train_refuses_a_users_folder_and_writes_nothing(tmp_path, corpus):
    folder = user_folder(tmp_path / "mine")
    result = run("train", "--pairs", DATA / "sample_pairs.jsonl", "--corpus", DATA / "sample_corpus.jsonl",
                 "--out", folder, "--epochs", 1)
    assert result.exit_code == 2
    assert "holds a directory of 1 entries that dssm-search did not write, not a dssm model" in result.output
    assert "--force" in result.output and (folder / "thesis.txt").read_text() == "years of work"


def test_adapt_refuses_an_index(tiny_model, tmp_path, corpus):
    index = tmp_path / "index"
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", index, "--quiet").exit_code == 0
    result = run("adapt", "--model", tiny_model, "--corpus", corpus, "--out", index)
    assert result.exit_code == 2 and "holds a dssm-search document index, not a dssm model" in result.output
    assert (index / "manifest.json").is_file()


def test_document_and_tag_indexes_never_replace_each_other_without_force(tiny_model, tmp_path, corpus):
    index, tags = tmp_path / "index", tmp_path / "tags"
    (tmp_path / "tags.txt").write_text("editor\nviewer\n")
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", index, "--quiet").exit_code == 0
    assert run("tag", "index", "--model", tiny_model, "--tags", tmp_path / "tags.txt", "--out", tags).exit_code == 0
    result = run("tag", "index", "--model", tiny_model, "--tags", tmp_path / "tags.txt", "--out", index)
    assert result.exit_code == 2 and "holds a dssm-search document index, not a dssm-search tag index" in result.output
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tags, "--quiet")
    assert result.exit_code == 2 and "holds a dssm-search tag index, not a dssm-search document index" in result.output
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tiny_model, "--quiet")
    assert result.exit_code == 2 and "holds a dssm model" in result.output and (tiny_model / "config.json").is_file()
    assert json.loads((tags / "manifest.json").read_text())["format"] == "dssm-search-tags"   # untouched
    # with --force the other artefact is replaced whole, nothing of it left
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tags, "--quiet", "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((tags / "manifest.json").read_text())["format"] == "dssm-search-index"
    assert run("search", "--index", tags, "--mode", "lexical", "--json", "library").exit_code == 0


def test_force_replaces_a_users_folder_whole(tiny_model, tmp_path, corpus):
    folder = user_folder(tmp_path / "mine")
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", folder, "--quiet").exit_code == 2
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", folder, "--quiet", "--force")
    assert result.exit_code == 0 and not (folder / "thesis.txt").exists()
    assert [p.name for p in tmp_path.glob(".mine.*")] == [".mine.lock"]   # no copy left beside it


def test_a_file_is_never_replaced(tiny_model, tmp_path, corpus):
    path = tmp_path / "notes.txt"
    path.write_text("keep")
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", path, "--force", "--quiet")
    assert result.exit_code == 2 and "holds a file" in result.output and path.read_text() == "keep"


def test_hit_table_shows_control_characters_as_replacement(tiny_model, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "evil\nid\x00", "title": "line one\nline two\x1b[31m red",
                                  "text": "quokka tracker for marsupials"}) + "\n")
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "i", "--quiet").exit_code == 0
    result = run("search", "--index", tmp_path / "i", "--mode", "lexical", "quokka")
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "evil" in line]
    assert len(lines) == 1 and "\x00" not in result.output and "\x1b" not in result.output
    assert "evil\ufffdid\ufffd" in lines[0] and "line one\ufffdline two\ufffd[31m red" in lines[0]
    record = json.loads(run("search", "--index", tmp_path / "i", "--mode", "lexical", "--json", "quokka").output)
    assert record["id"] == "evil\nid\x00"   # JSON keeps the exact id


def test_invalid_utf8_in_a_corpus_is_replaced_with_one_warning(tiny_model, tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_bytes(b'{"id": "a", "title": "t", "text": "caf\xe9 quokka"}\n{"id": "b", "text": "fine"}\n')
    result = CliRunner().invoke(main, ["index", "build", "--model", str(tiny_model), "--corpus",
                                                       str(corpus), "--out", str(tmp_path / "i"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("bad.jsonl: 1 lines had invalid UTF-8; the bytes were replaced by U+FFFD") == 1
    record = json.loads(run("search", "--index", tmp_path / "i", "--mode", "lexical", "--json", "quokka").output)
    assert record["id"] == "a" and record["title"] == "t"


@pytest.mark.parametrize("args, message", [
    (("--layers", "99999999,1"), "more than this machine's"),
    (("--buckets", "99999999999"), "buckets must be < 2**31 - 1"),
])
def test_training_sizes_that_cannot_fit_are_one_line_errors(tmp_path, args, message):
    result = run("train", "--pairs", DATA / "sample_pairs.jsonl", "--corpus", DATA / "sample_corpus.jsonl",
                 "--out", tmp_path / "m", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_check_fits_memory_by_hand():
    from dssm.config import FeaturiserConfig, TowerConfig, check_fits_memory

    featuriser, tower = FeaturiserConfig(buckets=999), TowerConfig(layers=(10, 5))
    parameters = (999 + 2) * 10 + 11 * 5                       # table rows incl. padding, first bias, one dense
    check_fits_memory(featuriser, tower, memory_bytes=parameters * 16)
    with pytest.raises(ValueError, match=f"{parameters:,} parameters"):
        check_fits_memory(featuriser, tower, memory_bytes=parameters * 16 - 1)


@pytest.mark.parametrize("option", ["--n-trees", "--search-k"])
def test_huge_integers_are_range_errors(tiny_model, tmp_path, corpus, option):
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "i",
                 option, "99999999999999999999")
    assert result.exit_code == 2 and "is not in the range" in result.output


def test_index_add_through_a_symlink_updates_the_index_and_keeps_the_link(tiny_model, tmp_path, corpus):
    real, link = tmp_path / "real-index", tmp_path / "link"
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", real, "--quiet").exit_code == 0
    link.symlink_to(real)
    (tmp_path / "new.jsonl").write_text('{"id": "zz-quokka", "title": "zz-quokka", "text": "quokka tracker"}\n')
    result = run("index", "add", "--index", link, "--corpus", tmp_path / "new.jsonl", "--quiet")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert json.loads(run("search", "--index", real, "--mode", "lexical", "--json", "quokka").output.splitlines()[0])["id"] == "zz-quokka"


def test_evaluate_queries_with_invalid_utf8_warn_once(tiny_model, tmp_path, corpus):
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "i", "--quiet").exit_code == 0
    doc_id = json.loads(corpus.read_text().splitlines()[0])["id"]
    (tmp_path / "q.jsonl").write_bytes(b'{"qid": "q1", "query": "caf\xe9 library"}\n')
    (tmp_path / "qrels.tsv").write_text(f"q1\t{doc_id}\t1\n")
    result = run("evaluate", "--index", tmp_path / "i", "--queries", tmp_path / "q.jsonl", "--qrels", tmp_path / "qrels.tsv")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("q.jsonl: 1 lines had invalid UTF-8") == 1


def test_tag_index_with_invalid_utf8_warns_once(tiny_model, tmp_path):
    (tmp_path / "tags.txt").write_bytes(b"editor\ncaf\xe9 tools\n")
    result = run("tag", "index", "--model", tiny_model, "--tags", tmp_path / "tags.txt", "--out", tmp_path / "t")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("tags.txt: 1 lines had invalid UTF-8") == 1
