"""Bad training input: one-line errors naming the problem and the fix, exit code 2."""
import json

import pytest
from click.testing import CliRunner

from cli import main
from dssm.data import ReadStats, load_corpus, load_pairs
from dssm.export import load_encoder


def write(path, lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else (line + "\n").encode() for line in lines))
    return path


@pytest.fixture
def corpus(tmp_path):
    return write(tmp_path / "corpus.jsonl", [json.dumps({"id": "d1", "title": "t", "text": "one"}),
                                              json.dumps({"id": "d2", "title": "t", "text": "two"})])


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_missing_file(tmp_path, corpus):
    result = run("train", "--pairs", str(tmp_path / "nope.jsonl"), "--corpus", str(corpus), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "no such file" in result.output and "Traceback" not in result.output


def test_empty_pairs(tmp_path, corpus):
    pairs = write(tmp_path / "pairs.jsonl", [])
    result = run("train", "--pairs", str(pairs), "--corpus", str(corpus), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "no usable pairs" in result.output


def test_malformed_line_names_file_and_line(tmp_path, corpus):
    pairs = write(tmp_path / "pairs.jsonl", [json.dumps({"query": "q", "doc_id": "d1"}), "{not json"])
    result = run("train", "--pairs", str(pairs), "--corpus", str(corpus), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "pairs.jsonl:2: malformed JSON" in result.output


def test_unknown_doc_ids_counted_unless_skipped(tmp_path, corpus):
    pairs = write(tmp_path / "pairs.jsonl", [json.dumps({"query": "q", "doc_id": d}) for d in ["d1", "x1", "x2"]])
    with pytest.raises(ValueError, match=r"2 pairs name doc ids missing .*first: x1, x2.*--skip-missing"):
        load_pairs(pairs, load_corpus(corpus))
    stats = ReadStats()
    loaded, _ = load_pairs(pairs, load_corpus(corpus), skip_missing=True, stats=stats)
    assert loaded.queries == ["q"] and stats.missing_doc_ids == ["x1", "x2"]


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    pairs = write(tmp_path / "pairs.tsv", [b"caf\xe9 query\tdocument one\n", b"fine\tdocument two\n"])
    stats = ReadStats()
    loaded, corpus = load_pairs(pairs, None, stats=stats)
    assert stats.replaced_bytes_lines == 1 and loaded.queries[0] == "caf\ufffd query"
    assert corpus.texts == ["document one", "document two"]


@pytest.mark.parametrize("option,value,message", [("--margin", "-1", "margin must be >= 0"),
                                                  ("--layers", "300,0", "layer size must be >= 1"),
                                                  ("--negatives", "hardest", "unknown negatives"),
                                                  ("--batch-size", "1", "batch_size must be >= 2")])
def test_impossible_hyper_parameters(tmp_path, corpus, option, value, message):
    pairs = write(tmp_path / "pairs.jsonl", [json.dumps({"query": "q", "doc_id": "d1"})])
    result = run("train", "--pairs", str(pairs), "--corpus", str(corpus), "--out", str(tmp_path / "m"), option, value)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_model_errors(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="not a dssm model directory"):
        load_encoder(tmp_path)
    broken = tmp_path / "broken"
    import shutil
    shutil.copytree(tiny_model, broken)
    weight = next((broken / "weights").glob("*.f32"))
    data = bytearray(weight.read_bytes())
    data[0] ^= 0xFF
    weight.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="fails its checksum"):
        load_encoder(broken)
    weight.write_bytes(bytes(data[:-4]))
    with pytest.raises(ValueError, match="missing or truncated"):
        load_encoder(broken)
