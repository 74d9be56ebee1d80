"""Elasticsearch backend: BM25 text fields + an HNSW `dense_vector`, rebuilt behind an alias.

Layout of one concrete index `NAME-<UTC timestamp>` served by the alias `NAME`:
`id` keyword, `tags` keyword (predicted by `--with-tags`, with their cosines in the unindexed
`tag_similarities`), `title`/`text` text copied into `body` (BM25 runs on `body`, title and text as one
field like the embedded index; analyzed as `resolve_analysis` says: the dssm plugin's `dssm_english` etc.,
the embedded index's own analysis, docs/FORMAT.md section 5), `vector` dense_vector (model dims, cosine,
`hnsw` index options m/ef_construction, not quantised so scores are exact floats), with `--passages` a
nested `passages` field of `vector`s (the whole document's first, then its passages: kNN on
`passages.vector` ranks each document by its best one, as the embedded index does), and `_meta`
{format, format_version, model_fingerprint, dims, model_path, counts, passages, analyzer, bm25, ...}.
A build writes a fresh index through `indexer.es_bulk` (retries with backoff, rejects file; a server
gone for the client timeout aborts it), checks the count, then moves the alias atomically; the old index
is deleted only after that (unless keep_old). A build first removes the `NAME-<stamp>` indices that
killed or aborted builds left (`remove_orphans`).
Search: `EsIndex.lexical` / `EsIndex.semantic` return `Hits`.

Documents are `(id, title, text, vector)` tuples whatever produced the vectors (float32 `[dim]`), or
`(id, title, text, vector, tags)` with `tags` a list of `(tag, similarity)`, or
`(id, title, text, vector, tags, passages)` with `passages` float32 `[passages, dim]`.
An all-zero vector (a text without features, docs/FORMAT.md 2.2) is left out of the document: ES
cosine refuses zero vectors, and its cosine with anything is 0, so kNN would never prefer it.
"""
from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from elasticsearch import ApiError, BadRequestError, ConnectionError, ConnectionTimeout, Elasticsearch, NotFoundError

from indexer.es_bulk import (PASSAGES_FIELD, BulkCounts, Document, Retry, ServerUnreachable, load, one_line,
                             vector_values)
from indexer.es_config import DEFAULT_TIMEOUT, EsError
from indexer.hits import Hits

INDEX_FORMAT = "dssm-search-es"
FORMAT_VERSION = 1
VECTOR_FIELD = "vector"
LEXICAL_FIELD = "body"  # title + text in one field (copy_to), as the embedded BM25 indexes them
MAX_DIMS = 4096
MAX_NUM_CANDIDATES = 10_000
INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
STAMP = r"\d{20}"  # new_index_name: %Y%m%d%H%M%S%f
FOREIGN_BUILD_GRACE_S = 24 * 3600  # an unfinished index built from another host is an orphan after this


@dataclass(frozen=True)
class IndexOptions:
    """Mapping and settings of a new index; `dims` must be the model's."""

    dims: int
    analyzer: str = "standard"  # the Elasticsearch analyzer of title/text/body (EsAnalysis.analyzer)
    search_analyzer: str | None = None  # of queries on them; None: `analyzer`
    bm25: dict | None = None  # `_meta.bm25`: EsAnalysis.meta(), what that analyzer stands for
    m: int = 16
    ef_construction: int = 100
    shards: int = 1
    replicas: int | None = None  # None: the server's default
    passages: dict | None = None  # {"window", "stride"[, "limit"]}: a nested field of passage vectors (indexer/passages.py)

    def check(self) -> None:
        if not 1 <= self.dims <= MAX_DIMS:
            raise ValueError(f"dims must be in [1, {MAX_DIMS}], got {self.dims}")
        if self.m < 2 or self.ef_construction < self.m:
            raise ValueError(f"HNSW needs m >= 2 and ef_construction >= m, got m={self.m}, "
                             f"ef_construction={self.ef_construction}")


def index_meta(options: IndexOptions, fingerprint: str) -> dict:
    meta = {"format": INDEX_FORMAT, "format_version": FORMAT_VERSION, "model_fingerprint": fingerprint,
            "dims": options.dims, "similarity": "cosine", "analyzer": options.analyzer,
            "hnsw": {"m": options.m, "ef_construction": options.ef_construction}}
    if options.bm25:
        meta["bm25"] = options.bm25
    return {**meta, "passages": options.passages} if options.passages else meta


