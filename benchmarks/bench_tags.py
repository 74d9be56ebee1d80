"""Tag index at 200,000 tags: build time, prediction latency (single text p50/p99) and batch throughput.

Tags: the real debtags of data/sample_tags_* (when present) plus **synthetic** tags up to --tags, made
from real words of the sample corpus in debtags' shape `word::word` (labelled `synthetic` in the
output; they are never right for a text, they only make the index the issue's size). Model:
models/debdesc when present, else a random-weights model (dssm/export.py random_weights, same shape).
Texts: sample corpus documents (title + text, what `index build --with-tags` tags) and the demo
queries. Measures: build (encode + Annoy) time and size, single-text `predict` latency p50/p99 at the
default search_k and Annoy recall@10 against exact search per search_k, the exact search's latency, and
batch throughput. Goal: single-text p50 <= 5 ms. Writes benchmarks/out/tags.md (+ tags.json).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dssm.export import load_encoder  # noqa: E402
from indexer.tags import DEFAULT_N_TREES, DEFAULT_SEARCH_K, TagIndex, build_tag_index, read_tags  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
DATA = ROOT / "data"
MODEL = ROOT / "models" / "debdesc"
REAL_TAG_FILES = [DATA / "sample_tags_seen.txt", DATA / "sample_tags_unseen.txt", DATA / "sample_tags_train.jsonl"]


def real_tags() -> list[str]:
    tags: list[str] = []
    for path in REAL_TAG_FILES:
        if path.exists():
            tags.extend(read_tags(path))
    return list(dict.fromkeys(tags))


def synthetic_tags(count: int, exclude: set[str], seed: int = 0) -> list[str]:
    """`word::word` strings from the sample corpus' words (labelled synthetic in the report)."""
    words = sorted({word for line in (DATA / "sample_corpus.jsonl").open(encoding="utf-8")
                    for word in json.loads(line)["text"].lower().split() if word.isalpha() and len(word) > 2})
    rng = np.random.default_rng(seed)
    tags: dict[str, None] = {}
    while len(tags) < count:
        for a, b in rng.integers(0, len(words), size=(count, 2)):
            tag = f"{words[a]}::{words[b]}"
            if tag not in exclude:
                tags[tag] = None
            if len(tags) == count:
                break
    return list(tags)


def model_dir(work: Path) -> tuple[Path, str]:
    if (MODEL / "config.json").exists():
        return MODEL, "models/debdesc (trained on debdesc-dev pairs)"
    from dssm.config import FeaturiserConfig, TowerConfig
    from dssm.export import random_weights, save_model

    featuriser, tower = FeaturiserConfig(), TowerConfig()
    save_model(work / "random", featuriser, tower, random_weights(featuriser, tower, seed=0))
    return work / "random", "random weights (no trained model here), 300-300-128"


