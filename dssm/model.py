"""The two-tower DSSM training model: one tower called on queries and documents, and the batch loss.

`DSSMModel.compute_loss` is backend-agnostic (keras.ops), so `fit` works on TensorFlow (the default,
with tf.distribute) and on JAX or PyTorch.
"""
from __future__ import annotations

from dssm import losses, negatives
from dssm.backend import load_keras
from dssm.config import KIND_PSEUDO, KIND_TAG, FeaturiserConfig, TowerConfig, TrainConfig
from dssm.tower import make_towers

keras = load_keras()
ops = keras.ops


class DSSMModel(keras.Model):
    def __init__(self, featuriser: FeaturiserConfig, tower: TowerConfig, train: TrainConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        losses.check_loss(train.loss, train.distance)
        negatives.check_strategy(train.negatives, train.positives)
        self.query_tower, self.document_tower = make_towers(featuriser, tower)
        self.tower_config = tower
        self.train_config = train
        self.seed_generator = keras.random.SeedGenerator(train.seed)

    def call(self, batch, training: bool = False) -> dict:
        ids = {side: self.drop_features(batch[side], training) for side in ("query", "pos", "neg") if side in batch}
        query, query_hidden = self.query_tower(ids["query"], return_hidden=True)
        pos, pos_hidden = self.document_tower(ids["pos"], return_hidden=True)
        out = {"query": query, "pos": pos, "query_hidden": query_hidden, "pos_hidden": pos_hidden}
        if "neg" in ids:
            out["neg"], out["neg_hidden"] = self.document_tower(ids["neg"], return_hidden=True)
        return out

    def drop_features(self, ids, training: bool):
        """Feature dropout (training only): each trigram id becomes padding with probability p, so the
        model cannot lean on a few exact trigrams (queries that share few words with their document)."""
        rate = self.train_config.feature_dropout
        if not training or rate <= 0:
            return ids
        keep = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) >= rate
        return ops.where(keep, ids, ops.zeros_like(ids))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return batch_loss(x, y_pred, self.train_config, self.seed_generator)


def batch_loss(batch: dict, out: dict, config: TrainConfig, seed):
    """The loss of one batch of query-anchored pairs, negatives chosen per config.negatives."""
    query = out["query"]
    size = ops.shape(query)[0]
    docs, doc_keys, hidden = out["pos"], batch["doc_key"], out["pos_hidden"]
    column_query_keys = batch["query_key"]
    if "neg" in out:                                      # BM25-mined negatives as extra columns
        docs = ops.concatenate([docs, out["neg"]], axis=0)
        doc_keys = ops.concatenate([doc_keys, batch["neg_key"]], axis=0)
        hidden = [ops.concatenate([h, n], axis=0) for h, n in zip(hidden, out["neg_hidden"])]
        column_query_keys = ops.concatenate([column_query_keys, -ops.ones_like(column_query_keys) - 1], axis=0)
    scores = ops.matmul(query, ops.transpose(docs))                                  # [batch, candidates]
    positive_mask = ops.logical_or(
        ops.equal(ops.expand_dims(batch["doc_key"], 1), ops.expand_dims(doc_keys, 0)),
        ops.equal(ops.expand_dims(batch["query_key"], 1), ops.expand_dims(column_query_keys, 0)))
    if "known_positives" in batch:                     # every known positive of the query: no false negatives
        positive_mask = ops.logical_or(positive_mask, batch["known_positives"])
    fixed = ops.stop_gradient(scores)
    if config.positives == "hardest":
        positive_index = negatives.hardest_positives(fixed, positive_mask)
    else:
        positive_index = negatives.random_positives(positive_mask, seed)
    positive_scores = ops.take_along_axis(scores, ops.expand_dims(positive_index, 1), axis=1)[:, 0]

    strategy = config.negatives
    if strategy == "batch-all" or (strategy == "bm25" and config.loss == "softmax"):
        if config.loss == "softmax":
            loss = losses.softmax_loss(scores, positive_index, positive_mask, config.gamma)
            if config.symmetric:                        # each pair's document ranks the batch's queries
                loss = 0.5 * (loss + losses.softmax_loss(ops.transpose(scores[:, :size]), ops.arange(size),
                                                         ops.transpose(positive_mask[:, :size]), config.gamma))
        else:
            loss = losses.batch_all_triplet_loss(scores, positive_scores, positive_mask, config.margin, config.distance)
        negative_index = negatives.hardest_negatives(fixed, positive_mask)   # for the layer-wise term
    else:
        negative_index = choose_negatives(strategy, fixed, ops.stop_gradient(positive_scores), positive_mask, size, seed)
        valid = negatives.has_negative(positive_mask)
        if config.loss == "softmax":
            negative_scores = ops.take_along_axis(scores, ops.expand_dims(negative_index, 1), axis=1)
            pair = ops.concatenate([ops.expand_dims(positive_scores, 1), negative_scores], axis=1)
            loss = losses.softmax_loss(pair, ops.zeros((size,), "int32"), ops.zeros_like(pair, "bool"), config.gamma)
        else:
            loss = losses.triplet_loss(query, ops.take(docs, positive_index, axis=0),
                                       ops.take(docs, negative_index, axis=0), config.margin, config.distance, valid)
    if "teacher_query" in batch and config.distill_weight > 0:   # over every column: mined negatives too
        teacher_docs = batch["teacher_pos"]
        if "teacher_neg" in batch and "neg" in out:
            teacher_docs = ops.concatenate([teacher_docs, batch["teacher_neg"]], axis=0)
        loss = loss + config.distill_weight * losses.distillation_loss(
            scores[:, :ops.shape(teacher_docs)[0]], ops.matmul(batch["teacher_query"], ops.transpose(teacher_docs)),
            config.gamma, config.teacher_gamma)
    if "kind" in batch and (config.tag_weight != 1.0 or config.pseudo_weight != 1.0):
        # a batch of (text, tag) pairs counts tag_weight, one of corpus pseudo-queries pseudo_weight
        # (with one kind alone every batch is scaled alike, which Adam's updates do not see)
        weight = ops.where(ops.equal(batch["kind"], KIND_TAG), config.tag_weight, 1.0)
        loss = loss * ops.where(ops.equal(batch["kind"], KIND_PSEUDO), config.pseudo_weight, weight)
    if config.layer_weight > 0:
        loss = loss + config.layer_weight * losses.layerwise_triplet_loss(
            out["query_hidden"], [ops.take(h, positive_index, axis=0) for h in hidden],
            [ops.take(h, negative_index, axis=0) for h in hidden], config.margin, config.distance)
    return loss


def choose_negatives(strategy: str, scores, positive_scores, positive_mask, size, seed):
    """One negative column per query: int [batch]."""
    if strategy == "random":
        return negatives.random_negatives(scores, positive_mask, seed)
    if strategy == "semi-hard":
        return negatives.semi_hard_negatives(scores, positive_scores, positive_mask)
    if strategy == "batch-hard":
        return negatives.hardest_negatives(scores, positive_mask)
    if strategy == "bm25":                                  # own mined negative: column batch + row
        return ops.arange(size, dtype="int32") + size
    raise ValueError(f"unknown negative strategy {strategy!r}; choose from {list(negatives.NEGATIVE_STRATEGIES)}")