# --- lexical analysis ----------------------------------------------------------------------------

# The plugin's analyzers: dssm_simple, dssm_english, dssm_russian, and for queries dssm_<name>_search
# (the same terms, each once: BM25 over distinct query terms, as the embedded index scores them).
PLUGIN = "dssm"
# Elasticsearch's own analyzer closest to each embedded one (analysis-common; `standard` is in the server).
BUILTIN_ANALYZERS = {"english": "english", "russian": "russian", "simple": "standard"}


@dataclass(frozen=True)
class EsAnalysis:
    """The Elasticsearch analyzer of title/text/body and the embedded analysis it stands for.

    `exact`: the dssm plugin's `dssm_<name>`, the same terms as the embedded index (docs/FORMAT.md 5),
    and for queries `dssm_<name>_search`, each term once, as the embedded BM25 scores a query; else
    Elasticsearch's own analyzer (`english`: Porter 1, UAX#29 tokens, possessives) or an explicit
    `--es-analyzer`, so lexical rankings differ a little. `follows` is None for an override.
    """

    analyzer: str
    follows: str | None
    exact: bool

    @property
    def search_analyzer(self) -> str | None:
        return f"{self.analyzer}_search" if self.exact else None

    def meta(self) -> dict:
        meta = {"analyzer": self.follows, "es_analyzer": self.analyzer, "exact": self.exact}
        return {**meta, "es_search_analyzer": self.search_analyzer} if self.exact else meta

    def warning(self) -> str | None:
        if self.exact or self.follows is None:
            return None
        return (f"warning: Elasticsearch has no dssm plugin, so title/text use its own {self.analyzer!r} analyzer "
                f"instead of dssm_{self.follows}: lexical rankings may differ slightly from the embedded index "
                f"(install the plugin: es-plugin/README.md)")


def has_analyzer(client: Elasticsearch, name: str) -> bool:
    """True when the cluster knows the global analyzer `name` (one `_analyze` call)."""
    try:
        client.indices.analyze(analyzer=name, text="a")
        return True
    except BadRequestError:  # 400 "failed to find global analyzer [name]"
        return False


def resolve_analysis(client: Elasticsearch, name: str, override: str | None = None,
                     plugin_prefix: str = PLUGIN) -> EsAnalysis:
    """The analyzer an index analysed like the embedded index's `name` (english, russian, simple) gets:
    the plugin's `dssm_<name>`, else Elasticsearch's own (see `EsAnalysis.warning`), else EsError
    naming the fix. `override` (an analyzer name) is used as it is, if the cluster has it.
    (`plugin_prefix`: tests pass a name no plugin has, to see a cluster without it.)"""
    plugin = f"{plugin_prefix}_{name}"
    if override is not None:
        if not has_analyzer(client, override):
            raise EsError(f"Elasticsearch has no analyzer {override!r}; choose another --es-analyzer, or leave it "
                          f"out to use {plugin} (the dssm plugin)")
        return EsAnalysis(override, name if override == plugin else None, override == plugin)
    if name not in BUILTIN_ANALYZERS:
        raise ValueError(f"unknown analyzer {name!r}; choose from {sorted(BUILTIN_ANALYZERS)}")
    if has_analyzer(client, plugin) and has_analyzer(client, f"{plugin}_search"):
        return EsAnalysis(plugin, name, True)
    if has_analyzer(client, BUILTIN_ANALYZERS[name]):
        return EsAnalysis(BUILTIN_ANALYZERS[name], name, False)
    raise EsError(f"Elasticsearch has neither the dssm plugin's {plugin} analyzer nor its own "
                  f"{BUILTIN_ANALYZERS[name]!r}; install the plugin (make plugin && scripts/es.sh up, or "
                  f"bin/elasticsearch-plugin install file:///.../dssm-plugin.zip; es-plugin/README.md)")


