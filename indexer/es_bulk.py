"""Bulk loading for the Elasticsearch build: a generator of actions handed to `elasticsearch.helpers`.

Each chunk goes through `helpers.streaming_bulk`, which retries the items answered 429/502/503/504
with exponential backoff; a lost connection or a timeout resends the whole chunk (index actions with
explicit ids are idempotent) after a backoff, so a node restarted during the load costs a pause, not
documents. Whatever still fails is written, with its document, to the rejects JSONL file and counted,
never dropped. With `threads > 1` that many chunks are in flight at once.
"""
from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from elasticsearch import ConnectionError, ConnectionTimeout, Elasticsearch, helpers

TRANSIENT_STATUS = (429, 502, 503, 504)
VECTOR_DECIMALS = 8  # float32 keeps ~7 significant digits; shorter JSON, same stored float32

Document = tuple  # (id, title, text, vector [dim][, [(tag, similarity), ...][, passage vectors [n, dim]]])
PASSAGES_FIELD = "passages"  # nested: [{vector}], the whole document's vector first (indexer/passages.py)


@dataclass
class BulkCounts:
    indexed: int = 0
    rejected: int = 0
    without_vector: int = 0
    rejects_path: Path | None = None


@dataclass(frozen=True)
class Retry:
    """Backoff for transient failures: waits initial * 2**attempt seconds, at most `maximum`."""

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0

    def wait(self, attempt: int) -> float:
        return min(self.maximum, self.initial * 2 ** attempt)


def vector_values(vector: Sequence[float]) -> list | None:
    """JSON-ready vector values, or None for an all-zero vector (left out of the document)."""
    values = np.asarray(vector, dtype=np.float64)
    if values.ndim == 1 and values.size and not values.any():
        return None
    return np.round(values, VECTOR_DECIMALS).tolist()


def bulk_actions(index: str, documents: Iterable[Document], vector_field: str,
                 report: BulkCounts) -> Iterator[dict]:
    """One `index` action per `(id, title, text, vector[, tags[, passages]])`; `_id` is the document id.
    With passages, the nested `passages` field holds the whole vector, then each passage's (zero ones
    left out)."""
    for doc_id, title, text, vector, *rest in documents:
        tagged, passages = (rest + [None, None])[:2]
        source = {"id": doc_id, "title": title, "text": text}
        if tagged:
            source["tags"] = [tag for tag, _ in tagged]
            source["tag_similarities"] = [round(float(similarity), 6) for _, similarity in tagged]
        values = vector_values(vector)
        if values is None:
            report.without_vector += 1
        else:
            source[vector_field] = values
        if passages is not None:
            nested = [vector_values(each) for each in [vector, *passages]]
            source[PASSAGES_FIELD] = [{vector_field: each} for each in nested if each is not None]
        yield {"_op_type": "index", "_index": index, "_id": doc_id, "_source": source}


def chunked(actions: Iterator[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for action in actions:
        chunk.append(action)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def send_chunk(client: Elasticsearch, chunk: list[dict], retry: Retry) -> list[tuple[bool, dict]]:
    """Bulk one chunk: helpers retry 429/5xx items; timeouts and lost connections resend the chunk."""
    attempt = 0
    while True:
        try:
            return [(ok, info.get("index", info)) for ok, info in helpers.streaming_bulk(
                client, chunk, chunk_size=len(chunk), raise_on_error=False, raise_on_exception=False,
                max_retries=retry.attempts, initial_backoff=retry.initial, max_backoff=retry.maximum,
                retry_on_status=TRANSIENT_STATUS)]
        except (ConnectionError, ConnectionTimeout) as error:
            if attempt == retry.attempts:
                return [(False, {"_id": action["_id"], "status": None,
                                 "error": f"{type(error).__name__}: {error.message}"}) for action in chunk]
            time.sleep(retry.wait(attempt))
            attempt += 1


def reject_record(info: dict, source: dict | None) -> dict:
    error = info.get("error")
    if isinstance(error, dict):
        error = f"{error.get('type')}: {error.get('reason')}"
    return {"id": info.get("_id"), "status": info.get("status"), "error": str(error), "document": source}


def sent_chunks(client: Elasticsearch, chunks: Iterator[list[dict]], retry: Retry,
                threads: int) -> Iterator[tuple[list[dict], list[tuple[bool, dict]]]]:
    """`(chunk, results)` in input order; with threads > 1, up to 2 * threads chunks are in flight."""
    if threads == 1:
        for chunk in chunks:
            yield chunk, send_chunk(client, chunk, retry)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(send_chunk, client, chunk, retry)))
            if len(pending) >= 2 * threads:
                chunk, future = pending.popleft()
                yield chunk, future.result()
        while pending:
            chunk, future = pending.popleft()
            yield chunk, future.result()


def load(client: Elasticsearch, index: str, documents: Iterable[Document], vector_field: str,
         report: BulkCounts, rejects_path: Path, chunk_size: int, retry: Retry, threads: int,
         progress: Callable[[int], None] | None) -> None:
    """Bulk all documents into `index`, filling `report`; rejects go to `rejects_path` (created on need)."""
    rejects = None
    try:
        chunks = chunked(bulk_actions(index, documents, vector_field, report), chunk_size)
        for chunk, results in sent_chunks(client, chunks, retry, threads):
            sources = {action["_id"]: action["_source"] for action in chunk}
            for ok, info in results:
                if ok:
                    report.indexed += 1
                    continue
                if rejects is None:
                    rejects_path.parent.mkdir(parents=True, exist_ok=True)
                    rejects = rejects_path.open("w", encoding="utf-8")
                rejects.write(json.dumps(reject_record(info, sources.get(info.get("_id"))),
                                         ensure_ascii=False) + "\n")
                report.rejected += 1
            if progress is not None:
                progress(len(chunk))
    finally:
        if rejects is not None:
            rejects.close()
    if report.rejected:
        report.rejects_path = rejects_path
