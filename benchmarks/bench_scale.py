"""Annoy at scale: the recall/latency curve on debdesc-dev and a 1M-vector build (issue "Embedded index").

    python benchmarks/bench_scale.py curve [--index indexes/debdesc]      # ~1 min on 2 cores
    nice -n 19 python benchmarks/bench_scale.py build [--vectors 1000000]  # ~1-2 min per setting
    nice -n 19 python benchmarks/bench_scale.py full [--vectors 1000000]   # a full 1M-document build, ~5-10 min
    python benchmarks/bench_scale.py report                               # scale.md from the JSON

curve: the index's Annoy (and, with --n-trees, Annoy indexes rebuilt from the same vector file with
other tree counts) against exact brute force over the stored vectors (`indexer.vectors.exact_search`):
recall@10 and median latency per query for a sweep of search_k, on the dev queries embedded by the
index's model. Writes benchmarks/out/annoy_curve.json.

build: SYNTHETIC random unit vectors (seeded normal, normalised; 128-d like the model) written with
`indexer.vectors.VectorWriter`, memory-mapped with `open_vectors` and indexed with
`indexer.annoy_index.build_annoy`, i.e. the Annoy part of `dssm index build` (indexer/build.py
`finish`). Each setting runs in its own child process, so its wall time and peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) are its own; tracemalloc is not used because Annoy
allocates in C++, where tracemalloc sees nothing. Recall@10 against brute force on 100 random
queries is measured on the built index (random vectors are the hard case for Annoy).
Writes benchmarks/out/scale.json.

full: a real `build_index` of 1M documents (debdesc-dev + labelled filler text, as bench_search.py
makes them) with the trained model: encoding, document store, BM25 and Annoy; wall time, the time
spent until the last encoded batch, and peak RSS, in a child process. Writes scale_full.json.
`report` writes benchmarks/out/scale.md from the JSON files.
"""
from __future__ import annotations

import argparse
import json
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

from indexer.annoy_index import DEFAULT_N_TREES, DEFAULT_SEARCH_K, AnnoySearcher, build_annoy  # noqa: E402
from indexer.vectors import VectorWriter, exact_search, open_vectors  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
SEARCH_KS = (100, 500, 1000, 2000, 5000, 10000, 20000, 50000)
GOAL_RECALL, GOAL_BUILD_S = 0.95, 300.0


def median_latency(searcher: AnnoySearcher, queries: np.ndarray, search_k: int, repeats: int) -> tuple[list, float]:
    """(found rows per query, median over `repeats` passes of the per-pass median latency in ms)."""
    found, medians = [], []
    for _ in range(repeats):
        times, found = [], []
        for vector in queries:
            started = time.perf_counter()
            rows, _ = searcher.search(vector, 10, search_k)
            times.append((time.perf_counter() - started) * 1000)
            found.append(rows)
        medians.append(statistics.median(times))
    return found, statistics.median(medians)


def curve_rows(searcher: AnnoySearcher, queries: np.ndarray, truth: list[set], repeats: int) -> list[dict]:
    rows = []
    for search_k in SEARCH_KS:
        found, p50 = median_latency(searcher, queries, search_k, repeats)
        recall = float(np.mean([len(exact & set(rows.tolist())) / 10 for rows, exact in zip(found, truth)]))
        rows.append({"search_k": search_k, "recall10": recall, "p50_ms": p50})
        print(f"  search_k {search_k}: recall@10 {recall:.4f}, p50 {p50:.3f} ms", flush=True)
    return rows


def embed_queries(index: Path, limit: int) -> np.ndarray:
    from dssm.export import load_encoder
    from indexer.manifest import read_manifest

    manifest = read_manifest(index)
    records = [json.loads(line) for line in (DEBDESC / "dev_queries.jsonl").read_text().splitlines()][:limit]
    vectors = load_encoder(manifest["model"]["path"]).encode([r["query"] for r in records], side="query")
    return vectors[np.any(vectors != 0, axis=1)]


