"""Tag training: (text, tag) pairs built from tagged texts, false negatives masked, a tiny run learns tags."""
import json

import numpy as np
import pytest
from conftest import DATA

from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig
from dssm.data import Corpus, Pairs, add_tag_pairs, featurise_training, known_positives
from dssm.export import load_encoder
from dssm.featurise import Featuriser
from dssm.losses import softmax_loss
from dssm.model import batch_loss
from dssm.tagdata import TaggedTexts
from dssm.train import train

FEATURISER = FeaturiserConfig(buckets=4096, max_features=128)
TOWER = TowerConfig(layers=(64, 32))
TOPICS = {  # tag -> words that texts carrying it use
    "implemented-in::python": "python pip module interpreter script",
    "implemented-in::rust": "rust cargo crate borrow compiler",
    "use::gameplaying": "game play level player score",
    "use::editing": "edit editor text buffer cursor",
    "interface::commandline": "command terminal shell option flag",
    "interface::graphical": "window gtk button mouse desktop",
}


def tagged_texts(count: int, seed: int) -> TaggedTexts:
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    texts, tags = [], []
    for _ in range(count):
        chosen = [names[i] for i in sorted(rng.choice(len(names), size=int(rng.integers(1, 4)), replace=False))]
        words = [w for tag in chosen for w in rng.choice(TOPICS[tag].split(), size=3, replace=False)]
        texts.append(" ".join(rng.permutation(words + ["the", "a", "tool"])))
        tags.append(chosen)
    return TaggedTexts([str(n) for n in range(count)], texts, tags)


def test_tag_pairs_join_search_pairs_and_keep_every_positive():
    corpus = Corpus(["d1", "d2"], ["first doc", "second doc"], {"d1": 0, "d2": 1})
    pairs = Pairs(["q one", "q two"], np.array([0, 1], dtype=np.int32))
    tagged = TaggedTexts(["t1", "t2"], ["python game", "rust editor"],
                         [["lang::python", "use::game"], ["lang::rust", "use::game"]])
    joined, corpus2, tag_rows = add_tag_pairs(pairs, corpus, tagged)
    assert corpus2.ids == ["d1", "d2", "tag:lang::python", "tag:use::game", "tag:lang::rust"]
    assert corpus2.texts[2:] == ["lang::python", "use::game", "lang::rust"]
    assert joined.queries == ["q one", "q two", "python game", "python game", "rust editor", "rust editor"]
    assert joined.doc_index.tolist() == [0, 1, 2, 3, 4, 3] and tag_rows.tolist() == [2, 3, 4, 5]
    arrays = featurise_training(Featuriser(FEATURISER), joined, corpus2)
    sets = [sorted(d for d in arrays.positive_sets[arrays.query_keys[row]].tolist() if d >= 0) for row in range(6)]
    assert sets == [[0], [1], [2, 3], [2, 3], [3, 4], [3, 4]]
    assert arrays.pair_queries(np.array([2, 3])).tolist()[0] == arrays.pair_queries(np.array([2, 3])).tolist()[1]


def test_positive_set_masks_in_batch_false_negatives():
    """Row 0's text carries the tag of column 1 too: that column must not count as its negative."""
    config = TrainConfig(loss="softmax", negatives="batch-all", gamma=5.0)
    query = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    docs = np.array([[0.8, 0.6], [0.6, 0.8]], dtype="float32")
    out = {"query": query, "pos": docs, "query_hidden": [], "pos_hidden": []}
    batch = {"query_key": np.array([0, 1]), "doc_key": np.array([10, 11])}
    unmasked = float(batch_loss(batch, out, config, seed=None))
    known = known_positives(np.array([[10, 11], [11, -1]]), batch["doc_key"])
    assert np.asarray(known).tolist() == [[True, True], [False, True]]
    masked = float(batch_loss({**batch, "known_positives": known}, out, config, seed=None))
    scores = query @ docs.T
    expected_unmasked = float(softmax_loss(scores, np.array([0, 1]), np.eye(2, dtype=bool), 5.0))
    row1 = -np.log(np.exp(5 * 0.8) / (np.exp(5 * 0.8) + np.exp(5 * 0.6)))
    assert unmasked == pytest.approx(expected_unmasked, abs=1e-5)
    assert masked == pytest.approx((0.0 + row1) / 2, abs=1e-5)   # row 0 keeps only its own column


