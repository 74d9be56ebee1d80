"""Cut the shipped sample from debdesc-dev (Debian package descriptions); see data/README.md.

    python data/make_sample.py ../shared/data/debdesc-dev data/
Deterministic (seed 7): the same source gives byte-identical files.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

TRAIN_PAIRS, DEV_QUERIES, DISTRACTORS, DEMO_QUERIES = 4000, 200, 800, 5


def main(source: Path, target: Path) -> None:
    rng = random.Random(7)
    corpus = {d["id"]: d for d in map(json.loads, open(source / "corpus.jsonl", encoding="utf-8"))}
    pairs = [json.loads(line) for line in open(source / "train_pairs.jsonl", encoding="utf-8")]
    queries = {q["qid"]: q["query"] for q in map(json.loads, open(source / "dev_queries.jsonl", encoding="utf-8"))}
    qrels = [line.rstrip("\n").split("\t") for line in open(source / "qrels_dev.tsv", encoding="utf-8")]

    train = rng.sample(pairs, TRAIN_PAIRS)
    dev = sorted(rng.sample(qrels, DEV_QUERIES))
    keep = {p["doc_id"] for p in train} | {doc for _, doc, _ in dev}
    others = sorted(set(corpus) - keep)
    keep |= set(rng.sample(others, DISTRACTORS))

    target.mkdir(parents=True, exist_ok=True)
    write_jsonl(target / "sample_corpus.jsonl", [corpus[doc] for doc in sorted(keep)])
    write_jsonl(target / "sample_pairs.jsonl", train)
    write_jsonl(target / "sample_dev_queries.jsonl", [{"qid": qid, "query": queries[qid]} for qid, _, _ in dev])
    with open(target / "sample_qrels.tsv", "w", encoding="utf-8") as handle:
        handle.writelines(f"{qid}\t{doc}\t{rel}\n" for qid, doc, rel in dev)
    with open(target / "demo_queries.txt", "w", encoding="utf-8") as handle:
        handle.writelines(queries[qid] + "\n" for qid, _, _ in dev[:DEMO_QUERIES])


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
