"""Bulk loading for the Elasticsearch build: a generator of actions handed to `elasticsearch.helpers`.

Each chunk goes through `helpers.streaming_bulk`, which retries the items answered 429/502/503/504
with exponential backoff. A refused connection or a timeout is not a rejected document: the chunk is
resent (index actions with explicit ids are idempotent) while the outage is shorter than the client
timeout, counted from the start of the first failed request; after that the whole bulk stops with
`ServerUnreachable` (one line) and nothing goes to the rejects file. Documents the server answered
with an error are written, with their document, to the rejects JSONL file and counted, never dropped.
With `threads > 1` that many chunks are in flight at once; all of them stop on an outage.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from elasticsearch import ConnectionError, ConnectionTimeout, Elasticsearch, helpers

from indexer.es_config import DEFAULT_TIMEOUT, EsError

TRANSIENT_STATUS = (429, 502, 503, 504)
VECTOR_DECIMALS = 8  # float32 keeps ~7 significant digits; shorter JSON, same stored float32

Document = tuple  # (id, title, text, vector [dim][, [(tag, similarity), ...][, passage vectors [n, dim]]])
PASSAGES_FIELD = "passages"  # nested: [{vector}], the whole document's vector first (indexer/passages.py)


@dataclass
class BulkCounts:
    indexed: int = 0
    rejected: int = 0
    without_vector: int = 0
    read: int = 0  # documents taken from the input: indexed + rejected once the bulk is complete
    rejects_path: Path | None = None


@dataclass(frozen=True)
class Retry:
    """Backoff for transient failures: waits initial * 2**attempt seconds, at most `maximum`."""

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0

    def wait(self, attempt: int) -> float:
        return min(self.maximum, self.initial * 2 ** attempt)


class ServerUnreachable(EsError):
    """Elasticsearch stopped answering (refused, reset, timed out) for longer than the client timeout."""


class Outage:
    """Connection failures of one bulk, shared by its threads: a chunk is resent while the outage
    (from the start of the first failed request) is shorter than `timeout`; then every thread stops."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout, self.since, self.lost = timeout, None, None
        self.lock = threading.Lock()

    def check(self) -> None:
        if self.lost is not None:
            raise ServerUnreachable(self.lost)

    def succeeded(self) -> None:
        with self.lock:
            self.since = None

    def failed(self, started: float, error: Exception, wait: float) -> None:
        """Record a failed request begun at `started` (monotonic); raise if waiting `wait` s more
        would take the outage past the timeout."""
        with self.lock:
            self.since = started if self.since is None else self.since
            if self.lost is None and time.monotonic() + wait > self.since + self.timeout:
                self.lost = (f"Elasticsearch stopped answering during the bulk ({type(error).__name__}: "
                             f"{one_line(getattr(error, 'message', error))}) and did not come back within "
                             f"{self.timeout:g} s")
        self.check()


def one_line(text) -> str:
    return " ".join(str(text).split())[:300]


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
        report.read += 1
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


def send_chunk(client: Elasticsearch, chunk: list[dict], retry: Retry, outage: Outage) -> list[tuple[bool, dict]]:
    """Bulk one chunk: helpers retry 429/5xx items; timeouts and lost connections resend the chunk
    until `outage` gives up (ServerUnreachable)."""
    attempt = 0
    while True:
        outage.check()
        started = time.monotonic()
        try:
            results = [(ok, info.get("index", info)) for ok, info in helpers.streaming_bulk(
                client, chunk, chunk_size=len(chunk), raise_on_error=False, raise_on_exception=False,
                max_retries=retry.attempts, initial_backoff=retry.initial, max_backoff=retry.maximum,
                retry_on_status=TRANSIENT_STATUS)]
        except (ConnectionError, ConnectionTimeout) as error:
            wait = retry.wait(attempt)
            outage.failed(started, error, wait)
            time.sleep(wait)
            attempt += 1
            continue
        outage.succeeded()
        return results


def reject_record(info: dict, source: dict | None) -> dict:
    error = info.get("error")
    if isinstance(error, dict):
        error = f"{error.get('type')}: {error.get('reason')}"
    return {"id": info.get("_id"), "status": info.get("status"), "error": str(error), "document": source}


def sent_chunks(client: Elasticsearch, chunks: Iterator[list[dict]], retry: Retry, threads: int,
                outage: Outage) -> Iterator[tuple[list[dict], list[tuple[bool, dict]]]]:
    """`(chunk, results)` in input order; with threads > 1, up to 2 * threads chunks are in flight.
    On any failure, queued chunks are cancelled and the ones in flight finished or stopped before this
    returns, so that nothing writes to the index after the caller deletes it."""
    if threads == 1:
        for chunk in chunks:
            yield chunk, send_chunk(client, chunk, retry, outage)
        return
    pool = ThreadPoolExecutor(threads)
    try:
        pending: deque = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(send_chunk, client, chunk, retry, outage)))
            if len(pending) >= 2 * threads:
                chunk, future = pending.popleft()
                yield chunk, future.result()
        while pending:
            chunk, future = pending.popleft()
            yield chunk, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def load(client: Elasticsearch, index: str, documents: Iterable[Document], vector_field: str,
         report: BulkCounts, rejects_path: Path, chunk_size: int, retry: Retry, threads: int,
         progress: Callable[[int], None] | None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Bulk all documents into `index`, filling `report`; rejects go to `rejects_path` (created on need).

    Raises ServerUnreachable when the server is gone for `timeout` seconds (the client's request
    timeout: a frozen server costs one request's timeout, a refused connection the same at most)."""
    rejects = None
    try:
        chunks = chunked(bulk_actions(index, documents, vector_field, report), chunk_size)
        for chunk, results in sent_chunks(client, chunks, retry, threads, Outage(timeout)):
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