def test_tag_training_ranks_a_texts_tags_first(tmp_path):
    train_file, test = tmp_path / "tags.jsonl", tagged_texts(60, seed=2)
    data = tagged_texts(300, seed=1)
    train_file.write_text("".join(json.dumps({"id": i, "text": t, "tags": g}) + "\n"
                                  for i, t, g in zip(data.ids, data.texts, data.tags)))
    config = TrainConfig(epochs=8, batch_size=32, learning_rate=5e-3, val_fraction=0.1, patience=20)
    result = train(None, None, str(tmp_path / "model"), FEATURISER, TOWER, config, verbose=0,
                   log=lambda *_: None, tags_path=str(train_file))
    assert result.history["val_mrr_at_10"][-1] > 0.6
    encoder = load_encoder(tmp_path / "model")
    names = list(TOPICS)
    scores = encoder.encode(test.texts, side="query") @ encoder.encode(names, side="document").T
    top = [names[i] for i in scores.argmax(axis=1)]
    precision_at_1 = np.mean([tag in tags for tag, tags in zip(top, test.tags)])
    chance = np.mean([len(tags) / len(names) for tags in test.tags])
    assert precision_at_1 > 0.9 > 2 * chance


def test_search_and_tag_pairs_train_one_model(tmp_path):
    pairs = [json.loads(line) for line in open(DATA / "sample_pairs.jsonl", encoding="utf-8")][:200]
    docs = {d["id"]: d for d in map(json.loads, open(DATA / "sample_corpus.jsonl", encoding="utf-8"))}
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(docs[p["doc_id"]]) + "\n" for p in pairs))
    data = tagged_texts(100, seed=3)
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps({"text": t, "tags": g}) + "\n"
                                                 for t, g in zip(data.texts, data.tags)))
    logs = []
    config = TrainConfig(epochs=1, batch_size=64, val_fraction=0.1)
    result = train(str(tmp_path / "pairs.jsonl"), str(tmp_path / "corpus.jsonl"), str(tmp_path / "model"),
                   FEATURISER, TOWER, config, verbose=0, log=logs.append, tags_path=str(tmp_path / "tags.jsonl"))
    info = json.loads((tmp_path / "model" / "config.json").read_text())["training"]
    tag_pairs = sum(len(g) for g in data.tags)
    assert info["tag_pairs"] == tag_pairs and info["pairs"] == 200 and info["documents"] == len({p["doc_id"] for p in pairs})
    assert any(f"{tag_pairs} (text, tag) pairs beside 200 search pairs" in line for line in logs)
    assert "val_mrr_at_10" in result.history                 # validated on held-out search pairs


def test_training_needs_pairs_or_tags(tmp_path):
    with pytest.raises(ValueError, match="give --pairs"):
        train(None, None, str(tmp_path / "m"), FEATURISER, TOWER, TrainConfig(epochs=1), verbose=0, log=lambda *_: None)


def test_symmetric_softmax_adds_the_document_to_query_direction():
    query = np.array([[1.0, 0.0], [0.6, 0.8]], dtype="float32")
    docs = np.array([[0.8, 0.6], [0.28, 0.96]], dtype="float32")
    out = {"query": query, "pos": docs, "query_hidden": [], "pos_hidden": []}
    batch = {"query_key": np.array([0, 1]), "doc_key": np.array([10, 11])}
    plain = float(batch_loss(batch, out, TrainConfig(gamma=5.0), seed=None))
    both = float(batch_loss(batch, out, TrainConfig(gamma=5.0, symmetric=True), seed=None))
    scores = query @ docs.T
    backward = float(softmax_loss(scores.T, np.array([0, 1]), np.eye(2, dtype=bool), 5.0))
    assert both == pytest.approx((plain + backward) / 2, abs=1e-5) and abs(backward - plain) > 1e-3
    with pytest.raises(ValueError, match="symmetric"):
        TrainConfig(loss="triplet", symmetric=True)


