"""Passage vectors for the embedded index: a document scores its best passage (MaxP, Dai & Callan 2019).

One DSSM vector per document averages all of its ~280 trigram ids, and long documents blur: on the
debdesc dev queries the DSSM alone beats BM25 on documents under 200 characters and loses by 0.1
nDCG@10 above 400 (BENCHMARKS.md). With `dssm index build --passages W:S` each document is also
encoded as windows of W words every S words of its text (the last window ends at the text's end),
each after the document's title, and its semantic score is the best cosine of the query with its
whole vector or any of its passages. `--passages W:S:N` keeps the first N windows of each document
only: on debdesc-dev the first two 12:6 windows score better than all of them (a document's opening
says what it is about; more windows give long documents more chances to match by accident) at a
third of the vectors (BENCHMARKS.md).

```
passages.f32       float32 [passages, dim], in document row order
passage_rows.i32   int32 [passages]: the row (vectors.f32, ids.json) of each passage's document
```
Elasticsearch keeps them as a nested field and ranks by the best one (indexer/es_index.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dssm.featurise import passage_texts  # noqa: F401 - the windows are the model's (training uses them too)
from indexer.manifest import damaged
from indexer.vectors import DTYPE, VectorWriter, check_unit, open_vectors

PASSAGES_FILE = "passages.f32"
PASSAGE_ROWS_FILE = "passage_rows.i32"
PASSAGE_FILES = [PASSAGES_FILE, PASSAGE_ROWS_FILE]
ROW_DTYPE = np.dtype("<i4")
BEST_BLOCK = 16384   # passages scored at once by best_among (16 MB of float64 rows at 128 dims)


DEFAULT_PASSAGES = "12:6:2"   # `dssm index build`'s default: chosen on the tuning half of debdesc-dev (BENCHMARKS.md)


def parse_passages(spec: str | None) -> dict | None:
    """`"W:S"` -> {"window": W, "stride": S}; `"W:S:N"` also {"limit": N}; None or "none" -> None (one
    vector per document)."""
    if spec is None or spec.strip().lower() == "none":
        return None
    try:
        window, stride, *limit = (int(part) for part in spec.split(":"))
    except ValueError:
        window = stride = 0
        limit = []
    if not 1 <= stride <= window or len(limit) > 1 or (limit and limit[0] < 1):
        raise ValueError(f"--passages must be W:S or W:S:N, windows of W words every S words (1 <= S <= W), "
                         f"at most N >= 1 of them per document (e.g. 12:6:2), or none; got {spec!r}")
    return {"window": window, "stride": stride, **({"limit": limit[0]} if limit else {})}


def passage_config(config: dict) -> dict:
    """The keys of an index's passage section (manifest, Elasticsearch _meta) that define its passages."""
    return {key: config[key] for key in ("window", "stride", "limit") if key in config}


