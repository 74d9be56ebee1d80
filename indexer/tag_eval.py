"""Tag prediction quality: P@k and R@k, seen and unseen tags apart, in two protocols (issue 7).

A tagged text is a query and a tag a document, so the measures are trec_eval's (`ir_measures` `P@k`,
`R@k`): P@k = |gold in the top k| / k, R@k = |gold in the top k| / |gold|, averaged over the texts.
Anything that scores tags shares the code: a scorer is `score(texts) -> float32 [n_texts, n_tags]` over
a tag list fixed when it was made (the DSSM's cosines, the one-shot variant, the baselines below).
The k best tags of a text are taken by score, ties by tag name ascending.

- restricted (the zero-shot protocol of Xian et al. 2017, "Zero-Shot Learning - The Good, the Bad and
  the Ugly"): the seen tags are ranked among the seen tags only (gold: the text's seen tags) and the
  unseen among the unseen only (gold: its unseen tags);
- generalised: all tags are ranked together and the top k is scored against the seen gold and against
  the unseen gold separately, so unseen tags must also beat the seen ones.
A text with no gold tag of a kind is skipped for that kind and counted (`skipped`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from dssm.bm25 import BM25
from dssm.featurise import tokenise

Scorer = Callable[[Sequence[str]], np.ndarray]
PROTOCOLS = ("restricted", "generalised")
KINDS = ("seen", "unseen")


def top_k(scores: np.ndarray, tags: Sequence[str], k: int) -> list[list[str]]:
    """The k best tags of each row of `scores` [n_texts, n_tags], score descending, ties by tag name."""
    names = np.argsort(np.argsort(np.asarray(tags, dtype=object), kind="stable"), kind="stable")
    order = np.lexsort((np.broadcast_to(names, scores.shape), -scores), axis=1)[:, :k]
    return [[tags[column] for column in row] for row in order.tolist()]


def precision_recall(predicted: list[list[str]], gold: list[set[str]], k: int) -> dict:
    """Mean P@k and R@k over the texts with gold tags (ir_measures); others are skipped and counted."""
    import ir_measures

    measures = {f"P@{k}": ir_measures.parse_measure(f"P@{k}"), f"R@{k}": ir_measures.parse_measure(f"R@{k}")}
    qrels = {str(row): dict.fromkeys(tags, 1) for row, tags in enumerate(gold) if tags}
    run = {qid: {tag: float(k - rank) for rank, tag in enumerate(predicted[int(qid)])} for qid in qrels}
    totals = dict.fromkeys(measures, 0.0)
    names = {measure: name for name, measure in measures.items()}
    if qrels:
        for metric in ir_measures.iter_calc(list(measures.values()), qrels, run):
            totals[names[metric.measure]] += float(metric.value)
    scored = len(qrels)
    return {**{name: total / scored if scored else 0.0 for name, total in totals.items()},
            "texts": scored, "skipped": len(gold) - scored}


def evaluate_tagging(score: Scorer, tags: Sequence[str], texts: Sequence[str], gold: Sequence[Sequence[str]],
                     unseen: Sequence[str], k: int = 5) -> dict:
    """`{protocol: {"seen"|"unseen": {"P@k", "R@k", "texts", "skipped"}}}` for a scorer over `tags`.

    tags: the scorer's columns; unseen: those of them held out of training; gold: each text's tags (tags
    outside `tags` are ignored).
    """
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}; use e.g. k=5")
    tags = list(tags)
    unseen_set, seen_set = set(unseen), set(tags) - set(unseen)
    if not unseen_set <= set(tags):
        raise ValueError(f"unseen tags {sorted(unseen_set - set(tags))[:5]} are not among the scored tags; "
                         "score every seen and unseen tag")
    scores = np.asarray(score(list(texts)), dtype=np.float32)
    if scores.shape != (len(texts), len(tags)):
        raise ValueError(f"the scorer returned shape {scores.shape}, expected [texts, tags] = "
                         f"{(len(texts), len(tags))}; make it score every tag it was built for")
    columns = {kind: [i for i, tag in enumerate(tags) if (tag in unseen_set) == (kind == "unseen")] for kind in KINDS}
    gold_by_kind = {kind: [set(g) & (unseen_set if kind == "unseen" else seen_set) for g in gold] for kind in KINDS}
    everything = top_k(scores, tags, k)
    report: dict = {protocol: {} for protocol in PROTOCOLS}
    for kind in KINDS:
        subset = [tags[i] for i in columns[kind]]
        restricted = top_k(scores[:, columns[kind]], subset, k) if subset else [[] for _ in texts]
        report["restricted"][kind] = precision_recall(restricted, gold_by_kind[kind], k)
        report["generalised"][kind] = precision_recall(everything, gold_by_kind[kind], k)
    return report


# --- baselines --------------------------------------------------------------------------------------


def tag_query(tag: str) -> str:
    """A tag's words as a BM25 query: 'implemented-in::python' -> 'implemented in python'."""
    return " ".join(tokenise(tag))


def bm25_scorer(tags: Sequence[str]) -> Scorer:
    """Tag-name BM25: each tag's words (`tag_query`) as a query against each text, BM25 statistics (idf,
    average length) over the texts scored (dssm/bm25.py, k1 1.2, b 0.75). float32 [n_texts, n_tags]."""
    queries = [tag_query(tag) for tag in tags]

    def score(texts: Sequence[str]) -> np.ndarray:
        index = BM25(list(texts))
        return (index.query_matrix(queries) @ index.weights).T.toarray().astype(np.float32)
    return score


def prior_scorer(tags: Sequence[str], training_tags: Sequence[Sequence[str]]) -> Scorer:
    """Every text gets the same ranking: tags by how many training texts carry them (unseen tags: 0)."""
    counts = Counter(tag for record in training_tags for tag in record)
    row = np.asarray([counts[tag] for tag in tags], dtype=np.float32)
    return lambda texts: np.tile(row, (len(texts), 1))


def cosine_scorer(encoder, tag_matrix: np.ndarray) -> Scorer:
    """The DSSM: cosine of each text's query-tower vector with each tag vector (unit rows [n_tags, dim])."""
    return lambda texts: encoder.encode(list(texts), side="query") @ np.asarray(tag_matrix, dtype=np.float32).T
