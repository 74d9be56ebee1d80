"""Benchmark plots (PNG) from saved results: `make report` redraws them without rerunning anything.

    python benchmarks/plots.py collect [training fusion typos]   # measure: raw data -> benchmarks/out/*.json
    python benchmarks/plots.py                                   # draw: benchmarks/out/*.json -> benchmarks/plots/*.png

collect (a few minutes on 2 cores; needs the trained models and indexes/debdesc, see benchmarks/README.md):
- training: every `models/*.training/train_log.csv` (the Keras CSVLogger of `dssm train`: epoch, loss,
  val_loss, val_mrr_at_10, val_recall_at_10, triplets_per_s) -> training_curves.json;
- fusion: the sweep of `dssm tune-fusion` (`indexer.tuning.tune_fusion`, every setting of its grid) on
  `indexes/debdesc` with the dev queries, tuning half and held-out half (seed 13) -> fusion_sweep.json;
- typos: `dssm evaluate --typos --json` (one edit per word of 4+ letters, and one per query) -> typos.json.
The Annoy recall/latency data comes from `benchmarks/bench_scale.py curve` (annoy_curve.json).

draw: matplotlib (Agg), ~100 dpi; a plot whose data file is missing is skipped with a message.
matplotlib is the `bench` extra (`pip install -e '.[bench]'`), never a dependency of the package or tests.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
PLOTS = ROOT / "benchmarks" / "plots"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
INDEX = ROOT / "indexes" / "debdesc"
DPI = 100
MODES = ("lexical", "semantic", "hybrid")


# --- collect -------------------------------------------------------------------------------------


def collect_training() -> None:
    """Per-epoch rows of every `models/NAME.training/train_log.csv` (numbers as floats)."""
    runs = {}
    for log in sorted((ROOT / "models").glob("*.training/train_log.csv")):
        name = log.parent.name.removesuffix(".training")
        with log.open(newline="") as handle:
            rows = [{key: float(value) for key, value in row.items() if value not in ("", None)} for row in csv.DictReader(handle)]
        if rows and name != "demo":
            runs[name] = rows
    write("training_curves.json", {"collected": time.strftime("%Y-%m-%d"), "source": "models/*.training/train_log.csv",
                                   "runs": runs})


def collect_fusion(seed: int = 13, depth: int = 100) -> None:
    """Every setting of the tune-fusion grid scored on the tuning and the held-out half of the dev queries."""
    sys.path.insert(0, str(ROOT))
    from indexer.evaluate import parse_metrics, retrieve_candidates, run_options
    from indexer.judgements import Judgements, read_qrels, read_queries
    from indexer.query import HybridSearcher, SearchOptions
    from indexer.tuning import score, split_queries, tune_fusion

    searcher = HybridSearcher.open(INDEX)
    judged = Judgements.check(read_queries(DEBDESC / "dev_queries.jsonl"), read_qrels(DEBDESC / "qrels_dev.tsv"),
                              searcher.backend.ids)
    tune, held_out = split_queries(judged.queries, 0.5, seed)
    pool = retrieve_candidates(searcher, judged.queries, depth, run_options(SearchOptions(), depth))
    result = tune_fusion(pool, judged.qrels, tune, held_out, "ndcg@10", depth)
    measures = parse_metrics("ndcg@10")
    sweep = [{"fusion": o.fusion, "alpha": o.alpha, "norm": o.norm, "rrf_k": o.rrf_k, "tune": value,
              "held_out": score(pool, judged.qrels, held_out, o, measures, 10)} for o, value in result.sweep]
    lexical, semantic = (score(pool, judged.qrels, held_out, SearchOptions(fusion="linear", alpha=a, norm="zscore"),
                               measures, 10) for a in (0.0, 1.0))
    write("fusion_sweep.json", {"date": time.strftime("%Y-%m-%d"), "index": "indexes/debdesc",
                                "model": Path(searcher.backend.manifest["model"]["path"]).name, "metric": "ndcg@10",
                                "depth": depth, "seed": seed, "tune_queries": len(tune), "held_out_queries": len(held_out),
                                "best": {"fusion": result.best.fusion, "alpha": result.best.alpha, "norm": result.best.norm,
                                         "rrf_k": result.best.rrf_k}, "held_out_alpha0": lexical,
                                "held_out_alpha1": semantic, "sweep": sweep})


def collect_typos() -> None:
    """`dssm evaluate --typos --json` on indexes/debdesc, per word and per query."""
    reports = {}
    for per in ("word", "query"):
        command = [sys.executable, str(ROOT / "cli.py"), "evaluate", "--index", str(INDEX), "--queries",
                   str(DEBDESC / "dev_queries.jsonl"), "--qrels", str(DEBDESC / "qrels_dev.tsv"), "--typos",
                   "--typos-per", per, "--json"]
        print(" ".join(["dssm", *command[2:]]), flush=True)
        reports[per] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout)
    write("typos.json", {"date": time.strftime("%Y-%m-%d"), "index": "indexes/debdesc", "reports": reports})


def write(name: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote benchmarks/out/{name}", flush=True)


COLLECTORS = {"training": collect_training, "fusion": collect_fusion, "typos": collect_typos}


# --- draw ----------------------------------------------------------------------------------------


def plot_training(data: dict, plt) -> "plt.Figure":
    figure, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.9))
    for name, rows in data["runs"].items():
        epochs = [row["epoch"] + 1 for row in rows]
        style = {"linewidth": 2.2, "color": "black"} if name == "debdesc" else {"linewidth": 1.2}
        left.plot(epochs, [row.get("val_mrr_at_10", float("nan")) for row in rows], marker=".", label=name, **style)
        right.plot(epochs, [row.get("val_loss", float("nan")) for row in rows], marker=".", label=name, **style)
    left.set(xlabel="epoch", ylabel="validation MRR@10", title="Held-out pairs: MRR@10")
    right.set(xlabel="epoch", ylabel="validation loss", title="Held-out pairs: loss (scale depends on gamma, negatives)")
    left.legend(fontsize=7, loc="lower right")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.suptitle("DSSM training on debdesc-dev (models/*.training/train_log.csv; debdesc = current defaults)", fontsize=10)
    return figure


def plot_fusion(data: dict, plt) -> "plt.Figure":
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for norm, color in (("zscore", "tab:blue"), ("minmax", "tab:orange")):
        rows = [row for row in data["sweep"] if row["fusion"] == "linear" and row["norm"] == norm]
        alphas = [row["alpha"] for row in rows]
        axis.plot(alphas, [row["held_out"] for row in rows], color=color, marker=".", label=f"linear {norm}, held-out half")
        axis.plot(alphas, [row["tune"] for row in rows], color=color, linestyle="--", alpha=0.6, label=f"linear {norm}, tuning half")
    best = data["best"]
    axis.axvline(best["alpha"], color="grey", linestyle=":", label=f"best on tuning half: {best['norm']} alpha={best['alpha']:g}")
    rrf = max((row for row in data["sweep"] if row["fusion"] == "rrf"), key=lambda row: row["tune"])
    axis.axhline(rrf["held_out"], color="tab:green", linestyle="-.", label=f"best rrf (k={rrf['rrf_k']}), held-out half")
    axis.set(xlabel="alpha (weight of the semantic side; 0 = BM25 only, 1 = DSSM only)", ylabel=data["metric"],
             title=f"Fusion sweep: {data['index']} ({data['model']}), {data['tune_queries']} + {data['held_out_queries']} dev queries")
    axis.title.set_fontsize(9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower center")
    return figure


def plot_annoy(data: dict, plt) -> "plt.Figure":
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for curve in data["curves"]:
        rows = curve["rows"]
        axis.plot([row["p50_ms"] for row in rows], [row["recall10"] for row in rows], marker="o",
                  label=f"{curve['n_trees']} trees ({curve['bytes'] / 1e6:.0f} MB)")
        if curve["n_trees"] == 50:
            for row in rows:
                axis.annotate(f"{row['search_k']:g}", (row["p50_ms"], row["recall10"]), fontsize=7,
                              textcoords="offset points", xytext=(4, -9))
    axis.axhline(0.95, color="red", linestyle=":", label="goal recall@10 0.95")
    axis.axvline(data["exact_ms_per_query"], color="grey", linestyle="--",
                 label=f"exact brute force ({data['exact_ms_per_query']:.1f} ms)")
    axis.set_xscale("log")
    axis.set(xlabel="median latency per query, ms (log)", ylabel="recall@10 vs exact brute force",
             title=f"Annoy on {data['index']} ({data['documents']:,} docs, {data['dim']}-d), {data['queries']:,} dev queries; "
                   "labels: search_k")
    axis.title.set_fontsize(9)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, loc="lower right")
    return figure


def plot_typos(data: dict, plt) -> "plt.Figure":
    reports = data["reports"]
    bars = [("clean", reports["word"]["scores"]), ("one edit per query", reports["query"]["typos"]),
            ("one edit per word (4+ letters)", reports["word"]["typos"])]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    width = 0.26
    for offset, (label, scores) in enumerate(bars):
        values = [scores[mode]["ndcg@10"] for mode in MODES]
        positions = [index + (offset - 1) * width for index in range(len(MODES))]
        drawn = axis.bar(positions, values, width, label=label)
        axis.bar_label(drawn, fmt="%.3f", fontsize=7)
    axis.set_xticks(range(len(MODES)), [f"{mode}" for mode in MODES])
    axis.set(ylabel="nDCG@10", ylim=(0, 1), title=f"Typo'd dev queries ({reports['word']['queries']['evaluated']:,}), "
                                                  f"{data['index']} (`dssm evaluate --typos`)\nhybrid: {reports['word']['fusion']}")
    axis.title.set_fontsize(9)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=7)
    return figure


DRAWINGS = {  # png: (data file, function)
    "training_curves.png": ("training_curves.json", plot_training),
    "fusion_alpha_sweep.png": ("fusion_sweep.json", plot_fusion),
    "annoy_recall_latency.png": ("annoy_curve.json", plot_annoy),
    "typo_degradation.png": ("typos.json", plot_typos),
}


def draw() -> None:
    try:
        import matplotlib
    except ImportError:
        sys.exit("matplotlib is missing: it is the benchmark-only extra, `make install-bench` (pip install -e '.[bench]')")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    for png, (source, function) in DRAWINGS.items():
        if not (OUT / source).is_file():
            print(f"skip {png}: no benchmarks/out/{source} (see `python benchmarks/plots.py collect`)")
            continue
        figure = function(json.loads((OUT / source).read_text()), plt)
        figure.tight_layout()
        figure.savefig(PLOTS / png, dpi=DPI, metadata={"Software": None})
        plt.close(figure)
        print(f"wrote benchmarks/plots/{png} ({(PLOTS / png).stat().st_size / 1024:.0f} KB)")


def main() -> None:
    if sys.argv[1:2] == ["collect"]:
        names = sys.argv[2:] or list(COLLECTORS)
        unknown = set(names) - set(COLLECTORS)
        if unknown:
            sys.exit(f"unknown collector(s) {sorted(unknown)}; choose from {sorted(COLLECTORS)}")
        for name in names:
            COLLECTORS[name]()
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        draw()


if __name__ == "__main__":
    main()
