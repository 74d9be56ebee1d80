"""`HybridSearcher`: embed the query, retrieve candidates from each side, fuse, explain.

The library API behind `dssm search`, the Elasticsearch backend and evaluation. A backend is anything
with `lexical(query, k, filter) -> Hits` and `semantic(vector, k, num_candidates, filter) -> Hits`
(`indexer.embedded.EmbeddedIndex`, `indexer.es_index`); the encoder is `dssm.export.load_encoder(...)`.

    searcher = HybridSearcher.open("indexes/demo")
    fused = searcher.search("tcl bindings to libcurl", k=5)
    fused.hits.ids, fused.explanations[0].formula()

Defaults: `searcher.defaults` is `SearchOptions()` with the fusion setting that `dssm tune-fusion` stored
in the index manifest (section "fusion"), if any; keyword overrides and an explicit `options` win.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from indexer import fusion as rules
from indexer.hits import Hits

MODES = ("hybrid", "lexical", "semantic")
DEFAULT_CANDIDATES = 50  # per side; 20..200 give the same hybrid nDCG@10 on debdesc-dev (benchmarks)


@dataclass(frozen=True)
class SearchOptions:
    """Every knob of one search; `check()` raises ValueError naming the bad value and the range."""

    mode: str = "hybrid"                # hybrid | lexical | semantic
    fusion: str = "linear"              # linear | rrf
    alpha: float = rules.DEFAULT_ALPHA  # linear: weight of the semantic side
    norm: str = rules.DEFAULT_NORM     # linear: minmax | zscore
    rrf_k: int = rules.DEFAULT_RANK_CONSTANT
    k: int = 10
    candidates: int = DEFAULT_CANDIDATES  # hits taken from each side before fusion (at least k)
    search_k: int | None = None         # Annoy search_k / ES num_candidates; None: the index default
    exact_rerank: bool = False          # embedded: re-score semantic candidates from the vector file
    min_similarity: float | None = None  # drop semantic hits with a cosine below this (dssm calibrate)

    def check(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose from {list(MODES)}")
        if self.fusion not in rules.FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose from {list(rules.FUSIONS)}")
        rules.get_normaliser(self.norm)
        rules.check_alpha(self.alpha)
        rules.check_rank_constant(self.rrf_k)
        rules.check_k(self.k)
        if not isinstance(self.candidates, int) or self.candidates <= 0:
            raise ValueError(f"candidates must be a positive integer, got {self.candidates!r}")
        if self.search_k is not None and (self.search_k == 0 or self.search_k < -1):
            raise ValueError(f"search_k must be >= 1 (or -1 for Annoy's default), got {self.search_k!r}")
        if self.min_similarity is not None and not (isinstance(self.min_similarity, (int, float))
                                                    and -1.0 <= self.min_similarity <= 1.0):
            raise ValueError(f"min_similarity is a cosine in [-1, 1], got {self.min_similarity!r}")


TUNED_FIELDS = ("fusion", "alpha", "norm", "rrf_k", "candidates")  # what manifest["fusion"] may set


def tuned_options(manifest: dict | None) -> SearchOptions:
    """`SearchOptions()` with the index's tuned fusion (manifest section "fusion"), if it has one."""
    tuned = (manifest or {}).get("fusion")
    if not tuned:
        return SearchOptions()
    try:
        options = SearchOptions(**{name: tuned[name] for name in TUNED_FIELDS if name in tuned})
        options.check()
    except (TypeError, ValueError) as error:
        raise ValueError(f"the index's tuned fusion setting is invalid ({error}); "
                         f"re-run `dssm tune-fusion` on the index") from None
    return options


def above(hits: Hits, min_similarity: float | None) -> Hits:
    """The hits whose score is at least `min_similarity` (all of them when it is None)."""
    if min_similarity is None:
        return hits
    return Hits.from_pairs((doc_id, score) for doc_id, score in hits if score >= min_similarity)


def check_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise ValueError("empty query; give some words to search for")
    return query