def curve(args) -> None:
    from indexer.manifest import read_manifest
    from indexer.vectors import IDS_FILE, read_ids

    manifest = read_manifest(args.index)
    ids, dim = read_ids(args.index / IDS_FILE), manifest["model"]["dim"]
    vectors = np.asarray(open_vectors(args.index / "vectors.f32", len(ids), dim))
    queries = embed_queries(args.index, args.queries)
    started = time.perf_counter()
    truth = [set(exact_search(vectors, q, 10)[0].tolist()) for q in queries]
    exact_ms = (time.perf_counter() - started) * 1000 / len(queries)
    index_name = args.index.resolve().relative_to(ROOT) if args.index.resolve().is_relative_to(ROOT) else args.index
    result = {"date": time.strftime("%Y-%m-%d"), "index": str(index_name), "documents": len(ids), "dim": dim,
              "model": manifest["model"]["path"], "queries": len(queries), "repeats": args.repeats,
              "exact_ms_per_query": exact_ms, "load": [os.getloadavg()[0]], "curves": []}
    index_trees = manifest["annoy"]["n_trees"]
    for n_trees in sorted({index_trees, *args.n_trees}):
        path = args.index / "annoy.ann"
        if n_trees != index_trees:
            path = args.work / f"curve-{n_trees}.ann"
            args.work.mkdir(parents=True, exist_ok=True)
            build_annoy(vectors, path, n_trees)
        print(f"n_trees {n_trees}:", flush=True)
        rows = curve_rows(AnnoySearcher(path, dim, manifest["annoy"]["items"]), queries, truth, args.repeats)
        result["curves"].append({"n_trees": n_trees, "bytes": path.stat().st_size, "rows": rows})
        if n_trees != index_trees:
            path.unlink()
    result["load"].append(os.getloadavg()[0])
    write_json("annoy_curve.json", result)


