"""Annoy (approximate nearest neighbours, Bernhardsson 2013) over unit vectors, angular metric.

Annoy's angular distance is `d = sqrt(2 - 2 cos)` on normalised vectors, so `cos = 1 - d^2 / 2`.
Rows whose vector is zero (texts without features) are left out: their cosine with anything is 0,
and Annoy cannot normalise them. Item `i` is row `i` of the vector file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from indexer.manifest import damaged

ANNOY_FILE = "annoy.ann"
METRIC = "angular"
DEFAULT_N_TREES = 50
DEFAULT_SEARCH_K = 20_000   # nodes inspected per query; recall@10 >= 0.95 at 100k docs (benchmarks)
SEED = 42


def cosine_from_angular(distances: np.ndarray) -> np.ndarray:
    """`cos = 1 - d^2 / 2` for Annoy angular distances `d` of unit vectors."""
    distances = np.asarray(distances, dtype=np.float64)
    return 1.0 - distances * distances / 2.0


def build_annoy(vectors: np.ndarray, path: Path, n_trees: int = DEFAULT_N_TREES, on_disk_build: bool = False,
                n_jobs: int = -1, seed: int = SEED) -> int:
    """Build and save an Annoy index of `vectors` [n, dim] at `path`; returns the items added (non-zero rows).

    `on_disk_build` builds straight into the file (memory-mapped), for corpora larger than memory.
    """
    if n_trees < 1:
        raise ValueError(f"n_trees must be >= 1, got {n_trees}")
    index = AnnoyIndex(vectors.shape[1], METRIC)
    index.set_seed(seed)
    if on_disk_build:
        index.on_disk_build(str(path))
    added = 0
    for start in range(0, len(vectors), 65536):
        block = np.asarray(vectors[start:start + 65536])
        for offset in np.flatnonzero(np.any(block != 0, axis=1)):
            index.add_item(start + int(offset), block[offset].tolist())
            added += 1
    index.build(n_trees, n_jobs)
    if not on_disk_build:
        index.save(str(path))
    index.unload()
    return added


class AnnoySearcher:
    """`search(vector, k, search_k) -> (rows int64 [<=k], cosines float64 [<=k])`, best first.

    `limit`: the items the file may hold (ids 0 .. limit-1; vector file rows, then passages); an item
    outside, or a distance that is not finite, is a damaged file (`DamagedIndexError`), not a hit."""

    def __init__(self, path: Path, dim: int, items: int, limit: int | None = None, shown: Path | None = None) -> None:
        """`shown`: the index named in messages (default: the file's directory)."""
        self.index = AnnoyIndex(dim, METRIC)
        self.items, self.limit, self.shown = items, limit, shown or path.parent
        if items:
            self.index.load(str(path), prefault=False)
            if limit is not None and not items <= self.index.get_n_items() <= limit:
                raise damaged(self.shown, ANNOY_FILE, f"holds item ids up to {self.index.get_n_items() - 1}, the "
                                                      f"index {limit} rows and {items} items")

    def search(self, vector: np.ndarray, k: int, search_k: int = -1) -> tuple[np.ndarray, np.ndarray]:
        if not self.items or k <= 0 or not np.any(vector):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        rows, distances = self.index.get_nns_by_vector(vector.tolist(), k, search_k=search_k,
                                                       include_distances=True)
        rows, distances = np.asarray(rows, dtype=np.int64), np.asarray(distances, dtype=np.float64)
        if self.limit is not None and len(rows) and (rows.min() < 0 or rows.max() >= self.limit
                                                     or not np.all(np.isfinite(distances))):
            raise damaged(self.shown, ANNOY_FILE, "returned an item id out of range or a distance that "
                                                        "is not finite")
        return rows, cosine_from_angular(distances)
