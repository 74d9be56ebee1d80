"""DSSM core throughput: featurisation, numpy encoding, CPU training (`make bench`).

Medians of several runs in one process; writes a markdown fragment to benchmarks/out/core.md.
Data: the shipped sample (data/), or debdesc-dev when --data points at it; the training rows run on
`dssm train`'s own batches of the pairs beside it (sample_pairs.jsonl / train_pairs.jsonl, or --pairs).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from unittest import mock

import numpy as np

from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import load_encoder, random_weights, save_model
from dssm.featurise import Featuriser, document_text

OUT = Path(__file__).resolve().parent / "out"


def median_rate(count: int, run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return count / statistics.median(times)


TRAINING_SETUPS = {                                     # label -> (--optimizer, fused kernels)
    "`--optimizer lazy-adam` (default), fused kernels": ("lazy-adam", True),
    "`--optimizer lazy-adam`, TensorFlow's own ops (kernels not built, or DSSM_NATIVE=0)": ("lazy-adam", False),
    "`--optimizer adam`, fused kernels": ("adam", True),
}


def training_rates(batch_size: int, steps: int, corpus: Path, pairs: Path) -> tuple[dict, dict]:
    """Triplets/s of Keras fit steps (softmax, all in-batch negatives) at 300-300-128, after warm-up,
    per TRAINING_SETUPS entry (batch / the median step of 5 interleaved rounds), and the pairs/s of the
    parts of one step. The batches are `dssm train`'s own, made as it makes them while the steps run
    (dssm.data.make_dataset over the pairs: shuffled, trimmed widths, known positives), the first
    `steps` of an epoch, compiled as `dssm train` compiles (steps_per_execution)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dssm.config import TrainConfig
    from dssm.data import featurise_training, load_corpus, load_pairs, make_dataset
    from dssm.model import DSSMModel
    from dssm.native import ops as native_ops
    from dssm.optim import make_optimizer
    from dssm.train import steps_per_execution

    if native_ops() is None:
        print("the fused kernels are not built (python -m dssm.native): their rows measure TensorFlow's ops")
    documents = load_corpus(corpus)
    training_pairs = load_pairs(pairs, documents, skip_missing=True)[0]
    arrays = featurise_training(Featuriser(FeaturiserConfig()), training_pairs, documents)
    rows = np.arange(len(training_pairs.queries))
    data = make_dataset(arrays, rows, batch_size, seed=13).take(steps)
    n = batch_size * min(steps, len(rows) // batch_size)
    models = {}
    for label, (optimizer, fused) in TRAINING_SETUPS.items():
        config = TrainConfig(optimizer=optimizer)
        models[label] = DSSMModel(FeaturiserConfig(), TowerConfig(), config)
        models[label].compile(optimizer=make_optimizer(config), steps_per_execution=steps_per_execution())
        kernels = native_ops() if fused else None
        with mock.patch("dssm.tower._native_ops", lambda: kernels):    # chosen when the step is traced
            models[label].fit(data, epochs=1, verbose=0)      # warm-up and tracing
    times: dict[str, list[float]] = {label: [] for label in models}
    for _ in range(5):                # interleaved rounds: this shared machine's speed drifts
        for label, model in models.items():
            model.fit(data, epochs=1, verbose=0, callbacks=[step_times(times[label])])
    rates = {label: batch_size / statistics.median(spent) for label, spent in times.items()}
    parts = min(steps, 12)                       # the parts are timed on fewer batches: some are slow
    return rates, training_parts(models[next(iter(models))], data.take(parts), n * parts // steps)


def step_times(into: list[float]):
    """A Keras callback that appends the time per step between consecutive calls' ends to `into`
    (a call runs steps_per_execution steps).

    The median step is the steady training rate: whole-fit times of these short epochs also carry
    Keras's per-epoch work (about 0.3 s here, now and then), which a 100-step epoch spreads thin."""
    import keras

    class StepTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.last = None

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            batch = min(batch, (self.params.get("steps") or batch + 1) - 1)   # a short last call: its real last step
            if self.last is not None:
                into.append((now - self.last[0]) / (batch - self.last[1]))
            self.last = (now, batch)

    return StepTimes()


def training_parts(model, data, n: int) -> dict[str, float]:
    """Pairs/s of parts of one training step on the same batches, to find where the time goes."""
    import keras
    import tensorflow as tf

    tower = model.query_tower
    from dssm.optim import LazyAdam
    from dssm.tower import _tf_embedding_bag

    optimizer, lazy = keras.optimizers.Adam(1e-3), LazyAdam(1e-3)
    optimizer.build([tower.embedding])
    lazy.build([tower.embedding])
    zeros = tf.zeros_like(tower.embedding)
    batches = list(data)

    def towers(batch):
        return tf.reduce_sum(tf.matmul(tower(batch["query"]), tower(batch["pos"]), transpose_b=True))

    def forward():
        return tf.function(towers, reduce_retracing=True)      # batch widths vary: trace once, generically

    def backward(variables):
        @tf.function(reduce_retracing=True)
        def step(batch):
            with tf.GradientTape() as tape:
                total = towers(batch)
            return tape.gradient(total, variables)
        return step

    @tf.function(reduce_retracing=True)
    def adam(batch):
        optimizer.apply([zeros], [tower.embedding])

    def table_gradient(batch):
        with tf.GradientTape() as tape:
            total = towers(batch)
        return tape.gradient(total, tower.embedding)                  # IndexedSlices: the rows a batch touches

    touched = [table_gradient(batch) for batch in batches]

    def lazy_adam():
        return tf.function(lambda gradient: lazy.apply([gradient], [tower.embedding]), reduce_retracing=True)

    from dssm.native import ops as native_ops

    fused, own = native_ops(), "TensorFlow's own ops"
    parts = [("both towers forward, fused kernels", forward(), fused),
             (f"both towers forward, {own}", forward(), None),
             ("both towers forward + backward, dense layers' gradients only, fused kernels",
              backward(tower.trainable_variables[1:]), fused),
             ("both towers forward + backward, all gradients (+ the trigram table's), fused kernels",
              backward(tower.trainable_variables), fused),
             (f"the same on {own} (the bag's hand-written gradient)", backward(tower.trainable_variables), None),
             (f"the same on {own} with TensorFlow's registered gradient of the bag (before 2026-11-28 night)",
              backward(tower.trainable_variables), "registered"),
             ("one dense Adam update of the 32,769 x 300 trigram table", adam, None)]
    rates = {}
    for name, step, kernels in parts:
        bag = tf_own_gradient if kernels == "registered" else _tf_embedding_bag
        with mock.patch("dssm.tower._tf_embedding_bag", bag), \
                mock.patch("dssm.tower._native_ops", lambda: None if kernels == "registered" else kernels):
            for batch in batches:                                  # traced here, with the bag chosen
                step(batch)
        rates[name] = median_rate(n, lambda: [step(batch) for batch in batches], 3)
    rows = np.mean([len(np.unique(gradient.indices)) for gradient in touched])
    for kernels, how in ((fused, "fused kernel"), (None, own)):
        step = lazy_adam()
        with mock.patch("dssm.tower._native_ops", lambda: kernels):
            for gradient in touched:
                step(gradient)
            name = f"one lazy Adam update of the rows a batch touches (mean {rows:,.0f} of 32,769), {how}"
            rates[name] = median_rate(n, lambda: [step(gradient) for gradient in touched], 3)
    return rates


def tf_own_gradient(table, ids):
    """The embedding-bag as it was: the fused kernel with TensorFlow's registered gradient."""
    import tensorflow as tf

    where = tf.where(ids > 0)
    return tf.sparse.segment_sqrt_n(table, tf.gather_nd(ids, where), tf.cast(where[:, 0], tf.int32),
                                    num_segments=tf.shape(ids)[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/sample_corpus.jsonl")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--train-batch", type=int, default=512)
    parser.add_argument("--train-steps", type=int, default=48)
    parser.add_argument("--pairs", help="training pairs for the training rows (default: train_pairs.jsonl or "
                                        "sample_pairs.jsonl beside --data)")
    args = parser.parse_args()
    records = [json.loads(line) for _, line in zip(range(args.docs), open(args.data, encoding="utf-8"))]
    texts = [document_text(r.get("title"), r.get("text")) for r in records]

    cold = median_rate(len(texts), lambda: Featuriser().batch(texts), 5)
    warm_featuriser = Featuriser()
    warm_featuriser.batch(texts)
    warm = median_rate(len(texts), lambda: warm_featuriser.batch(texts), 5)
    model_dir = OUT / "bench-model"
    save_model(model_dir, FeaturiserConfig(), TowerConfig(), random_weights(FeaturiserConfig(), TowerConfig()))
    encode = median_rate(len(texts), lambda: load_encoder(model_dir, verify=False).encode(texts, side="document"), 5)
    pairs = args.pairs or next((Path(args.data).with_name(name) for name in ("train_pairs.jsonl", "sample_pairs.jsonl")
                                if Path(args.data).with_name(name).is_file()), None)
    if pairs is None:
        parser.error(f"no training pairs beside {args.data}; give --pairs")
    train, parts = training_rates(args.train_batch, args.train_steps, Path(args.data), Path(pairs))

    lines = [f"Documents: {len(texts)} from `{args.data}` (mean {np.mean([len(t) for t in texts]):.0f} chars).", "",
             "| measure | median | goal |", "|---|---|---|",
             f"| featurise, cold word cache | {cold:,.0f} texts/s | |",
             f"| featurise, warm word cache | {warm:,.0f} texts/s | |",
             f"| numpy encoder incl. featurisation (300-300-128, cold cache) | {encode:,.0f} docs/s | >= 20,000 |",
             *[f"| CPU training, softmax + in-batch negatives, batch {args.train_batch}, 300-300-128, {label} "
               f"| {rate:,.0f} triplets/s | >= 20,000 |" for label, rate in train.items()]]
    lines += [f"| ... one part of that step alone: {name} | {rate:,.0f} pairs/s | |" for name, rate in parts.items()]
    OUT.mkdir(exist_ok=True)
    (OUT / "core.md").write_text("\n".join(lines) + "\n" + written_notes(OUT / "core.md"))
    print("\n".join(lines))


def written_notes(fragment: Path) -> str:
    """The hand-written text after the table of an existing fragment (analysis of earlier runs, dated
    there), kept below the new table."""
    if not fragment.is_file():
        return ""
    lines = fragment.read_text().splitlines()
    end = next((n for n, line in enumerate(lines) if line.startswith("|")), len(lines))
    while end < len(lines) and lines[end].startswith("|"):         # the generated table: its first one
        end += 1
    rest = lines[end:]
    return "\n".join(rest) + "\n" if any(line.strip() for line in rest) else ""


if __name__ == "__main__":
    main()
