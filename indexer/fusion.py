"""Fusion of a lexical and a semantic ranked list: normalise, then combine (docs/FORMAT.md section 3).

Every rule here is mirrored by the Java plugin (`es-plugin/.../Fusion.java`); change both, and the
golden files, together. Arithmetic is plain left-to-right summation in rank order, so that Java
reproduces the same doubles:

- `minmax`: `(s - min) / (max - min)`; `max == min` (one hit, constant scores) -> every hit `1.0`;
  a document missing from the list -> `0.0`.
- `zscore`: `(s - mean) / std` with the population std; `std == 0` -> every hit `0.0`; a missing
  document -> the list's minimum normalised score (`0.0` for an empty list).
- `linear`: `alpha * n_semantic + (1 - alpha) * n_lexical`, alpha in [0, 1].
- `rrf` (Cormack, Clarke and Buettcher 2009, "Reciprocal Rank Fusion outperforms Condorcet and
  individual rank learning methods"): `sum over lists of 1 / (rank_constant + rank)`, rank 1-based,
  lists summed lexical first; a missing document adds nothing.
- The fused list is sorted by fused score descending, then id ascending (`Hits`), cut to `k`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from indexer.hits import Hits

DEFAULT_ALPHA = 0.5
DEFAULT_NORM = "zscore"  # tuned on debdesc-dev: linear zscore beats minmax at every alpha near 0.5 (BENCHMARKS.md)
DEFAULT_RANK_CONSTANT = 60
FUSIONS = ("linear", "rrf")
SIDES = ("lexical", "semantic")


# --- normalisation -----------------------------------------------------------------------------


def minmax(hits: Hits) -> dict[str, float]:
    """Min-max normalisation to [0, 1]; a single hit or constant scores all get 1.0."""
    if not hits:
        return {}
    low, high = min(hits.scores), max(hits.scores)
    if high == low:
        return {doc_id: 1.0 for doc_id in hits.ids}
    return {doc_id: (score - low) / (high - low) for doc_id, score in hits}


def zscore(hits: Hits) -> dict[str, float]:
    """Standard score with the population std; constant scores (std 0) all get 0.0."""
    if not hits:
        return {}
    total = 0.0
    for score in hits.scores:
        total += score
    mean = total / len(hits)
    squares = 0.0
    for score in hits.scores:
        squares += (score - mean) * (score - mean)
    std = math.sqrt(squares / len(hits))
    if std == 0.0:
        return {doc_id: 0.0 for doc_id in hits.ids}
    return {doc_id: (score - mean) / std for doc_id, score in hits}


def minmax_missing(normalised: dict[str, float]) -> float:
    """What a document absent from a min-max normalised list gets: 0.0."""
    return 0.0


def zscore_missing(normalised: dict[str, float]) -> float:
    """What a document absent from a z-score normalised list gets: the list's minimum (0.0 if empty)."""
    return min(normalised.values(), default=0.0)


@dataclass(frozen=True)
class Normaliser:
    normalise: Callable[[Hits], dict[str, float]]
    missing: Callable[[dict[str, float]], float]


NORMALISERS = {
    "minmax": Normaliser(minmax, minmax_missing),
    "zscore": Normaliser(zscore, zscore_missing),
}


def get_normaliser(name: str) -> Normaliser:
    if name not in NORMALISERS:
        raise ValueError(f"unknown normalisation {name!r}; choose from {sorted(NORMALISERS)}")
    return NORMALISERS[name]


