"""`Hits`: the one result type every retriever returns and fusion consumes.

A `Hits` is a ranked list of `(id, score)`: scores descending, ties broken by id ascending (string
order), as docs/FORMAT.md section 3 requires. The constructor sorts, so every `Hits` is in that order
whoever built it, and `rank_of(id)` is 1-based.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator


def ranking_key(id_and_score: tuple[str, float]) -> tuple[float, str]:
    """Sort key of the ranking order: score descending, then id ascending."""
    doc_id, score = id_and_score
    return (-score, doc_id)


@dataclass(frozen=True)
class Hits:
    """Ranked `(id, score)` pairs: `ids[i]` has `scores[i]`; `len(ids) == len(scores)`.

    >>> Hits(["b", "a", "c"], [1.0, 1.0, 2.0]).ids
    ('c', 'a', 'b')
    """

    ids: tuple[str, ...]
    scores: tuple[float, ...]
    _ranks: dict[str, int] = field(init=False, repr=False, compare=False)

    def __init__(self, ids: Iterable[str], scores: Iterable[float]) -> None:
        ids, scores = [str(i) for i in ids], [float(s) for s in scores]
        if len(ids) != len(scores):
            raise ValueError(f"Hits needs one score per id: got {len(ids)} ids and {len(scores)} scores")
        if any(math.isnan(s) for s in scores):
            raise ValueError("Hits scores must be numbers, got NaN")
        if len(set(ids)) != len(ids):
            raise ValueError("Hits ids must be unique; merge duplicate hits before building Hits")
        pairs = sorted(zip(ids, scores), key=ranking_key)
        object.__setattr__(self, "ids", tuple(doc_id for doc_id, _ in pairs))
        object.__setattr__(self, "scores", tuple(score for _, score in pairs))
        object.__setattr__(self, "_ranks", {doc_id: rank for rank, doc_id in enumerate(self.ids, 1)})

    @classmethod
    def empty(cls) -> "Hits":
        return cls((), ())

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, float]]) -> "Hits":
        pairs = list(pairs)
        return cls([doc_id for doc_id, _ in pairs], [score for _, score in pairs])

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[tuple[str, float]]:
        return iter(zip(self.ids, self.scores))

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ranks

    def rank_of(self, doc_id: str) -> int | None:
        """1-based rank of `doc_id`, or None when it is not in the list."""
        return self._ranks.get(doc_id)

    def score_of(self, doc_id: str) -> float | None:
        rank = self._ranks.get(doc_id)
        return None if rank is None else self.scores[rank - 1]

    def top(self, k: int) -> "Hits":
        """The first `k` hits (already in order, so nothing is re-sorted or re-checked)."""
        if k >= len(self.ids):
            return self
        top = object.__new__(Hits)
        object.__setattr__(top, "ids", self.ids[:k])
        object.__setattr__(top, "scores", self.scores[:k])
        object.__setattr__(top, "_ranks", {doc_id: rank for rank, doc_id in enumerate(top.ids, 1)})
        return top
