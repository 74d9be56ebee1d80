"""Soak: searches in parallel processes while `index add`/`delete` rewrite the index (BENCHMARKS.md).

    python benchmarks/bench_soak.py --model models/NAME [--documents 5000] [--readers 4] [--seconds 60]

Builds an embedded index of the first DOCUMENTS debdesc-dev documents (passages 12:6:2, the CLI's
default), then for SECONDS: READERS processes each loop {open the index, run 3 dev queries (hybrid;
semantic through Annoy; lexical), close}, while this process alternately adds 200 more documents and
deletes them again. Every reader failure counts (the issue saw 2-5 % of searches fail with a false
checksum error before generations). Writes benchmarks/out/soak.md and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.build import add_documents, build_index, delete_documents  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
ADDED = 200

READER = """
import json, os, sys, time
sys.path.insert(0, {root!r})
from dssm.export import load_encoder
from indexer.query import HybridSearcher
encoder = load_encoder({model!r})
queries = {queries!r}
opens, searches, failures = [], [], []
while not os.path.exists({stop!r}):
    try:
        start = time.perf_counter()
        searcher = HybridSearcher.open({index!r}, encoder=encoder)
        opens.append(time.perf_counter() - start)
        for query, options in zip(queries, ({{}}, {{"mode": "semantic", "search_k": 2000}}, {{"mode": "lexical"}})):
            start = time.perf_counter()
            searcher.search(query, **options)
            searches.append(time.perf_counter() - start)
        searcher.backend.close()
    except Exception as error:
        failures.append(f"{{type(error).__name__}}: {{error}}")
print(json.dumps({{"opens": opens, "searches": searches, "failures": failures}}))
"""


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def soak(model: Path, documents: int, readers: int, seconds: float, work: Path) -> dict:
    lines = (DEBDESC / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    base = write_lines(work / "base.jsonl", lines[:documents])
    added = write_lines(work / "added.jsonl", lines[documents:documents + ADDED])
    added_ids = [json.loads(line)["id"] for line in lines[documents:documents + ADDED]]
    queries = [json.loads(line)["query"] for line in (DEBDESC / "dev_queries.jsonl").read_text().splitlines()[:3]]
    index, stop = work / "index", work / "stop"
    build_index(model, base, index, passages={"window": 12, "stride": 6, "limit": 2})
    script = READER.format(root=str(ROOT), model=str(model), queries=queries, stop=str(stop), index=str(index))
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
                 for _ in range(readers)]
    writes, start = 0, time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            add_documents(index, added)
            delete_documents(index, added_ids)
            writes += 2
    finally:
        stop.touch()
        results = [json.loads(process.communicate(timeout=120)[0]) for process in processes]
    elapsed = time.monotonic() - start
    opens = [value for result in results for value in result["opens"]]
    searches = [value for result in results for value in result["searches"]]
    failures = [failure for result in results for failure in result["failures"]]
    return {"documents": documents, "readers": readers, "seconds": round(elapsed, 1), "writes": writes,
            "opens": len(opens), "searches": len(searches), "failures": len(failures),
            "first_failures": failures[:3], "open_p50_ms": round(statistics.median(opens) * 1000, 2) if opens else None,
            "search_p50_ms": round(statistics.median(searches) * 1000, 2) if searches else None,
            "generations_left": sorted(path.name for path in index.iterdir() if path.name.startswith("g-")),
            "leftovers_beside": sorted(path.name for path in index.parent.iterdir()
                                       if path.name.startswith(".index.") and not path.name.endswith(".lock"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "base")
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if not (DEBDESC / "corpus.jsonl").is_file():
        sys.exit(f"needs {DEBDESC} (debdesc-dev); skipped")
    with tempfile.TemporaryDirectory(prefix="dssm-soak-") as work:
        os.environ.setdefault("DSSM_CACHE_DIR", str(Path(work) / "cache"))
        result = soak(args.model, args.documents, args.readers, args.seconds, Path(work))
    result["date"] = time.strftime("%Y-%m-%d")
    table = (f"# Soak: searches during index add/delete ({result['date']})\n\n"
             f"`python benchmarks/bench_soak.py --documents {args.documents} --readers {args.readers} "
             f"--seconds {args.seconds:g}`, model {args.model.name}\n\n"
             "| documents | reader processes | seconds | writes (add/delete) | index opens | searches | failures "
             "| open p50 ms | search p50 ms |\n|---|---|---|---|---|---|---|---|---|\n"
             f"| {result['documents']} | {result['readers']} | {result['seconds']} | {result['writes']} | "
             f"{result['opens']} | {result['searches']} | {result['failures']} | {result['open_p50_ms']} | "
             f"{result['search_p50_ms']} |\n\n"
             f"Generations left in the index: {', '.join(result['generations_left'])}; leftovers beside it: "
             f"{', '.join(result['leftovers_beside']) or 'none'}.\n")
    if result["first_failures"]:
        table += "\nFirst failures:\n" + "".join(f"- {failure}\n" for failure in result["first_failures"])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
