"""Pseudo-queries from the corpus (dssm/pseudo.py), training with them, and `dssm adapt` end to end."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA

from cli import main
from dssm.config import TrainConfig
from dssm.data import Corpus, Pairs, add_pseudo_pairs, load_corpus
from dssm.export import load_encoder, read_config
from dssm.pseudo import MIN_WORDS, PSEUDO_KINDS, PseudoQueryError, parse_kinds, pseudo_queries

TEXT = "Tcl bindings to libcurl. It supports HTTP, FTP and many other protocols of the curl library."


def test_first_sentence_span_and_title_by_hand():
    queries = pseudo_queries("tclcurl", "TclCurl", TEXT, PSEUDO_KINDS, random.Random(0))
    first, span, title = queries
    assert first == "Tcl bindings to libcurl."
    assert 4 <= len(span.split()) <= 12 and span in TEXT
    assert title == "TclCurl"
    assert pseudo_queries("tclcurl", "tclcurl", TEXT, ("title",), random.Random(0)) == []  # the title is the id


def test_one_sentence_text_gives_its_first_words_never_all_of_it():
    text = "a small library for parsing command line options in C programs"
    query, = pseudo_queries("d", "", text, ("first-sentence",), random.Random(1))
    assert text.startswith(query) and 4 <= len(query.split()) <= len(text.split()) - 2


@pytest.mark.parametrize("seed", range(20))
def test_never_the_whole_document_and_deterministic(seed):
    rng = random.Random(seed)
    words = [f"w{n}" for n in range(rng.randint(1, 40))]
    text = " ".join(words)
    queries = pseudo_queries("d", "", text, ("first-sentence", "span"), random.Random(seed))
    assert queries == pseudo_queries("d", "", text, ("first-sentence", "span"), random.Random(seed))
    if len(words) < MIN_WORDS:
        assert queries == []
    for query in queries:
        assert query != text and len(query.split()) <= len(words) - 2 and query in text


def test_kinds_are_parsed_and_unknown_ones_refused():
    assert parse_kinds("span, first-sentence,span") == ("span", "first-sentence")
    assert parse_kinds("none") == () and parse_kinds("") == ()
    with pytest.raises(PseudoQueryError, match="unknown pseudo-query kind 'cloze'; choose from"):
        parse_kinds("span,cloze")
    with pytest.raises(ValueError, match="unknown pseudo-query kind"):
        TrainConfig(pseudo_queries="bogus")


def test_pseudo_pairs_follow_the_labelled_ones(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "a", "title": "A", "text": TEXT}) + "\n" +
                    json.dumps({"id": "b", "title": "B", "text": "too short"}) + "\n")
    corpus = load_corpus(path)
    assert corpus.titles == ["A", "B"] and corpus.bodies == [TEXT, "too short"]
    labelled = Pairs(["curl for tcl"], np.array([0], dtype=np.int32))
    pairs, rows = add_pseudo_pairs(labelled, corpus, ("first-sentence", "span"), seed=3)
    assert list(rows) == [1, 2] and pairs.queries[:2] == ["curl for tcl", "Tcl bindings to libcurl."]
    assert list(pairs.doc_index) == [0, 0, 0]   # "too short" gives none
    again, _ = add_pseudo_pairs(labelled, corpus, ("first-sentence", "span"), seed=3)
    assert again.queries == pairs.queries


def small_corpus(tmp_path, count=400):
    lines = (DATA / "sample_corpus.jsonl").read_text().splitlines()[:count]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.mark.slow
def test_train_with_corpus_pseudo_queries_records_them(tmp_path):
    corpus = small_corpus(tmp_path)
    pairs = tmp_path / "pairs.jsonl"
    ids = {json.loads(line)["id"] for line in corpus.read_text().splitlines()}
    pairs.write_text("".join(line + "\n" for line in (DATA / "sample_pairs.jsonl").read_text().splitlines()
                             if json.loads(line)["doc_id"] in ids))
    result = run("train", "--pairs", pairs, "--corpus", corpus, "--out", tmp_path / "m", "--epochs", 2,
                 "--batch-size", 64, "--layers", "32,32,16", "--buckets", 4096, "--pseudo-queries", "first-sentence,span",
                 "--passage-positives", 1, "--quiet")
    assert result.exit_code == 0, result.output
    assert "pseudo-queries: " in result.output
    training = read_config(tmp_path / "m")["training"]
    assert training["pseudo_pairs"] > 400 and training["config"]["pseudo_queries"] == "first-sentence,span"
    assert training["passage_pairs"] > 100 and training["documents"] == 400   # passages are not documents


@pytest.mark.slow
def test_adapt_end_to_end_starts_from_the_model_and_learns(tiny_model, tmp_path):
    corpus = small_corpus(tmp_path)
    out = tmp_path / "adapted"
    result = run("adapt", "--model", tiny_model, "--corpus", corpus, "--out", out, "--adapt-epochs", 2,
                 "--batch-size", 64, "--adapt-lr", 0.01, "--quiet")
    assert result.exit_code == 0, result.output
    assert "starting from the weights of" in result.output and "adapted" in result.output
    source, adapted = read_config(tiny_model), read_config(out)
    assert adapted["featuriser"] == source["featuriser"] and adapted["tower"] == source["tower"]
    assert adapted["training"]["initialised_from"] == str(tiny_model.resolve())
    assert adapted["training"]["pseudo_pairs"] > 400 and adapted["training"]["pairs"] == 0
    history = adapted["training"]["history"]
    assert history["val_mrr_at_10"][-1] > history["val_mrr_at_10"][0] or history["val_loss"][-1] < history["val_loss"][0]
    # the adapted model finds a document from its own first sentence better than the model it started from
    docs = [json.loads(line) for line in corpus.read_text().splitlines()]
    queries = [d["text"].split(". ")[0] for d in docs[:100]]
    texts = [f"{d['title']} {d['text']}" for d in docs]

    def mrr(model_dir):
        encoder = load_encoder(model_dir)
        scores = encoder.encode(queries, side="query") @ encoder.encode(texts, side="document").T
        ranks = 1 + (scores > scores[np.arange(100), np.arange(100)][:, None]).sum(axis=1)
        return float(np.mean(1 / ranks))

    assert mrr(out) > mrr(tiny_model) + 0.05


def test_adapt_bad_input_is_one_line_exit_2(tiny_model, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    result = run("adapt", "--model", tiny_model, "--corpus", tmp_path / "empty.jsonl", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "corpus is empty" in result.output and "Traceback" not in result.output
    (tmp_path / "short.jsonl").write_text('{"id": "a", "text": "two words"}\n')
    result = run("adapt", "--model", tiny_model, "--corpus", tmp_path / "short.jsonl", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "no pseudo-query could be cut" in result.output
    (tmp_path / "not-a-model").mkdir()
    result = run("adapt", "--model", tmp_path / "not-a-model", "--corpus", DATA / "sample_corpus.jsonl",
                 "--out", tmp_path / "o")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    result = run("adapt", "--model", tiny_model, "--corpus", DATA / "sample_corpus.jsonl", "--out", tmp_path / "o",
                 "--pseudo-queries", "none")
    assert result.exit_code == 2 and "pseudo-queries only" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_index_build_adapt_indexes_with_the_adapted_model(tiny_model, tmp_path):
    corpus = small_corpus(tmp_path, 200)
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "index",
                 "--adapt", tmp_path / "adapted", "--quiet", "--n-trees", 2)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] == load_encoder(tmp_path / "adapted").fingerprint
    assert manifest["model"]["fingerprint"] != load_encoder(tiny_model).fingerprint


@pytest.mark.parametrize("field", ["learning_rate", "gamma", "margin", "tag_weight", "layer_weight", "pseudo_weight",
                                   "distill_weight", "teacher_gamma", "table_lr_scale", "feature_dropout"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_hyper_parameters_are_refused(field, value):
    with pytest.raises(ValueError):
        TrainConfig(**{field: value})


def test_nan_learning_rate_is_a_one_line_usage_error(tmp_path):
    result = run("train", "--pairs", DATA / "sample_pairs.jsonl", "--corpus", DATA / "sample_corpus.jsonl",
                 "--out", tmp_path / "m", "--lr", "nan")
    assert result.exit_code == 2 and "learning_rate must be a finite number" in result.output
    assert not (tmp_path / "m").exists()


def test_a_collapsed_or_diverged_model_is_not_exported():
    from dssm.data import TrainingArrays
    from dssm.train import TrainingFailed, check_not_collapsed

    from dssm.config import FeaturiserConfig, TowerConfig, to_dict
    from dssm.export import random_weights, tower_prefixes

    featuriser, tower = FeaturiserConfig(buckets=64, max_features=8), TowerConfig(layers=(4, 3))
    config = {"featuriser": to_dict(featuriser), "tower": to_dict(tower), "towers": tower_prefixes(tower)}
    documents = np.array([[1, 2, 0], [3, 4, 5], [6, 0, 0]], dtype=np.int32)
    arrays = TrainingArrays(documents, documents, np.array([0, 1, 2], np.int32), np.array([0, 1, 2], np.int32),
                            np.array([[0], [1], [2]], np.int32))
    good = random_weights(featuriser, tower, seed=1)
    check_not_collapsed({"loss": [1.0, 0.5]}, good, config, arrays, np.arange(3), "m")   # a working model passes
    with pytest.raises(TrainingFailed, match="diverged"):
        check_not_collapsed({"loss": [1.0, float("nan")]}, good, config, arrays, np.arange(3), "m")
    zero = {name: np.zeros_like(value) for name, value in good.items()}
    with pytest.raises(TrainingFailed, match="collapsed"):
        check_not_collapsed({"loss": [1.0]}, zero, config, arrays, np.arange(3), "m")


def test_index_build_batch_size_zero_is_refused_and_the_index_kept(tiny_model, tmp_path):
    corpus = small_corpus(tmp_path, 20)
    assert run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "i", "--quiet").exit_code == 0
    before = (tmp_path / "i" / "manifest.json").read_text()
    result = run("index", "build", "--model", tiny_model, "--corpus", corpus, "--out", tmp_path / "i", "--batch-size", 0)
    assert result.exit_code == 2 and "batch-size" in result.output
    assert (tmp_path / "i" / "manifest.json").read_text() == before
    from indexer.build import build_index
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        build_index(tiny_model, corpus, tmp_path / "i", batch_size=0)


def test_passage_positives_by_hand():
    from dssm.data import add_passage_pairs, featurise_training
    from dssm.featurise import Featuriser
    from dssm.config import FeaturiserConfig

    body = " ".join(f"w{n}" for n in range(20))
    corpus = Corpus(["a", "b"], [f"A {body}", "B short text"], {"a": 0, "b": 1}, ["A", "B"], [body, "short text"])
    pairs = Pairs(["find a", "find b", "again a"], np.array([0, 1, 0], dtype=np.int32))
    pairs, corpus, rows, sources = add_passage_pairs(pairs, corpus, count=1, window=12)
    assert corpus.ids == ["a", "b", "a#p0"] and corpus.texts[2] == "A " + " ".join(f"w{n}" for n in range(12))
    assert list(rows) == [3, 4] and list(sources) == [0, 0]            # "b" is too short to have a passage
    assert pairs.queries[3:] == ["find a", "again a"] and list(pairs.doc_index[3:]) == [2, 2]
    arrays = featurise_training(Featuriser(FeaturiserConfig(buckets=64)), pairs, corpus)
    key = arrays.query_keys[0]
    assert sorted(arrays.positive_sets[key][arrays.positive_sets[key] >= 0].tolist()) == [0, 2]  # both positives
