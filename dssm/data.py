"""Training data: corpus and pair readers with file:line errors, featurised arrays, tf.data batches.

Inputs: pairs as JSONL `{"query", "doc_id"}` with a JSONL corpus `{"id", "title", "text"}`, or pairs as
TSV `query<TAB>document` (the documents then come from the pairs file). Texts are featurised once,
vectorised, into padded id arrays; tf.data then only gathers rows per batch.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dssm.featurise import Featuriser, document_text, normalise


@dataclass
class ReadStats:
    """What a reader replaced or skipped, reported to the user rather than hidden."""

    lines: int = 0
    replaced_bytes_lines: int = 0          # lines with invalid UTF-8 (bytes replaced by U+FFFD)
    missing_doc_ids: list[str] = field(default_factory=list)


def read_lines(path: str | Path, stats: ReadStats) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; invalid UTF-8 is replaced and counted."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; check the path")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("utf-8", errors="replace")
                stats.replaced_bytes_lines += 1
            if line.strip():
                stats.lines += 1
                yield number, line.rstrip("\r\n")


def read_jsonl(path: str | Path, stats: ReadStats, required: tuple[str, ...]) -> Iterator[dict]:
    for number, line in read_lines(path, stats):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: malformed JSON ({error.msg}); fix or remove the line") from None
        if not isinstance(record, dict) or any(key not in record for key in required):
            raise ValueError(f"{path}:{number}: expected an object with keys {list(required)}")
        yield record


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]                 # document_text(title, text)
    index: dict[str, int]

    @classmethod
    def from_records(cls, records: Iterator[tuple[str, str]]) -> "Corpus":
        ids, texts, index = [], [], {}
        for doc_id, text in records:
            if doc_id in index:
                texts[index[doc_id]] = text          # the last record of a duplicated id wins
                continue
            index[doc_id] = len(ids)
            ids.append(doc_id)
            texts.append(text)
        return cls(ids, texts, index)


def load_corpus(path: str | Path, stats: ReadStats | None = None) -> Corpus:
    stats = stats or ReadStats()
    records = ((str(r["id"]), document_text(r.get("title"), r.get("text")))
               for r in read_jsonl(path, stats, ("id",)))
    corpus = Corpus.from_records(records)
    if not corpus.ids:
        raise ValueError(f"{path}: the corpus is empty; give a JSONL file of {{\"id\",\"title\",\"text\"}}")
    return corpus


@dataclass
class Pairs:
    queries: list[str]
    doc_index: np.ndarray            # int32 [pairs]: row of the positive document in the corpus


def load_pairs(path: str | Path, corpus: Corpus | None, skip_missing: bool = False,
               stats: ReadStats | None = None) -> tuple[Pairs, Corpus]:
    """Read JSONL pairs against `corpus`, or TSV `query<TAB>document` pairs (corpus from the file)."""
    stats = stats or ReadStats()
    if str(path).endswith((".tsv", ".txt")):
        return _load_tsv_pairs(path, stats)
    if corpus is None:
        raise ValueError("JSONL pairs name documents by doc_id: pass --corpus, or give TSV query<TAB>document pairs")
    queries, rows = [], []
    for record in read_jsonl(path, stats, ("query", "doc_id")):
        row = corpus.index.get(str(record["doc_id"]))
        if row is None:
            stats.missing_doc_ids.append(str(record["doc_id"]))
            continue
        queries.append(str(record["query"]))
        rows.append(row)
    missing = stats.missing_doc_ids
    if missing and not skip_missing:
        raise ValueError(f"{path}: {len(missing)} pairs name doc ids missing from the corpus "
                         f"(first: {', '.join(missing[:5])}); fix the corpus or pass --skip-missing")
    if not queries:
        raise ValueError(f"{path}: no usable pairs; give JSONL {{\"query\",\"doc_id\"}} lines")
    return Pairs(queries, np.asarray(rows, dtype=np.int32)), corpus


def _load_tsv_pairs(path, stats: ReadStats) -> tuple[Pairs, Corpus]:
    queries, documents = [], []
    for number, line in read_lines(path, stats):
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'query<TAB>document', found {len(parts)} fields")
        queries.append(parts[0])
        documents.append(parts[1])
    if not queries:
        raise ValueError(f"{path}: no usable pairs; give 'query<TAB>document' lines")
    unique = list(dict.fromkeys(documents))
    corpus = Corpus.from_records((f"doc-{n}", text) for n, text in enumerate(unique))
    row_of = {text: n for n, text in enumerate(unique)}
    return Pairs(queries, np.asarray([row_of[d] for d in documents], dtype=np.int32)), corpus


def split_validation(pairs: Pairs, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of the pairs, split by document so validation docs are unseen."""
    docs = np.unique(pairs.doc_index)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(docs, size=int(round(len(docs) * fraction)), replace=False).tolist()) if fraction else set()
    is_val = np.fromiter((row in held for row in pairs.doc_index.tolist()), dtype=bool, count=len(pairs.doc_index))
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def query_keys(queries: list[str]) -> np.ndarray:
    """int32 [pairs]: equal for queries equal after normalisation (their documents are all positives)."""
    seen: dict[str, int] = {}
    return np.asarray([seen.setdefault(normalise(q).strip(), len(seen)) for q in queries], dtype=np.int32)


