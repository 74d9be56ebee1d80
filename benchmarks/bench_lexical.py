"""Lexical analysis: the embedded BM25 beside bm25s on debdesc-dev, in one run.

    .venv/bin/python benchmarks/bench_lexical.py       # needs ../shared/data/debdesc-dev and `pip install bm25s`

Every ranking is BM25 (k1 1.2, b 0.75, Lucene's idf) over the same 63,436 documents (title + text, as
the index reads them) for the 1,188 dev queries, top 10, nDCG@10 by ir-measures:
- `embedded`: the index's own BM25 (indexer/lexical.py) with each analyzer (indexer/analysis.py);
- `bm25s, same analysis`: bm25s (Lù 2024) indexing the same terms as `embedded english` (a check that the
  two BM25 implementations agree once analysis is equal);
- `bm25s, own pipeline`: what a bm25s user writes: `bm25s.tokenize(stopwords="en", stemmer=PyStemmer
  english)` (its regex keeps words of 2+ word characters).
Writes benchmarks/out/lexical.md and lexical.json.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.analysis import ANALYZERS, analyzer  # noqa: E402
from indexer.documents import document_text  # noqa: E402
from indexer.lexical import Bm25Index, build_bm25  # noqa: E402

DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
OUT = ROOT / "benchmarks" / "out"
K = 10


def ndcg(run: dict[str, list[tuple[str, float]]], qrels_path: Path) -> float:
    import ir_measures
    from ir_measures import nDCG

    qrels = [ir_measures.Qrel(q, d, int(r)) for q, d, r in
             (line.split("\t")[:3] for line in qrels_path.read_text().splitlines() if line.strip())]
    scored = [ir_measures.ScoredDoc(qid, doc, score) for qid, hits in run.items() for doc, score in hits]
    return ir_measures.calc_aggregate([nDCG @ 10], qrels, scored)[nDCG @ 10]


def embedded_run(texts, ids, queries, name: str) -> tuple[dict, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        params = build_bm25(texts, Path(directory), analyzer(name))
        index = Bm25Index.open(Path(directory), params["documents"], analyzer(name))
        run = {}
        for qid, query in queries:
            rows, scores = index.search(query, K)
            order = sorted(zip(scores.tolist(), rows.tolist()), key=lambda pair: (-pair[0], ids[pair[1]]))[:K]
            run[qid] = [(ids[row], score) for score, row in order]
    return run, time.perf_counter() - start


def bm25s_run(corpus_tokens, query_tokens, ids, queries) -> tuple[dict, float]:
    import bm25s

    start = time.perf_counter()
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index(corpus_tokens, show_progress=False)
    results, scores = retriever.retrieve(query_tokens, k=K, show_progress=False, n_threads=1)
    run = {qid: [(ids[row], float(score)) for row, score in zip(rows, row_scores) if score > 0]
           for (qid, _), rows, row_scores in zip(queries, results, scores)}
    return run, time.perf_counter() - start


def tokenized(term_lists, vocabulary):
    import bm25s

    return bm25s.tokenization.Tokenized(
        ids=[[vocabulary.setdefault(term, len(vocabulary)) for term in terms] for terms in term_lists],
        vocab=vocabulary)


def main() -> None:
    import bm25s
    import Stemmer

    documents = [json.loads(line) for line in (DEBDESC / "corpus.jsonl").open(encoding="utf-8")]
    ids = [doc["id"] for doc in documents]
    texts = [document_text(doc.get("title", ""), doc["text"]) for doc in documents]
    queries = [(q["qid"], q["query"]) for q in map(json.loads, (DEBDESC / "dev_queries.jsonl").open())]
    qrels = DEBDESC / "qrels_dev.tsv"
    rows = []
    for name in sorted(ANALYZERS, key=lambda n: n != "simple"):
        if name == "russian":
            continue  # English corpus
        run, seconds = embedded_run(texts, ids, queries, name)
        rows.append((f"embedded (indexer/lexical.py), analyzer `{name}`", ndcg(run, qrels), seconds))
        print(rows[-1], flush=True)
    english = analyzer("english")
    vocabulary: dict[str, int] = {}
    corpus_tokens = tokenized([english.analyze(text) for text in texts], vocabulary)
    query_terms = [[t for t in english.analyze(query) if t in vocabulary] for _, query in queries]
    query_tokens = bm25s.tokenization.Tokenized(ids=[[vocabulary[t] for t in terms] or [0] for terms in query_terms],
                                                vocab=vocabulary)
    run, seconds = bm25s_run(corpus_tokens, query_tokens, ids, queries)
    run = {qid: hits if terms else [] for (qid, hits), terms in zip(run.items(), query_terms)}
    rows.append(("bm25s, same analysis as `english`", ndcg(run, qrels), seconds))
    print(rows[-1], flush=True)
    stemmer = Stemmer.Stemmer("english")
    start = time.perf_counter()
    corpus_tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize([q for _, q in queries], stopwords="en", stemmer=stemmer, show_progress=False)
    results, scores = retriever.retrieve(query_tokens, k=K, show_progress=False, n_threads=1)
    run = {qid: [(ids[r], float(s)) for r, s in zip(rs, ss) if s > 0] for (qid, _), rs, ss in zip(queries, results, scores)}
    rows.append(("bm25s, own pipeline (its tokeniser, `en` stop words, PyStemmer english)", ndcg(run, qrels),
                 time.perf_counter() - start))
    print(rows[-1], flush=True)
    write(rows, bm25s.__version__, Stemmer.version())


def write(rows, bm25s_version: str, stemmer_version: str) -> None:
    date = time.strftime("%Y-%m-%d")
    lines = [f"BM25 (k1 1.2, b 0.75, Lucene idf) on debdesc-dev: 63,436 documents (title + text), 1,188 dev queries, "
             f"nDCG@10 by ir-measures. Measured {date}, one run, `.venv/bin/python benchmarks/bench_lexical.py` "
             f"(bm25s {bm25s_version}, PyStemmer {stemmer_version}). Seconds: index + all queries, one process.", "",
             "| BM25 | nDCG@10 | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {score:.4f} | {seconds:.1f} |" for name, score, seconds in rows]
    lines += ["", "The goal (issue 15): the embedded lexical side >= bm25s with Snowball + stop words. `english` "
              "is the default of `dssm index build --analyzer`; `simple` is what every index used before."]
    (OUT / "lexical.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / "lexical.json").write_text(json.dumps({"date": date, "rows": [
        {"name": n, "ndcg@10": s, "seconds": t} for n, s, t in rows]}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
