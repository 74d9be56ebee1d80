"""Retrieval quality per search mode: retrieve once, rank per mode, measure with ir-measures.

    searcher = open_searcher("embedded", "indexes/demo")
    judged = Judgements.check(read_queries(Q), read_qrels(R), searcher.backend.ids)
    candidates = retrieve_candidates(searcher, judged.queries, depth=100)
    runs = {mode: mode_run(candidates, mode, searcher.defaults, depth=100) for mode in MODES}
    scores = evaluate_runs(runs, judged.qrels, parse_metrics("ndcg@10,map"))   # {mode: {metric: mean}}

Each query is retrieved once per side (`depth` candidates from BM25 and from the vectors); the
lexical and semantic runs are those lists, the hybrid run is their fusion (indexer/fusion.py), exactly
as `HybridSearcher.search` computes it. The measures are those of trec_eval through ir-measures
(MacAvaney et al. 2022): nDCG@k (graded gains rel, log2 discount), RR@k (MRR), R@k (recall), AP (MAP
over the `depth` hits). Two rules keep the numbers honest:
- the library ranks by score with its own tie-break (doc id descending), so it is given `depth - rank`
  instead of our scores and sees our order (score descending, id ascending) unchanged;
- a query with no hit at all is absent from the run, and trec_eval would leave it out of the mean;
  here it counts 0 for every measure, so the mean is always over every evaluated query.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from indexer import fusion as rules
from indexer.hits import Hits
from indexer.query import HybridSearcher, SearchOptions

MODES = ("lexical", "semantic", "hybrid")
DEPTH = 100  # hits per query in a run and candidates per side: Recall@100 needs 100
DEFAULT_METRICS = "ndcg@10,mrr@10,recall@100,map"
METRIC_NAMES = {"ndcg": "nDCG", "mrr": "RR", "recall": "R", "precision": "P", "p": "P", "map": "AP"}
Candidates = dict[str, tuple[Hits, Hits]]  # qid -> (lexical, semantic) candidate lists


def parse_metrics(text: str) -> dict:
    """'ndcg@10,mrr@10,recall@100,map' -> {name: ir_measures measure}; unknown names raise ValueError."""
    import ir_measures

    measures = {}
    for name in (part.strip().lower() for part in text.split(",") if part.strip()):
        match = re.fullmatch(r"(ndcg|mrr|recall|precision|p|map)(?:@([1-9][0-9]*))?", name)
        if not match or (match.group(1) == "map") == bool(match.group(2)):
            raise ValueError(f"unknown metric {name!r}; choose from ndcg@K, mrr@K, recall@K, precision@K, map")
        cutoff = f"@{match.group(2)}" if match.group(2) else ""
        measures[name] = ir_measures.parse_measure(METRIC_NAMES[match.group(1)] + cutoff)
    if not measures:
        raise ValueError("no metric given; choose from ndcg@K, mrr@K, recall@K, precision@K, map")
    return measures


def check_modes(modes: Iterable[str]) -> tuple[str, ...]:
    modes = tuple(modes)
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise ValueError(f"unknown modes {unknown or list(modes)}; choose from {list(MODES)}")
    return modes


# --- backends ----------------------------------------------------------------------------------


def open_embedded(index: str, model: str | None = None) -> HybridSearcher:
    return HybridSearcher.open(index, model_dir=model)


BACKENDS: dict[str, Callable[..., HybridSearcher]] = {"embedded": open_embedded}
# Elasticsearch (`dssm evaluate --backend es`) is opened by cli.es_searcher: HybridSearcher(EsIndex, encoder).


def open_searcher(backend: str, index: str, model: str | None = None) -> HybridSearcher:
    if backend not in BACKENDS:
        raise ValueError(f"evaluation backend {backend!r} is not available; choose from {sorted(BACKENDS)}")
    return BACKENDS[backend](index, model)


def document_ids(searcher: HybridSearcher) -> list[str] | None:
    """The backend's document ids (to check the qrels), or None when it cannot list them."""
    return getattr(searcher.backend, "ids", None)


# --- runs --------------------------------------------------------------------------------------


def run_options(defaults: SearchOptions, depth: int = DEPTH, **overrides) -> SearchOptions:
    """`defaults` with the `overrides` that are not None, at least `depth` candidates per side; checked."""
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer (hits per query), got {depth!r}")
    options = replace(defaults, **{name: value for name, value in overrides.items() if value is not None})
    options = replace(options, mode="hybrid", candidates=max(depth, options.candidates))
    options.check()
    return options


def retrieve_candidates(searcher: HybridSearcher, queries: dict[str, str], depth: int = DEPTH,
                        options: SearchOptions | None = None, batch_size: int = 256,
                        mode: str = "hybrid") -> Candidates:
    """`{qid: (lexical, semantic)}`, `max(depth, options.candidates)` hits per side, queries embedded in
    batches; with `mode` lexical or semantic the other side is left empty (and not searched)."""
    options = replace(options or searcher.defaults, mode=mode, k=depth,
                      candidates=max(depth, (options or searcher.defaults).candidates))
    options.check()
    qids, candidates = list(queries), {}
    for start in range(0, len(qids), batch_size):
        batch = qids[start:start + batch_size]
        vectors = (searcher.encoder.encode([queries[qid] for qid in batch], side="query") if mode != "lexical"
                   else [None] * len(batch))
        for qid, vector in zip(batch, vectors):
            if not queries[qid].strip():  # no words: nothing retrieved, scored 0 by evaluate_runs
                candidates[qid] = (Hits.empty(), Hits.empty())
                continue
            candidates[qid] = searcher.retrieve(queries[qid], options, vector=vector)
    return candidates