def index_body(options: IndexOptions, fingerprint: str) -> dict:
    """`indices.create` arguments: settings (no refresh, async translog while bulk loading) and mappings.

    `finish` restores refresh and per-request translog durability; a node lost mid-build can lose
    acknowledged documents, which the count check then reports (the alias is not moved).
    """
    settings: dict = {"number_of_shards": options.shards, "refresh_interval": "-1",
                      "translog": {"durability": "async"}}
    if options.replicas is not None:
        settings["number_of_replicas"] = options.replicas
    analysis = {"analyzer": options.analyzer}
    if options.search_analyzer:
        analysis["search_analyzer"] = options.search_analyzer
    text = {"type": "text", **analysis, "copy_to": LEXICAL_FIELD}
    vector = {"type": "dense_vector", "dims": options.dims, "index": True, "similarity": "cosine",
              "index_options": {"type": "hnsw", "m": options.m, "ef_construction": options.ef_construction}}
    mappings = {
        "dynamic": "strict",
        "_meta": index_meta(options, fingerprint),
        "properties": {
            "id": {"type": "keyword"}, "title": text, "text": text, "tags": {"type": "keyword"},
            "tag_similarities": {"type": "float", "index": False, "doc_values": False},
            LEXICAL_FIELD: {"type": "text", **analysis},
            VECTOR_FIELD: vector,
        },
    }
    if options.passages:
        mappings["properties"][PASSAGES_FIELD] = {"type": "nested", "properties": {VECTOR_FIELD: vector}}
    return {"settings": settings, "mappings": mappings}


def check_name(name: str) -> None:
    if not INDEX_NAME.fullmatch(name) or len(name) > 200:
        raise ValueError(f"Elasticsearch index name {name!r} must be lowercase letters, digits, '.', '_' "
                         f"or '-', start with a letter or digit, at most 200 characters")


def read_meta(client: Elasticsearch, index: str) -> dict[str, dict | None]:
    """`_meta` of every concrete index behind `index` (an index or an alias); None where absent."""
    mappings = client.indices.get_mapping(index=index)
    return {name: body.get("mappings", {}).get("_meta") for name, body in mappings.items()}


def is_ours(meta: dict | None) -> bool:
    return isinstance(meta, dict) and meta.get("format") == INDEX_FORMAT


# --- build ---------------------------------------------------------------------------------------


@dataclass
class BuildReport(BulkCounts):
    alias: str = ""
    index: str = ""
    seconds: float = 0.0
    old_indices: list[str] = field(default_factory=list)
    deleted_old: bool = False
    orphans_removed: list[str] = field(default_factory=list)

    @property
    def docs_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        text = (f"{self.alias} -> {self.index}: {self.indexed} documents in {self.seconds:.1f} s "
                f"({self.docs_per_second:.0f} docs/s)")
        if self.without_vector:
            text += f", {self.without_vector} without vector (no features)"
        if self.rejected:
            text += f", {self.rejected} rejected (see {self.rejects_path})"
        if self.old_indices:
            text += f"; old {', '.join(self.old_indices)} {'deleted' if self.deleted_old else 'kept'}"
        if self.orphans_removed:
            text += f"; removed {len(self.orphans_removed)} left by killed builds: {', '.join(self.orphans_removed)}"
        return text


class BuildError(EsError):
    """The build failed; the alias still serves the old index."""


def previous_indices(client: Elasticsearch, alias: str, dims: int, force: bool) -> tuple[list[str], bool]:
    """Indices the alias serves now, and whether `alias` is a concrete index to replace (force only).

    Refuses (ValueError) an index without our `_meta` or with other dims, unless force.
    """
    if client.indices.exists_alias(name=alias):
        concrete = False
    elif client.indices.exists(index=alias):
        concrete = True
    else:
        return [], False
    metas = read_meta(client, alias)
    for index, meta in metas.items():
        if force:
            continue
        if concrete:
            raise ValueError(f"{alias} is an existing index, not an alias; pass --force to replace it "
                             f"(it is deleted when the new index takes its name)")
        if not is_ours(meta):
            raise ValueError(f"index {index} (alias {alias}) was not built by dssm-search (no {INDEX_FORMAT} "
                             f"_meta); pass --force to replace it, or choose another --es-index")
        if meta.get("dims") != dims:
            raise ValueError(f"index {index} (alias {alias}) holds {meta.get('dims')}-dim vectors but the model "
                             f"has {dims}; pass --force to replace it, or choose another --es-index")
    return ([] if concrete else sorted(metas)), concrete


