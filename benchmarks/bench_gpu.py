"""Training throughput of the DSSM on an accelerator with KERAS_BACKEND=jax, on pre-featurised ids.

The lent GPU machine has JAX but no TensorFlow; the tower, losses and mining are keras.ops, so the
same `DSSMModel` trains there. Ids are synthetic (uniform over the buckets, 40 per query, 256 per
document: the debdesc-dev median is ~270), so this measures the model step, not featurisation.

Prepared device run (one script; keras and its small pure-Python deps travel as wheels):
    pip download -d benchmarks/out/wheels keras          # here, once (a few MB)
    # on the device (carry benchmarks/out/wheels):
    pip install -q --no-index --find-links benchmarks/out/wheels keras && \
      KERAS_BACKEND=jax python benchmarks/bench_gpu.py --batches 4096,16384,32768 --out $OUT/gpu.json
Writes benchmarks/out/gpu.md (and --out JSON). Goal: >= 5,000,000 triplets/s on one H200.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig  # noqa: E402
from dssm.model import DSSMModel  # noqa: E402


def synthetic(n: int, buckets: int, query_length: int, doc_length: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"query": rng.integers(1, buckets + 1, (n, query_length), dtype=np.int32),
            "pos": rng.integers(1, buckets + 1, (n, doc_length), dtype=np.int32),
            "query_key": np.arange(n, dtype=np.int32), "doc_key": np.arange(n, dtype=np.int32)}


def rate(batch_size: int, steps: int, repeats: int, featuriser: FeaturiserConfig, tower: TowerConfig) -> float:
    """Median triplets/s over `repeats` epochs of `steps` batches, after one compiling epoch."""
    data = synthetic(batch_size * steps, featuriser.buckets, 40, 256, seed=batch_size)
    model = DSSMModel(featuriser, tower, TrainConfig(batch_size=batch_size))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    model.fit(data, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(data, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
        times.append(time.perf_counter() - started)
    return batch_size * steps / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="4096,16384,32768")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    featuriser, tower = FeaturiserConfig(), TowerConfig()
    devices = [str(d) for d in __import__("jax").devices()] if keras.backend.backend() == "jax" else []
    rows = {int(b): rate(int(b), args.steps, args.repeats, featuriser, tower) for b in args.batches.split(",")}
    lines = [f"Backend {keras.backend.backend()}, devices {devices}; 300-300-128, 32,768 buckets, softmax with all "
             f"in-batch negatives, synthetic ids (40 per query, 256 per document), {args.steps} steps x "
             f"{args.repeats} timed epochs after a compiling one.", "", "| batch | triplets/s (median) |", "|---|---|"]
    lines += [f"| {batch:,} | {value:,.0f} |" for batch, value in rows.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "gpu.md").write_text(text)
    if args.out:
        args.out.write_text(json.dumps({"devices": devices, "triplets_per_s": rows}, indent=1))


if __name__ == "__main__":
    main()
