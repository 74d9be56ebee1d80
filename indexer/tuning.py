"""Fusion tuning: sweep the fusion settings on a split of judged queries, keep the best in the manifest.

    tune, held_out = split_queries(judged.queries, holdout=0.5, seed=13)
    candidates = retrieve_candidates(searcher, judged.queries, depth=100)   # each side once per query
    result = tune_fusion(candidates, judged.qrels, tune, held_out, "ndcg@10")
    save_fusion(index_dir, result)        # manifest["fusion"]; HybridSearcher uses it by default

The grid: linear fusion with alpha 0, 0.05, ..., 1 under minmax and zscore normalisation, and rrf with
the rank constants of RANK_CONSTANTS. Every setting is scored offline on the same candidate lists
(`indexer.evaluate.rank`, the rule `HybridSearcher.search` applies), so a sweep of 53 settings costs one
retrieval per query. Ties between settings go to the first in grid order (linear minmax before zscore,
alpha ascending, then rrf). The held-out queries are never seen by the sweep: their score is the honest
estimate of the chosen setting, reported beside the default setting's on the same queries.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from indexer.evaluate import Candidates, evaluate_runs, parse_metrics, rank
from indexer.query import SearchOptions

ALPHAS = tuple(round(0.05 * step, 2) for step in range(21))
NORMS = ("minmax", "zscore")
RANK_CONSTANTS = (1, 2, 5, 10, 20, 30, 40, 60, 80, 100, 150)


def grid(candidates: int) -> list[SearchOptions]:
    """Every setting swept, in tie-break order; `candidates` per side is recorded with each."""
    linear = [SearchOptions(fusion="linear", alpha=alpha, norm=norm, candidates=candidates)
              for norm in NORMS for alpha in ALPHAS]
    return linear + [SearchOptions(fusion="rrf", rrf_k=constant, candidates=candidates) for constant in RANK_CONSTANTS]


def split_queries(qids, holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(tune, held_out): a seeded shuffle of the sorted qids, the last `holdout` fraction held out."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout is the fraction of queries kept out of tuning, in [0, 1), got {holdout!r}")
    qids = sorted(qids)
    random.Random(seed).shuffle(qids)
    cut = len(qids) - round(holdout * len(qids))
    if cut == 0:
        raise ValueError(f"no query left to tune on ({len(qids)} queries, holdout {holdout}); lower --holdout")
    return qids[:cut], qids[cut:]


def score(candidates: Candidates, qrels: dict, qids: list[str], options: SearchOptions, measures: dict, k: int) -> float:
    run = {qid: rank(*candidates[qid], "hybrid", options, k) for qid in qids}
    name = next(iter(measures))
    return evaluate_runs({"hybrid": run}, {qid: qrels[qid] for qid in qids}, measures)["hybrid"][name]


@dataclass(frozen=True)
class TuningResult:
    best: SearchOptions
    metric: str
    tuned: float                 # best setting on the tuning queries
    held_out: float | None       # best setting on the held-out queries (None without holdout)
    default_tuned: float         # SearchOptions() defaults on the same queries, for comparison
    default_held_out: float | None
    sweep: list[tuple[SearchOptions, float]]
    tune_queries: int
    held_out_queries: int

    def section(self, source: str = "") -> dict:
        """The manifest's "fusion" section."""
        best = self.best
        return {"fusion": best.fusion, "alpha": best.alpha, "norm": best.norm, "rrf_k": best.rrf_k,
                "candidates": best.candidates, "metric": self.metric, "tuned_on": source,
                "tune_queries": self.tune_queries, "held_out_queries": self.held_out_queries,
                self.metric: round(self.tuned, 6),
                f"held_out_{self.metric}": None if self.held_out is None else round(self.held_out, 6),
                "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def as_dict(self) -> dict:
        """Everything `dssm tune-fusion --json` prints: the chosen setting, its scores and the sweep."""
        return {"best": describe(self.best), "metric": self.metric, "tuned": self.tuned, "held_out": self.held_out,
                "default_tuned": self.default_tuned, "default_held_out": self.default_held_out,
                "tune_queries": self.tune_queries, "held_out_queries": self.held_out_queries,
                "sweep": [{"fusion": o.fusion, "alpha": o.alpha, "norm": o.norm, "rrf_k": o.rrf_k, "tuned": value}
                          for o, value in self.sweep]}


def metric_cutoff(metric: str) -> int:
    return int(metric.split("@")[1]) if "@" in metric else 1000


def tune_fusion(candidates: Candidates, qrels: dict, tune: list[str], held_out: list[str],
                metric: str = "ndcg@10", candidates_per_side: int = 100) -> TuningResult:
    """Sweep `grid()` on the `tune` queries; score the best and the default on both splits."""
    measures, k = parse_metrics(metric), metric_cutoff(metric)
    if len(measures) != 1:
        raise ValueError(f"tune on one metric, got {list(measures)}")
    settings = grid(candidates_per_side)
    sweep = [(options, score(candidates, qrels, tune, options, measures, k)) for options in settings]
    best, tuned = max(sweep, key=lambda pair: pair[1])  # max keeps the first of equal scores
    default = SearchOptions(candidates=candidates_per_side)
    held = (lambda options: score(candidates, qrels, held_out, options, measures, k)) if held_out else (lambda _: None)
    return TuningResult(best, next(iter(measures)), tuned, held(best), score(candidates, qrels, tune, default, measures, k),
                        held(default), sweep, len(tune), len(held_out))


def save_fusion(index_dir: str | Path, result: TuningResult, source: str = "") -> dict:
    """Store the best setting in the index manifest (atomically); returns the section written."""
    from indexer.manifest import update_sections

    section = result.section(source)
    update_sections(index_dir, {"fusion": section})
    return section


def describe(options: SearchOptions) -> str:
    return (f"linear alpha={options.alpha:g} norm={options.norm}" if options.fusion == "linear"
            else f"rrf rank constant {options.rrf_k}")


def format_result(result: TuningResult, top: int = 5) -> str:
    """The summary `dssm tune-fusion` prints: best, default, held-out, the top settings of the sweep."""
    m = result.metric
    lines = [f"tuned on {result.tune_queries} queries, {result.held_out_queries} held out; metric {m}",
             f"best:    {describe(result.best)}: {m} {result.tuned:.4f} (tuning queries)"
             + ("" if result.held_out is None else f", {result.held_out:.4f} (held out)"),
             f"default: {describe(SearchOptions())}: {m} {result.default_tuned:.4f} (tuning queries)"
             + ("" if result.default_held_out is None else f", {result.default_held_out:.4f} (held out)"),
             "", f"top {top} of {len(result.sweep)} settings (tuning queries):"]
    ranked = sorted(result.sweep, key=lambda pair: -pair[1])[:top]
    return "\n".join(lines + [f"  {value:.4f}  {describe(options)}" for options, value in ranked])
