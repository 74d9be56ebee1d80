"""Training data: corpus and pair readers with file:line errors, featurised arrays, tf.data batches.

Inputs: pairs as JSONL `{"query", "doc_id"}` with a JSONL corpus `{"id", "title", "text"}`, or pairs as
TSV `query<TAB>document` (the documents then come from the pairs file). Texts are featurised once,
vectorised, into padded id arrays; tf.data then only gathers rows per batch.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dssm.featurise import Featuriser, document_text, normalise, passage_texts


@dataclass
class ReadStats:
    """What a reader replaced or skipped, reported to the user rather than hidden."""

    lines: int = 0
    replaced_bytes_lines: int = 0          # lines with invalid UTF-8 (bytes replaced by U+FFFD)
    missing_doc_ids: list[str] = field(default_factory=list)


_WARNED: set[tuple[str, int]] = set()   # (path, mtime) already warned about, so each file warns once


def decoded_lines(path: Path, stats: ReadStats | None = None) -> Iterator[str]:
    """The file's lines (endings kept) as text; invalid UTF-8 is replaced by U+FFFD, counted in `stats`,
    and reported once per file on stderr, never a bare codec error."""
    replaced = 0
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                replaced += 1
                if stats is not None:
                    stats.replaced_bytes_lines += 1
                yield raw.decode("utf-8", errors="replace")
    key = (str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
    if replaced and key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {path}: {replaced} lines had invalid UTF-8; the bytes were replaced by U+FFFD",
              file=sys.stderr)


def read_lines(path: str | Path, stats: ReadStats) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; invalid UTF-8 is replaced, counted and reported."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; check the path")
    for number, line in enumerate(decoded_lines(path, stats), start=1):
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
    titles: list[str] | None = None  # the parts of each text, when read from a JSONL corpus
    bodies: list[str] | None = None

    def parts(self) -> tuple[list[str], list[str]]:
        """(titles, bodies): each text's parts, or no title and the whole text when they are unknown."""
        return self.titles or [""] * len(self.ids), self.bodies or self.texts

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
    parts: dict[str, tuple[str, str]] = {}
    records = []
    for record in read_jsonl(path, stats, ("id",)):
        doc_id, title, body = str(record["id"]), str(record.get("title") or ""), str(record.get("text") or "")
        parts[doc_id] = (title, body)                # the last record of a duplicated id wins, as below
        records.append((doc_id, document_text(title, body)))
    corpus = Corpus.from_records(iter(records))
    if not corpus.ids:
        raise ValueError(f"{path}: the corpus is empty; give a JSONL file of {{\"id\",\"title\",\"text\"}}")
    corpus.titles = [parts[doc_id][0] for doc_id in corpus.ids]
    corpus.bodies = [parts[doc_id][1] for doc_id in corpus.ids]
    return corpus


def add_pseudo_pairs(pairs: Pairs | None, corpus: Corpus, kinds: tuple[str, ...],
                     seed: int, documents: int | None = None) -> tuple[Pairs, np.ndarray]:
    """The pairs plus (pseudo-query, document) pairs cut from every corpus document (dssm/pseudo.py),
    or from the first `documents` only; returns (pairs, rows of the pseudo pairs)."""
    from dssm.pseudo import corpus_pseudo_pairs

    pairs = pairs or Pairs([], np.zeros(0, dtype=np.int32))
    documents = len(corpus.ids) if documents is None else documents
    titles, bodies = corpus.parts()
    found = list(corpus_pseudo_pairs(zip(corpus.ids[:documents], titles, bodies), kinds, seed))
    queries = pairs.queries + [query for query, _ in found]
    rows = np.concatenate([pairs.doc_index, np.asarray([row for _, row in found], dtype=np.int32)])
    return Pairs(queries, rows.astype(np.int32)), np.arange(len(pairs.queries), len(queries))


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


