"""The embedded index opened for search: BM25 + Annoy + vector file + document store, one directory.

`EmbeddedIndex` is a backend for `indexer.query.HybridSearcher`, with the same two retrieval methods as
the Elasticsearch backend (`indexer/es_index.py`): `lexical(query, k, filter) -> Hits` and
`semantic(vector, k, num_candidates, filter) -> Hits`.

Built with passages (`--passages W:S[:N]`, 12:6:2 by default; indexer/passages.py), a document's
semantic score is the best cosine of the query with its whole vector or any of its passages (MaxP),
exact or through Annoy alike.

Opening resolves the index's current generation once and reads every file from it (indexer/build.py),
after checking the whole of every file (`verify`: "quick", the default, hashes each file once per file
identity, indexer/manifest.py; "full" hashes every time), so a search never mixes two versions of an
index being updated, and a damaged file is refused before Annoy can crash on it. What search reads is
bounds-checked too (Annoy items, BM25 rows, passage rows, unit norms of the vectors behind every
semantic hit): a failure is a `DamagedIndexError` naming the file, never a wrong hit.

Its only filter is `indexer.tags.TagFilter` (`dssm search --tag`): documents carrying every given tag
(stored by `index build --with-tags`). Both sides then score just those documents: BM25 restricted to
their rows, and the semantic side exactly (their stored vectors), so a filter never loses hits to Annoy.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from indexer.annoy_index import ANNOY_FILE, AnnoySearcher
from indexer.build import STORE_FILE
from indexer.hits import Hits
from indexer.analysis import index_analyzer
from indexer.lexical import Bm25Index
from indexer.manifest import damaged, generation_dir, read_manifest, verify_files
from indexer.passages import PASSAGES_FILE, open_passages, passage_config, passage_texts
from indexer.store import DocumentStore
from indexer.vectors import IDS_FILE, UNIT_TOLERANCE, VECTORS_FILE, check_unit, open_vectors, read_ids

RERANK_FACTOR = 4  # exact re-rank: ask Annoy for 4 x k neighbours, re-score them from the vector file
# with passages, Annoy is asked for this many items per wanted document (a document's passages
# crowd each other among the nearest items), the items are folded into their documents, and every
# such document is re-scored exactly over all its vectors (MaxP): the item Annoy found is not always
# a document's best. At 100k documents (12:6:2) recall@10 against the exact search went from 0.937
# (N + 1 items a document, Annoy's scores) to 0.953 at the default search_k, +0.1 ms (BENCHMARKS.md)
PASSAGE_ITEMS_FACTOR = 8
# Up to this many stored vector values (documents x dim: 65,536 documents of 128 dims, a 32 MB
# vector file) the default semantic search is exact: one float32 matrix-vector product over the vector
# file takes no longer than Annoy at its default search_k (BENCHMARKS.md) and loses no neighbours.
# An explicit search_k (--search-k) always asks Annoy.
EXACT_MAX_VALUES = 2 ** 23


def top_rows(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows with the k best scores plus every row tied with the k-th (the id tie-break comes later)."""
    if len(rows) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        rows, scores = rows[keep], scores[keep]
    return rows, scores