@pytest.mark.slow
def test_cli_round_trip_on_the_sample_tags(tmp_path):
    """Train on the shipped debtags sample, index seen + unseen tags, evaluate on the held-out texts."""
    from click.testing import CliRunner

    from cli import main
    runner = CliRunner()
    model, tag_dir = tmp_path / "model", tmp_path / "tags"
    trained = runner.invoke(main, ["train", "--tags", str(DATA / "sample_tags_train.jsonl"), "--out", str(model),
                                   "--epochs", "3", "--batch-size", "128", "--buckets", "8192", "--layers", "128,64",
                                   "--quiet"])
    assert trained.exit_code == 0, trained.output
    tags = (DATA / "sample_tags_seen.txt").read_text() + (DATA / "sample_tags_unseen.txt").read_text()
    (tmp_path / "all.txt").write_text(tags)
    indexed = runner.invoke(main, ["tag", "index", "--model", str(model), "--tags", str(tmp_path / "all.txt"),
                                   "--out", str(tag_dir)])
    assert indexed.exit_code == 0, indexed.output
    report = runner.invoke(main, ["tag", "evaluate", "--tags-index", str(tag_dir), "--json", "--test",
                                  str(DATA / "sample_tags_test.jsonl"), "--unseen", str(DATA / "sample_tags_unseen.txt")])
    assert report.exit_code == 0, report.output
    scores = json.loads(report.output)
    seen_tags = len((DATA / "sample_tags_seen.txt").read_text().split())
    assert scores["restricted"]["seen"]["R@5"] > 10 * 5 / seen_tags           # far above a random ranking
    assert scores["restricted"]["unseen"]["texts"] > 0
    unseen = set((DATA / "sample_tags_unseen.txt").read_text().split())
    test_texts = [json.loads(line)["text"] for line in open(DATA / "sample_tags_test.jsonl", encoding="utf-8")][:100]
    from indexer.tags import open_tag_index
    predicted = {tag for tags in open_tag_index(tag_dir, model).predict(test_texts, k=10) for tag, _ in tags}
    assert predicted & unseen and predicted - unseen                         # both kinds are assigned
    table = runner.invoke(main, ["tag", "evaluate", "--tags-index", str(tag_dir), "--test",
                                 str(DATA / "sample_tags_test.jsonl")])
    assert table.exit_code == 0 and "restricted   seen" in table.output


def test_search_and_tag_pairs_never_share_a_batch():
    from dssm.data import make_dataset
    corpus = Corpus([f"d{i}" for i in range(40)], [f"document {i}" for i in range(40)], {f"d{i}": i for i in range(40)})
    pairs = Pairs([f"query {i}" for i in range(40)], np.arange(40, dtype=np.int32))
    joined, corpus2, tag_rows = add_tag_pairs(pairs, corpus, tagged_texts(30, seed=4))
    arrays = featurise_training(Featuriser(FEATURISER), joined, corpus2)
    rows = np.arange(len(joined.queries))
    batches = list(make_dataset(arrays, rows, 8, seed=1, kinds=np.isin(rows, tag_rows).astype(int)))
    kinds = [set((b["doc_key"].numpy() >= 40).tolist()) for b in batches]
    assert all(len(k) == 1 for k in kinds) and {True} in kinds and {False} in kinds
    assert sum(len(b["doc_key"]) for b in batches) <= len(rows) and len(batches) >= len(rows) // 8 - 1


def test_batches_mark_every_known_positive_column():
    """known_positives (mined negative columns included) with the doc-key match is membership in the
    query's positive set."""
    from dssm.data import make_dataset
    corpus = Corpus([f"d{i}" for i in range(40)], [f"document {i}" for i in range(40)], {f"d{i}": i for i in range(40)})
    pairs = Pairs([f"query {i}" for i in range(40)], np.arange(40, dtype=np.int32))
    joined, corpus2, tag_rows = add_tag_pairs(pairs, corpus, tagged_texts(30, seed=4))
    arrays = featurise_training(Featuriser(FEATURISER), joined, corpus2)
    rows = np.arange(len(joined.queries))
    mined = np.random.default_rng(0).integers(-1, len(corpus2.ids), size=(len(rows), 3)).astype(np.int32)
    mined[:, 0] = arrays.doc_index[rows]                # some draws are a positive: it must be marked
    batches = list(make_dataset(arrays, rows, 8, seed=1, shuffle=False, mined=mined))
    marked = 0
    for batch in batches:
        columns = np.concatenate([batch["doc_key"].numpy(), batch["neg_key"].numpy()])
        sets = arrays.positive_sets[batch["query_key"].numpy()]
        expected = (sets[:, :, None] == columns[None, None, :]).any(axis=1)
        own = batch["doc_key"].numpy()[:, None] == columns[None, :]        # the model matches doc keys itself
        assert (batch["known_positives"].numpy() | own).tolist() == expected.tolist()
        marked += int((expected & ~own).sum())
    assert marked > 0                                   # beyond each row's own column


