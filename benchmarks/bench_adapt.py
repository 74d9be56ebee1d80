"""Zero-label domain adaptation on an out-of-domain set: the debdesc model as is, adapted, and BM25.

    .venv/bin/python benchmarks/bench_adapt.py --model models/debdesc [--work runs/bench-adapt]

The out-of-domain set is made here from the Python standard library's docstrings
(scripts/make_pydoc.py: summary line -> the rest of the docstring; never trained on, no download). The
product path throughout: `dssm adapt` (its defaults), `dssm index build` (default passages and
analyzer) with the model as is and with the adapted one, then `dssm evaluate --json` (lexical,
semantic, hybrid). Writes benchmarks/out/adapt.md and adapt.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DSSM = [sys.executable, "-c", "import cli; cli.main()"]


def dssm(*args, capture: bool = False) -> str:
    result = subprocess.run([*DSSM, *map(str, args)], cwd=ROOT, check=True, text=True,
                            stdout=subprocess.PIPE if capture else None)
    return result.stdout or ""


def evaluate(index: Path, data: Path) -> dict:
    lines = dssm("evaluate", "--index", index, "--queries", data / "queries.jsonl", "--qrels", data / "qrels.tsv",
                 "--json", capture=True)
    return json.loads(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-adapt")
    args = parser.parse_args()
    data = args.work / "pydoc"
    subprocess.run([sys.executable, "scripts/make_pydoc.py", "--out", data], cwd=ROOT, check=True)
    adapted = args.work / "adapted-model"
    start = time.perf_counter()
    dssm("adapt", "--model", args.model, "--corpus", data / "corpus.jsonl", "--out", adapted, "--quiet")
    adapt_seconds = time.perf_counter() - start
    results = {}
    for name, model in (("as is", args.model), ("adapted", adapted)):
        index = args.work / f"index-{name.replace(' ', '-')}"
        dssm("index", "build", "--model", model, "--corpus", data / "corpus.jsonl", "--out", index, "--quiet")
        results[name] = evaluate(index, data)
    write(args, data, results, adapt_seconds)


def write(args, data: Path, results: dict, adapt_seconds: float) -> None:
    readme = (data / "README.md").read_text().strip()
    metric = "ndcg@10"
    lines = [f"Out-of-domain set: {readme} Model `{args.model}` (trained on debdesc-dev); `dssm adapt` with its "
             f"defaults took {adapt_seconds:.0f} s on this machine. Measured {time.strftime('%Y-%m-%d')}, one run, "
             f"`.venv/bin/python benchmarks/bench_adapt.py --model {args.model}`; `dssm evaluate` with the default "
             f"index (passages 12:6:2, analyzer english, fusion linear zscore alpha 0.5).", "",
             "| model | lexical nDCG@10 | DSSM alone nDCG@10 | hybrid nDCG@10 |", "|---|---|---|---|"]
    for name, result in results.items():
        modes = {mode: values.get(metric) for mode, values in result["scores"].items()
                 if isinstance(values, dict)}
        lines.append(f"| {name} | {modes.get('lexical', float('nan')):.4f} | {modes.get('semantic', float('nan')):.4f} "
                     f"| {modes.get('hybrid', float('nan')):.4f} |")
    (OUT / "adapt.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / "adapt.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "model": str(args.model),
                                                "adapt_seconds": adapt_seconds, "results": results}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
