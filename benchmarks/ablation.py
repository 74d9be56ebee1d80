"""Negative-strategy ablation on debdesc-dev: same data, epochs and tower; only the strategy changes.

    python benchmarks/ablation.py --data ../shared/data/debdesc-dev --pairs 20000 --epochs 4
Writes benchmarks/out/ablation.md (dev-query nDCG@10 / MRR@10 / Recall@100 of the DSSM alone).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_dssm import dssm_ranks, load_dev, metrics  # noqa: E402

from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig  # noqa: E402
from dssm.train import train  # noqa: E402

RUNS = {
    "triplet + random": dict(loss="triplet", negatives="random"),
    "triplet + semi-hard": dict(loss="triplet", negatives="semi-hard"),
    "triplet + batch-hard": dict(loss="triplet", negatives="batch-hard"),
    "triplet + batch-all": dict(loss="triplet", negatives="batch-all"),
    "softmax + in-batch (default)": dict(loss="softmax", negatives="batch-all"),
    "softmax + in-batch + BM25-mined": dict(loss="softmax", negatives="bm25"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/debdesc-dev")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--work", default="runs/ablation")
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pairs = open(data / "train_pairs.jsonl", encoding="utf-8").readlines()
    subset = work / "pairs.jsonl"
    subset.write_text("".join(random.Random(1).sample(pairs, min(args.pairs, len(pairs)))))
    texts, queries, relevant = load_dev(data)
    results = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    for name, options in RUNS.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        out = work / name.replace(" ", "").replace("+", "_").replace("(", "").replace(")", "")
        result = train(str(subset), str(data / "corpus.jsonl"), str(out), FeaturiserConfig(), TowerConfig(),
                       TrainConfig(epochs=args.epochs, val_fraction=0.02, patience=args.epochs, **options), verbose=2)
        results[name] = {**metrics(dssm_ranks(str(out), texts, queries, relevant)),
                         "minutes": (time.perf_counter() - started) / 60, "epochs": result.epochs_run}
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print(name, results[name], flush=True)
    lines = [f"{args.pairs} training pairs sampled from debdesc-dev (seed 1), {args.epochs} epochs, 300-300-128, "
             f"batch 256, Adam 2e-3; DSSM alone on the {len(queries)} dev queries over {len(texts)} documents.", "",
             "| loss + negatives | nDCG@10 | MRR@10 | Recall@100 | train minutes |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['ndcg@10']:.4f} | {r['mrr@10']:.4f} | {r['recall@100']:.4f} | {r['minutes']:.1f} |"
              for name, r in results.items()]
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