def add_passage_pairs(pairs: Pairs, corpus: Corpus, count: int, window: int) -> tuple[Pairs, Corpus, np.ndarray, np.ndarray]:
    """Each labelled pair also trains against its document's first `count` passages: windows of
    `window` words every window/2 words after the title (dssm.featurise.passage_texts), what
    `dssm index build --passages` encodes beside each document and search scores by MaxP. The passages
    join the corpus as documents `ID#pN`; a pair's query keeps one key, so its document and passages
    are all its positives (never one another's in-batch negatives).
    Returns (pairs, corpus, rows of the passage pairs, the source document row of each)."""
    ids, texts, index = list(corpus.ids), list(corpus.texts), dict(corpus.index)
    titles, bodies = corpus.parts()
    rows_of: dict[int, list[int]] = {}
    for doc in np.unique(pairs.doc_index).tolist():
        rows_of[doc] = []
        for number, passage in enumerate(passage_texts(titles[doc], bodies[doc], window, max(window // 2, 1), count)):
            rows_of[doc].append(len(ids))
            index[f"{ids[doc]}#p{number}"] = len(ids)
            ids.append(f"{ids[doc]}#p{number}")
            texts.append(passage)
    queries, positives, sources = list(pairs.queries), [pairs.doc_index], []
    for query, doc in zip(pairs.queries, pairs.doc_index.tolist()):
        queries += [query] * len(rows_of[doc])
        positives.append(np.asarray(rows_of[doc], dtype=np.int32))
        sources += [doc] * len(rows_of[doc])
    added = np.arange(len(pairs.queries), len(queries))
    return (Pairs(queries, np.concatenate(positives).astype(np.int32)), Corpus(ids, texts, index, corpus.titles, corpus.bodies),
            added, np.asarray(sources, dtype=np.int64))


def split_validation(pairs: Pairs, fraction: float, seed: int, rows: np.ndarray | None = None,
                     groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) among `rows` (default: all pairs), split by document so
    validation documents are unseen, or by the given per-pair `groups` (tagging: the query keys, as
    tags are shared by many texts)."""
    rows = np.arange(len(pairs.queries)) if rows is None else rows
    groups = (pairs.doc_index if groups is None else groups)[rows]
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    held = rng.choice(unique, size=int(round(len(unique) * fraction)), replace=False) if fraction else []
    is_val = np.isin(groups, held)
    return rows[~is_val], rows[is_val]


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


MAX_POSITIVES = 32                   # positives per query kept for masking in-batch false negatives


@dataclass
class TrainingArrays:
    """Everything tf.data needs, featurised once."""

    documents: np.ndarray            # int32 [docs, length]
    queries: np.ndarray              # int32 [distinct queries, query_length]
    doc_index: np.ndarray            # int32 [pairs]
    query_keys: np.ndarray           # int32 [pairs]: row of the pair's query in `queries`
    positive_sets: np.ndarray        # int32 [distinct queries, <= MAX_POSITIVES]: its documents, -1 pads
    teacher_queries: np.ndarray | None = None   # float32 [distinct queries, d]: a teacher's unit vectors
    teacher_documents: np.ndarray | None = None  # float32 [docs, d]

    def pair_queries(self, rows: np.ndarray) -> np.ndarray:
        return self.queries[self.query_keys[rows]]


def featurise_training(featuriser: Featuriser, pairs: Pairs, corpus: Corpus) -> TrainingArrays:
    keys = query_keys(pairs.queries)
    first = np.unique(keys, return_index=True)[1]                 # keys are numbered in order of first use
    positives: list[list[int]] = [[] for _ in first]
    for key, doc in zip(keys.tolist(), pairs.doc_index.tolist()):
        if len(positives[key]) < MAX_POSITIVES and doc not in positives[key]:
            positives[key].append(doc)
    width = max(len(p) for p in positives)
    positive_sets = np.full((len(positives), width), -1, dtype=np.int32)
    for key, docs in enumerate(positives):
        positive_sets[key, :len(docs)] = docs
    return TrainingArrays(documents=featuriser.padded(corpus.texts, featuriser.config.max_features),
                          queries=featuriser.padded([pairs.queries[i] for i in first.tolist()]),
                          doc_index=pairs.doc_index, query_keys=keys, positive_sets=positive_sets)


def add_tag_pairs(pairs: Pairs | None, corpus: Corpus | None, tagged) -> tuple[Pairs, Corpus, np.ndarray]:
    """Search pairs plus one (text, tag) pair per tag of each tagged text, tags joining the corpus as
    documents (one tower, several pair types). Returns (pairs, corpus, rows of the tag pairs)."""
    pairs = pairs or Pairs([], np.zeros(0, dtype=np.int32))
    corpus = corpus or Corpus([], [], {})
    tag_row = {}
    ids, texts, index = list(corpus.ids), list(corpus.texts), dict(corpus.index)
    for tag in tagged.vocabulary():
        tag_row[tag] = index[f"tag:{tag}"] = len(ids)
        ids.append(f"tag:{tag}")
        texts.append(tag)
    queries = list(pairs.queries)
    rows = list(pairs.doc_index.tolist())
    for text, tags in zip(tagged.texts, tagged.tags):
        for tag in tags:
            queries.append(text)
            rows.append(tag_row[tag])
    tag_rows = np.arange(len(pairs.queries), len(queries))
    return Pairs(queries, np.asarray(rows, dtype=np.int32)), Corpus(ids, texts, index), tag_rows


def known_positives(sets, columns):
    """bool [rows, columns]: columns[j] is in sets[i] (int [rows, width], -1 pads).

    Matches each set entry (about 1.4 a row) against the columns, not every padded cell: the dense
    [rows, width, columns] comparison took 4 ms of a 26 ms CPU training step (batch 512, width 32)."""
    import tensorflow as tf

    sets, columns = tf.convert_to_tensor(sets, tf.int32), tf.convert_to_tensor(columns, tf.int32)
    entries = tf.where(sets >= 0)                                              # [(row, slot)]
    hits = tf.where(tf.equal(tf.gather_nd(sets, entries)[:, None], columns[None, :]))   # [(entry, column)]
    cells = tf.stack([tf.gather(entries[:, 0], hits[:, 0]), hits[:, 1]], axis=1)
    shape = tf.cast(tf.stack([tf.shape(sets)[0], tf.shape(columns)[0]]), tf.int64)
    return tf.scatter_nd(cells, tf.ones(tf.shape(cells)[:1], tf.int32), shape) > 0


def make_dataset(arrays: TrainingArrays, rows: np.ndarray, batch_size: int, seed: int,
                 shuffle: bool = True, mined: np.ndarray | None = None, kinds: np.ndarray | None = None):
    """tf.data of training batches: dict(query, pos, query_key, doc_key, known_positives[, neg, neg_key]).

    known_positives: bool [batch, columns]: the column's document (pos, then neg) is another positive
    of the row's query (its own document is the model's doc_key match), masked as an in-batch negative.

    mined: int32 [pairs, depth] BM25-mined negative documents (-1 = none); one is drawn per pair.
    kinds: int [len(rows)] pair type (search 0, tag 1): a batch holds one type only, so a text's
    negatives are other tags, never documents (among them its own text), and batches of both types
    are interleaved at random in proportion to their numbers.

    The pipeline runs beside the training step on the same cores, so its work is kept small: id widths
    trimmed by lengths counted once, positives matched entry by entry.
    """
    import tensorflow as tf

    documents = tf.constant(arrays.documents)
    queries = tf.constant(arrays.queries)
    document_lengths = tf.constant(np.count_nonzero(arrays.documents, axis=1).astype(np.int32))
    query_lengths = tf.constant(np.count_nonzero(arrays.queries, axis=1).astype(np.int32))
    positive_sets = tf.constant(arrays.positive_sets)
    doc_index = tf.constant(arrays.doc_index[rows])
    keys = tf.constant(arrays.query_keys[rows])
    mined_t = tf.constant(mined[rows]) if mined is not None else None
    teacher = None if arrays.teacher_queries is None else (tf.constant(arrays.teacher_queries),
                                                           tf.constant(arrays.teacher_documents))

    def take(table, lengths, index):
        """table[index], cut to the longest row's ids (at least 1 column)."""
        width = tf.maximum(tf.reduce_max(tf.gather(lengths, index)), 1)
        return tf.gather(table, index)[:, :width]

    def gather(batch_rows, kind):
        doc, key = tf.gather(doc_index, batch_rows), tf.gather(keys, batch_rows)
        out = {"query": take(queries, query_lengths, key), "pos": take(documents, document_lengths, doc),
               "query_key": key, "doc_key": doc, "kind": kind}
        if teacher is not None:
            out["teacher_query"], out["teacher_pos"] = tf.gather(teacher[0], key), tf.gather(teacher[1], doc)
        columns = doc
        if mined_t is not None:
            options = tf.gather(mined_t, batch_rows)                              # [batch, depth]
            valid = tf.maximum(tf.reduce_sum(tf.cast(options >= 0, tf.int32), axis=1), 1)
            pick = tf.cast(tf.random.uniform(tf.shape(valid)) * tf.cast(valid, tf.float32), tf.int32)
            neg = tf.maximum(tf.gather(options, pick, batch_dims=1), 0)
            out["neg"] = take(documents, document_lengths, neg)
            out["neg_key"] = neg
            columns = tf.concat([doc, neg], axis=0)
            if teacher is not None:
                out["teacher_neg"] = tf.gather(teacher[1], neg)
        others = tf.gather(positive_sets, key)
        out["known_positives"] = known_positives(tf.where(others == doc[:, None], -1, others), columns)
        return out

    def batches(positions: np.ndarray, kind: int):
        dataset = tf.data.Dataset.from_tensor_slices(positions.astype(np.int64))
        if shuffle:
            dataset = dataset.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=len(positions) >= batch_size)
        return dataset.map(lambda batch_rows: (batch_rows, tf.constant(kind, tf.int32)))

    kinds = np.zeros(len(rows), dtype=np.int64) if kinds is None else np.asarray(kinds)
    present = np.unique(kinds).tolist()
    groups = [np.flatnonzero(kinds == kind) for kind in present]
    parts = [batches(group, kind) for group, kind in zip(groups, present)]
    if len(parts) == 1:
        dataset = parts[0]
    elif shuffle:
        sizes = np.array([max(len(group) // batch_size, 1) for group in groups], dtype=np.float64)
        dataset = tf.data.Dataset.sample_from_datasets(parts, weights=list(sizes / sizes.sum()), seed=seed,
                                                       stop_on_empty_dataset=False)
    else:
        dataset = parts[0]
        for part in parts[1:]:
            dataset = dataset.concatenate(part)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
