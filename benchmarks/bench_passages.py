"""One vector per document against passage max-pooling (`dssm index build --passages W:S[:N]`), on debdesc.

    python benchmarks/bench_passages.py --model models/NAME [--passages 12:6:2 --passages 12:6] [--queries 1188]

Builds the embedded indexes (`--passages none`, then each --passages spec; default: the build's default
12:6:2 and all 12:6 windows) of the 63,436 debdesc-dev documents with MODEL (`dssm index build` in a
child process: build time, peak memory, bytes), then in one process, modes interleaved per query set:
nDCG@10 and recall@10 on the dev queries (one relevant document each, 50 candidates a side) and
search latency p50/p99 of the semantic and hybrid modes at the index's default search_k and at
100,000. Writes benchmarks/out/passages.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_search import DEBDESC, OUT, build, dev_queries, run_mode  # noqa: E402
from indexer.passages import DEFAULT_PASSAGES  # noqa: E402
from indexer.query import HybridSearcher, SearchOptions  # noqa: E402


def measure(index: Path, queries: list[tuple[str, str]]) -> dict:
    searcher = HybridSearcher.open(index)
    rows = {}
    for mode in ("semantic", "hybrid"):
        for search_k in (None, 100_000):
            rows[f"{mode}, search_k {search_k or 'default'}"] = run_mode(searcher, queries,
                                                                         SearchOptions(mode=mode, search_k=search_k))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--passages", action="append", help="W:S[:N] (repeatable; default 12:6:2 and 12:6)")
    parser.add_argument("--queries", type=int, default=1188)
    parser.add_argument("--work", type=Path, default=OUT / "passages-work")
    args = parser.parse_args()
    if not (DEBDESC / "corpus.jsonl").is_file():
        sys.exit(f"needs {DEBDESC} (debdesc-dev); skipped")
    queries = dev_queries(args.queries)
    specs = args.passages or [DEFAULT_PASSAGES, "12:6"]
    result = {"model": str(args.model), "passages": specs, "date": time.strftime("%Y-%m-%d"), "indexes": {}}
    for spec in ["none", *specs]:
        name = "one vector per document" if spec == "none" else f"--passages {spec}"
        index = args.work / ("whole" if spec == "none" else "passages-" + spec.replace(":", "-"))
        built = build(args.model, DEBDESC / "corpus.jsonl", index, 50, 20_000, "--passages", spec)
        manifest = json.loads((index / "manifest.json").read_text())
        built["bytes"] = sum(entry["bytes"] for entry in manifest["files"].values())
        result["indexes"][name] = {"build": built, "modes": measure(index, queries)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "passages.json").write_text(json.dumps(result, indent=1))
    print("| index | setting | nDCG@10 | recall@10 | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for name, entry in result["indexes"].items():
        for setting, row in entry["modes"].items():
            print(f"| {name} ({entry['build']['bytes'] / 1e6:,.0f} MB, built in {entry['build']['seconds']:.0f} s) "
                  f"| {setting} | {row['ndcg10']:.4f} | {row['recall10']:.4f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