class EmbeddedIndex:
    def __init__(self, directory: Path, manifest: dict, generation: Path | None = None) -> None:
        """`directory`: the index (named in messages); `generation`: where its files are (default: it)."""
        files = generation or directory
        self.directory, self.manifest = directory, manifest
        self.ids = read_ids(files / IDS_FILE)
        if len(self.ids) != manifest["counts"]["documents"]:
            raise damaged(directory, IDS_FILE, f"lists {len(self.ids)} ids, the manifest "
                                               f"{manifest['counts']['documents']} documents")
        self.dim = manifest["model"]["dim"]
        self.vectors = open_vectors(files / VECTORS_FILE, len(self.ids), self.dim)
        self.bm25 = Bm25Index.open(files, len(self.ids), index_analyzer(manifest["bm25"]))
        self.passages = open_passages(files, manifest)
        if self.passages is not None:
            self.passages.check_rows(len(self.ids), directory)
        items = len(self.ids) + (len(self.passages) if self.passages is not None else 0)
        self.annoy = AnnoySearcher(files / ANNOY_FILE, self.dim, manifest["annoy"]["items"], items, shown=directory)
        self.store = DocumentStore.open(files / STORE_FILE)
        self._row_of: dict[str, int] | None = None
        self._feature_rows: np.ndarray | None = None

    @classmethod
    def open(cls, directory: str | Path, verify: str = "quick") -> "EmbeddedIndex":
        """Open for search: the current generation, after checking the manifest and the whole of every
        file (`verify`: quick, hashes remembered per file identity | full). Should a writer replace
        the generation while it opens, it opens the new one (once)."""
        directory = Path(directory)
        generation = generation_dir(directory)
        try:
            return cls.open_generation(directory, generation, verify)
        except ValueError:
            if generation_dir(directory) == generation:
                raise
        return cls.open_generation(directory, generation_dir(directory), verify)   # replaced meanwhile

    @classmethod
    def open_generation(cls, directory: Path, generation: Path, verify: str) -> "EmbeddedIndex":
        manifest = read_manifest(generation)
        verify_files(generation, manifest, "full" if verify == "full" else "cached", shown=directory)
        try:
            return cls(directory, manifest, generation)
        except (OSError, KeyError, sqlite3.DatabaseError, json.JSONDecodeError) as error:
            raise ValueError(f"index {directory} could not be opened ({error}); "
                             f"rebuild it with `dssm index build`") from None

    @property
    def fingerprint(self) -> str:
        return self.manifest["model"]["fingerprint"]

    def __len__(self) -> int:
        return len(self.ids)

    def allowed_rows(self, filter: object) -> np.ndarray | None:
        """Rows passing `filter` (a TagFilter), sorted; None without a filter."""
        from indexer.tags import TagFilter

        if filter is None:
            return None
        if not isinstance(filter, TagFilter):
            raise ValueError("the embedded index filters by tag only (--tag); --filter needs the Elasticsearch backend")
        row_of = self.row_of()
        return np.array(sorted(row_of[doc_id] for doc_id in self.store.ids_with_tags(filter.tags)
                               if doc_id in row_of), dtype=np.int64)

    def row_of(self) -> dict[str, int]:
        """Document id -> its row (vector file, Annoy item, BM25 column), built on first use."""
        if self._row_of is None:
            self._row_of = {doc_id: row for row, doc_id in enumerate(self.ids)}
        return self._row_of

    def lexical(self, query: str, k: int, filter: object = None) -> Hits:
        """BM25 top k (score higher is better), among the rows passing `filter` (a TagFilter) if given."""
        rows = self.allowed_rows(filter)
        try:
            if rows is None:
                rows, scores = self.bm25.search(query, k)
            else:
                scores = self.bm25.scores(query)[rows]
                rows, scores = top_rows(rows[scores > 0], scores[scores > 0], k)
        except IndexError:
            raise damaged(self.directory, "bm25.*", "hold a document row out of range") from None
        if len(rows) and (np.max(rows) >= len(self.ids) or np.min(rows) < 0 or not np.all(np.isfinite(scores))):
            raise damaged(self.directory, "bm25.*", "hold a document row out of range or a score that is not finite")
        return Hits([self.ids[row] for row in rows], scores).top(k)

    def semantic(self, vector: np.ndarray, k: int, num_candidates: int | None = None, filter: object = None,
                 exact: bool = False) -> Hits:
        """Top k by cosine: exact up to EXACT_MAX_VALUES stored values unless `num_candidates` is given,
        else Annoy with search_k `num_candidates` (default: the manifest's). With passages the documents
        Annoy finds are scored exactly (their best vector), see PASSAGE_ITEMS_FACTOR.

        `exact`: ask Annoy for RERANK_FACTOR * k neighbours and re-score them exactly (float64 dot
        products with the stored unit vectors) before keeping k.
        """
        rows = self.allowed_rows(filter)
        if rows is not None:
            return self.semantic_among(rows, vector, k)
        if num_candidates is None and self.exact_by_default:
            return self.semantic_all(vector, k, float64=exact)
        search_k = self.manifest["annoy"]["search_k"] if num_candidates is None else num_candidates
        wanted = RERANK_FACTOR * k if exact else k
        if self.passages is None:
            rows, cosines = self.annoy.search(vector, wanted, search_k)
        else:
            items, _ = self.annoy.search(vector, PASSAGE_ITEMS_FACTOR * wanted, search_k)
            rows = np.unique(self.passages.item_rows(items, len(self.ids)))
            cosines = np.zeros(0)
        if (exact or self.passages is not None) and len(rows):
            cosines = self.exact_scores(rows, vector)
        rows, cosines = top_rows(rows, cosines, k)              # hundreds of folded documents: keep k first
        return self.checked_hits(rows, cosines, k)

    def checked_hits(self, rows: np.ndarray, cosines: np.ndarray, k: int) -> Hits:
        """The top k of semantic `rows`, after checking what they rest on: cosines within [-1, 1] and
        the stored vectors of these rows (and of their passages) of norm 1 or 0."""
        rows, cosines = np.asarray(rows, dtype=np.int64), np.asarray(cosines, dtype=np.float64)
        if not len(rows):
            return Hits.empty()
        if not np.all(np.abs(cosines) <= 1 + UNIT_TOLERANCE):            # NaN fails too
            bad = int(rows[np.argmax(~(np.abs(cosines) <= 1 + UNIT_TOLERANCE))])
            raise damaged(self.directory, VECTORS_FILE if self.passages is None else f"{VECTORS_FILE} or {PASSAGES_FILE}",
                          f"gives document row {bad} a cosine of {cosines[rows == bad][0]:.6g} (stored vectors "
                          f"are unit length: the file is corrupt)")
        check_unit(np.asarray(self.vectors[rows], dtype=np.float64), rows, self.directory, VECTORS_FILE)
        if self.passages is not None:
            self.passages.check_unit(rows, self.directory)
        return Hits([self.ids[row] for row in rows], cosines).top(k)

    def exact_scores(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """float64 cosines of `rows` with their stored vectors, best passage included."""
        cosines = np.asarray(self.vectors[rows], dtype=np.float64) @ vector.astype(np.float64)
        return cosines if self.passages is None else self.passages.best_among(rows, cosines, vector)

    @property
    def exact_by_default(self) -> bool:
        stored = len(self.ids) + (len(self.passages) if self.passages is not None else 0)
        return stored * self.dim <= EXACT_MAX_VALUES

    def feature_rows(self) -> np.ndarray:
        """Rows whose vector is not zero (texts without features never match), computed once."""
        if self._feature_rows is None:
            rows = np.arange(len(self.ids))
            if self.manifest.get("counts", {}).get("zero_vectors", 1):
                rows = rows[np.any(np.asarray(self.vectors) != 0, axis=1)]
            self._feature_rows = rows
        return self._feature_rows

    def semantic_all(self, vector: np.ndarray, k: int, float64: bool = False) -> Hits:
        """Exact cosine top k over every document with features, in float32 (`float64`: the kept rows
        re-scored in float64, as the exact re-rank does)."""
        if not len(self.ids) or not np.any(vector):
            return Hits.empty()
        scores = np.asarray(self.vectors @ vector.astype(np.float32), dtype=np.float64)
        if self.passages is not None:
            scores = self.passages.best(scores, vector)
        rows = self.feature_rows()
        rows, scores = top_rows(rows, scores[rows], k)
        if float64:
            scores = self.exact_scores(rows, vector)
        return self.checked_hits(rows, scores, k)

    def semantic_among(self, rows: np.ndarray, vector: np.ndarray, k: int) -> Hits:
        """Exact cosine top k among `rows` (rows without features left out, as Annoy leaves them out)."""
        if not len(rows) or not np.any(vector):
            return Hits.empty()
        vectors = np.asarray(self.vectors[rows], dtype=np.float64)
        features = np.any(vectors != 0, axis=1)
        rows, vectors = rows[features], vectors[features]
        cosines = vectors @ vector.astype(np.float64)
        if self.passages is not None:
            cosines = self.passages.best_among(rows, cosines, vector)
        rows, cosines = top_rows(rows, cosines, k)
        return self.checked_hits(rows, cosines, k)

    def matched_passages(self, ids, vector: np.ndarray) -> dict[str, tuple[str, float]]:
        """Document id -> (text, cosine) of its best passage, for the documents among `ids` whose best
        passage scores above their whole vector (what --explain shows); {} without passages."""
        if self.passages is None or not np.any(vector):
            return {}
        config, found, row_of = self.manifest["passages"], {}, self.row_of()
        for doc in self.store.documents(ids):
            row = row_of[doc.id]
            begin, end = self.passages.span(row)
            texts = passage_texts(doc.title, doc.text, **passage_config(config))
            if end == begin or len(texts) != end - begin:
                continue
            cosines = np.asarray(self.passages.vectors[begin:end], dtype=np.float64) @ vector.astype(np.float64)
            best = int(np.argmax(cosines))
            if cosines[best] > float(np.asarray(self.vectors[row], dtype=np.float64) @ vector.astype(np.float64)):
                found[doc.id] = (texts[best], float(cosines[best]))
        return found

    def titles(self, ids) -> dict[str, str]:
        return self.store.titles(ids)

    def tags(self, ids) -> dict[str, list[tuple[str, float]]]:
        """Document id -> its stored tags `[(tag, similarity)]` (index build --with-tags)."""
        return self.store.tags(ids)

    def close(self) -> None:
        self.store.close()

