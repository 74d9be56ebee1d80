"""Elasticsearch backend benchmark: bulk docs/s, search latency p50/p99, kNN recall@10 vs exact.

    .venv/bin/python benchmarks/bench_es.py --limit 5000                # random unit vectors, 128-d
    .venv/bin/python benchmarks/bench_es.py --model models/demo --limit 20000

Corpus: debdesc-dev (`{"id", "title", "text"}` JSONL). Without `--model` every document and query
gets a seeded random unit vector (`--dims`, default 128): the bulk and kNN numbers then measure ES, not
the encoder, and random vectors are a hard case for HNSW recall. With `--model` documents are encoded
with the document tower and queries (`dev_queries.jsonl`) with the query tower. Recall@10 compares ES
kNN top 10 to the exact cosine top 10 (numpy) for each `num_candidates`. Hybrid = lexical + semantic
requests, fused by `indexer.fusion` (linear, minmax). Needs a server (`make es-up`); the benchmark
index is deleted at the end.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.es_config import connect, load_config  # noqa: E402
from indexer.es_index import EsIndex, IndexOptions, build  # noqa: E402
from indexer.fusion import fuse  # noqa: E402

DATA = Path("/work/shared/data/debdesc-dev")


def read_jsonl(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in itertools.islice(lines, limit)]


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def vectors_for(docs: list[dict], queries: list[str], args) -> tuple[np.ndarray, np.ndarray, str]:
    """Document and query vectors `[n, dim]`, `[q, dim]`, and the fingerprint to record."""
    if args.model:
        from dssm.export import load_encoder
        encoder = load_encoder(args.model)
        texts = [f"{d.get('title') or ''}\n{d['text']}" for d in docs]
        return (encoder.encode(texts, side="document"), encoder.encode(queries, side="query"),
                encoder.fingerprint)
    rng = np.random.default_rng(args.seed)
    return (unit_rows(rng.standard_normal((len(docs), args.dims))),
            unit_rows(rng.standard_normal((len(queries), args.dims))), "random-unit-vectors")


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms"


def timed(call, items) -> tuple[list, list[float]]:
    results, seconds = [], []
    for item in items:
        start = time.perf_counter()
        results.append(call(item))
        seconds.append(time.perf_counter() - start)
    return results, seconds


def recall_at_10(index: EsIndex, doc_vectors: np.ndarray, ids: list[str], queries: np.ndarray,
                 num_candidates: int) -> float:
    exact = np.argsort(-(queries @ doc_vectors.T), axis=1)[:, :10]
    found = 0
    for query, truth in zip(queries, exact):
        hits = index.semantic(query, k=10, num_candidates=num_candidates)
        found += len(set(hits.ids) & {ids[i] for i in truth})
    return found / (10 * len(queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DATA / "corpus.jsonl")
    parser.add_argument("--queries", type=Path, default=DATA / "dev_queries.jsonl")
    parser.add_argument("--limit", type=int, default=5000, help="documents to index")
    parser.add_argument("--num-queries", type=int, default=200)
    parser.add_argument("--model", help="model directory; default: random unit vectors")
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--es-url")
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--candidates", default="20,50,100,200", help="num_candidates values for recall")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    client = connect(load_config(url=args.es_url))
    docs = read_jsonl(args.corpus, args.limit)
    queries = [q["query"] for q in read_jsonl(args.queries, args.num_queries)]
    doc_vectors, query_vectors, fingerprint = vectors_for(docs, queries, args)
    ids = [d["id"] for d in docs]
    alias = f"bench-es-{int(time.time())}"
    rows = ((d["id"], d.get("title") or "", d["text"], v) for d, v in zip(docs, doc_vectors))
    report = build(client, alias, rows, fingerprint, IndexOptions(dims=doc_vectors.shape[1], replicas=0),
                   chunk_size=args.chunk_size, rejects_path=Path(f"benchmarks/out/{alias}.rejects.jsonl"))
    results = {"docs": report.indexed, "dims": doc_vectors.shape[1], "vectors": fingerprint,
               "bulk_seconds": round(report.seconds, 2), "bulk_docs_per_s": round(report.docs_per_second)}
    print(f"bulk: {report.summary()}")
    try:
        index = EsIndex.open(client, alias)
        for query in queries[:10]:  # warm up
            index.lexical(query, 10)
        lexical, lexical_s = timed(lambda q: index.lexical(q, 10), queries)
        semantic, semantic_s = timed(lambda v: index.semantic(v, 10), query_vectors)
        _, hybrid_s = timed(lambda qv: fuse(index.lexical(qv[0], 50), index.semantic(qv[1], 50), k=10),
                            list(zip(queries, query_vectors)))
        for name, seconds in (("lexical", lexical_s), ("semantic", semantic_s), ("hybrid", hybrid_s)):
            print(f"{name:8s} search k=10 over {len(seconds)} queries: {percentiles(seconds)}")
            results[f"{name}_p50_ms"] = round(float(np.percentile(seconds, 50)) * 1000, 2)
            results[f"{name}_p99_ms"] = round(float(np.percentile(seconds, 99)) * 1000, 2)
        for candidates in (int(c) for c in args.candidates.split(",")):
            recall = recall_at_10(index, doc_vectors, ids, query_vectors, candidates)
            print(f"kNN recall@10 vs exact, num_candidates={candidates}: {recall:.3f}")
            results[f"recall@10_nc{candidates}"] = round(recall, 4)
    finally:
        client.indices.delete(index=report.index)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
