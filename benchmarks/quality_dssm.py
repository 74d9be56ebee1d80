"""DSSM-alone retrieval quality on debdesc-dev dev queries, beside a BM25 reference.

    python benchmarks/quality_dssm.py --model models/debdesc [--data ../shared/data/debdesc-dev]
                                      [--passages 12:6 ...]
Prints nDCG@10, MRR@10 and Recall@100 (one relevant document per query) as a markdown table.

`--passages W:S` also scores each document by passage max-pooling (MaxP, Dai & Callan 2019) as
`dssm index build --passages W:S` does (indexer/passages.py), with exact cosines: a document's score is
the best cosine of the query with the whole document or any of its passages. `--hybrid` also fuses
each run with BM25 as the product does.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dssm.bm25 import BM25
from dssm.export import load_encoder
from dssm.featurise import document_text
from indexer.fusion import linear
from indexer.hits import Hits
from indexer.passages import passage_texts


def load_dev(data: Path, with_titles: bool = False):
    corpus = [json.loads(line) for line in open(data / "corpus.jsonl", encoding="utf-8")]
    queries = {q["qid"]: q["query"] for q in map(json.loads, open(data / "dev_queries.jsonl", encoding="utf-8"))}
    qrels = dict(line.split("\t")[:2] for line in open(data / "qrels_dev.tsv", encoding="utf-8"))
    ids = [d["id"] for d in corpus]
    texts = [document_text(d.get("title"), d.get("text")) for d in corpus]
    row = {doc: n for n, doc in enumerate(ids)}
    qids = [q for q in queries if qrels.get(q) in row]
    found = texts, [queries[q] for q in qids], np.asarray([row[qrels[q]] for q in qids])
    return (*found, [d.get("title") or "" for d in corpus], [d.get("text") or "" for d in corpus]) if with_titles else found



def maxp_scores(model: str, texts, titles, bodies, queries, window: int, stride: int):
    """(passage count, generator of [chunk, documents] scores): each document's best cosine with the
    query over the whole document and its passages."""
    encoder = load_encoder(model)
    pieces = [passage_texts(title, body, window, stride) for title, body in zip(titles, bodies)]
    owner = np.concatenate([np.arange(len(texts)), np.repeat(np.arange(len(texts)), [len(p) for p in pieces])])
    vectors = encoder.encode(texts + [piece for doc in pieces for piece in doc], side="document")
    order = np.argsort(owner, kind="stable")
    vectors = vectors[order]
    firsts = np.flatnonzero(np.r_[True, owner[order][1:] != owner[order][:-1]])
    q = encoder.encode(queries, side="query")
    chunks = (np.maximum.reduceat(q[start:start + CHUNK] @ vectors.T, firsts, axis=1)
              for start in range(0, len(queries), CHUNK))
    return len(owner) - len(texts), chunks


def whole_scores(model: str, texts, queries):
    encoder = load_encoder(model)
    docs = encoder.encode(texts, side="document")
    q = encoder.encode(queries, side="query")
    return (q[start:start + CHUNK] @ docs.T for start in range(0, len(queries), CHUNK))


def ranks_and_hybrid(chunks, lexical: np.ndarray, relevant) -> tuple[np.ndarray, np.ndarray]:
    """Ranks by the DSSM scores, and by their linear z-score fusion with BM25 as the product fuses
    (alpha 0.5, the top 100 of each side; a document outside the top 100 counts as not found)."""
    ranks, hybrid = [], []
    for start, scores in zip(range(0, len(relevant), CHUNK), chunks):
        ranks.append(ranks_from_scores(scores, relevant[start:start + CHUNK]))
        for row, own in zip(range(start, start + len(scores)), relevant[start:start + CHUNK]):
            fused = linear(top_hits(lexical[row]), top_hits(scores[row - start]), alpha=0.5, norm="zscore", k=100)
            ids = fused.hits.ids
            hybrid.append(ids.index(str(own)) + 1 if str(own) in ids else 10 ** 9)
    return np.concatenate(ranks), np.asarray(hybrid)


def top_hits(scores: np.ndarray, k: int = 100) -> Hits:
    rows = np.argpartition(-scores, k)[:k]
    return Hits([str(row) for row in rows], scores[rows])


CHUNK = 64


def ranks_from_scores(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    own = scores[np.arange(len(relevant)), relevant]
    return 1 + (scores > own[:, None]).sum(axis=1)


def metrics(ranks: np.ndarray) -> dict:
    return {"ndcg@10": float(np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0).mean()),
            "mrr@10": float(np.where(ranks <= 10, 1 / ranks, 0).mean()),
            "recall@100": float((ranks <= 100).mean())}


def dssm_ranks(model: str, texts, queries, relevant) -> np.ndarray:
    return ranks_of(whole_scores(model, texts, queries), relevant)


def ranks_of(chunks, relevant) -> np.ndarray:
    """Ranks from score chunks of CHUNK queries each."""
    return np.concatenate([ranks_from_scores(scores, relevant[start:start + CHUNK])
                           for start, scores in zip(range(0, len(relevant), CHUNK), chunks)])


def bm25_scores(texts, queries) -> np.ndarray:
    index = BM25(texts)
    return np.vstack([(index.query_matrix(queries[start:start + 256]) @ index.weights).toarray()
                      for start in range(0, len(queries), 256)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--data", default="../shared/data/debdesc-dev")
    parser.add_argument("--passages", action="append", default=[], metavar="W:S",
                        help="also MaxP over windows of W words every S words (repeatable)")
    parser.add_argument("--hybrid", action="store_true",
                        help="also fuse each DSSM run with BM25 (linear z-score, alpha 0.5, top 100 each)")
    args = parser.parse_args()
    texts, queries, relevant, titles, bodies = load_dev(Path(args.data), with_titles=True)
    lexical = bm25_scores(texts, queries)
    rows = {"BM25 (scipy reference)": metrics(ranks_from_scores(lexical, relevant))}
    for model in args.model:
        runs = {f"DSSM {model}": whole_scores(model, texts, queries)}
        for spec in args.passages:
            window, stride = (int(part) for part in spec.split(":"))
            count, chunks = maxp_scores(model, texts, titles, bodies, queries, window, stride)
            runs[f"DSSM {model}, MaxP {window}:{stride} ({count:,} passages + {len(texts):,} documents)"] = chunks
        for name, chunks in runs.items():
            if not args.hybrid:
                rows[name] = metrics(ranks_of(chunks, relevant))
                continue
            ranks, hybrid = ranks_and_hybrid(chunks, lexical, relevant)
            rows[name] = metrics(ranks)
            rows[f"{name} + BM25 (linear z-score, alpha 0.5)"] = metrics(hybrid)
    print(f"\n{len(queries)} dev queries, {len(texts)} documents\n")
    print("| system | nDCG@10 | MRR@10 | Recall@100 |\n|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@100']:.4f} |")


if __name__ == "__main__":
    main()