def latencies(index: TagIndex, texts: list[str], **options) -> list[float]:
    timings = []
    for text in texts:
        start = time.perf_counter()
        index.predict([text], k=10, **options)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def recall_at_10(index: TagIndex, vectors: np.ndarray, exact: list, search_k: int) -> tuple[float, float]:
    start = time.perf_counter()
    found = index.predict_vectors(vectors, k=10, exact=False, search_k=search_k)
    per_text = (time.perf_counter() - start) * 1000 / len(vectors)
    recall = np.mean([len({t for t, _ in a} & {t for t, _ in e}) / max(len(e), 1) for a, e in zip(found, exact)])
    return float(recall), per_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=200_000)
    parser.add_argument("--texts", type=int, default=300, help="Texts timed one at a time.")
    parser.add_argument("--batch", type=int, default=2000, help="Texts of the throughput run.")
    parser.add_argument("--n-trees", type=int, default=DEFAULT_N_TREES)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tags-"))
    model, model_label = model_dir(work)
    encoder = load_encoder(model)
    real = real_tags()
    tags = real + synthetic_tags(args.tags - len(real), set(real))

    start = time.perf_counter()
    encoder.encode(tags, side="document")
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    manifest = build_tag_index(model, tags, work / "tags", n_trees=args.n_trees, encoder=encoder)
    build_seconds = time.perf_counter() - start
    size = sum(entry["bytes"] for entry in manifest["files"].values())
    index = TagIndex.open(work / "tags", encoder)

    documents = [json.loads(line) for line in (DATA / "sample_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = np.random.default_rng(1)
    picked = [documents[i] for i in rng.choice(len(documents), size=args.batch, replace=False)]
    texts = [f"{doc['title']} {doc['text']}" for doc in picked]
    queries = [line.strip() for line in (DATA / "demo_queries.txt").read_text().splitlines() if line.strip()]
    index.predict(texts[:args.texts] + queries, k=10)  # warm: the Annoy file is memory-mapped, fault its pages in

    single = latencies(index, texts[:args.texts])
    short = latencies(index, (queries * (args.texts // max(len(queries), 1) + 1))[:args.texts])
    exact_single = latencies(index, texts[:50], exact=True)
    vectors = encoder.encode(texts[:args.texts], side="query")
    exact = index.predict_vectors(vectors, k=10, exact=True)
    sweep = {search_k: recall_at_10(index, vectors, exact, search_k) for search_k in (2_000, 5_000, 10_000, 20_000, 50_000)}
    start = time.perf_counter()
    index.predict(texts, k=10)
    batch_annoy = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    index.predict(texts, k=10, exact=True)
    batch_exact = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    encoder.encode(texts, side="query")
    encode_rate = len(texts) / (time.perf_counter() - start)

    result = {
        "date": time.strftime("%Y-%m-%d"), "model": model_label, "fingerprint": encoder.fingerprint, "dim": encoder.dim,
        "tags": len(tags), "real_tags": len(real), "synthetic_tags": len(tags) - len(real),
        "n_trees": args.n_trees, "search_k": DEFAULT_SEARCH_K, "build_seconds": build_seconds,
        "encode_tags_seconds": encode_seconds, "index_bytes": size,
        "single_text_ms": {"p50": percentile(single, 50), "p99": percentile(single, 99), "texts": len(single)},
        "single_query_ms": {"p50": percentile(short, 50), "p99": percentile(short, 99), "texts": len(short)},
        "single_text_exact_ms": {"p50": percentile(exact_single, 50), "p99": percentile(exact_single, 99)},
        "annoy_sweep": {str(k): {"recall_at_10": r, "ms_per_text": ms} for k, (r, ms) in sweep.items()},
        "batch_texts_per_second": {"annoy": batch_annoy, "exact": batch_exact, "encode_only": encode_rate,
                                   "texts": len(texts)},
        "goal_p50_ms": 5.0, "load_average": os.getloadavg()[0], "cores": os.cpu_count(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tags.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "tags.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    single, short, exact = r["single_text_ms"], r["single_query_ms"], r["single_text_exact_ms"]
    verdict = "met" if single["p50"] <= r["goal_p50_ms"] else "NOT met"
    lines = [
        f"Tag index of {r['tags']:,} tags: {r['real_tags']:,} real debtags (data/sample_tags_*) + "
        f"{r['synthetic_tags']:,} **synthetic** `word::word` tags made from sample-corpus words (they only give "
        f"the index the issue's size). Model: {r['model']}, fingerprint {r['fingerprint'][:12]}…, dim {r['dim']}. "
        f"Annoy n_trees {r['n_trees']}, search_k {r['search_k']:,}. Texts: sample-corpus documents (title + text) "
        f"and demo queries. Measured {r['date']} by `python benchmarks/bench_tags.py` (warm page cache, in-process; "
        f"1-minute load average {r['load_average']:.1f} on {r['cores']} cores).",
        "",
        "| build | value |",
        "|---|---|",
        f"| `build_tag_index` (encode tags + Annoy + checksums) | {r['build_seconds']:.1f} s |",
        f"| of which encoding the tags (document tower) | {r['encode_tags_seconds']:.1f} s |",
        f"| tag index size | {r['index_bytes'] / 1e6:.1f} MB |",
        "",
        "| predict, k=10, one text per call | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| document text, Annoy (default) | {single['p50']:.2f} | {single['p99']:.2f} |",
        f"| short query, Annoy | {short['p50']:.2f} | {short['p99']:.2f} |",
        f"| document text, exact (all {r['tags']:,} tags) | {exact['p50']:.2f} | {exact['p99']:.2f} |",
        "",
        f"Goal: single-text p50 <= {r['goal_p50_ms']:g} ms: **{verdict}** ({single['p50']:.2f} ms).",
        "",
        "| Annoy search_k | recall@10 vs exact | ms per text (search only) |",
        "|---|---|---|",
        *[f"| {k} | {v['recall_at_10']:.4f} | {v['ms_per_text']:.2f} |" for k, v in r["annoy_sweep"].items()],
        "",
        f"Batch throughput ({r['batch_texts_per_second']['texts']:,} documents, one `predict` call): "
        f"Annoy {r['batch_texts_per_second']['annoy']:,.0f} texts/s, exact matrix product "
        f"{r['batch_texts_per_second']['exact']:,.0f} texts/s (encoding alone "
        f"{r['batch_texts_per_second']['encode_only']:,.0f} texts/s).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