def test_each_epoch_is_a_new_seeded_permutation():
    from dssm.data import make_dataset
    corpus = Corpus([f"d{i}" for i in range(43)], [f"document {i}" for i in range(43)], {f"d{i}": i for i in range(43)})
    arrays = featurise_training(Featuriser(FEATURISER), Pairs([f"query {i}" for i in range(43)], np.arange(43, dtype=np.int32)), corpus)

    def epochs(dataset, count=2):
        return [[b["doc_key"].numpy().tolist() for b in dataset] for _ in range(count)]

    first, second = epochs(make_dataset(arrays, np.arange(43), 8, seed=3))
    assert [len(b) for b in first] == [8] * 5                         # the partial last batch is dropped
    assert len(set(sum(first, []))) == 40 and first != second          # each row once at most, reshuffled
    assert epochs(make_dataset(arrays, np.arange(43), 8, seed=3)) == [first, second]      # seeded
    assert epochs(make_dataset(arrays, np.arange(43), 8, seed=4))[0] != first
    ordered = epochs(make_dataset(arrays, np.arange(43), 8, seed=3, shuffle=False), 1)[0]
    assert sum(ordered, []) == list(range(40))
    assert [len(b) for b in epochs(make_dataset(arrays, np.arange(5), 8, seed=3), 1)[0]] == [5]   # one short batch


def test_tag_batches_count_tag_weight():
    query = np.array([[1.0, 0.0], [0.6, 0.8]], dtype="float32")
    docs = np.array([[0.8, 0.6], [0.28, 0.96]], dtype="float32")
    out = {"query": query, "pos": docs, "query_hidden": [], "pos_hidden": []}
    batch = {"query_key": np.array([0, 1]), "doc_key": np.array([10, 11])}
    config = TrainConfig(gamma=5.0, tag_weight=0.25)
    search = float(batch_loss({**batch, "kind": np.int32(0)}, out, config, seed=None))
    tags = float(batch_loss({**batch, "kind": np.int32(1)}, out, config, seed=None))
    assert tags == pytest.approx(0.25 * search, abs=1e-6) and search > 0


def test_teacher_also_scores_the_mined_negative_columns():
    """--teacher with --negatives bm25: the distillation covers every column, mined negatives included."""
    from dssm.losses import distillation_loss
    rng = np.random.default_rng(3)

    def unit(rows, dim):
        v = rng.normal(size=(rows, dim)).astype("float32")
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    query, pos, neg = unit(2, 4), unit(2, 4), unit(2, 4)
    teacher = {"teacher_query": unit(2, 3), "teacher_pos": unit(2, 3), "teacher_neg": unit(2, 3)}
    out = {"query": query, "pos": pos, "neg": neg, "query_hidden": [], "pos_hidden": [], "neg_hidden": []}
    batch = {"query_key": np.array([0, 1]), "doc_key": np.array([10, 11]), "neg_key": np.array([20, 21])}
    config = TrainConfig(negatives="bm25", gamma=5.0, teacher_gamma=7.0, distill_weight=2.0)
    plain = float(batch_loss(batch, out, config, seed=None))
    taught = float(batch_loss({**batch, **teacher}, out, config, seed=None))
    columns = np.concatenate([pos, neg])
    teacher_columns = np.concatenate([teacher["teacher_pos"], teacher["teacher_neg"]])
    expected = 2.0 * float(distillation_loss(query @ columns.T, teacher["teacher_query"] @ teacher_columns.T, 5.0, 7.0))
    assert taught - plain == pytest.approx(expected, abs=1e-5)