def padded_to_csr(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned padded ids [n, length] -> CSR (ids, offsets) for `Encoder.encode_ids`."""
    present = ids > 0
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    return ids[present].astype(np.int32), offsets


@dataclass
class TrainingArrays:
    """Everything tf.data needs, featurised once."""

    documents: np.ndarray            # int32 [docs, length]
    queries: np.ndarray              # int32 [pairs, query_length]
    doc_index: np.ndarray            # int32 [pairs]
    query_keys: np.ndarray           # int32 [pairs]


def featurise_training(featuriser: Featuriser, pairs: Pairs, corpus: Corpus) -> TrainingArrays:
    length = featuriser.config.max_features
    return TrainingArrays(documents=featuriser.padded(corpus.texts, length),
                          queries=featuriser.padded(pairs.queries),
                          doc_index=pairs.doc_index, query_keys=query_keys(pairs.queries))


def make_dataset(arrays: TrainingArrays, rows: np.ndarray, batch_size: int, seed: int,
                 shuffle: bool = True, mined: np.ndarray | None = None):
    """tf.data of training batches: dict(query, pos, query_key, doc_key[, neg, neg_key]).

    mined: int32 [pairs, depth] BM25-mined negative documents (-1 = none); one is drawn per pair.
    """
    import tensorflow as tf

    documents = tf.constant(arrays.documents)
    queries = tf.constant(arrays.queries[rows])
    doc_index = tf.constant(arrays.doc_index[rows])
    keys = tf.constant(arrays.query_keys[rows])
    mined_t = tf.constant(mined[rows]) if mined is not None else None

    def trim(ids):
        width = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)), 1)
        return ids[:, :width]

    def gather(batch_rows):
        doc = tf.gather(doc_index, batch_rows)
        out = {"query": trim(tf.gather(queries, batch_rows)), "pos": trim(tf.gather(documents, doc)),
               "query_key": tf.gather(keys, batch_rows), "doc_key": doc}
        if mined_t is not None:
            options = tf.gather(mined_t, batch_rows)                              # [batch, depth]
            valid = tf.maximum(tf.reduce_sum(tf.cast(options >= 0, tf.int32), axis=1), 1)
            pick = tf.cast(tf.random.uniform(tf.shape(valid)) * tf.cast(valid, tf.float32), tf.int32)
            neg = tf.maximum(tf.gather(options, pick, batch_dims=1), 0)
            out["neg"] = trim(tf.gather(documents, neg))
            out["neg_key"] = neg
        return out

    dataset = tf.data.Dataset.range(len(rows))
    if shuffle:
        dataset = dataset.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=len(rows) >= batch_size)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
