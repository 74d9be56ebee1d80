"""A per-query fusion weight (issue 6 stretch): a tiny softmax model choosing alpha from query features.

Fixed-alpha fusion gives every query the same mix of BM25 and vectors. Here a linear model over a few
features of the query and of its two candidate lists scores each alpha of ALPHAS; the query is fused
with the best-scoring one. The model is fitted on judged queries by maximising the expected nDCG@10
`mean_q sum_a softmax(W x_q)_a * G[q, a]` (G: the query's nDCG@10 with alpha a, computed offline from
its candidates) minus `l2 * |W|^2`, by gradient ascent; the gradient of the expectation with respect
to the scores is `p_a (G_a - sum_b p_b G_b)`. Features are standardised with the fitting set's mean/std.
Experimental: used by benchmarks/bench_quality.py to compare against the best fixed alpha, not by search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from indexer import fusion as rules
from indexer.evaluate import Candidates, per_query, parse_metrics
from indexer.hits import Hits

ALPHAS = tuple(round(0.1 * step, 1) for step in range(11))
FEATURES = ("query_words", "lexical_top", "lexical_gap", "lexical_hits", "semantic_top", "semantic_gap", "overlap_10")


def features(query: str, lexical: Hits, semantic: Hits, depth: int) -> np.ndarray:
    """FEATURES of one query [len(FEATURES)]: query length, each side's top score and gap, top-10 overlap."""
    def gap(scores):
        return (scores[0] - scores[1]) if len(scores) > 1 else 0.0

    top = set(lexical.ids[:10]) & set(semantic.ids[:10])
    return np.array([math.log1p(len(query.split())), math.log1p(lexical.scores[0]) if lexical else 0.0,
                     gap(lexical.scores) / (lexical.scores[0] or 1.0) if lexical else 0.0, len(lexical) / depth,
                     semantic.scores[0] if semantic else 0.0, gap(semantic.scores), len(top) / 10])


def gains(candidates: Candidates, qrels: dict, norm: str, metric: str = "ndcg@10") -> np.ndarray:
    """G [queries, len(ALPHAS)]: each query's metric fused with each alpha (queries in `candidates` order)."""
    measures, k = parse_metrics(metric), int(metric.split("@")[1])
    columns = []
    for alpha in ALPHAS:
        run = {qid: rules.linear(lexical, semantic, alpha=alpha, norm=norm, k=k).hits
               for qid, (lexical, semantic) in candidates.items()}
        values = per_query(run, {qid: qrels[qid] for qid in candidates}, measures)[metric]
        columns.append([values[qid] for qid in candidates])
    return np.array(columns).T


def softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class AlphaModel:
    weights: np.ndarray   # [len(FEATURES) + 1, len(ALPHAS)], last row the bias
    mean: np.ndarray
    std: np.ndarray
    norm: str

    def design(self, x: np.ndarray) -> np.ndarray:
        return np.hstack([(x - self.mean) / self.std, np.ones((len(x), 1))])

    def alphas(self, x: np.ndarray) -> np.ndarray:
        """The chosen alpha per row of `x` [n, len(FEATURES)] -> [n]."""
        return np.asarray(ALPHAS)[np.argmax(self.design(x) @ self.weights, axis=1)]


def fit(x: np.ndarray, g: np.ndarray, norm: str, l2: float = 1e-2, steps: int = 2000, rate: float = 0.5) -> AlphaModel:
    """Gradient ascent on the expected gain; `x` [n, features], `g` [n, len(ALPHAS)]."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = AlphaModel(np.zeros((x.shape[1] + 1, g.shape[1])), mean, std, norm)
    design = model.design(x)
    for _ in range(steps):
        p = softmax(design @ model.weights)
        expected = (p * g).sum(axis=1, keepdims=True)
        gradient = design.T @ (p * (g - expected)) / len(x) - 2 * l2 * model.weights
        model.weights += rate * gradient
    return model


def adaptive_run(model: AlphaModel, candidates: Candidates, x: np.ndarray, k: int = 10) -> dict[str, Hits]:
    return {qid: rules.linear(lexical, semantic, alpha=float(alpha), norm=model.norm, k=k).hits
            for (qid, (lexical, semantic)), alpha in zip(candidates.items(), model.alphas(x))}
