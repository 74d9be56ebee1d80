"""Where the Elasticsearch build gets its `(id, title, text, vector, tags)` rows from.

- `from_embedded_index`: an index directory just written by `dssm index build --out`, so one run
  pushes the very vectors Annoy holds (no second encoding), the tags stored with them and, for an
  index built `--passages`, each document's passage vectors;
- `from_corpus`: a corpus encoded here with the document tower, batch by batch, tagged by `tagger`
  (indexer/tags.py DocumentTagger) when given, with its passages encoded too when `passages` is given.
"""
from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from indexer.build import STORE_FILE
from indexer.documents import iter_documents, scan_ids
from indexer.es_index import Document
from indexer.manifest import read_manifest, verify_files
from indexer.passages import encode_passages, open_passages, passage_config
from indexer.store import DocumentStore
from indexer.vectors import IDS_FILE, VECTORS_FILE, open_vectors, read_ids

BATCH_SIZE = 1024


def from_embedded_index(index_dir: str | Path) -> tuple[dict, Iterator[Document]]:
    """(`manifest["model"]` {fingerprint, dim, path, and passages when built with them}, rows in index
    order) of an embedded index."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    verify_files(index_dir, manifest, "quick")
    ids = read_ids(index_dir / IDS_FILE)
    vectors = open_vectors(index_dir / VECTORS_FILE, len(ids), manifest["model"]["dim"])
    passages = open_passages(index_dir, manifest)
    spans = passages.spans(np.arange(len(ids))) if passages is not None else None

    def rows() -> Iterator[Document]:
        store = DocumentStore.open(index_dir / STORE_FILE)
        try:
            for start in range(0, len(ids), BATCH_SIZE):
                batch = ids[start:start + BATCH_SIZE]
                documents = {doc.id: doc for doc in store.documents(batch)}
                tags = store.tags(batch)
                for row, doc_id in enumerate(batch, start):
                    doc = documents[doc_id]
                    found = (doc.id, doc.title, doc.text, vectors[row], tags.get(doc_id, []))
                    yield found if passages is None else (*found, passages.vectors[spans[0][row]:spans[1][row]])
        finally:
            store.close()

    model = manifest["model"]
    return ({**model, "passages": passage_config(manifest["passages"])}
            if passages is not None else model), rows()


def from_corpus(corpus: str | Path, encoder, on_duplicate: str = "error", batch_size: int = BATCH_SIZE,
                progress: Callable[[int], None] | None = None, tagger=None,
                passages: dict | None = None) -> Iterator[Document]:
    """Rows of `corpus` with document-tower vectors (and passage vectors, with `passages` {window,
    stride}); duplicate ids are refused here, before any encoding."""
    if not scan_ids(corpus, on_duplicate):
        raise ValueError(f"corpus {corpus} has no documents; give a JSONL/TSV/CSV file with id, title, text")

    def rows() -> Iterator[Document]:
        documents = iter_documents(corpus, on_duplicate)
        while batch := list(islice(documents, batch_size)):
            texts = [doc.encoder_text() for doc in batch]
            vectors = encoder.encode(texts, side="document", batch_size=batch_size)
            tags = tagger(texts, vectors) if tagger is not None else [[] for _ in batch]
            if progress is not None:
                progress(len(batch))
            if passages is None:
                yield from ((doc.id, doc.title, doc.text, vector, doc_tags)
                            for doc, vector, doc_tags in zip(batch, vectors, tags))
                continue
            counts, encoded = encode_passages(batch, encoder, passages, batch_size)
            ends = np.cumsum(counts)
            yield from ((doc.id, doc.title, doc.text, vector, doc_tags, encoded[end - count:end])
                        for doc, vector, doc_tags, count, end in zip(batch, vectors, tags, counts, ends))

    return rows()
