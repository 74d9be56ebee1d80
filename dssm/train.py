"""`dssm train`: query-anchored triplet training with Keras `fit`, validation by retrieval, export.

Pipeline: read pairs + corpus -> split validation by document -> featurise once -> (mine BM25
negatives) -> tf.data -> `DSSMModel.fit` (MirroredStrategy when several GPUs are visible) with
validation recall@10 / MRR@10 each epoch, early stopping, checkpoints, `--resume`, TensorBoard
scalars and a CSV log -> export (dssm/export.py).
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dssm import export
from dssm.backend import load_keras
from dssm.config import (KIND_PSEUDO, KIND_SEARCH, KIND_TAG, FeaturiserConfig, TowerConfig,
                         TrainConfig, check_fits_memory, to_dict)
from dssm.data import (Corpus, ReadStats, TrainingArrays, add_passage_pairs, add_pseudo_pairs,
                       add_tag_pairs, featurise_training, load_corpus, load_pairs, make_dataset, padded_to_csr, split_validation)
from dssm.featurise import Featuriser
from dssm.model import DSSMModel
from dssm.pseudo import MIN_WORDS, parse_kinds
from dssm.optim import make_optimizer

keras = load_keras()

MONITOR = "val_mrr_at_10"
STEPS_PER_EXECUTION = 8


@dataclass
class TrainResult:
    fingerprint: str
    epochs_run: int
    history: dict
    stats: ReadStats


def retrieval_metrics(query_vectors: np.ndarray, doc_vectors: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict:
    """recall@k and MRR@k of one relevant row per query. [q, dim], [docs, dim], int [q]."""
    scores = query_vectors @ doc_vectors.T
    own = scores[np.arange(len(relevant)), relevant]
    rank = 1 + (scores > own[:, None]).sum(axis=1)              # ties count in the query's favour
    hit = rank <= k
    return {"recall_at_10": float(hit.mean()), "mrr_at_10": float(np.where(hit, 1.0 / rank, 0.0).mean())}


class RetrievalValidation(keras.callbacks.Callback):
    """Each epoch: rank a pool of documents for the validation queries with the numpy encoder."""

    def __init__(self, model_config: dict, arrays: TrainingArrays, val_rows: np.ndarray, pool_size: int, seed: int,
                 exclude: np.ndarray | None = None):
        super().__init__()
        self.model_config = model_config
        relevant_docs = arrays.doc_index[val_rows]
        others = np.setdiff1d(np.arange(len(arrays.documents)), relevant_docs)
        if exclude is not None and len(exclude):        # passages: near-copies of documents, never in the pool
            others = np.setdiff1d(others, exclude)
        rng = np.random.default_rng(seed)
        extra = rng.choice(others, size=min(len(others), max(pool_size - len(np.unique(relevant_docs)), 0)), replace=False)
        pool = np.concatenate([np.unique(relevant_docs), extra])
        position = {doc: n for n, doc in enumerate(pool.tolist())}
        self.relevant = np.asarray([position[d] for d in relevant_docs.tolist()])
        self.queries = padded_to_csr(arrays.pair_queries(val_rows))
        self.documents = padded_to_csr(arrays.documents[pool])

    def on_epoch_end(self, epoch, logs=None):
        encoder = unsaved_encoder(self.model_config, current_weights(self.model))
        metrics = retrieval_metrics(encoder.encode_ids(*self.queries, side="query"),
                                    encoder.encode_ids(*self.documents, side="document"), self.relevant)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in metrics.items()})


class Throughput(keras.callbacks.Callback):
    """Adds triplets/s (query, positive, negative per pair) to the logs shown by the progress bar:
    training steps only (the epoch's validation runs after its last step and is not counted)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.seen, self.rate = time.perf_counter(), 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        # `batch`: the last step of the call (several per call); Keras names step + 7 even when the
        # epoch's last call runs fewer, so it is capped at the epoch's steps
        self.seen = min(batch + 1, self.params.get("steps") or batch + 1) * self.batch_size
        self.rate = self.seen / max(time.perf_counter() - self.started, 1e-9)
        if logs is not None:
            logs["triplets_per_s"] = self.rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["triplets_per_s"] = self.rate


class StepProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar with the step count capped at the epoch's steps: with several steps per
    call Keras names the call's last step + 7 even when the epoch's last call runs fewer (`8/7`)."""

    def _update_progbar(self, batch, logs=None):
        if self.target is not None:
            batch = min(batch, self.target - 1)
        super()._update_progbar(batch, logs)


def progress_verbosity(verbose: int, stream=None) -> int:
    """Keras `verbose` for a stream: the in-place bar (1) only on a terminal; written to a pipe or a
    log it would carry `\\r`-joined lines and ANSI codes, so there it becomes one line per epoch (2)."""
    stream = sys.stdout if stream is None else stream
    return 2 if verbose == 1 and not stream.isatty() else verbose


class ScalarLog(keras.callbacks.Callback):
    """TensorBoard event files (tf.summary) with every epoch's logs; `tensorboard --logdir OUT/logs`."""

    def __init__(self, log_dir: Path):
        super().__init__()
        import tensorflow as tf
        self.tf = tf
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                self.tf.summary.write(name, float(value), step=epoch)
        self.writer.flush()


def unsaved_encoder(model_config: dict, weights: dict) -> export.Encoder:
    """The numpy encoder of weights still in training (no fingerprint yet)."""
    return export.Encoder({**model_config, "fingerprint": ""}, weights)


def current_weights(model: DSSMModel) -> dict:
    prefixes = export.tower_prefixes(model.tower_config)
    weights = model.query_tower.named_weights(prefixes["query"])
    if model.document_tower is not model.query_tower:
        weights.update(model.document_tower.named_weights(prefixes["document"]))
    return weights


def distribution_strategy():
    """MirroredStrategy over all GPUs when there are several; the default strategy otherwise."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def train(pairs_path: str | None, corpus_path: str | None, out_dir: str, featuriser: FeaturiserConfig,
          tower: TowerConfig, config: TrainConfig, resume: bool = False, skip_missing: bool = False,
          verbose: int = 1, extra_callbacks: list | None = None, log=print,
          tags_path: str | None = None, teacher_dir: str | None = None, init_dir: str | None = None,
          force: bool = False) -> TrainResult:
    """Train a DSSM on (query, document) pairs, (text, tag) pairs and/or corpus pseudo-queries and
    export it to out_dir.

    Tagged texts (`{"text", "tags"}` JSONL, dssm/tagdata.py) add one pair per tag, the tags joining
    the corpus as documents: one tower for search and tagging. `config.pseudo_queries` adds
    (pseudo-query, document) pairs cut from every corpus document (dssm/pseudo.py), in batches of
    their own. Validation ranks documents for held-out search pairs (their documents' pseudo-queries
    are held out too); with pseudo-queries alone, for held-out pseudo-queries; with tags only, it
    ranks the tags of held-out texts. init_dir: start from that exported model's weights (same
    featuriser and tower), as `dssm adapt` does. force: replace an out_dir that holds something else
    than a model (refused otherwise, before any work).
    """
    pseudo_kinds = parse_kinds(config.pseudo_queries)
    check_fits_memory(featuriser, tower)
    export.check_output(out_dir, "a dssm model", force)
    keras.utils.set_random_seed(config.seed)
    out = Path(out_dir)
    work = out.with_name(out.name + ".training")        # checkpoints, logs, resume state
    if not resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)

    if not pairs_path and not tags_path and not (corpus_path and pseudo_kinds):
        raise ValueError("nothing to train on; give --pairs (search pairs), --tags (tagged texts) or a --corpus "
                         "with pseudo-queries")
    stats = ReadStats()
    corpus = load_corpus(corpus_path, stats) if corpus_path else None
    pairs = None
    if pairs_path:
        pairs, corpus = load_pairs(pairs_path, corpus, skip_missing, stats)
    documents = len(corpus.ids) if corpus is not None else 0        # before passages join the corpus
    labelled = len(pairs.queries) if pairs is not None else 0
    passage_rows, passage_sources = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if config.passage_positives and pairs is not None and corpus.bodies is not None:
        pairs, corpus, passage_rows, passage_sources = add_passage_pairs(pairs, corpus, config.passage_positives,
                                                                         config.passage_window)
        log(f"passage positives: {len(passage_rows)} pairs with their documents' first {config.passage_positives} "
            f"passage(s) of {config.passage_window} words")
    pseudo_rows = np.zeros(0, dtype=np.int64)
    if pseudo_kinds and corpus is not None:
        pairs, pseudo_rows = add_pseudo_pairs(pairs, corpus, pseudo_kinds, config.seed, documents)
        log(f"pseudo-queries: {len(pseudo_rows)} ({', '.join(pseudo_kinds)}) from {len(corpus.ids)} documents")
        if not len(pairs.queries):
            raise ValueError(f"no pseudo-query could be cut from {corpus_path}: every text is shorter than "
                             f"{MIN_WORDS} words; give a corpus of longer documents")
    tag_rows = np.zeros(0, dtype=np.int64)
    if tags_path:
        from dssm.tagdata import load_tagged
        tagged = load_tagged(tags_path, stats)
        pairs, corpus, tag_rows = add_tag_pairs(pairs, corpus, tagged)
        log(f"tagging: {len(tagged.texts)} texts, {len(tagged.vocabulary())} tags, {len(tag_rows)} (text, tag) pairs"
            f"{f' beside {labelled} search pairs' if labelled else ''}")
    _report_reading(stats, log)
    arrays = featurise_training(Featuriser(featuriser), pairs, corpus)
    if teacher_dir:
        _attach_teacher(arrays, Path(teacher_dir), labelled, log, pseudo_rows, (pseudo_kinds, config.seed))
        # a passage is scored by the teacher as its document is
        arrays.teacher_documents[pairs.doc_index[passage_rows]] = arrays.teacher_documents[passage_sources]
    search_rows = np.setdiff1d(np.arange(len(pairs.queries)), np.concatenate([tag_rows, pseudo_rows, passage_rows]))
    if len(search_rows):                # validation on search pairs; every tag pair trains
        train_rows, val_rows = split_validation(pairs, config.val_fraction, config.seed, search_rows)
        held = pairs.doc_index[val_rows]            # their passages and pseudo-queries are held out too
        unseen = pseudo_rows[~np.isin(pairs.doc_index[pseudo_rows], held)]
        train_rows = np.concatenate([train_rows, passage_rows[~np.isin(passage_sources, held)], tag_rows, unseen])
    elif len(pseudo_rows):              # pseudo-queries alone (dssm adapt): validation on held-out documents'
        train_rows, val_rows = split_validation(pairs, config.val_fraction, config.seed, pseudo_rows)
        train_rows = np.concatenate([train_rows, tag_rows])
    else:
        train_rows, val_rows = split_validation(pairs, config.val_fraction, config.seed, tag_rows, arrays.query_keys)
    if len(train_rows) < 2:
        raise ValueError(f"only {len(train_rows)} training pairs after the validation split; add pairs or lower --val-fraction")
    batch_size = min(config.batch_size, len(train_rows))
    mined = _mine(arrays, pairs, corpus, config, log) if config.negatives == "bm25" else None
    kinds = np.select([np.isin(train_rows, tag_rows), np.isin(train_rows, pseudo_rows)],
                      [KIND_TAG, KIND_PSEUDO], KIND_SEARCH).astype(np.int64)   # one kind of pair per batch
    train_data = make_dataset(arrays, train_rows, batch_size, config.seed, shuffle=True, mined=mined, kinds=kinds)
    val_data = make_dataset(arrays, val_rows, batch_size, config.seed, shuffle=False, mined=mined) if len(val_rows) else None
    log(f"training on {len(train_rows)} pairs ({len(val_rows)} held out), {len(corpus.ids)} documents, "
        f"loss={config.loss} negatives={config.negatives} batch={batch_size}")

    with distribution_strategy().scope():
        model = DSSMModel(featuriser, tower, config)
        # no XLA: Keras would turn it on by itself on a TensorFlow GPU, and the tower's sparse ops and
        # its gradient's sort have dynamic shapes
        xla = False if keras.backend.backend() == "tensorflow" else "auto"
        model.compile(optimizer=make_optimizer(config), jit_compile=xla, steps_per_execution=steps_per_execution())
        model(next(iter(train_data)))                   # build the weights (resume restores into them)
        model.optimizer.build(model.trainable_variables)
        if init_dir:
            assign_exported_weights(model, init_dir, featuriser, tower)
            log(f"starting from the weights of {init_dir}")

    model_config = {"featuriser": to_dict(featuriser), "tower": to_dict(tower),
                    "towers": export.tower_prefixes(tower)}
    callbacks: list = []
    monitor = "loss"
    if len(val_rows):
        callbacks.append(RetrievalValidation(model_config, arrays, val_rows, config.val_pool, config.seed,
                                             exclude=np.unique(pairs.doc_index[passage_rows])))
        monitor = MONITOR
    callbacks += [
        Throughput(batch_size),
        keras.callbacks.EarlyStopping(monitor=monitor, mode="max" if monitor == MONITOR else "min",
                                      patience=config.patience, restore_best_weights=True),
        # two files, not one per epoch (120 MB each for the default model, with the optimiser state)
        keras.callbacks.ModelCheckpoint(str(work / "checkpoints" / "last.weights.h5"), save_weights_only=True),
        keras.callbacks.ModelCheckpoint(str(work / "checkpoints" / "best.weights.h5"), save_weights_only=True,
                                        monitor=monitor, mode="max" if monitor == MONITOR else "min", save_best_only=True),
        keras.callbacks.CSVLogger(str(work / "train_log.csv"), append=resume),
        ScalarLog(work / "logs"),
        keras.callbacks.BackupAndRestore(str(work / "backup")),
        StepProgress(),
        *(extra_callbacks or []),
    ]
    initial_val_loss = float(model.evaluate(val_data, verbose=0)) if val_data is not None and not resume else None
    history = model.fit(train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks,
                        verbose=progress_verbosity(verbose), shuffle=False)
    epochs_run = len(history.history.get("loss", []))

    history.history["initial_val_loss"] = [initial_val_loss] if initial_val_loss is not None else []
    training_info = {"config": to_dict(config), "pairs": len(search_rows), "tag_pairs": len(tag_rows),
                     "passage_pairs": len(passage_rows), "pseudo_pairs": len(pseudo_rows),
                     **({"initialised_from": str(Path(init_dir).resolve())} if init_dir else {}),
                     "documents": documents,
                     "epochs_run": epochs_run, "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}

    def write_keras(path: Path) -> None:
        serving_model(model).save(path)

    weights = current_weights(model)
    check_not_collapsed(history.history, weights, model_config, arrays, train_rows, out)
    fingerprint = export.save_model(out, featuriser, tower, weights, training_info, write_keras)
    log(f"model {fingerprint[:12]} written to {out} (logs: {work})")
    return TrainResult(fingerprint, epochs_run, history.history, stats)


class TrainingFailed(ValueError):
    """Training diverged or collapsed; nothing was written over the output directory."""


def check_not_collapsed(history: dict, weights: dict, model_config: dict, arrays: TrainingArrays,
                        train_rows: np.ndarray, out: Path, sample: int = 256) -> None:
    """Refuse to export a model whose loss or weights are not finite, or that encodes a sample of the
    training documents to one vector (all zero, or all the same): it would rank nothing."""
    keep = f"{out} was left as it was; lower --lr (or check the data) and train again"
    losses = np.asarray(history.get("loss", []), dtype=np.float64)
    if not np.all(np.isfinite(losses)) or not all(np.all(np.isfinite(w)) for w in weights.values()):
        raise TrainingFailed(f"training diverged (non-finite loss or weights); {keep}")
    rows = np.unique(arrays.doc_index[train_rows])[:sample]
    encoder = unsaved_encoder(model_config, weights)
    vectors = encoder.encode_ids(*padded_to_csr(arrays.documents[rows]), side="document")
    if len(rows) > 1 and float(np.abs(vectors - vectors[:1]).max()) < 1e-6:
        raise TrainingFailed(f"training collapsed: every document encodes to the same vector; {keep}")


def adapt(model_dir: str, corpus_path: str, out_dir: str, config: TrainConfig, verbose: int = 1,
          log=print, force: bool = False) -> TrainResult:
    """Zero-label domain adaptation: fine-tune the model at `model_dir` on pseudo-queries cut from
    `corpus_path` (config.pseudo_queries), keeping its featuriser and tower; export to `out_dir`."""
    from dssm.config import from_dict

    source = export.read_config(model_dir)
    return train(None, corpus_path, out_dir, from_dict(FeaturiserConfig, source["featuriser"]),
                 from_dict(TowerConfig, source["tower"]), config, verbose=verbose, log=log, init_dir=model_dir,
                 force=force)


def assign_exported_weights(model: DSSMModel, model_dir: str, featuriser: FeaturiserConfig,
                            tower: TowerConfig) -> None:
    """Load an exported model's weights (dssm/export.py) into `model`; its featuriser and tower must be
    `featuriser` and `tower` (a model cannot start from another hashing or shape)."""
    config = export.read_config(model_dir)
    if config["featuriser"] != to_dict(featuriser) or config["tower"] != to_dict(tower):
        raise ValueError(f"model {model_dir} has featuriser {config['featuriser']} and tower {config['tower']}, "
                         f"not {to_dict(featuriser)} and {to_dict(tower)}; start from a model of the same shape")
    weights = export.load_weights(Path(model_dir), config)
    sides = {"query": model.query_tower, "document": model.document_tower}
    towers = {prefix: sides[side] for side, prefix in export.tower_prefixes(tower).items()}  # shared: one
    for prefix, layer in towers.items():
        layer.embedding.assign(weights[f"{prefix}/embedding"])
        for k, bias in enumerate(layer.biases):
            bias.assign(weights[f"{prefix}/bias_{k}"])
        for k, kernel in enumerate(layer.kernels, start=1):
            kernel.assign(weights[f"{prefix}/kernel_{k}"])


def steps_per_execution() -> int:
    """Training steps per call into the backend: on TensorFlow 8, run in one graph loop. The Python
    round trip between two calls took 1.4 ms of a 22 ms CPU step at batch 512 (BENCHMARKS.md).
    JAX would unroll the steps (8x the compile time), PyTorch takes only 1."""
    return STEPS_PER_EXECUTION if keras.backend.backend() == "tensorflow" else 1


def serving_model(model: DSSMModel) -> keras.Model:
    """A functional Keras model {query ids, document ids} -> {query vector, document vector} for serving."""
    query_ids = keras.Input(shape=(None,), dtype="int32", name="query_ids")
    document_ids = keras.Input(shape=(None,), dtype="int32", name="document_ids")
    return keras.Model({"query_ids": query_ids, "document_ids": document_ids},
                       {"query": model.query_tower(query_ids), "document": model.document_tower(document_ids)})


def _mine(arrays: TrainingArrays, pairs, corpus: Corpus, config: TrainConfig, log) -> np.ndarray:
    from dssm.bm25 import mine_negatives
    started = time.perf_counter()
    mined = mine_negatives(corpus.texts, pairs.queries, arrays.doc_index, arrays.query_keys, config.bm25_depth)
    log(f"mined BM25 negatives for {len(mined)} pairs in {time.perf_counter() - started:.1f}s")
    return mined


def _attach_teacher(arrays: TrainingArrays, directory: Path, search_pairs: int, log,
                    pseudo_rows: np.ndarray, pseudo_spec: tuple[tuple[str, ...], int]) -> None:
    """Teacher vectors (unit rows): DIR/queries.npy in the order of the pairs file, DIR/documents.npy
    in the order of the corpus file, and with pseudo-queries DIR/pseudo.npy in the order training cuts
    them (DIR/pseudo.json names their kinds, seed and count: scripts/teacher_vectors.py
    --pseudo-queries); tag pseudo-documents get zero vectors."""
    queries = np.load(directory / "queries.npy").astype(np.float32)
    documents = np.load(directory / "documents.npy").astype(np.float32)
    docs = len(arrays.documents)
    if len(queries) != search_pairs or len(documents) > docs:
        raise ValueError(f"teacher {directory}: {len(queries)} query and {len(documents)} document vectors for "
                         f"{search_pairs} pairs and {docs} documents; encode the pairs and corpus files in order")
    first = np.unique(arrays.query_keys, return_index=True)[1]
    padded = np.zeros((len(arrays.query_keys), queries.shape[1]), dtype=np.float32)
    padded[:len(queries)] = queries
    if len(pseudo_rows):
        padded[pseudo_rows] = _teacher_pseudo_vectors(directory, len(pseudo_rows), *pseudo_spec)
        log(f"teacher: {len(pseudo_rows)} pseudo-query vectors")
    arrays.teacher_queries = padded[first]
    arrays.teacher_documents = np.zeros((docs, documents.shape[1]), dtype=np.float32)
    arrays.teacher_documents[:len(documents)] = documents
    log(f"teacher: {documents.shape[1]}-d vectors for {len(queries)} queries and {len(documents)} documents")


def _teacher_pseudo_vectors(directory: Path, count: int, kinds: tuple[str, ...], seed: int) -> np.ndarray:
    """DIR/pseudo.npy, refused unless DIR/pseudo.json names the pseudo-queries this run cuts."""
    meta_path = directory / "pseudo.json"
    wanted = {"kinds": list(kinds), "seed": seed, "count": count}
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
    if meta != wanted:
        raise ValueError(f"teacher {directory} has no vectors for these pseudo-queries ({', '.join(kinds)}, seed {seed}, "
                         f"{count} queries; it has {meta or 'none'}); encode them with scripts/teacher_vectors.py "
                         f"--pseudo-queries {','.join(kinds)} --seed {seed}, or train without pseudo-queries")
    vectors = np.load(directory / "pseudo.npy").astype(np.float32)
    if vectors.shape[0] != count:
        raise ValueError(f"teacher {directory}/pseudo.npy has {vectors.shape[0]} rows for {count} pseudo-queries; "
                         "encode them again")
    return vectors


def _report_reading(stats: ReadStats, log) -> None:
    if stats.missing_doc_ids:
        log(f"warning: skipped {len(stats.missing_doc_ids)} pairs naming unknown doc ids "
            f"(first: {', '.join(stats.missing_doc_ids[:5])})")
