"""Latency of the plugin endpoint vs the Python client-side hybrid vs a plain kNN search.

    .venv/bin/python benchmarks/bench_plugin.py --limit 5000 --queries 200
    .venv/bin/python benchmarks/bench_plugin.py --model models/demo

Corpus debdesc-dev (`/work/shared/data/debdesc-dev`, `corpus.jsonl` + `dev_queries.jsonl`). Without
`--model` a seeded random-weight model of the default size (32768 buckets, 300-300-128) is used: latency
does not depend on training. Methods, each timed per query from the client (p50/p99):

- `endpoint`: `POST /{index}/_dssm/search` (query embedded in Java, BM25 + kNN multi-search, fusion
  in Java): one round trip.
- `client_hybrid`: numpy query encoding + `EsIndex.lexical` + `EsIndex.semantic` + `indexer.fusion`:
  two round trips.
- `knn`: `EsIndex.semantic` with a precomputed query vector, no `_source` (the server's kNN cost
  alone); `knn+source` the same returning `_source` like the endpoint; `knn+encode` with the numpy
  encoding included.

Methods take turns query by query, so a busy machine slows all of them alike.

Goal (issue 5): endpoint p50 <= 1.5 x knn p50. Needs a server with the plugin (`make es-up`); the
benchmark index and model are deleted at the end. Writes benchmarks/out/bench_plugin.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dssm.config import FeaturiserConfig, TowerConfig  # noqa: E402
from dssm.export import load_encoder, random_weights, save_model  # noqa: E402
from indexer import es_plugin  # noqa: E402
from indexer.es_config import connect, load_config  # noqa: E402
from indexer.es_index import EsIndex, IndexOptions, build, delete_quietly  # noqa: E402
from indexer.fusion import fuse  # noqa: E402

DATA = Path("/work/shared/data/debdesc-dev")
OUT = Path(__file__).resolve().parent / "out" / "bench_plugin.json"
INDEX = "dssm-bench-plugin"
MODEL = "dssm-bench-plugin"


def read_jsonl(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in itertools.islice(lines, limit)]


def model_dir(args, tmp: Path) -> Path:
    if args.model:
        return Path(args.model)
    featuriser, tower = FeaturiserConfig(), TowerConfig()
    save_model(tmp / "model", featuriser, tower, random_weights(featuriser, tower, seed=args.seed))
    return tmp / "model"


def timed(methods: dict, queries: list, repeat: int) -> dict[str, list[float]]:
    """Seconds per call of each method; methods take turns on each query, so load swings hit all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):
        for query in queries:
            for name, function in methods.items():
                start = time.perf_counter()
                function(query)
                seconds[name].append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(ms.mean()), 2), "n": len(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported model directory (default: random weights, default size)")
    parser.add_argument("--limit", type=int, default=5000, help="documents to index")
    parser.add_argument("--queries", type=int, default=200, help="dev queries to time")
    parser.add_argument("--size", type=int, default=10, help="hits per search (k)")
    parser.add_argument("--fusion", default="linear", choices=["linear", "rrf"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--es-url", help="default DSSM_ES_URL or http://127.0.0.1:9200")
    args = parser.parse_args()

    client = connect(load_config(url=args.es_url, timeout=120))
    docs = read_jsonl(DATA / "corpus.jsonl", args.limit)
    queries = [q["query"] for q in read_jsonl(DATA / "dev_queries.jsonl", args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = model_dir(args, Path(tmp))
        encoder = load_encoder(directory)
        vectors = encoder.encode([f"{d.get('title') or ''}\n{d['text']}" if d.get("title") else d["text"]
                                  for d in docs], side="document")
        build(client, INDEX, [(d["id"], d.get("title") or "", d["text"], v) for d, v in zip(docs, vectors)],
              encoder.fingerprint, IndexOptions(dims=encoder.dim, replicas=0), force=True)
        es_plugin.upload_model(client, MODEL, directory)
    try:
        index = EsIndex.open(client, INDEX)
        k = args.size
        query_vectors = dict(zip(queries, encoder.encode(queries, side="query")))
        methods = {
            "endpoint": lambda q: es_plugin.search(client, INDEX, q, size=k, model=MODEL, fusion=args.fusion),
            "client_hybrid": lambda q: fuse(index.lexical(q, k), index.semantic(encoder.encode([q], side="query")[0], k),
                                            args.fusion, k=k),
            "knn": lambda q: index.semantic(query_vectors[q], k),
            "knn+source": lambda q: client.search(index=INDEX, knn={"field": "vector", "k": k, "num_candidates": 100,
                                                                 "query_vector": query_vectors[q].tolist()},
                                                  size=k, source_excludes=["vector"], track_total_hits=False),
            "knn+encode": lambda q: index.semantic(encoder.encode([q], side="query")[0], k),
        }
        timed(methods, queries[:20], 1)   # warm up: JIT, caches, model load
        results = {name: summary(seconds) for name, seconds in timed(methods, queries, args.repeat).items()}
    finally:
        delete_quietly(client, INDEX)
        for name in client.indices.get_alias(name=INDEX, ignore_unavailable=True) or {}:
            delete_quietly(client, name)
        es_plugin.delete_model(client, MODEL)
    ratio = results["endpoint"]["p50_ms"] / results["knn"]["p50_ms"]
    ratio_source = results["endpoint"]["p50_ms"] / results["knn+source"]["p50_ms"]
    report = {"documents": len(docs), "queries": len(queries), "k": k, "fusion": args.fusion,
              "model": str(args.model or "random default-size"), "dims": encoder.dim, "results": results,
              "endpoint_p50_over_knn_p50": round(ratio, 2),
              "endpoint_p50_over_knn_source_p50": round(ratio_source, 2), "goal": "endpoint p50 <= 1.5 x knn p50"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(docs)} documents, {len(queries)} queries, k={k}, fusion {args.fusion}")
    for name, row in results.items():
        print(f"  {name:14s} p50 {row['p50_ms']:7.2f} ms   p99 {row['p99_ms']:7.2f} ms")
    print(f"  endpoint p50 / knn p50 = {ratio:.2f}, / knn+source p50 = {ratio_source:.2f} (goal <= 1.5); "
          f"written to {OUT}")


if __name__ == "__main__":
    main()
