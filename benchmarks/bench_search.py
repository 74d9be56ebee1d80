"""Embedded index and hybrid search at 100k documents (`make bench`; a few minutes on 2 cores).

Corpus: debdesc-dev (63,436 real Debian package descriptions) plus FILLER documents up to --docs:
ids `filler-NNNNNN`, text = words drawn from the real corpus' word distribution with real document
lengths (so BM25 and Annoy see realistic sizes; filler is never relevant to a dev query).
Measures: build time and peak memory (`dssm index build` in a child process), in-process search
latency p50/p99 per mode, nDCG@10 / recall@10 on the 1,188 dev queries, Annoy recall@10 against
exact brute force over the stored vectors for several search_k, index bytes per document, and the
wall time of a cold `dssm search` process. Writes benchmarks/out/search.md (+ search.json).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.lexical import tokenize  # noqa: E402
from indexer.query import HybridSearcher, SearchOptions  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
MODELS = [ROOT / "models" / "debdesc-default", ROOT / "models" / "demo"]


def make_corpus(source: Path, target: int, path: Path, seed: int = 0) -> tuple[int, int]:
    """Copy the real corpus and append labelled filler documents up to `target`; (real, filler)."""
    lines = source.read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(seed)
    words, lengths = [], []
    for line in lines[::4]:
        tokens = tokenize(json.loads(line)["text"])
        words.extend(tokens)
        lengths.append(max(len(tokens), 1))
    words = np.array(words)
    with path.open("w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
        for number in range(max(target - len(lines), 0)):
            text = " ".join(rng.choice(words, size=int(rng.choice(lengths))))
            out.write(json.dumps({"id": f"filler-{number:06d}", "title": f"filler-{number:06d}", "text": text}) + "\n")
    return len(lines), max(target - len(lines), 0)


def build(model: Path, corpus: Path, index: Path, n_trees: int, search_k: int, *extra: str) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "index", "build", "--model", str(model), "--corpus",
                    str(corpus), "--out", str(index), "--n-trees", str(n_trees), "--search-k", str(search_k),
                    "--quiet", *extra], check=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def dev_queries(limit: int) -> list[tuple[str, str]]:
    relevant = dict(line.split("\t")[:2] for line in (DEBDESC / "qrels_dev.tsv").read_text().splitlines())
    records = [json.loads(line) for line in (DEBDESC / "dev_queries.jsonl").read_text().splitlines()]
    return [(record["query"], relevant[record["qid"]]) for record in records][:limit]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def run_mode(searcher: HybridSearcher, queries: list[tuple[str, str]], options: SearchOptions) -> dict:
    """Latency (ms) and quality (nDCG@10, recall@10; one relevant document per query) of one setting."""
    for query, _ in queries[:20]:
        searcher.search(query, options)
    times, ndcg, found = [], 0.0, 0
    for query, relevant in queries:
        started = time.perf_counter()
        ids = searcher.search(query, options).hits.ids
        times.append((time.perf_counter() - started) * 1000)
        if relevant in ids:
            ndcg += 1 / math.log2(ids.index(relevant) + 2)
            found += 1
    return {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99),
            "ndcg10": ndcg / len(queries), "recall10": found / len(queries)}


def annoy_recall(searcher: HybridSearcher, queries: list[tuple[str, str]], search_ks: list[int]) -> list[dict]:
    """Recall@10 of the index's Annoy search (`semantic` at each search_k: with passages, documents
    folded from their items) against its exact search (`semantic_all`: every stored vector, MaxP with
    passages), and the latency of each."""
    index = searcher.backend
    query_vectors = [v for v in (searcher.embed(query) for query, _ in queries) if np.any(v)]
    rows, truth, times = [], [], []
    for vector in query_vectors:
        started = time.perf_counter()
        truth.append(set(index.semantic_all(vector, 10).ids))
        times.append((time.perf_counter() - started) * 1000)
    exact_row = {"search_k": "exact (no Annoy)", "recall10": 1.0, "p50_ms": statistics.median(times)}
    for search_k in search_ks:
        recall, times = [], []
        for vector, exact in zip(query_vectors, truth):
            started = time.perf_counter()
            found = index.semantic(vector, 10, num_candidates=search_k)
            times.append((time.perf_counter() - started) * 1000)
            recall.append(len(exact & set(found.ids)) / 10)
        rows.append({"search_k": search_k, "recall10": float(np.mean(recall)), "p50_ms": statistics.median(times)})
    return rows + [exact_row]


def cold_search(index: Path, query: str, repeats: int) -> float:
    """Median wall time of a fresh `dssm search` process (file cache warm, interpreter cold)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "search", "--index", str(index), query],
                       check=True, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fts5_comparison(corpus: Path, work: Path, queries: list[tuple[str, str]]) -> dict:
    """The alternative lexical engine: SQLite FTS5 `bm25()` over the same corpus, same OR-of-words queries."""
    import sqlite3

    from dssm.featurise import document_text

    path = work / "fts5.sqlite"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, body, tokenize='unicode61 remove_diacritics 2')")
    started = time.perf_counter()
    with corpus.open(encoding="utf-8") as lines:
        records = (json.loads(line) for line in lines)
        connection.executemany("INSERT INTO docs(id, body) VALUES (?, ?)",
                               ((r["id"], document_text(r["title"], r["text"])) for r in records))
    connection.execute("INSERT INTO docs(docs) VALUES ('optimize')")
    connection.commit()
    build_seconds = time.perf_counter() - started
    times, ndcg = [], 0.0
    for query, relevant in queries:
        match = " OR ".join(f'"{token}"' for token in dict.fromkeys(tokenize(query)))
        started = time.perf_counter()
        ids = [row[0] for row in connection.execute(
            "SELECT id FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (match,))] if match else []
        times.append((time.perf_counter() - started) * 1000)
        if relevant in ids:
            ndcg += 1 / math.log2(ids.index(relevant) + 2)
    connection.close()
    size = path.stat().st_size
    path.unlink()
    return {"build_s": build_seconds, "p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99),
            "ndcg10": ndcg / len(queries), "queries": len(queries), "bytes": size}


def synthetic_annoy_build(count: int, dim: int, n_trees: int, work: Path) -> dict:
    """Annoy build time on `count` SYNTHETIC random unit vectors (the 1M-document scale check)."""
    from indexer.annoy_index import build_annoy

    rng = np.random.default_rng(0)
    path = work / "synthetic.f32"
    with path.open("wb") as out:
        for start in range(0, count, 100_000):
            block = rng.normal(size=(min(100_000, count - start), dim)).astype(np.float32)
            out.write((block / np.linalg.norm(block, axis=1, keepdims=True)).tobytes())
    vectors = np.memmap(path, dtype=np.float32, mode="r", shape=(count, dim))
    started = time.perf_counter()
    build_annoy(vectors, work / "synthetic.ann", n_trees=n_trees)
    seconds = time.perf_counter() - started
    size = (work / "synthetic.ann").stat().st_size
    path.unlink()
    (work / "synthetic.ann").unlink()
    return {"vectors": count, "dim": dim, "n_trees": n_trees, "seconds": seconds, "bytes": size}


NOTES_MARK = "<!-- notes: written by hand, kept when the tables above are measured again -->"


def passages_line(manifest: dict) -> str:
    """How the index scores documents: its passages (`dssm index build`'s default since 2026-11-29) or one vector."""
    passages = manifest.get("passages")
    if not passages:
        return "One vector per document (`--passages none`, or built before passages became the default). "
    spec = ":".join(str(passages[key]) for key in ("window", "stride", "limit") if key in passages)
    return f"Passages {spec}: {passages['count']:,} passage vectors beside the documents' (MaxP). "


def markdown(r: dict) -> str:
    m = r["manifest"]
    lines = [
        f"Data: debdesc-dev corpus ({r['real']:,} real documents) + {r['filler']:,} **filler** documents "
        f"(`filler-*`: words sampled from the real corpus, never relevant) = {m['counts']['documents']:,}. "
        f"Model: `{r['model']}`{' (untrained random weights: latency only, quality meaningless)' if r['random_model'] else ''}, "
        f"fingerprint {m['model']['fingerprint'][:12]}…, dim {m['model']['dim']}. Annoy n_trees {m['annoy']['n_trees']}, search_k {m['annoy']['search_k']}. "
        f"{passages_line(m)}"
        f"{r['queries']} dev queries. Measured {r['date']}; 1-minute load average {r['load'][0]:.1f} at the start and "
        f"{r['load'][1]:.1f} at the end on {os.cpu_count()} cores (other jobs running inflate the latencies).", "",
        "| build | value | goal |", "|---|---|---|",
        f"| build time (`dssm index build`, child process) | {r['build']['seconds']:.1f} s | |",
        f"| build peak memory (max RSS) | {r['build']['peak_mb']:.0f} MB | |",
        f"| index size | {r['bytes'] / 1e6:.1f} MB = {r['bytes'] / m['counts']['documents']:.0f} bytes/doc | |",
        f"| cold `dssm search` (new process, page cache warm) | {r['cold_s']:.2f} s | <= 1 s |", "",
        "bytes/doc by file: " + ", ".join(f"`{name}` {entry['bytes'] / m['counts']['documents']:.0f}"
                                          for name, entry in m["files"].items()), "",
        f"| search (in-process, k=10, candidates={SearchOptions().candidates} per side) | p50 ms | p99 ms | nDCG@10 | recall@10 |", "|---|---|---|---|---|"]
    for name, row in r["modes"].items():
        lines.append(f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['ndcg10']:.4f} | {row['recall10']:.4f} |")
    modes = list(r["modes"].values())
    lines += ["", f"Goals: hybrid p50 <= 5 ms, p99 <= 20 ms; hybrid nDCG@10 >= 1.10 x BM25 alone and above each side: "
                  f"measured {modes[0]['ndcg10'] / modes[2]['ndcg10']:.3f} x BM25.", "",
              "| Annoy search_k | recall@10 vs the exact search (MaxP with passages) | p50 ms |", "|---|---|---|"]
    lines += [f"| {row['search_k']} | {row['recall10']:.4f} | {row['p50_ms']:.2f} |" for row in r["annoy"]]
    default = next((row for row in r["annoy"] if row["search_k"] == m["annoy"]["search_k"]), None)
    lines += ["", "Goal: recall@10 >= 0.95 at the chosen default" + (
        f": measured {default['recall10']:.3f} at search_k {default['search_k']} "
        f"({'met' if default['recall10'] >= 0.95 else 'not met'})." if default else ".")]
    if r.get("fts5"):
        f, lexical = r["fts5"], r["fts5"]["matrix"]
        lines += ["", "Lexical engine choice: same corpus, the same first "
                      f"{f['queries']} dev queries as OR of quoted words, top 10:", "",
                  "| engine | build s | p50 ms | p99 ms | nDCG@10 |", "|---|---|---|---|---|",
                  f"| SQLite FTS5 `bm25()` (not used) | {f['build_s']:.1f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['ndcg10']:.4f} |",
                  f"| BM25 impact matrix (`indexer/lexical.py`, used) | in build | {lexical['p50_ms']:.1f} | "
                  f"{lexical['p99_ms']:.1f} | {lexical['ndcg10']:.4f} |"]
    if not r.get("synthetic"):
        lines += ["", "1M-document scale check: not run here (`--synthetic 1000000` times the Annoy part on synthetic vectors)."]
    else:
        y = r["synthetic"]
        lines += ["", f"Scale check (**synthetic** random unit vectors, Annoy part only): {y['vectors']:,} x {y['dim']} "
                      f"vectors, {y['n_trees']} trees: Annoy build {y['seconds']:.0f} s, {y['bytes'] / 1e9:.2f} GB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model directory (default: a trained one in models/, else random)")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--n-trees", type=int, default=50)
    parser.add_argument("--search-k", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1188)
    parser.add_argument("--work", type=Path, default=OUT / "search-work")
    parser.add_argument("--fts5-queries", type=int, default=300, help="dev queries for the FTS5 comparison (0: skip)")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="also time an Annoy build over this many synthetic vectors (e.g. 1000000)")
    args = parser.parse_args()
    if not (DEBDESC / "corpus.jsonl").is_file():
        sys.exit(f"needs {DEBDESC} (debdesc-dev); skipped")
    args.work.mkdir(parents=True, exist_ok=True)
    model = args.model or next((m for m in MODELS if (m / "config.json").is_file()), None)
    random_model = model is None
    if random_model:
        from dssm.config import FeaturiserConfig, TowerConfig
        from dssm.export import random_weights, save_model
        model = args.work / "random-model"
        save_model(model, FeaturiserConfig(), TowerConfig(), random_weights(FeaturiserConfig(), TowerConfig()))
    corpus, index = args.work / "corpus.jsonl", args.work / "index"
    real, filler = make_corpus(DEBDESC / "corpus.jsonl", args.docs, corpus)
    print(f"corpus: {real} real + {filler} filler", flush=True)
    load_at_start = os.getloadavg()[0]
    result = {"model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
              "random_model": random_model, "real": real, "filler": filler,
              "date": time.strftime("%Y-%m-%d"), "build": build(model, corpus, index, args.n_trees, args.search_k)}
    print(f"build: {result['build']}", flush=True)
    searcher = HybridSearcher.open(index)
    result["manifest"] = searcher.backend.manifest
    result["bytes"] = sum(entry["bytes"] for entry in result["manifest"]["files"].values())
    queries = dev_queries(args.queries)
    result["queries"] = len(queries)
    defaults = SearchOptions()
    semantic = "exact" if searcher.backend.exact_by_default else f"Annoy, search_k {args.search_k}"
    settings = {f"hybrid (linear, {defaults.norm}, alpha {defaults.alpha})": defaults, "hybrid rrf": SearchOptions(fusion="rrf"),
                "lexical (BM25)": SearchOptions(mode="lexical"), f"semantic ({semantic}, the default)": SearchOptions(mode="semantic")}
    result["modes"] = {name: run_mode(searcher, queries, options) for name, options in settings.items()}
    print(json.dumps(result["modes"], indent=1), flush=True)
    result["annoy"] = annoy_recall(searcher, queries[:300], sorted({1000, 5000, 10000, args.search_k, 50000}))
    result["cold_s"] = cold_search(index, queries[0][0], repeats=5)
    if args.fts5_queries:
        result["fts5"] = fts5_comparison(corpus, args.work, queries[:args.fts5_queries])
        result["fts5"]["matrix"] = run_mode(searcher, queries[:args.fts5_queries], SearchOptions(mode="lexical"))
    if args.synthetic:
        result["synthetic"] = synthetic_annoy_build(args.synthetic, result["manifest"]["model"]["dim"],
                                                    args.n_trees, args.work)
    result["load"] = (load_at_start, os.getloadavg()[0])
    OUT.mkdir(parents=True, exist_ok=True)
    fragment = OUT / "search.md"
    notes = fragment.read_text().split(NOTES_MARK, 1)[1] if fragment.is_file() and NOTES_MARK in fragment.read_text() else "\n"
    fragment.write_text(markdown(result) + "\n" + NOTES_MARK + notes)     # the hand-written notes stay
    (OUT / "search.json").write_text(json.dumps(result, indent=2, default=str))
    print(markdown(result))


if __name__ == "__main__":
    main()
