"""`make bench`: run the benchmarks that fit this machine and assemble BENCHMARKS.md.

    python benchmarks/run_all.py [NAME ...]     # refresh those fragments (default: every quick one), assemble
    python benchmarks/run_all.py assemble       # assemble only (`make report`, after benchmarks/plots.py)

Each benchmark writes a markdown fragment to benchmarks/out/<name>.md; fragments of longer runs made
by hand (quality on debdesc-dev, the negative-strategy ablation, scale, peers: benchmarks/README.md)
are kept and included when present. BENCHMARKS.md = header (machine, date) + the fragments in
SECTIONS order, each followed by links to its plots in benchmarks/plots/ (PLOTS) that exist.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"

# (fragment, title, command to refresh it or None for fragments made by longer runs)
SECTIONS = [
    ("core", "DSSM core throughput", [sys.executable, "benchmarks/bench_core.py"]),
    ("training", "DSSM training runs on debdesc-dev", None),
    ("corpus_training", "Learning from the corpus: pseudo-queries and adaptation (debdesc-dev)", None),
    ("adapt", "Zero-label domain adaptation (out-of-domain: Python docstrings)", None),
    ("gpu", "Training throughput on an accelerator (KERAS_BACKEND=jax)", None),
    ("quality", "Retrieval quality on debdesc-dev (dev queries)", [sys.executable, "benchmarks/bench_quality.py"]),
    ("ablation", "Negative-strategy ablation (debdesc-dev)", None),
    ("lexical", "Lexical analysis: the embedded BM25 beside bm25s (debdesc-dev)",
     [sys.executable, "benchmarks/bench_lexical.py"]),
    ("search", "Embedded index and hybrid search", [sys.executable, "benchmarks/bench_search.py"]),
    ("soak", "Searches during updates, and the integrity check's cost", None),
    ("scale", "Annoy recall/latency and the 1M-document build", None),
    ("peers", "Peers: BM25 and MiniLM beside the DSSM (debdesc-dev)", None),
    ("tags_quality", "Zero-shot and one-shot tagging (debtags)", None),
    ("tags_training", "One model for search and tags: the trade-off", None),
    ("tags", "Tag index and prediction (200,000 tags)", [sys.executable, "benchmarks/bench_tags.py"]),
    ("es", "Elasticsearch backend", [sys.executable, "benchmarks/bench_es.py"]),
    ("plugin", "Elasticsearch plugin endpoint", [sys.executable, "benchmarks/bench_plugin.py"]),
]

# section: (png in benchmarks/plots/, caption naming its data); drawn by benchmarks/plots.py
PLOTS = {
    "training": [("training_curves.png", "Validation MRR@10 and loss per epoch of each debdesc-dev run "
                  "(models/*.training/train_log.csv; data: benchmarks/out/training_curves.json)")],
    "quality": [("fusion_alpha_sweep.png", "nDCG@10 of linear fusion against alpha (minmax, zscore) on the tuning "
                 "and held-out halves of the dev queries, indexes/debdesc (`dssm tune-fusion` grid; data: "
                 "benchmarks/out/fusion_sweep.json)"),
                ("typo_degradation.png", "nDCG@10 per mode on clean and typo'd dev queries (`dssm evaluate --typos "
                 "--json`; data: benchmarks/out/typos.json)")],
    "scale": [("annoy_recall_latency.png", "Annoy recall@10 vs exact brute force against median latency, sweeping "
               "search_k (data: benchmarks/out/annoy_curve.json)")],
}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def run(only: set[str]) -> None:
    for name, _, command in SECTIONS:
        if command is None or (only and name not in only) or not (ROOT / command[1]).exists():
            continue
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        result = subprocess.run(command, cwd=ROOT)
        if result.returncode != 0:
            print(f"   {name} failed (exit {result.returncode}); its previous fragment, if any, is kept")


def plot_links(name: str) -> list[str]:
    return [f"![{png}](benchmarks/plots/{png})\n\n*{caption}.*\n"
            for png, caption in PLOTS.get(name, []) if (ROOT / "benchmarks" / "plots" / png).is_file()]


def assemble() -> None:
    parts = ["# Benchmarks", "",
             f"Assembled by `make bench` / `make report` on {datetime.date.today().isoformat()}. Machine: {machine()}.",
             "Each section states its own data, date of measurement where it differs, and goal. Medians of",
             "repeated runs in one process unless stated otherwise.", ""]
    for name, title, _ in SECTIONS:
        fragment = OUT / f"{name}.md"
        parts += [f"## {title}", "", fragment.read_text().strip() if fragment.exists() else "_not measured yet_", ""]
        parts += plot_links(name)
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts) + "\n")
    print("wrote BENCHMARKS.md")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:]
    if names != ["assemble"]:
        run(set(names))
    assemble()


if __name__ == "__main__":
    main()