def synthetic_vectors(path: Path, count: int, dim: int, seed: int = 0) -> None:
    """`count` random unit vectors [count, dim] written through the indexer's VectorWriter."""
    rng, writer = np.random.default_rng(seed), VectorWriter(path, dim)
    for start in range(0, count, 100_000):
        block = rng.normal(size=(min(100_000, count - start), dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        writer.append([str(row) for row in range(start, start + len(block))], block)
        writer.ids.clear()  # ids are not needed here; keep the memory for the build
    writer.close()


def build_one(args) -> None:
    """Child process: one Annoy build over the synthetic vector file; prints one JSON line."""
    vectors = open_vectors(args.vector_file, args.vectors, args.dim)
    target = args.work / f"synthetic-{os.getpid()}.ann"
    started = time.perf_counter()
    items = build_annoy(vectors, target, args.n_trees[0], on_disk_build=args.on_disk_build, n_jobs=args.n_jobs)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(1)
    sample = rng.choice(args.vectors, size=100, replace=False)
    queries = np.asarray(vectors[np.sort(sample)]) + rng.normal(scale=0.05, size=(100, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = [set(exact_search(np.asarray(vectors), q, 10)[0].tolist()) for q in queries]
    searcher = AnnoySearcher(target, args.dim, items)
    found, p50 = median_latency(searcher, queries, DEFAULT_SEARCH_K, 1)
    recall = float(np.mean([len(t & set(f.tolist())) / 10 for f, t in zip(found, truth)]))
    print(json.dumps({"vectors": args.vectors, "dim": args.dim, "n_trees": args.n_trees[0], "n_jobs": args.n_jobs,
                      "on_disk_build": args.on_disk_build, "items": items, "seconds": seconds, "peak_rss_mb": peak_mb,
                      "bytes": target.stat().st_size, "search_k": DEFAULT_SEARCH_K, "recall10": recall, "p50_ms": p50}))
    target.unlink()


SETTINGS = {  # name: (n_trees, n_jobs, on_disk_build)
    "default (50 trees, all cores)": (DEFAULT_N_TREES, -1, False),
    "50 trees, on_disk_build": (DEFAULT_N_TREES, -1, True),
    "50 trees, 1 core": (DEFAULT_N_TREES, 1, False),
    "25 trees, all cores": (25, -1, False),
}


def build(args) -> None:
    args.work.mkdir(parents=True, exist_ok=True)
    vector_file = args.work / "synthetic.f32"
    started = time.perf_counter()
    synthetic_vectors(vector_file, args.vectors, args.dim)
    result = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "vectors": args.vectors, "dim": args.dim,
              "write_vectors_s": time.perf_counter() - started, "load_start": os.getloadavg()[0], "settings": {}}
    for name in args.settings:
        n_trees, n_jobs, on_disk = SETTINGS[name]
        command = [sys.executable, __file__, "build-one", "--vectors", str(args.vectors), "--dim", str(args.dim),
                   "--n-trees", str(n_trees), "--n-jobs", str(n_jobs), "--work", str(args.work),
                   "--vector-file", str(vector_file)] + (["--on-disk-build"] if on_disk else [])
        print(f"== {name}", flush=True)
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result["settings"][name] = json.loads(line)
        print(line, flush=True)
    result["load_end"] = os.getloadavg()[0]
    vector_file.unlink()
    write_json("scale.json", result)


def full_one(args) -> None:
    """Child process: `build_index` (what `dssm index build` runs) over the 1M corpus; prints one JSON line."""
    from indexer.build import build_index

    marks = {"started": time.perf_counter(), "encoded_at": None, "documents": 0}

    def progress(count: int) -> None:
        marks["documents"] += count
        marks["encoded_at"] = time.perf_counter()

    manifest = build_index(args.model, args.corpus, args.work / "full-index", progress=progress)
    seconds = time.perf_counter() - marks["started"]
    print(json.dumps({"documents": manifest["counts"]["documents"], "seconds": seconds,
                      "encode_store_s": marks["encoded_at"] - marks["started"],
                      "bm25_annoy_manifest_s": time.perf_counter() - marks["encoded_at"],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "bytes": sum(entry["bytes"] for entry in manifest["files"].values()),
                      "n_trees": manifest["annoy"]["n_trees"], "fingerprint": manifest["model"]["fingerprint"]}))


def full(args) -> None:
    """A full 1M-document `build_index`: debdesc-dev + labelled filler documents (bench_search.make_corpus)."""
    import shutil

    from bench_search import make_corpus

    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.work / f"corpus-{args.vectors}.jsonl"
    started = time.perf_counter()
    real, filler = make_corpus(DEBDESC / "corpus.jsonl", args.vectors, corpus)
    corpus_s = time.perf_counter() - started
    command = [sys.executable, __file__, "full-one", "--model", str(args.model), "--corpus", str(corpus),
               "--work", str(args.work)]
    load_start = os.getloadavg()[0]
    line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    record = json.loads(line) | {"real": real, "filler": filler, "corpus_s": corpus_s, "model": args.model.name,
                                 "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                                 "load": [load_start, os.getloadavg()[0]]}
    print(json.dumps(record), flush=True)
    shutil.rmtree(args.work / "full-index", ignore_errors=True)
    corpus.unlink()
    write_json("scale_full.json", record)


def write_json(name: str, result: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote benchmarks/out/{name}")
    report()


def curve_markdown(c: dict) -> list[str]:
    default = next(entry for entry in c["curves"] if entry["n_trees"] == DEFAULT_N_TREES)
    chosen = next(row for row in default["rows"] if row["search_k"] == DEFAULT_SEARCH_K)
    lines = [f"Recall/latency of Annoy on `{c['index']}` ({c['documents']:,} debdesc-dev documents, {c['dim']}-d "
             f"vectors of `{Path(c['model']).name}`), {c['queries']:,} dev queries, against exact brute force over the "
             f"stored vectors ({c['exact_ms_per_query']:.2f} ms per query, numpy). Latency: median per query, median of "
             f"{c['repeats']} passes; measured {c['date']}, load average {c['load'][0]:.1f} -> {c['load'][1]:.1f}. "
             "`python benchmarks/bench_scale.py curve`. Plot: `benchmarks/plots/annoy_recall_latency.png`.", "",
             "| search_k | " + " | ".join(f"recall@10 / p50 ms ({e['n_trees']} trees)" for e in c["curves"]) + " |",
             "|---|" + "---|" * len(c["curves"])]
    for position, search_k in enumerate(SEARCH_KS):
        cells = [f"{e['rows'][position]['recall10']:.4f} / {e['rows'][position]['p50_ms']:.2f}" for e in c["curves"]]
        lines.append(f"| {search_k} | " + " | ".join(cells) + " |")
    met = "met" if chosen["recall10"] >= GOAL_RECALL else "**not met**"
    lines += ["", f"Goal: recall@10 >= {GOAL_RECALL} at the chosen default (n_trees {DEFAULT_N_TREES}, search_k "
                  f"{DEFAULT_SEARCH_K}): **{chosen['recall10']:.4f}** at {chosen['p50_ms']:.2f} ms, {met}."]
    return lines


def build_markdown(s: dict) -> list[str]:
    lines = [f"Annoy part of a 1M-document build on **synthetic** vectors: {s['vectors']:,} random unit vectors x "
             f"{s['dim']} (seeded normal, normalised), written with `VectorWriter` ({s['write_vectors_s']:.0f} s) and "
             f"indexed by `build_annoy` as `dssm index build` does, each setting in its own process on {s['cpus']} cores. "
             f"Measured {s['date']} under `nice -n 19`, load average {s['load_start']:.1f} at the start, "
             f"{s['load_end']:.1f} at the end. Recall@10 vs brute force on 100 perturbed copies of random items, "
             f"search_k {DEFAULT_SEARCH_K}. One run per setting. "
             "`nice -n 19 python benchmarks/bench_scale.py build`.", "",
             "| setting | Annoy build s | peak RSS MB | annoy.ann GB | recall@10 | p50 ms | build <= 300 s |",
             "|---|---|---|---|---|---|---|"]
    for name, r in s["settings"].items():
        lines.append(f"| {name} | {r['seconds']:.0f} | {r['peak_rss_mb']:,.0f} | {r['bytes'] / 1e9:.2f} | "
                     f"{r['recall10']:.3f} | {r['p50_ms']:.2f} | {'yes' if r['seconds'] <= GOAL_BUILD_S else 'no'} |")
    return lines + ["", "Random 128-d vectors have no neighbourhood structure (every item is nearly as far as the nearest), "
                        "Annoy's worst case: their recall says nothing about model vectors, whose curve is above. "
                        "The build time and memory are what these rows are for."]


def full_markdown(f: dict) -> list[str]:
    met = "met" if f["seconds"] <= GOAL_BUILD_S else "**not met**"
    return [f"Full 1M-document build (`indexer.build.build_index`, what `dssm index build` runs, in a child process): "
            f"{f['real']:,} real debdesc-dev documents + {f['filler']:,} **filler** documents (words drawn from the real "
            f"corpus with real lengths, `bench_search.make_corpus`), model `{f['model']}`, Annoy {f['n_trees']} trees. "
            f"Measured {f['date']} under `nice -n 19` on {f['cpus']} cores, load average {f['load'][0]:.1f} -> "
            f"{f['load'][1]:.1f} (another session was training on the same cores), one run. "
            "`nice -n 19 python benchmarks/bench_scale.py full`.", "",
            "| measure | value |", "|---|---|",
            f"| documents | {f['documents']:,} |",
            f"| build wall time | **{f['seconds']:.0f} s** ({f['seconds'] / 60:.1f} min) |",
            f"| encoding + document store (until the last batch) | {f['encode_store_s']:.0f} s |",
            f"| ids, BM25, Annoy, manifest (after the last batch) | {f['bm25_annoy_manifest_s']:.0f} s |",
            f"| peak memory (max RSS) | {f['peak_rss_mb']:,.0f} MB |",
            f"| index size | {f['bytes'] / 1e9:.2f} GB |", "",
            f"Goal: a 1M-document build in <= 5 min: {f['seconds'] / 60:.1f} min, {met} "
            f"({GOAL_BUILD_S - f['seconds']:+.0f} s of margin on this loaded machine). If a build must be faster: "
            "Annoy is one part of the time after the last batch (its build alone: the synthetic rows above); fewer "
            "trees cut it, at the recall the curve above shows for each tree count."]


def report() -> None:
    """benchmarks/out/scale.md from annoy_curve.json and scale.json (whichever exist)."""
    parts = []
    if (OUT / "annoy_curve.json").is_file():
        parts += curve_markdown(json.loads((OUT / "annoy_curve.json").read_text())) + [""]
    if (OUT / "scale.json").is_file():
        parts += build_markdown(json.loads((OUT / "scale.json").read_text())) + [""]
    if (OUT / "scale_full.json").is_file():
        parts += full_markdown(json.loads((OUT / "scale_full.json").read_text())) + [""]
    if (OUT / "scale_notes.md").is_file():
        parts.append((OUT / "scale_notes.md").read_text().strip())
    (OUT / "scale.md").write_text("\n".join(parts).strip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["curve", "build", "build-one", "full", "full-one", "report"])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "debdesc")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "debdesc")
    parser.add_argument("--queries", type=int, default=1188)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-trees", type=int, nargs="*", default=[], help="curve: also these tree counts")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS)[:2], choices=list(SETTINGS))
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--on-disk-build", action="store_true")
    parser.add_argument("--vector-file", type=Path)
    parser.add_argument("--work", type=Path, default=OUT / "scale-work")
    args = parser.parse_args()
    {"curve": curve, "build": build, "build-one": build_one, "full": full, "full-one": full_one,
     "report": lambda _: report()}[args.command](args)


if __name__ == "__main__":
    main()
