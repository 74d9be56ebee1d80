"""DSSM-alone retrieval quality on debdesc-dev dev queries, beside a BM25 reference.

    python benchmarks/quality_dssm.py --model models/debdesc [--data ../shared/data/debdesc-dev]
Prints nDCG@10, MRR@10 and Recall@100 (one relevant document per query) as a markdown table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dssm.bm25 import BM25
from dssm.export import load_encoder
from dssm.featurise import document_text


def load_dev(data: Path):
    corpus = [json.loads(line) for line in open(data / "corpus.jsonl", encoding="utf-8")]
    queries = {q["qid"]: q["query"] for q in map(json.loads, open(data / "dev_queries.jsonl", encoding="utf-8"))}
    qrels = dict(line.split("\t")[:2] for line in open(data / "qrels_dev.tsv", encoding="utf-8"))
    ids = [d["id"] for d in corpus]
    texts = [document_text(d.get("title"), d.get("text")) for d in corpus]
    row = {doc: n for n, doc in enumerate(ids)}
    qids = [q for q in queries if qrels.get(q) in row]
    return texts, [queries[q] for q in qids], np.asarray([row[qrels[q]] for q in qids])


def ranks_from_scores(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    own = scores[np.arange(len(relevant)), relevant]
    return 1 + (scores > own[:, None]).sum(axis=1)


def metrics(ranks: np.ndarray) -> dict:
    return {"ndcg@10": float(np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0).mean()),
            "mrr@10": float(np.where(ranks <= 10, 1 / ranks, 0).mean()),
            "recall@100": float((ranks <= 100).mean())}


def dssm_ranks(model: str, texts, queries, relevant) -> np.ndarray:
    encoder = load_encoder(model)
    started = time.perf_counter()
    docs = encoder.encode(texts, side="document")
    print(f"encoded {len(texts)} documents in {time.perf_counter() - started:.1f}s")
    ranks = np.empty(len(queries), dtype=np.int64)
    q = encoder.encode(queries, side="query")
    for start in range(0, len(queries), 256):
        ranks[start:start + 256] = ranks_from_scores(q[start:start + 256] @ docs.T, relevant[start:start + 256])
    return ranks


def bm25_ranks(texts, queries, relevant) -> np.ndarray:
    index = BM25(texts)
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), 256):
        scores = (index.query_matrix(queries[start:start + 256]) @ index.weights).toarray()
        ranks[start:start + 256] = ranks_from_scores(scores, relevant[start:start + 256])
    return ranks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--data", default="../shared/data/debdesc-dev")
    args = parser.parse_args()
    texts, queries, relevant = load_dev(Path(args.data))
    rows = {"BM25 (scipy reference)": metrics(bm25_ranks(texts, queries, relevant))}
    for model in args.model:
        rows[f"DSSM {model}"] = metrics(dssm_ranks(model, texts, queries, relevant))
    print(f"\n{len(queries)} dev queries, {len(texts)} documents\n")
    print("| system | nDCG@10 | MRR@10 | Recall@100 |\n|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@100']:.4f} |")


if __name__ == "__main__":
    main()
