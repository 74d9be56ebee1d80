"""A tiny real training run on the shipped sample: loss falls, retrieval beats chance, export round-trips."""
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA

from cli import main
from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig
from dssm.export import load_encoder
from dssm.train import train

FEATURISER = FeaturiserConfig(buckets=4096, max_features=128)
TOWER = TowerConfig(layers=(64, 64, 32))


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory):
    """600 sample pairs and the corpus restricted to their documents plus 400 distractors."""
    pairs = [json.loads(line) for line in open(DATA / "sample_pairs.jsonl", encoding="utf-8")][:600]
    docs = [json.loads(line) for line in open(DATA / "sample_corpus.jsonl", encoding="utf-8")]
    wanted = {p["doc_id"] for p in pairs}
    kept = [d for d in docs if d["id"] in wanted] + [d for d in docs if d["id"] not in wanted][:400]
    folder = tmp_path_factory.mktemp("pairs")
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept))
    return folder


@pytest.fixture(scope="module")
def trained(small_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "model"
    config = TrainConfig(epochs=4, batch_size=64, val_fraction=0.15, patience=10)
    result = train(str(small_pairs / "pairs.jsonl"), str(small_pairs / "corpus.jsonl"), str(out),
                   FEATURISER, TOWER, config, verbose=0, log=lambda *_: None)
    return out, result


def test_training_lowers_validation_loss_and_beats_random(trained):
    _, result = trained
    assert min(result.history["val_loss"]) < result.history["initial_val_loss"][0]
    pool = 400 + 600                                         # documents ranked per validation query
    random_mrr = sum(1 / r for r in range(1, 11)) / pool     # expected MRR@10 of a random ranking
    assert max(result.history["val_mrr_at_10"]) > 20 * random_mrr
    assert result.history["triplets_per_s"][-1] > 0


def test_export_round_trip_numpy_equals_keras(trained):
    out, result = trained
    encoder = load_encoder(out)
    assert encoder.fingerprint == result.fingerprint and encoder.dim == 32
    texts = ["font family", "", "Common Lisp library", "Привет"]
    ids = encoder.featuriser.padded(texts)
    serving = keras.saving.load_model(out / "keras" / "model.keras")
    keras_vectors = serving({"query_ids": ids, "document_ids": ids})
    for side in ("query", "document"):
        numpy_vectors = encoder.encode(texts, side=side)
        assert np.abs(keras.ops.convert_to_numpy(keras_vectors[side]) - numpy_vectors).max() <= 1e-5


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated interruption")


def test_resume_continues_the_interrupted_run(small_pairs, tmp_path):
    out = tmp_path / "model"
    config = TrainConfig(epochs=2, batch_size=64, val_fraction=0.15, patience=10)
    args = (str(small_pairs / "pairs.jsonl"), str(small_pairs / "corpus.jsonl"), str(out), FEATURISER, TOWER, config)
    with pytest.raises(KeyboardInterrupt):
        train(*args, verbose=0, log=lambda *_: None, extra_callbacks=[StopAfterFirstEpoch()])
    assert not out.exists()
    resumed = train(*args, resume=True, verbose=0, log=lambda *_: None)
    assert resumed.epochs_run == 1                            # only epoch 2 was left to run
    log = (out.with_name("model.training") / "train_log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["0", "1"]
    checkpoints = sorted(path.name for path in (out.with_name("model.training") / "checkpoints").iterdir())
    assert checkpoints == ["best.weights.h5", "last.weights.h5"]        # not one file per epoch


def test_cli_train_and_encode(small_pairs, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-model"
    result = runner.invoke(main, ["train", "--pairs", str(small_pairs / "pairs.jsonl"), "--corpus",
                                  str(small_pairs / "corpus.jsonl"), "--out", str(out), "--epochs", "1",
                                  "--batch-size", "64", "--buckets", "2048", "--layers", "32,16", "--quiet",
                                  "--loss", "triplet", "--negatives", "semi-hard"])
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.output
    encoded = runner.invoke(main, ["encode", "--model", str(out), "hello world"])
    assert encoded.exit_code == 0
    assert len(json.loads(encoded.output)["vector"]) == 16


@pytest.mark.parametrize("negatives,loss", [("random", "triplet"), ("batch-hard", "triplet"),
                                            ("batch-all", "triplet"), ("bm25", "softmax"), ("bm25", "triplet")])
def test_every_strategy_trains_one_epoch(small_pairs, tmp_path, negatives, loss):
    config = TrainConfig(epochs=1, batch_size=64, loss=loss, negatives=negatives, layer_weight=0.1, bm25_depth=5)
    result = train(str(small_pairs / "pairs.jsonl"), str(small_pairs / "corpus.jsonl"), str(tmp_path / "m"),
                   FEATURISER, TowerConfig(layers=(16, 8)), config, verbose=0, log=lambda *_: None)
    assert np.isfinite(result.history["loss"][0])


def test_asymmetric_towers_export_both_sides(small_pairs, tmp_path):
    out = tmp_path / "asymmetric"
    train(str(small_pairs / "pairs.jsonl"), str(small_pairs / "corpus.jsonl"), str(out), FEATURISER,
          TowerConfig(layers=(16, 8), shared=False), TrainConfig(epochs=1, batch_size=64), verbose=0, log=lambda *_: None)
    encoder = load_encoder(out)
    assert encoder.config["towers"] == {"query": "query_tower", "document": "document_tower"}
    texts = ["font family", "Common Lisp library"]
    query, document = encoder.encode(texts, side="query"), encoder.encode(texts, side="document")
    assert np.abs(query - document).max() > 1e-3                  # two towers, two sets of weights
    ids = encoder.featuriser.padded(texts)
    serving = keras.saving.load_model(out / "keras" / "model.keras")({"query_ids": ids, "document_ids": ids})
    assert np.abs(keras.ops.convert_to_numpy(serving["document"]) - document).max() <= 1e-5


def test_feature_dropout_blanks_ids_only_in_training():
    from dssm.model import DSSMModel
    model = DSSMModel(FEATURISER, TowerConfig(layers=(8,)), TrainConfig(feature_dropout=0.3))
    ids = np.arange(1, 4001, dtype="int32").reshape(40, 100)
    dropped = keras.ops.convert_to_numpy(model.drop_features(ids, training=True))
    kept = dropped > 0
    assert np.array_equal(dropped[kept], ids[kept])               # survivors unchanged, the rest padding
    assert 0.65 < kept.mean() < 0.75                               # 4,000 draws at p = 0.3
    assert np.array_equal(keras.ops.convert_to_numpy(model.drop_features(ids, training=False)), ids)
    with pytest.raises(ValueError, match="feature_dropout"):
        TrainConfig(feature_dropout=1.0)


def test_teacher_vectors_are_distilled_and_checked(small_pairs, tmp_path):
    """--teacher: query vectors in pairs-file order, document vectors in corpus order; a wrong count is refused."""
    pairs = sum(1 for _ in open(small_pairs / "pairs.jsonl"))
    docs = sum(1 for _ in open(small_pairs / "corpus.jsonl"))
    rng = np.random.default_rng(0)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for name, rows in (("queries", pairs), ("documents", docs)):
        vectors = rng.normal(size=(rows, 8)).astype(np.float32)
        np.save(teacher / f"{name}.npy", vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    logs = []
    args = (str(small_pairs / "pairs.jsonl"), str(small_pairs / "corpus.jsonl"), str(tmp_path / "m"), FEATURISER,
            TowerConfig(layers=(16, 8)), TrainConfig(epochs=1, batch_size=64, distill_weight=2.0))
    result = train(*args, verbose=0, log=logs.append, teacher_dir=str(teacher))
    assert np.isfinite(result.history["loss"][0]) and any("teacher: 8-d vectors" in line for line in logs)
    plain = train(*args[:5], TrainConfig(epochs=1, batch_size=64), verbose=0, log=lambda *_: None)
    assert result.history["loss"][0] > plain.history["loss"][0]       # the KL term is added (and positive)
    np.save(teacher / "queries.npy", np.zeros((pairs - 1, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="encode the pairs and corpus files in order"):
        train(*args, verbose=0, log=lambda *_: None, teacher_dir=str(teacher))


def test_teacher_vectors_of_pseudo_queries_land_on_their_rows(tmp_path):
    """DIR/pseudo.npy rows go to the pseudo-query pairs in the order training cuts them; a pseudo.json that
    names other kinds, seed or count is refused with the command that encodes the right ones."""
    from dssm.data import Corpus, Pairs, add_pseudo_pairs, featurise_training
    from dssm.featurise import Featuriser
    from dssm.train import _attach_teacher

    corpus = Corpus.from_records([("a", "Alpha tool. It converts images between many formats quickly."),
                                  ("b", "Beta library. It parses configuration files written in TOML.")])
    labelled = Pairs(["convert pictures", "read toml"], np.asarray([0, 1], dtype=np.int32))
    pairs, pseudo_rows = add_pseudo_pairs(labelled, corpus, ("first-sentence",), 13)
    assert len(pseudo_rows) == 2
    arrays = featurise_training(Featuriser(FEATURISER), pairs, corpus)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    np.save(teacher / "queries.npy", np.eye(4, dtype=np.float32)[:2])
    np.save(teacher / "documents.npy", np.eye(4, dtype=np.float32)[2:])
    np.save(teacher / "pseudo.npy", np.asarray([[0, 0, 0.5, 0.75], [0, 0, 0.75, 0.5]], dtype=np.float32))
    (teacher / "pseudo.json").write_text(json.dumps({"kinds": ["first-sentence"], "seed": 13, "count": 2}))
    _attach_teacher(arrays, teacher, 2, lambda *_: None, pseudo_rows, (("first-sentence",), 13))
    rows = arrays.teacher_queries[arrays.query_keys]            # the teacher vector each pair trains with
    assert rows[:2].tolist() == np.eye(4)[:2].tolist()
    assert rows[pseudo_rows].tolist() == [[0, 0, 0.5, 0.75], [0, 0, 0.75, 0.5]]
    with pytest.raises(ValueError, match="--pseudo-queries first-sentence --seed 14"):
        _attach_teacher(arrays, teacher, 2, lambda *_: None, pseudo_rows, (("first-sentence",), 14))


def test_throughput_counts_the_steps_run_when_a_call_runs_several():
    """10 steps at 8 per call: Keras names step 15 as the end of the second call, which ran 2."""
    from dssm.train import Throughput

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=8)
    throughput = Throughput(4)
    model.fit(np.zeros((40, 2)), np.zeros(40), batch_size=4, epochs=1, verbose=0, callbacks=[throughput])
    assert throughput.seen == 40 and throughput.rate > 0