class HybridSearcher:
    """`search(query, options) -> rules.Fused` (hits and one explanation per hit)."""

    def __init__(self, backend, encoder, defaults: SearchOptions | None = None) -> None:
        self.backend, self.encoder = backend, encoder
        self.defaults = defaults or tuned_options(getattr(backend, "manifest", None))
        self.parallel = True          # hybrid: the lexical side runs in a worker thread (retrieve)
        self._worker = None

    @classmethod
    def open(cls, index_dir: str | Path, model_dir: str | Path | None = None, encoder=None,
             verify: str = "quick") -> "HybridSearcher":
        """Open an embedded index and its model (the one recorded at build time unless `model_dir`).

        Refuses a model whose fingerprint differs from the index's, naming both and the fix;
        `verify` ("quick" | "full") is how the index files are checked (indexer.manifest.verify_files).
        """
        from indexer.embedded import EmbeddedIndex
        from indexer.manifest import check_model

        index = EmbeddedIndex.open(index_dir, verify=verify)
        model_dir = model_dir or index.manifest["model"]["path"]
        if encoder is None:
            from dssm.export import load_encoder
            if not Path(model_dir).is_dir():
                raise ValueError(f"model {model_dir} (recorded in index {index_dir}) is gone; "
                                 f"pass --model with the model the index was built with")
            encoder = load_encoder(model_dir)
        check_model(index.manifest, encoder.fingerprint, model_dir, Path(index_dir))
        return cls(index, encoder)

    def embed(self, query: str) -> np.ndarray:
        """Query vector float32 [dim] (query tower); all zero for a query without features."""
        return self.encoder.encode([query], side="query")[0]

    def retrieve(self, query: str, options: SearchOptions, filter: object = None,
                 vector: np.ndarray | None = None) -> tuple[Hits, Hits]:
        """(lexical, semantic) candidate lists; a side the mode does not use is empty.

        `vector`: the query's vector when the caller embedded a batch of queries at once (evaluation).
        Semantic hits below `options.min_similarity` are dropped.

        In hybrid mode without a filter the lexical side runs in a worker thread while this one embeds
        the query and searches the semantic side: Annoy, numpy and scipy release the GIL, so the two
        overlap on a second core (a filter may read the SQLite document store, which stays in its own
        thread).
        """
        depth = max(options.candidates, options.k)
        lexical = Hits.empty()
        semantic = Hits.empty()
        pending = None
        if options.mode in ("hybrid", "lexical"):
            if options.mode == "hybrid" and filter is None and self.parallel:
                pending = self.worker().submit(self.backend.lexical, query, depth, filter)
            else:
                lexical = self.backend.lexical(query, depth, filter)
        try:
            if options.mode in ("hybrid", "semantic"):
                extra = {"exact": True} if options.exact_rerank else {}
                vector = self.embed(query) if vector is None else vector
                semantic = above(self.backend.semantic(vector, depth, options.search_k, filter, **extra),
                                 options.min_similarity)
        finally:
            if pending is not None:
                lexical = pending.result()
        return lexical, semantic

    def worker(self):
        """The one worker thread of this searcher (made on first use)."""
        if self._worker is None:
            from concurrent.futures import ThreadPoolExecutor
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dssm-lexical")
        return self._worker

    def search(self, query: str, options: SearchOptions | None = None, filter: object = None,
               **overrides) -> rules.Fused:
        """Search with `options` (default: `self.defaults`) and `overrides`; ValueError on bad input."""
        options = replace(options or self.defaults, **overrides)
        options.check()
        check_query(query)
        lexical, semantic = self.retrieve(query, options, filter)
        if options.mode == "lexical":
            return rules.one_side(lexical, "lexical", options.k)
        if options.mode == "semantic":
            return rules.one_side(semantic, "semantic", options.k)
        return rules.fuse(lexical, semantic, options.fusion, alpha=options.alpha, norm=options.norm,
                           rank_constant=options.rrf_k, k=options.k)

    def titles(self, ids) -> dict[str, str]:
        titles = getattr(self.backend, "titles", None)
        return titles(ids) if titles else {}

    def tags(self, ids) -> dict[str, list[tuple[str, float]]]:
        """Document id -> stored tags `[(tag, similarity)]` (index build --with-tags); {} when none."""
        tags = getattr(self.backend, "tags", None)
        return tags(ids) if tags else {}

    def matched_passages(self, query: str, ids) -> dict[str, tuple[str, float]]:
        """Document id -> (text, cosine) of the passage that gave its semantic score (index build
        --passages); {} when the backend has no passages."""
        matched = getattr(self.backend, "matched_passages", None)
        return matched(ids, self.embed(query)) if matched else {}