def finish(client: Elasticsearch, report: BuildReport, options: IndexOptions, fingerprint: str,
           max_rejects: int, extra_meta: dict) -> None:
    """Refresh, count check, record counts in `_meta`; raises BuildError when the index is not usable."""
    client.indices.put_settings(index=report.index, settings={"index": {
        "refresh_interval": None, "translog": {"durability": "request"}}})
    client.indices.refresh(index=report.index)
    count = client.count(index=report.index)["count"]
    if report.indexed + report.rejected != report.read:
        raise BuildError(f"count check failed: {report.read} documents were read but {report.indexed} indexed and "
                         f"{report.rejected} rejected; build again")
    if count != report.indexed:
        raise BuildError(f"count check failed: {report.index} holds {count} documents but {report.indexed} "
                         f"were acknowledged (duplicate ids in the input, or documents lost when a node restarted); "
                         f"build again")
    if report.rejected > max_rejects:
        raise BuildError(f"{report.rejected} documents were rejected (limit {max_rejects}); see "
                         f"{report.rejects_path}")
    meta = {**extra_meta, **index_meta(options, fingerprint), "count": count, "rejected": report.rejected,
            "without_vector": report.without_vector,
            "built": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    client.indices.put_mapping(index=report.index, meta=meta)


def swap_alias(client: Elasticsearch, alias: str, new_index: str, old_indices: list[str],
               replace_concrete: bool) -> None:
    """Point `alias` at `new_index` in one atomic `_aliases` call."""
    actions: list[dict] = [{"remove": {"index": old, "alias": alias}} for old in old_indices]
    if replace_concrete:
        actions.append({"remove_index": {"index": alias}})
    actions.append({"add": {"index": new_index, "alias": alias}})
    client.indices.update_aliases(actions=actions)


def new_index_name(alias: str) -> str:
    return f"{alias}-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S%f')}"


BUILDING: set[str] = set()  # indices this process is loading now


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, /proc), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def builder() -> dict:
    """`_meta.building` of an index being loaded (`finish` replaces `_meta` without it)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}


def still_building(index: str, building: dict, created_ms: int) -> bool:
    """Whether the build that wrote `building` may still run: in this process, `index` is being loaded;
    on this host, its process is alive (same pid and start time); on another host, it began less than
    FOREIGN_BUILD_GRACE_S ago (its processes cannot be seen from here)."""
    if building.get("host") != socket.gethostname():
        return time.time() - created_ms / 1000 < FOREIGN_BUILD_GRACE_S
    pid = building.get("pid")
    if pid == os.getpid():
        return index in BUILDING
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return True
    return building.get("pid_start") is None or building.get("pid_start") == process_start(int(pid))


def remove_orphans(client: Elasticsearch, alias: str) -> list[str]:
    """Delete what killed or aborted builds of `alias` left: indices named exactly `alias-<stamp>` that no
    alias points to, with our `_meta` still marked `building` (never finished) by a build no longer
    running. Finished ones without the alias (--keep-old copies) and others' indices are kept."""
    pattern = re.compile(re.escape(alias) + "-" + STAMP)
    found = client.indices.get(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
    removed = []
    for name, body in sorted(found.items()):
        meta = body.get("mappings", {}).get("_meta")
        building = meta.get("building") if is_ours(meta) else None
        if not pattern.fullmatch(name) or body.get("aliases") or not isinstance(building, dict):
            continue
        if not still_building(name, building, int(body.get("settings", {}).get("index", {}).get("creation_date", 0))):
            client.options(ignore_status=404).indices.delete(index=name)
            removed.append(name)
    return removed


def build(client: Elasticsearch, alias: str, documents: Iterable[Document], fingerprint: str,
          options: IndexOptions, *, keep_old: bool = False, force: bool = False,
          rejects_path: str | Path | None = None, max_rejects: int = 0, chunk_size: int = 500,
          retry: Retry = Retry(), threads: int = 2, bulk_timeout: float = 120.0,
          timeout: float = DEFAULT_TIMEOUT, extra_meta: dict | None = None,
          progress: Callable[[int], None] | None = None) -> BuildReport:
    """Write `documents` into a fresh `alias-<timestamp>` index and move `alias` onto it.

    First deletes the orphans of earlier builds (`remove_orphans`, listed in `report.orphans_removed`).
    Bulk requests time out after `timeout` s (the client's), and a server gone that long aborts the
    build; index creation, refresh and the swap may take `bulk_timeout` s.
    On any failure the new index is deleted (or, with the server gone, by the next build) and the alias
    keeps serving the old one (BuildError, one line).
    Rejected documents go to `rejects_path` (default `./<new index>.rejects.jsonl`). `extra_meta`
    (e.g. {"model_path": ...}) is added to the index `_meta`.
    """
    check_name(alias)
    options.check()
    if chunk_size < 1 or max_rejects < 0 or threads < 1:
        raise ValueError("chunk_size and threads must be >= 1, max_rejects >= 0")
    old_indices, replace_concrete = previous_indices(client, alias, options.dims, force)
    report = BuildReport(alias=alias, index=new_index_name(alias), old_indices=old_indices,
                         orphans_removed=remove_orphans(client, alias))
    rejects_path = Path(rejects_path or f"{report.index}.rejects.jsonl")
    start = time.perf_counter()
    patient = client.options(request_timeout=bulk_timeout)  # index creation and merges can be slow
    body = index_body(options, fingerprint)
    body["mappings"]["_meta"]["building"] = builder()
    BUILDING.add(report.index)
    try:
        patient.indices.create(index=report.index, **body)
        load(client.options(request_timeout=timeout), report.index, documents, VECTOR_FIELD, report,
             rejects_path, chunk_size, retry, threads, progress, timeout)
        finish(patient, report, options, fingerprint, max_rejects, extra_meta or {})
        swap_alias(patient, alias, report.index, old_indices, replace_concrete)
    except BaseException as error:
        deleted = delete_quietly(client, report.index, min(timeout, 5.0))
        left = "" if deleted else f"; the next build deletes {report.index}"
        if isinstance(error, ServerUnreachable):
            raise BuildError(f"{error}: build of {report.index} aborted after {report.indexed} documents, "
                             f"alias {alias} unchanged{left}") from None
        if isinstance(error, (ApiError, ConnectionError, ConnectionTimeout)):
            raise BuildError(f"build of {report.index} failed, alias {alias} unchanged{left}: "
                             f"{type(error).__name__}: {one_line(error)}") from error
        raise
    finally:
        BUILDING.discard(report.index)
    report.seconds = time.perf_counter() - start
    if old_indices and not keep_old:
        for old in old_indices:
            patient.indices.delete(index=old)
        report.deleted_old = True
    return report


def delete_quietly(client: Elasticsearch, index: str, timeout: float = 30.0) -> bool:
    """Delete `index` if the server answers within `timeout`; False if it could not be deleted."""
    try:
        client.options(request_timeout=timeout, max_retries=0, ignore_status=404).indices.delete(index=index)
        return True
    except (ApiError, ConnectionError, ConnectionTimeout):
        return False


# --- search --------------------------------------------------------------------------------------


class EsIndex:
    """Search side of an index built by `build`: `lexical` (BM25) and `semantic` (kNN) `Hits`."""

    def __init__(self, client: Elasticsearch, name: str, metas: dict[str, dict]) -> None:
        """`metas`: `_meta` of each concrete index behind `name`; `meta` is the first one's."""
        self.client, self.name, self.metas = client, name, metas
        self.meta = next(iter(metas.values()))

    @classmethod
    def open(cls, client: Elasticsearch, name: str, fingerprint: str | None = None,
             dims: int | None = None) -> "EsIndex":
        """Open `name` (alias or index); refuses a foreign index or another model's (ValueError)."""
        try:
            metas = read_meta(client, name)
        except NotFoundError:
            raise ValueError(f"no Elasticsearch index or alias {name!r}; build it first "
                             f"(dssm index build --es-index {name})") from None
        for index, meta in metas.items():
            if not is_ours(meta):
                raise ValueError(f"index {index} was not built by dssm-search (no {INDEX_FORMAT} _meta)")
        opened = cls(client, name, metas)
        opened.check_model(fingerprint, dims)
        return opened

    def check_model(self, fingerprint: str | None = None, dims: int | None = None) -> None:
        """Refuse a query model with other dims or another fingerprint than the index's (ValueError)."""
        for index, meta in self.metas.items():
            if dims is not None and meta.get("dims") != dims:
                raise ValueError(f"index {index} holds {meta.get('dims')}-dim vectors but the model has {dims}; "
                                 f"rebuild it with this model")
            if fingerprint is not None and meta.get("model_fingerprint") != fingerprint:
                raise ValueError(f"index {index} was built with model {str(meta.get('model_fingerprint'))[:12]}, "
                                 f"not {fingerprint[:12]}; rebuild it with this model or search with that one")

    def search(self, **body) -> list[dict]:
        try:
            return self.client.search(index=self.name, source=False, track_total_hits=False, **body)["hits"]["hits"]
        except ApiError as error:
            raise EsError(f"search on {self.name} failed: {error.meta.status} {error.message}") from None

    def lexical(self, query: str, k: int, filter: dict | None = None,
                fields: Sequence[str] = (LEXICAL_FIELD,)) -> Hits:
        """BM25 over `fields` (default `body`: title + text as one field, as the embedded BM25 scores
        them; `("title", "text")` gives a best-field `multi_match`); `filter` is ES query DSL."""
        check_k(k)
        clause: dict = {"multi_match": {"query": query, "fields": list(fields)}}
        if filter:
            clause = {"bool": {"must": [clause], "filter": [filter]}}
        hits = self.search(query=clause, size=k)
        return Hits([hit["_id"] for hit in hits], [hit["_score"] for hit in hits])

    def semantic(self, vector: Sequence[float], k: int, num_candidates: int | None = None,
                 filter: dict | None = None, exact: bool = False) -> Hits:
        """Top-level kNN; scores are cosines (ES gives `(1 + cos) / 2`). A zero vector has no hits.

        The `hnsw` (not quantised) field already scores every candidate with its exact cosine; there
        is no brute-force mode here (`exact`), raise `num_candidates` for recall instead.
        """
        check_k(k)
        if exact:
            raise ValueError("exact re-ranking is for the embedded index; Elasticsearch hnsw scores are exact "
                             "cosines already: raise --search-k (num_candidates) for recall")
        values = vector_values(vector)
        if values is None:
            return Hits.empty()
        if len(values) != self.meta.get("dims"):
            raise ValueError(f"query vector has {len(values)} dims, index {self.name} has {self.meta.get('dims')}")
        candidates = num_candidates if num_candidates is not None else min(MAX_NUM_CANDIDATES, max(100, 10 * k))
        if not k <= candidates <= MAX_NUM_CANDIDATES:
            raise ValueError(f"num_candidates must be in [k={k}, {MAX_NUM_CANDIDATES}], got {candidates}")
        field = f"{PASSAGES_FIELD}.{VECTOR_FIELD}" if self.meta.get("passages") else VECTOR_FIELD
        knn: dict = {"field": field, "query_vector": values, "k": k, "num_candidates": candidates}
        if filter:
            knn["filter"] = filter
        hits = self.search(knn=knn, size=k)
        return Hits([hit["_id"] for hit in hits], [2.0 * hit["_score"] - 1.0 for hit in hits])


    def titles(self, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        docs = self.client.mget(index=self.name, ids=list(ids), source_includes=["title"])["docs"]
        return {doc["_id"]: doc["_source"].get("title", "") for doc in docs if doc.get("found")}

    def present(self, ids: Iterable[str], chunk: int = 1000) -> set[str]:
        """The given ids that the index holds (multi-get, `chunk` at a time, no source)."""
        ids, found = list(dict.fromkeys(ids)), set()
        for start in range(0, len(ids), chunk):
            docs = self.client.mget(index=self.name, ids=ids[start:start + chunk], source=False)["docs"]
            found.update(doc["_id"] for doc in docs if doc.get("found"))
        return found

    def tags(self, ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        """Document id -> stored tags `[(tag, similarity)]` (built --with-tags); ids without tags absent."""
        if not ids:
            return {}
        docs = self.client.mget(index=self.name, ids=list(ids), source_includes=["tags", "tag_similarities"])["docs"]
        return {doc["_id"]: list(zip(doc["_source"]["tags"], doc["_source"].get("tag_similarities", [])))
                for doc in docs if doc.get("found") and doc["_source"].get("tags")}


class SplitBackend:
    """Lexical hits from one backend and semantic hits from another (ES BM25 + local Annoy)."""

    def __init__(self, lexical_backend, semantic_backend) -> None:
        self.lexical_backend, self.semantic_backend = lexical_backend, semantic_backend

    def lexical(self, query: str, k: int, filter: dict | None = None) -> Hits:
        return self.lexical_backend.lexical(query, k, filter)

    def semantic(self, vector: Sequence[float], k: int, num_candidates: int | None = None,
                 filter: dict | None = None, **extra) -> Hits:
        return self.semantic_backend.semantic(vector, k, num_candidates, filter, **extra)

    def titles(self, ids: Sequence[str]) -> dict[str, str]:
        return self.lexical_backend.titles(ids)

    def tags(self, ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        return self.lexical_backend.tags(ids)


def check_k(k: int) -> None:
    if not isinstance(k, int) or not 1 <= k <= MAX_NUM_CANDIDATES:
        raise ValueError(f"k must be an integer in [1, {MAX_NUM_CANDIDATES}], got {k!r}")
