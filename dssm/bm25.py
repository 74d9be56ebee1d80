"""Offline hard negatives from BM25 (Robertson & Zaragoza 2009), so the DSSM learns what BM25 misses.

A small Okapi BM25 over word tokens (the featuriser's tokeniser) with scipy sparse matrices; it is
only a miner for training. Search-time BM25 lives in the indexes (indexer/lexical.py with the index's analyzer, Elasticsearch).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from dssm.featurise import tokenise

K1, B = 1.2, 0.75


def idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Lucene's BM25 idf, never negative: `ln(1 + (N - df + 0.5) / (df + 0.5))`, shape [terms]."""
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


class BM25:
    """Okapi BM25 over a list of document texts (the embedded index's lexical side uses the same idf)."""

    def __init__(self, documents: list[str], k1: float = K1, b: float = B) -> None:
        self.vocabulary: dict[str, int] = {}
        rows, cols = [], []
        for row, text in enumerate(documents):
            for token in tokenise(text):
                rows.append(row)
                cols.append(self.vocabulary.setdefault(token, len(self.vocabulary)))
        counts = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                         shape=(len(documents), len(self.vocabulary)))
        counts.sum_duplicates()
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        df = np.bincount(counts.indices, minlength=len(self.vocabulary))
        term_idf = idf(df, len(documents)).astype(np.float32)
        norm = k1 * (1 - b + b * lengths / max(lengths.mean(), 1e-9))
        tf = counts.tocoo()
        weights = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * term_idf[tf.col]
        self.weights = scipy.sparse.csr_matrix((weights, (tf.row, tf.col)), shape=counts.shape).T.tocsr()

    def query_matrix(self, queries: list[str]) -> scipy.sparse.csr_matrix:
        rows, cols = [], []
        for row, text in enumerate(queries):
            for token in set(tokenise(text)):
                col = self.vocabulary.get(token)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
        return scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                       shape=(len(queries), len(self.vocabulary)))

    def top(self, queries: list[str], k: int, chunk: int = 512) -> np.ndarray:
        """int32 [queries, k]: best documents per query (-1 where fewer than k match)."""
        out = np.full((len(queries), k), -1, dtype=np.int32)
        for start in range(0, len(queries), chunk):
            scores = (self.query_matrix(queries[start:start + chunk]) @ self.weights).toarray()
            k_eff = min(k, scores.shape[1])
            top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
            best = np.take_along_axis(top, order, axis=1)
            matched = np.take_along_axis(scores, best, axis=1) > 0
            out[start:start + chunk, :k_eff] = np.where(matched, best, -1)
        return out


def mine_negatives(documents: list[str], queries: list[str], positives: np.ndarray,
                   query_keys: np.ndarray, depth: int) -> np.ndarray:
    """int32 [pairs, depth]: BM25's top documents per query that are not among its positives (-1 pads).

    positives: int [pairs] document row of each pair; pairs with equal query_keys share positives.
    """
    relevant: dict[int, set[int]] = {}
    for key, doc in zip(query_keys.tolist(), positives.tolist()):
        relevant.setdefault(key, set()).add(doc)
    unique_keys, first = np.unique(query_keys, return_index=True)
    extra = max(len(s) for s in relevant.values())
    top = BM25(documents).top([queries[i] for i in first], depth + extra)
    mined = np.full((len(queries), depth), -1, dtype=np.int32)
    by_key = {}
    for key, hits in zip(unique_keys.tolist(), top):
        kept = [doc for doc in hits.tolist() if doc >= 0 and doc not in relevant[key]][:depth]
        by_key[key] = kept
    for row, key in enumerate(query_keys.tolist()):
        kept = by_key[key]
        mined[row, :len(kept)] = kept
    return mined
