"""Near-duplicate documents of an embedded index, from its stored (document-tower) vectors.

A pair `(a, b)` is reported when `cos(a, b) >= threshold` and `b` is among the `k` nearest neighbours
of `a` or `a` among those of `b` (so a cluster of many copies yields each document's k closest, not all
n^2 / 2 pairs). Up to EXACT_ROWS documents the neighbours are exact (blockwise `V @ V.T`); above, they
come from the index's Annoy trees (`get_nns_by_item`, search_k SEARCH_K: on the 5,000-document sample
it finds the same pairs as the exact search at cosine >= 0.9, in 0.6 s instead of 6 s with 20,000). Each pair is listed
once, `a < b` in index-row order, sorted by similarity descending then by ids. Documents without
features (zero vectors) have no neighbours.

`--max-far F` takes the threshold from the index's calibration (`dssm calibrate`, indexer/calibration.py):
the cosine at which a random (query, document) non-pair is accepted with probability at most F.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.annoy_index import cosine_from_angular
from indexer.embedded import PASSAGE_ITEMS_FACTOR

EXACT_ROWS = 20_000
BLOCK = 1024
DEFAULT_THRESHOLD = 0.95
DEFAULT_K = 10
SEARCH_K = 2_000


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    similarity: float

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "similarity": self.similarity}


def check_dedup(threshold: float, k: int) -> None:
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"the similarity threshold is a cosine in [-1, 1], got {threshold!r}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (neighbours per document) must be a positive integer, got {k!r}")


def exact_neighbours(vectors: np.ndarray, k: int, threshold: float) -> dict[tuple[int, int], float]:
    """{(row a, row b), a < b: cosine} for each row's k nearest other rows with cosine >= threshold."""
    pairs: dict[tuple[int, int], float] = {}
    matrix = np.asarray(vectors, dtype=np.float32)
    features = np.any(matrix != 0, axis=1)
    top = min(k, len(matrix) - 1)
    if top < 1:
        return pairs
    for start in range(0, len(matrix), BLOCK):
        scores = matrix[start:start + BLOCK] @ matrix.T                         # [block, rows]
        block_rows = np.arange(start, start + len(scores))
        scores[np.arange(len(scores)), block_rows] = -np.inf                   # not its own neighbour
        scores[:, ~features] = -np.inf
        nearest = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        for row, candidates in zip(block_rows, nearest):
            if not features[row]:
                continue
            for other in candidates:
                cosine = float(scores[row - start, other])
                if cosine >= threshold:
                    pairs[(min(row, int(other)), max(row, int(other)))] = cosine
    return pairs


def annoy_neighbours(annoy, vectors: np.ndarray, k: int, threshold: float, search_k: int,
                     passages=None) -> dict[tuple[int, int], float]:
    """As `exact_neighbours`, the neighbours from an Annoy index (item i = row i); cosines re-scored exactly.

    With `passages` (indexer.passages.Passages: their items are numbered after the documents) a
    document's own passages crowd its nearest items: Annoy is asked for PASSAGE_ITEMS_FACTOR times as
    many, and a passage item stands for its document (compared by the documents' whole vectors)."""
    count = len(vectors)
    wanted = k + 1 if passages is None else PASSAGE_ITEMS_FACTOR * (k + 1)
    pairs: dict[tuple[int, int], float] = {}
    for row in range(count):
        vector = np.asarray(vectors[row], dtype=np.float64)
        if not np.any(vector):
            continue
        found, distances = annoy.get_nns_by_item(row, wanted, search_k=search_k, include_distances=True)
        owners = found if passages is None else passages.item_rows(found, count).tolist()
        seen = {row}
        others = []
        for item, other, cosine in zip(found, owners, cosine_from_angular(distances)):
            if other not in seen:            # a passage's cosine is not its document's: always re-scored
                seen.add(other)
                others.append((other, cosine if item < count else 1.0))
        for other, cosine in others[:k]:
            if cosine < threshold - 1e-4:
                continue
            exact = float(np.asarray(vectors[other], dtype=np.float64) @ vector)
            if exact >= threshold:
                pairs[(min(row, other), max(row, other))] = exact
    return pairs


def near_duplicates(index, threshold: float = DEFAULT_THRESHOLD, k: int = DEFAULT_K,
                    exact: bool | None = None, search_k: int | None = None) -> list[Pair]:
    """Near-duplicate pairs of an EmbeddedIndex (`ids`, `vectors`, `annoy`, `passages`, `manifest`), best first.

    `exact` (default: up to EXACT_ROWS documents) compares every pair of vectors; else Annoy with
    `search_k` (default SEARCH_K).
    """
    check_dedup(threshold, k)
    exact = len(index.ids) <= EXACT_ROWS if exact is None else exact
    if exact:
        found = exact_neighbours(index.vectors, k, threshold)
    elif not index.annoy.items:
        found = {}
    else:
        search_k = SEARCH_K if search_k is None else search_k
        found = annoy_neighbours(index.annoy.index, index.vectors, k, threshold, search_k, index.passages)
    pairs = [Pair(index.ids[a], index.ids[b], round(cosine, 6)) for (a, b), cosine in found.items()]
    return sorted(pairs, key=lambda pair: (-pair.similarity, pair.a, pair.b))


def dedup_threshold(manifest: dict, threshold: float | None, max_far: float | None) -> float:
    """--threshold, or the calibrated cosine of --max-far (dssm calibrate), or DEFAULT_THRESHOLD."""
    from indexer.calibration import stored_threshold

    if threshold is not None and max_far is not None:
        raise ValueError("give --threshold or --max-far, not both")
    if max_far is not None:
        try:
            return stored_threshold(manifest, max_far)
        except ValueError as error:
            raise ValueError(str(error).replace("--min-similarity", "--threshold")) from None
    return DEFAULT_THRESHOLD if threshold is None else threshold