def rank(lexical: Hits, semantic: Hits, mode: str, options: SearchOptions, k: int) -> Hits:
    """One query's ranking in `mode` from its candidate lists (HybridSearcher.search's rule)."""
    if mode == "lexical":
        return lexical.top(k)
    if mode == "semantic":
        return semantic.top(k)
    return rules.fuse(lexical, semantic, options.fusion, alpha=options.alpha, norm=options.norm,
                      rank_constant=options.rrf_k, k=k).hits


def mode_run(candidates: Candidates, mode: str, options: SearchOptions, depth: int = DEPTH) -> dict[str, Hits]:
    return {qid: rank(lexical, semantic, mode, options, depth) for qid, (lexical, semantic) in candidates.items()}


def per_query(run: dict[str, Hits], qrels: dict[str, dict[str, int]], measures: dict) -> dict[str, dict[str, float]]:
    """`{metric: {qid: value}}` for every qid of `qrels`; a query without hits gets 0.0."""
    import ir_measures

    scored = {qid: {doc_id: float(len(hits) - position) for position, doc_id in enumerate(hits.ids)}
              for qid, hits in run.items() if qid in qrels and len(hits)}
    names = {measure: name for name, measure in measures.items()}
    values = {name: dict.fromkeys(qrels, 0.0) for name in measures}
    if scored:
        for metric in ir_measures.iter_calc(list(measures.values()), qrels, scored):
            values[names[metric.measure]][metric.query_id] = float(metric.value)
    return values


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0


def evaluate_runs(runs: dict[str, dict[str, Hits]], qrels: dict[str, dict[str, int]],
                  measures: dict) -> dict[str, dict[str, float]]:
    """`{mode: {metric: mean over every qid of qrels}}`."""
    return {mode: {name: mean(values) for name, values in per_query(run, qrels, measures).items()}
            for mode, run in runs.items()}


def write_trec_run(path: str | Path, run: dict[str, Hits], tag: str) -> None:
    """TREC run file: `qid Q0 doc_id rank score tag`, ranks 1-based in our order (ties: id ascending)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for qid, hits in run.items():
            for position, (doc_id, score) in enumerate(hits, 1):
                out.write(f"{qid} Q0 {doc_id} {position} {score:.6f} {tag}\n")


def format_table(scores: dict[str, dict[str, float]], baseline: str | None = "lexical") -> str:
    """Markdown table, one row per mode, one column per metric, and `/ lexical` for the first metric."""
    metrics = list(next(iter(scores.values())))
    ratio = baseline in scores and len(scores) > 1
    header = ["mode", *metrics] + ([f"{metrics[0]} / {baseline}"] if ratio else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for mode, row in scores.items():
        cells = [mode] + [f"{row[metric]:.4f}" for metric in metrics]
        if ratio:
            base = scores[baseline][metrics[0]]
            cells.append(f"{row[metrics[0]] / base:.3f}" if base else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate(searcher: HybridSearcher, queries: dict[str, str], qrels: dict[str, dict[str, int]],
             modes: Iterable[str], measures: dict, depth: int = DEPTH, options: SearchOptions | None = None,
             run_dir: str | Path | None = None, run_suffix: str = "") -> dict[str, dict[str, float]]:
    """Retrieve every query once, rank it per mode, measure; TREC runs `run_dir/<mode><suffix>.run`."""
    options, modes = options or searcher.defaults, check_modes(modes)
    sides = "hybrid" if "hybrid" in modes or len(set(modes)) > 1 else modes[0]
    candidates = retrieve_candidates(searcher, queries, depth, options, mode=sides)
    runs = {mode: mode_run(candidates, mode, options, depth) for mode in modes}
    if run_dir is not None:
        for mode, run in runs.items():
            write_trec_run(Path(run_dir) / f"{mode}{run_suffix}.run", run, f"dssm-{mode}{run_suffix}")
    return evaluate_runs(runs, qrels, measures)


def typo_losses(clean: dict[str, dict[str, float]], typos: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Relative loss per mode and metric: `1 - typo / clean` (0.25 = a quarter of the score lost)."""
    return {mode: {metric: (1.0 - typos[mode][metric] / value) if value else 0.0
                   for metric, value in row.items()} for mode, row in clean.items()}


def describe_fusion(options: SearchOptions) -> str:
    """'linear alpha=0.35 norm=zscore, 100 candidates' or 'rrf rank constant 60, 100 candidates'."""
    rule = (f"linear alpha={options.alpha:g} norm={options.norm}" if options.fusion == "linear"
            else f"rrf rank constant {options.rrf_k}")
    return f"{rule}, {options.candidates} candidates per side"


def format_report(report: dict) -> str:
    """The text `dssm evaluate` prints: a summary line, the score table, the typo table if any."""
    counts = report["queries"]
    lines = [f"{counts['evaluated']} queries evaluated, runs of {report['depth']} hits; "
             f"hybrid: {report['fusion']}", "", format_table(report["scores"])]
    if "typos" in report:
        per = {"word": "every word of 4+ letters", "query": "one word of 4+ letters per query"}[report["typos_per"]]
        lines += ["", f"typo'd queries (one edit in {per}):", "",
                  format_table(report["typos"]), ""]
        lines += [f"{mode}: {metric} loss {loss:.1%}" for mode, row in report["typo_loss"].items()
                  for metric, loss in list(row.items())[:1]]
    return "\n".join(lines)