# --- the explain structure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """One side's share of a fused score: `part = weight * normalised`.

    `score`/`rank` are the retriever's raw score and 1-based rank (None when the document is missing
    from that side); `normalised` is the min-max/z-score value (linear) or `1 / (rank_constant + rank)`
    (rrf), with the missing-document rule already applied.
    """

    score: float | None
    rank: int | None
    normalised: float
    weight: float
    part: float


@dataclass(frozen=True)
class Explanation:
    """Why a document got its fused score: `fused == lexical.part + semantic.part` (linear, rrf)."""

    id: str
    fused: float
    method: str  # "linear", "rrf", "lexical" or "semantic" (one side only)
    lexical: Contribution | None
    semantic: Contribution | None

    def formula(self) -> str:
        """Human-readable sum, e.g. `0.5*1.0000 (semantic) + 0.5*0.2500 (lexical) = 0.6250`."""
        terms = [f"{c.weight:g}*{c.normalised:.4f} ({side})"
                 for side, c in (("semantic", self.semantic), ("lexical", self.lexical)) if c is not None]
        return " + ".join(terms) + f" = {self.fused:.4f}"

    def as_dict(self) -> dict:
        def side(c: Contribution | None) -> dict | None:
            return None if c is None else {"score": c.score, "rank": c.rank, "normalised": c.normalised,
                                           "weight": c.weight, "part": c.part}
        return {"id": self.id, "fused": self.fused, "method": self.method,
                "lexical": side(self.lexical), "semantic": side(self.semantic)}


@dataclass(frozen=True)
class Fused:
    """Fused hits (top k) and one `Explanation` per hit, in the same order."""

    hits: Hits
    explanations: tuple[Explanation, ...]

    def explain(self, doc_id: str) -> Explanation:
        return self.explanations[self.hits.rank_of(doc_id) - 1]


# --- combination -------------------------------------------------------------------------------


def check_k(k: int) -> None:
    if not isinstance(k, int) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1] (1 = semantic only, 0 = lexical only), got {alpha!r}")


def check_rank_constant(rank_constant: int) -> None:
    if not isinstance(rank_constant, int) or rank_constant < 1:
        raise ValueError(f"rrf rank constant must be an integer >= 1 (default 60), got {rank_constant!r}")


def union_ids(lexical: Hits, semantic: Hits) -> list[str]:
    return list(dict.fromkeys(lexical.ids + semantic.ids))


def top_k(fused: dict[str, float], k: int) -> Hits:
    """Sort by fused score descending then id ascending, keep the first k."""
    return Hits(list(fused), list(fused.values())).top(k)


def linear_contribution(hits: Hits, normalised: dict[str, float], missing: float, weight: float,
                        doc_id: str) -> Contribution:
    value = normalised.get(doc_id, missing)
    return Contribution(hits.score_of(doc_id), hits.rank_of(doc_id), value, weight, weight * value)


def linear(lexical: Hits, semantic: Hits, alpha: float = DEFAULT_ALPHA, norm: str = DEFAULT_NORM,
           k: int = 10) -> Fused:
    """`fused = alpha * n_semantic + (1 - alpha) * n_lexical` over the union of both lists."""
    check_alpha(alpha)
    check_k(k)
    normaliser = get_normaliser(norm)
    n_lexical, n_semantic = normaliser.normalise(lexical), normaliser.normalise(semantic)
    missing_lexical, missing_semantic = normaliser.missing(n_lexical), normaliser.missing(n_semantic)
    fused = {doc_id: alpha * n_semantic.get(doc_id, missing_semantic)
             + (1.0 - alpha) * n_lexical.get(doc_id, missing_lexical)
             for doc_id in union_ids(lexical, semantic)}
    hits = top_k(fused, k)
    return Fused(hits, tuple(
        Explanation(doc_id, fused[doc_id], "linear",
                    linear_contribution(lexical, n_lexical, missing_lexical, 1.0 - alpha, doc_id),
                    linear_contribution(semantic, n_semantic, missing_semantic, alpha, doc_id))
        for doc_id in hits.ids))


def reciprocal_rank(rank: int | None, rank_constant: int) -> float:
    """`1 / (rank_constant + rank)` for a 1-based rank; 0.0 for a missing document."""
    return 0.0 if rank is None else 1.0 / (rank_constant + rank)


def rrf_scores(lists: Sequence[Hits], rank_constant: int = DEFAULT_RANK_CONSTANT) -> dict[str, float]:
    """Reciprocal rank fusion of any number of lists (summed in list order), unsorted."""
    check_rank_constant(rank_constant)
    scores: dict[str, float] = {}
    for hits in lists:
        for rank, doc_id in enumerate(hits.ids, 1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (rank_constant + rank)
    return scores


def rrf_contribution(hits: Hits, rank_constant: int, doc_id: str) -> Contribution:
    value = reciprocal_rank(hits.rank_of(doc_id), rank_constant)
    return Contribution(hits.score_of(doc_id), hits.rank_of(doc_id), value, 1.0, value)


def rrf(lexical: Hits, semantic: Hits, rank_constant: int = DEFAULT_RANK_CONSTANT, k: int = 10) -> Fused:
    """`fused = 1/(rank_constant + rank_lexical) + 1/(rank_constant + rank_semantic)`."""
    check_k(k)
    scores = rrf_scores([lexical, semantic], rank_constant)
    hits = top_k(scores, k)
    return Fused(hits, tuple(Explanation(doc_id, scores[doc_id], "rrf",
                                         rrf_contribution(lexical, rank_constant, doc_id),
                                         rrf_contribution(semantic, rank_constant, doc_id))
                             for doc_id in hits.ids))


def one_side(hits: Hits, side: str, k: int = 10) -> Fused:
    """No fusion (mode lexical or semantic): the retriever's own scores, explained."""
    check_k(k)
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; choose from {list(SIDES)}")
    hits = hits.top(k)
    explanations = []
    for rank, (doc_id, score) in enumerate(hits, 1):
        own = Contribution(score, rank, score, 1.0, score)
        explanations.append(Explanation(doc_id, score, side, own if side == "lexical" else None,
                                        own if side == "semantic" else None))
    return Fused(hits, tuple(explanations))


def fuse(lexical: Hits, semantic: Hits, method: str = "linear", *, alpha: float = DEFAULT_ALPHA,
         norm: str = DEFAULT_NORM, rank_constant: int = DEFAULT_RANK_CONSTANT, k: int = 10) -> Fused:
    """Fuse by name: `linear` (alpha, norm) or `rrf` (rank_constant)."""
    if method == "linear":
        return linear(lexical, semantic, alpha=alpha, norm=norm, k=k)
    if method == "rrf":
        return rrf(lexical, semantic, rank_constant=rank_constant, k=k)
    raise ValueError(f"unknown fusion {method!r}; choose from {list(FUSIONS)}")