def encode_passages(documents, encoder, config: dict, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The passages of `documents` (`.title`, `.text`) through the document tower: (passages per
    document int64 [n], vectors float32 [sum, dim], in document order)."""
    pieces = [passage_texts(doc.title, doc.text, **passage_config(config)) for doc in documents]
    texts = [piece for doc in pieces for piece in doc]
    vectors = (encoder.encode(texts, side="document", batch_size=batch_size) if texts
               else np.zeros((0, encoder.dim), dtype=np.float32))          # short texts only: nothing to encode
    return np.array([len(doc) for doc in pieces], dtype=np.int64), vectors


class PassageWriter:
    """Appends passage vectors and their document rows beside a vector file."""

    def __init__(self, directory: Path, dim: int, config: dict) -> None:
        self.vectors = VectorWriter(directory / PASSAGES_FILE, dim)
        self.rows = open(directory / PASSAGE_ROWS_FILE, "ab")
        self.config = passage_config(config)
        self.count = 0

    def encode(self, first_row: int, documents: list, encoder, batch_size: int) -> None:
        """Encode the passages of `documents`, whose rows are first_row, first_row + 1, ..."""
        counts, vectors = encode_passages(documents, encoder, self.config, batch_size)
        self.append(np.repeat(np.arange(first_row, first_row + len(documents)), counts), vectors)

    def append(self, rows, vectors: np.ndarray) -> None:
        self.vectors.append([""] * len(rows), vectors)
        self.rows.write(np.asarray(rows, dtype=ROW_DTYPE).tobytes())
        self.count += len(rows)

    def close(self) -> None:
        self.vectors.close()
        self.rows.close()


class Passages:
    """The passage vectors of an index, opened for search."""

    def __init__(self, directory: Path, count: int, dim: int) -> None:
        self.vectors = open_vectors(directory / PASSAGES_FILE, count, dim)
        self.rows = read_rows(directory / PASSAGE_ROWS_FILE, count)
        self.firsts = np.flatnonzero(np.r_[True, self.rows[1:] != self.rows[:-1]]) if count else np.zeros(0, int)
        self.owners = self.rows[self.firsts]                   # the documents that have passages

    def __len__(self) -> int:
        return len(self.rows)

    def check_rows(self, documents: int, directory: Path) -> None:
        """Refuse passage rows outside the `documents` rows, or out of order (spans need them sorted)."""
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= documents or np.any(np.diff(self.rows) < 0)):
            raise damaged(directory, PASSAGE_ROWS_FILE, f"holds document rows out of range [0, {documents}) "
                                                        f"or out of order")

    def check_unit(self, rows: np.ndarray, directory: Path) -> None:
        """Refuse passage vectors of the documents `rows` whose norm is neither 1 nor 0."""
        begin, end = self.spans(np.asarray(rows, dtype=np.int64))
        lengths = end - begin
        if lengths.sum():
            items = np.repeat(begin - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(int(lengths.sum()))
            check_unit(self.vectors[items], items, directory, PASSAGES_FILE, "passage")

    def best(self, scores: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Document scores [rows] raised to each document's best passage cosine (float32 products)."""
        if not len(self.rows):
            return scores
        cosines = self.vectors @ vector.astype(DTYPE)
        scores = scores.copy()
        scores[self.owners] = np.maximum(scores[self.owners], np.maximum.reduceat(cosines, self.firsts))
        return scores

    def item_rows(self, items, documents: int) -> np.ndarray:
        """Annoy items (the `documents` rows first, then the passages numbered after them) -> the
        document row of each."""
        items = np.asarray(items, dtype=np.int64)
        return np.where(items < documents, items, self.rows[np.maximum(items - documents, 0)])

    def spans(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(begin, end) [len(rows)]: the passages of document rows[i] are begin[i]:end[i]."""
        return np.searchsorted(self.rows, rows, "left"), np.searchsorted(self.rows, rows, "right")

    def span(self, row: int) -> tuple[int, int]:
        begin, end = self.spans(np.array([row]))
        return int(begin[0]), int(end[0])

    def best_among(self, rows: np.ndarray, scores: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """`scores` [len(rows)] of the documents `rows` raised to their best passage cosine, in float64."""
        begin, end = self.spans(rows)
        scores = np.array(scores, dtype=np.float64)
        vector = vector.astype(np.float64)
        documents = np.flatnonzero(end > begin)
        blocks = -(-int((end - begin).sum()) // BEST_BLOCK)              # about BEST_BLOCK passages each
        for block in np.array_split(documents, max(blocks, 1)):
            if not len(block):
                continue
            lengths, firsts = end[block] - begin[block], begin[block]
            offsets = np.r_[0, np.cumsum(lengths)[:-1]]                  # where each document's run starts
            items = np.repeat(firsts - offsets, lengths) + np.arange(int(lengths.sum()))   # all their passages
            cosines = np.asarray(self.vectors[items], dtype=np.float64) @ vector
            scores[block] = np.maximum(scores[block], np.maximum.reduceat(cosines, offsets))
        return scores


def open_passages(directory: Path, manifest: dict) -> Passages | None:
    """The passages of the index in `directory` as its manifest describes them; None without passages."""
    if "passages" not in manifest:
        return None
    return Passages(directory, manifest["passages"]["count"], manifest["model"]["dim"])


def read_rows(path: Path, count: int) -> np.ndarray:
    expected = count * ROW_DTYPE.itemsize
    if not path.is_file() or path.stat().st_size != expected:
        raise ValueError(f"{path} is missing or has the wrong size (expected {expected} bytes for {count} passages); "
                         f"the index is damaged: rebuild it with `dssm index build`")
    return np.fromfile(path, dtype=ROW_DTYPE).astype(np.int64)


def copy_passages(directory: Path, manifest: dict, kept: np.ndarray, writer: PassageWriter) -> None:
    """Copy the passages of the kept document rows (old rows, sorted) into `writer`, renumbered to the
    kept documents' new rows (their positions in `kept`)."""
    old = open_passages(directory, manifest)
    new_row = np.full(manifest["counts"]["documents"], -1, dtype=np.int64)
    new_row[kept] = np.arange(len(kept))
    keep = np.flatnonzero(new_row[old.rows] >= 0)
    for start in range(0, len(keep), 65536):
        chosen = keep[start:start + 65536]
        writer.append(new_row[old.rows[chosen]], np.asarray(old.vectors[chosen]))


class Stacked:
    """Document vectors then passage vectors, as one `[rows + passages, dim]` array for Annoy's build
    (only `len`, `shape` and row slices), without copying either file."""

    def __init__(self, first: np.ndarray, second: np.ndarray) -> None:
        self.first, self.second = first, second
        self.shape = (len(first) + len(second), first.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, block: slice) -> np.ndarray:
        start, stop = block.start or 0, min(block.stop, self.shape[0])
        split = len(self.first)
        parts = [self.first[start:min(stop, split)], self.second[max(start - split, 0):max(stop - split, 0)]]
        return np.concatenate([np.asarray(part) for part in parts if len(part)]) if stop > start else self.first[:0]
