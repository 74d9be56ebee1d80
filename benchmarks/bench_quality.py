"""Retrieval quality on debdesc-dev dev queries: every mode, tuned fusion, typos, VAL@FAR (issue 6).

    python benchmarks/bench_quality.py [--model models/debdesc-w1-bm25] [--data ../shared/data/debdesc-dev]
Builds (once) an embedded index of the corpus with each model, as `dssm index build` does by default
(passages 12:6:2; `--passages` to choose), under indexes/<model name>-passages-<spec>, then:
- nDCG@10, MRR@10, Recall@100, MAP of lexical (BM25), semantic (DSSM) and hybrid, runs of 100 hits;
- fusion tuned on one half of the dev queries (seeded split) and reported on the other half, beside the
  default fusion on the same held-out half, and the ratio hybrid / BM25 against the goals 1.10 / 1.15;
- the nDCG@10 loss on typo'd queries (one edit in every word of 4+ letters; one edit per query);
- VAL@FAR (FaceNet): thresholds calibrated on the tuning half, VAL and FAR measured on the held-out half.
With several models (default: those of MODELS that exist) a first table compares them on the held-out
half, and the full report is for the best one. Writes benchmarks/out/quality.md and quality.json.
About a minute per model on 2 cores, plus the index build (10-30 s per model).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer import adaptive_fusion  # noqa: E402
from indexer import evaluate as ev  # noqa: E402
from indexer.calibration import calibrate, pair_cosines, val_far  # noqa: E402
from indexer.judgements import Judgements, read_qrels, read_queries  # noqa: E402
from indexer.passages import DEFAULT_PASSAGES, parse_passages  # noqa: E402
from indexer.query import HybridSearcher, SearchOptions  # noqa: E402
from indexer.tuning import describe, split_queries, tune_fusion  # noqa: E402
from indexer.typos import typo_queries  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
MODELS = [ROOT / "models" / "debdesc", ROOT / "models" / "debdesc-b512", ROOT / "models" / "debdesc-default"]
METRICS = "ndcg@10,mrr@10,recall@100,map"
DEPTH = 100
GOALS = (1.10, 1.15)


def open_index(model: Path, data: Path, passages: str) -> HybridSearcher:
    """The index `dssm index build --passages PASSAGES` makes of the corpus (built once, then reused)."""
    index = ROOT / "indexes" / f"{model.name}-passages-{passages.replace(':', '-')}"
    if not (index / "manifest.json").is_file():
        from indexer.build import build_index

        started = time.perf_counter()
        build_index(model, data / "corpus.jsonl", index, passages=parse_passages(passages))
        print(f"built {index} in {time.perf_counter() - started:.0f} s", flush=True)
    return HybridSearcher.open(index, model_dir=model)


def scores(candidates, qrels, qids, settings: dict[str, tuple[str, SearchOptions]]) -> dict:
    """{row name: {metric: mean}} for the `qids`, each row a (mode, fusion options) on the same candidates."""
    runs = {name: ev.mode_run({qid: candidates[qid] for qid in qids}, mode, options, DEPTH)
            for name, (mode, options) in settings.items()}
    return ev.evaluate_runs(runs, {qid: qrels[qid] for qid in qids}, ev.parse_metrics(METRICS))


def typo_rows(searcher, judged, settings, options, per: str) -> dict:
    candidates = ev.retrieve_candidates(searcher, typo_queries(judged.queries, per=per), DEPTH, options)
    return scores(candidates, judged.qrels, list(judged.queries), settings)


def false_accepts(searcher, judged, tune, held_out) -> dict:
    """Thresholds from the tuning half; VAL / FAR of those thresholds on the held-out half."""
    fit = pair_cosines(searcher.backend, searcher.encoder, judged.subset(tune).queries, judged.qrels, seed=1)
    test = pair_cosines(searcher.backend, searcher.encoder, judged.subset(held_out).queries, judged.qrels, seed=2)
    section = calibrate(*fit)
    return {far: {"threshold": entry["threshold"], "val_tune": entry["val"],
                  **dict(zip(("val_held_out", "far_held_out"), val_far(*test, entry["threshold"])))}
            for far, entry in section["thresholds"].items()} | {"pairs": [len(fit[0]), len(test[0])],
                                                                 "non_pairs": [len(fit[1]), len(test[1])]}


def per_query_alpha(judged, candidates, tune, held_out, norm: str) -> dict:
    """Stretch: alpha chosen per query by a softmax model fitted on the tuning half, scored on the held-out half."""
    def split(qids):
        part = {qid: candidates[qid] for qid in qids}
        return part, np.array([adaptive_fusion.features(judged.queries[q], *candidates[q], DEPTH) for q in qids])

    (fit_candidates, fit_x), (test_candidates, test_x) = split(tune), split(held_out)
    model = adaptive_fusion.fit(fit_x, adaptive_fusion.gains(fit_candidates, judged.qrels, norm), norm)
    run = adaptive_fusion.adaptive_run(model, test_candidates, test_x, DEPTH)
    return ev.evaluate_runs({"adaptive": run}, {q: judged.qrels[q] for q in held_out}, ev.parse_metrics(METRICS))["adaptive"]


def other_splits(judged, candidates, seeds) -> list[dict]:
    """Tune on one half, score on the other, for several split seeds: how much the held-out ratio varies."""
    rows = []
    for seed in seeds:
        tune, held_out = split_queries(judged.queries, 0.5, seed)
        tuning = tune_fusion(candidates, judged.qrels, tune, held_out, "ndcg@10", DEPTH)
        lexical = scores(candidates, judged.qrels, held_out, {"lexical": ("lexical", SearchOptions())})["lexical"]
        rows.append({"seed": seed, "best": describe(tuning.best), "default_ratio": tuning.default_held_out / lexical["ndcg@10"],
                     "tuned_ratio": tuning.held_out / lexical["ndcg@10"]})
    return rows


def table(rows: dict, baseline: str = "lexical") -> str:
    return ev.format_table(rows, baseline)


DEFAULT_LABEL = f"hybrid (default: linear {SearchOptions().alpha} {SearchOptions().norm})"


def measure(model: Path, args) -> dict:
    """Every number of the report for one model."""
    started = time.perf_counter()
    searcher = open_index(model, args.data, args.passages)
    judged = Judgements.check(read_queries(args.data / "dev_queries.jsonl"), read_qrels(args.data / "qrels_dev.tsv"),
                              searcher.backend.ids)
    tune, held_out = split_queries(judged.queries, args.holdout, args.seed)
    default = SearchOptions(candidates=DEPTH)
    candidates = ev.retrieve_candidates(searcher, judged.queries, DEPTH, default)
    print(f"{model.name}: retrieved {len(candidates)} queries in {time.perf_counter() - started:.0f} s", flush=True)
    tuning = tune_fusion(candidates, judged.qrels, tune, held_out, "ndcg@10", DEPTH)
    rrf = SearchOptions(fusion="rrf", candidates=DEPTH)
    settings = {"lexical": ("lexical", default), "semantic": ("semantic", default),
                DEFAULT_LABEL: ("hybrid", default), "hybrid (rrf 60)": ("hybrid", rrf),
                f"hybrid (tuned: {describe(tuning.best)})": ("hybrid", tuning.best)}
    result = {"model": str(model.relative_to(ROOT)) if model.is_relative_to(ROOT) else str(model),
              "passages": args.passages,
              "queries": judged.counts(), "tune_queries": len(tune), "held_out_queries": len(held_out),
              "all": scores(candidates, judged.qrels, list(judged.queries), settings),
              "held_out": scores(candidates, judged.qrels, held_out, settings),
              "best": describe(tuning.best), "best_tune_ndcg@10": tuning.tuned, "best_held_out_ndcg@10": tuning.held_out}
    result["held_out"][f"hybrid (per-query alpha, {tuning.best.norm}; stretch)"] = per_query_alpha(
        judged, candidates, tune, held_out, tuning.best.norm)
    result["splits"] = other_splits(judged, candidates, range(args.seed + 1, args.seed + 5))
    result["typos_word"] = typo_rows(searcher, judged, settings, default, "word")
    result["typos_query"] = typo_rows(searcher, judged, settings, default, "query")
    result["val_far"] = false_accepts(searcher, judged, tune, held_out)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def models_table(results: list[dict]) -> str:
    """One line per model: held-out nDCG@10 of each side and of the tuned hybrid, and its ratio to BM25."""
    lines = ["| model | BM25 | DSSM | hybrid default | hybrid tuned | tuned / BM25 |", "|---|---|---|---|---|---|"]
    for result in results:
        rows = result["held_out"]
        lexical, semantic = rows["lexical"]["ndcg@10"], rows["semantic"]["ndcg@10"]
        default = rows[DEFAULT_LABEL]["ndcg@10"]
        lines.append(f"| `{result['model']}` | {lexical:.4f} | {semantic:.4f} | {default:.4f} | "
                     f"{result['best_held_out_ndcg@10']:.4f} ({result['best']}) | {result['best_held_out_ndcg@10'] / lexical:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="Model directory (repeat to compare; default: the trained models under models/).")
    parser.add_argument("--data", type=Path, default=DEBDESC)
    parser.add_argument("--holdout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--note", default="", help="a line printed above the report (e.g. what the models are)")
    parser.add_argument("--passages", default=DEFAULT_PASSAGES,
                        help=f"the index's passages, as `dssm index build --passages` (default {DEFAULT_PASSAGES}, or none)")
    args = parser.parse_args()
    models = args.model or [model for model in MODELS if (model / "config.json").is_file()]
    if not models:
        sys.exit("no trained model under models/; train one (benchmarks/README.md) or pass --model")
    results = [measure(model, args) for model in models]
    best = max(results, key=lambda result: result["best_held_out_ndcg@10"])
    text = report(best, args)
    if len(results) > 1:
        text = (f"Models compared on the held-out half (nDCG@10); the rest of this section is for the best, "
                f"`{best['model']}`.\n\n{models_table(results)}\n\n{text}")
    if args.note:
        text = f"{args.note}\n\n{text}"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "quality.md").write_text(text + "\n")
    print(text)


def ratio_lines(rows: dict) -> list[str]:
    """nDCG@10 / BM25 against the goals: hybrid >= 1.10 and >= 1.15, DSSM alone >= 1.00."""
    base = rows["lexical"]["ndcg@10"]
    lines = []
    for name, row in rows.items():
        if name == "lexical":
            continue
        ratio = row["ndcg@10"] / base
        goals = (1.0,) if name == "semantic" else GOALS
        marks = ", ".join(f"{'meets' if ratio >= goal else 'misses'} {goal:.2f}" for goal in goals)
        lines.append(f"- {name}: nDCG@10 / BM25 = **{ratio:.3f}** ({marks})")
    return lines


def report(result: dict, args) -> str:
    counts = result["queries"]
    losses = {kind: ev.typo_losses(result["all"], result[kind]) for kind in ("typos_word", "typos_query")}
    far = result["val_far"]
    lines = [f"Model `{result['model']}`, index `--passages {result['passages']}`, corpus {args.data.name} "
             f"({counts['evaluated']} judged dev queries; "
             f"{counts['without_qrels']} without qrels, {counts['unknown_documents']} qrels naming unknown documents). "
             f"Runs of {DEPTH} hits, {DEPTH} candidates per side; measures by ir-measures (trec_eval). "
             f"`python benchmarks/bench_quality.py` ({result['seconds']:.0f} s, {time.strftime('%Y-%m-%d')}).", "",
             "### All dev queries", "", table(result["all"]), "",
             "(The tuned row is half in-sample here: its setting was chosen on half of these queries.)", "",
             f"### Held-out half ({result['held_out_queries']} queries; fusion tuned on the other "
             f"{result['tune_queries']}, split seed {args.seed})", "",
             f"Best on the tuning half: {result['best']} (nDCG@10 {result['best_tune_ndcg@10']:.4f} there).", "",
             table(result["held_out"]), "", *ratio_lines(result["held_out"]), "",
             "Other random halves (tune on one, report on the other): nDCG@10 / BM25 on the held-out half",
             "", "| split seed | best on the tuning half | default fusion | tuned fusion |", "|---|---|---|---|",
             *[f"| {row['seed']} | {row['best']} | {row['default_ratio']:.3f} | {row['tuned_ratio']:.3f} |"
               for row in result["splits"]], "",
             "Per-query alpha (issue stretch, `indexer/adaptive_fusion.py`): a softmax model over 7 features of the "
             "query and its candidate lists picks alpha in 0, 0.1, ..., 1 per query; fitted on the tuning half.", "",
             "### Typo'd queries (all dev queries; nDCG@10 and its relative loss)", "",
             "| mode | clean | one edit per word of 4+ letters | loss | one edit per query | loss |", "|---|---|---|---|---|---|"]
    for name, row in result["all"].items():
        word, query = result["typos_word"][name]["ndcg@10"], result["typos_query"][name]["ndcg@10"]
        lines.append(f"| {name} | {row['ndcg@10']:.4f} | {word:.4f} | {losses['typos_word'][name]['ndcg@10']:.1%} | "
                     f"{query:.4f} | {losses['typos_query'][name]['ndcg@10']:.1%} |")
    lines += ["", "### False accepts of the semantic side (FaceNet VAL@FAR)", "",
              f"Matching pairs: dev query + its relevant document; non-pairs: the query + a random other document "
              f"(100 per query). Thresholds fitted on the tuning half ({far['pairs'][0]} pairs, {far['non_pairs'][0]:,} "
              f"non-pairs), measured on the held-out half ({far['pairs'][1]} pairs, {far['non_pairs'][1]:,} non-pairs).", "",
              "| FAR target | cosine threshold | VAL (tuning half) | VAL (held out) | FAR (held out) |", "|---|---|---|---|---|"]
    lines += [f"| {key} | {entry['threshold']:.4f} | {entry['val_tune']:.4f} | {entry['val_held_out']:.4f} | "
              f"{entry['far_held_out']:.5f} |" for key, entry in far.items() if isinstance(entry, dict)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
