"""Build, add to and delete from an embedded index directory, atomically.

```
INDEX/
  manifest.json      format, model fingerprint, dims, metric, Annoy/BM25 params, counts, sha256 per file
  documents.sqlite   id, title, text; predicted tags with --with-tags (indexer/store.py)
  vectors.f32 ids.json   float32 [rows, dim] + row ids (indexer/vectors.py)
  annoy.ann          angular Annoy over the non-zero rows (indexer/annoy_index.py)
  bm25.*             BM25 impact matrix (indexer/lexical.py)
  passages.f32 passage_rows.i32   with --passages W:S: passage vectors and their documents' rows
                     (indexer/passages.py); Annoy then holds them too
```
Every change is written into a new generation, `INDEX/.g-NNNNNN.tmp-PID`, renamed to `INDEX/g-NNNNNN`
and made current by replacing the link `INDEX/current` (one atomic rename; the first build writes
`.INDEX.tmp-PID-*` beside and renames it to INDEX). `INDEX/manifest.json`, `INDEX/vectors.f32`, ...
are links through `current`, so `INDEX/NAME` always reads the current generation. A search resolves
`current` once and opens everything from that generation, which no writer changes afterwards: it sees
one version, however many writes happen meanwhile. The generation replaced is kept until the next
write (a search opening it then still finds its files); older ones are removed. An index written
before generations (files directly in INDEX/) is read as it is and becomes generation 1 on its next
write. An interrupted build, add or delete leaves the previous generation current; the next writer
(holding the lock) removes what killed writers left (`.tmp-` directories, generations no longer
current), and a missing INDEX whose copy an older writer left in `.INDEX.old-PID` is put back.
One writer at a time: `.INDEX.lock` beside the index is locked while a build, add or delete runs.
`index add`/`delete` update the document store and the vector file incrementally (no document is
encoded twice) and rebuild BM25 and Annoy from them.

`--with-tags TAGS` (a tag index, indexer/tags.py) stores each document's predicted tags in the document
store; the manifest's `tagging` section records the tag index, k and min_similarity, and `index add`
tags new documents the same way unless given another tag index.
"""
from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from dssm.export import (check_output, describe_directory, leftover_pid, pid_alive, recover_directory,
                         remove_dead_copies, replace_directory)
from indexer.analysis import DEFAULT_ANALYZER, analyzer, check_analyzer, index_analyzer
from indexer.annoy_index import ANNOY_FILE, DEFAULT_N_TREES, DEFAULT_SEARCH_K, METRIC, SEED, build_annoy
from indexer.documents import Document, iter_documents, scan_ids
from indexer.lexical import Bm25Builder, bm25_files
from indexer.manifest import (CURRENT, MANIFEST_FILE, SECTIONS, check_model, generation_dir, read_manifest,
                              verify_files, write_manifest)
from indexer.passages import PASSAGE_FILES, PASSAGES_FILE, PassageWriter, Stacked, copy_passages
from indexer.store import DocumentStore
from indexer.vectors import IDS_FILE, VECTORS_FILE, VectorWriter, open_vectors, read_ids, write_ids

STORE_FILE = "documents.sqlite"
DOCUMENT_INDEX = "a dssm-search document index"   # dssm.export.describe_directory's words for what we write
INDEX_FILES = [STORE_FILE, VECTORS_FILE, IDS_FILE, ANNOY_FILE, *bm25_files()]
BATCH_SIZE = 1024
Progress = Callable[[int], None]  # called with the number of documents just encoded
Tagger = Callable[[list[str], np.ndarray], list]  # (texts, document vectors) -> [[(tag, similarity)], ...]


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@contextmanager
def index_lock(target: Path) -> Iterator[None]:
    """One writer per index: an exclusive lock on `.INDEX.lock` beside it (readers never wait); a
    symlinked INDEX is locked where it points, as every writer follows it."""
    target = Path(target).resolve()
    with open(target.with_name(f".{target.name}.lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another build, add or delete is writing {target}; wait for it to finish") from None
        yield


GENERATION = "g-{:06d}"


def generation_number(name: str) -> int | None:
    """`g-000012` -> 12; None for any other name."""
    digits = name[2:]
    return int(digits) if name.startswith("g-") and digits.isdigit() else None


def generations(index: Path) -> dict[int, Path]:
    """The generation directories of an index, by number."""
    if not index.is_dir():
        return {}
    return {number: path for path in index.iterdir()
            if (number := generation_number(path.name)) is not None and path.is_dir() and not path.is_symlink()}


@contextmanager
def staging(target: Path, wants: str = DOCUMENT_INDEX, force: bool = False) -> Iterator[Path]:
    """A new generation of `target` to write into, made current atomically when the block succeeds,
    removed if not. It first puts back an index lost between two renames and removes what killed
    writers left (call it holding `index_lock(target)`, as document index writers do). A `target`
    that holds anything but `wants` (dssm.export.describe_directory: a model, the other kind of
    index, a user's files) is refused, or with `force` replaced whole by the new index."""
    target = Path(target).resolve()
    recover_directory(target, MANIFEST_FILE)
    check_output(target, wants, force)
    foreign = target.is_dir() and any(target.iterdir()) and describe_directory(target) != wants
    target.parent.mkdir(parents=True, exist_ok=True)
    if not foreign:
        remove_leftovers(target)
    fresh = foreign or not target.exists()
    name = GENERATION.format(max(generations(target), default=0) + 1)
    root = (target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}") if fresh
            else target / f".{name}.tmp-{os.getpid()}")
    work = root / name if fresh else root
    try:
        for directory in dict.fromkeys([root, work]):
            directory.mkdir(mode=0o755)
            directory.chmod(0o755)
        yield work
        if fresh:
            publish(root, name)
            if foreign:
                replace_directory(root, target)     # --force over another artefact: swapped whole
            else:
                os.rename(root, target)
        else:
            os.rename(work, target / name)
            publish(target, name)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def publish(index: Path, name: str) -> None:
    """Make generation `name` of `index` current: replace the link `current` (atomic), point the
    top-level names at it, remove the generations older than the one it replaces."""
    link = index / CURRENT
    if link.is_dir() and not link.is_symlink():   # a copy made by following links: unused, see generation_dir
        shutil.rmtree(link)
    replace_link(index, CURRENT, name)
    names = {path.name for path in (index / name).iterdir() if path.is_file() and not path.name.startswith(".")}
    for path in index.iterdir():              # files of an index written before generations, stale links
        if path.name not in names and not path.name.startswith(".") and path.name != CURRENT \
                and (path.is_symlink() or path.is_file()):
            path.unlink()
    for entry in sorted(names):
        if not (index / entry).is_symlink() or os.readlink(index / entry) != f"{CURRENT}/{entry}":
            replace_link(index, entry, f"{CURRENT}/{entry}")
    remove_old_generations(index)


def replace_link(directory: Path, name: str, points_to: str) -> None:
    """`directory/name` -> `points_to`, atomically (a temporary link renamed over it)."""
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(points_to, tmp)
    os.replace(tmp, directory / name)


def remove_old_generations(index: Path) -> list[str]:
    """Keep the current generation and the one before it (a search may be opening it); remove the
    others (older ones, and newer ones a killed writer left before making them current)."""
    if not (index / CURRENT).is_symlink():
        return []
    current = generation_number(os.readlink(index / CURRENT))
    found = generations(index)
    keep = {current, max((number for number in found if current is not None and number < current), default=None)}
    removed = []
    for number, path in found.items():
        if number not in keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def remove_leftovers(target: Path) -> None:
    """What killed writers left (the caller holds the lock): `.INDEX.tmp-*` and `.INDEX.old-*` beside
    the index, `.*.tmp-PID` inside it, generations no longer current; says so on stderr."""
    removed = remove_dead_copies(target, "tmp") + remove_dead_copies(target, "old")
    if target.is_dir():
        for path in target.iterdir():
            pid = leftover_pid(path, "tmp") if path.name.startswith(".") and ".tmp-" in path.name else None
            if pid is None or pid_alive(pid):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
        removed += remove_old_generations(target)
    if removed:
        print(f"dssm: removed {len(removed)} leftovers of earlier writers of {target} "
              f"({', '.join(sorted(removed)[:3])}{', ...' if len(removed) > 3 else ''})", file=sys.stderr)


def encode_into(documents: Iterable[Document], encoder, store: DocumentStore, writer: VectorWriter,
                batch_size: int, progress: Progress | None, replace: bool = False,
                tagger: Tagger | None = None, passages: PassageWriter | None = None) -> None:
    """Encode documents (document tower) in batches into the store and the vector file; with a
    `tagger`, store each document's predicted tags too; with `passages`, encode their passages."""
    for batch in batched(documents, batch_size):
        texts = [doc.encoder_text() for doc in batch]
        vectors = encoder.encode(texts, side="document", batch_size=batch_size)
        store.add(batch, replace=replace)
        if tagger is not None:
            store.add_tags(zip([doc.id for doc in batch], tagger(texts, vectors)))
        if passages is not None:
            passages.encode(len(writer.ids), batch, encoder, batch_size)
        writer.append([doc.id for doc in batch], vectors)
        if progress is not None:
            progress(len(batch))


def finish(tmp: Path, ids: list[str], store: DocumentStore, model: dict, annoy: dict, analysis,
           carried: dict | None = None, passages: PassageWriter | None = None) -> dict:
    """Write ids, BM25 (from the store, in row order), Annoy (from the vector file, and the passage
    file after it) and the manifest.

    analysis: the lexical analyzer (indexer/analysis.py) of the BM25 side.
    carried: manifest sections kept from the index being updated (tuned fusion, calibration).
    """
    store.commit()
    write_ids(tmp / IDS_FILE, ids)
    builder = Bm25Builder(analysis)
    for doc in store.documents(ids):
        builder.add(doc.encoder_text())
    store.close()
    bm25 = builder.save(tmp)
    vectors = open_vectors(tmp / VECTORS_FILE, len(ids), model["dim"])
    sections, files, annoy_vectors = {}, INDEX_FILES, vectors
    if passages is not None:
        passages.close()
        annoy_vectors = Stacked(vectors, open_vectors(tmp / PASSAGES_FILE, passages.count, model["dim"]))
        sections = {"passages": {**passages.config, "count": passages.count}}
        files = INDEX_FILES + PASSAGE_FILES
    items = build_annoy(annoy_vectors, tmp / ANNOY_FILE, annoy["n_trees"], on_disk_build=annoy["on_disk_build"],
                        seed=annoy["seed"])
    zero = len(ids) - items if passages is None else int(sum(
        np.sum(~np.any(np.asarray(vectors[start:start + 65536]) != 0, axis=1)) for start in range(0, len(ids), 65536)))
    manifest = {"model": model, "metric": METRIC, "annoy": {**annoy, "items": items}, "bm25": bm25,
                "counts": {"documents": len(ids), "zero_vectors": zero}, **sections,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(carried or {})}
    return write_manifest(tmp, manifest, files)


def annoy_params(n_trees: int, search_k: int, on_disk_build: bool) -> dict:
    if n_trees < 1 or search_k < -1 or search_k == 0:
        raise ValueError(f"need n_trees >= 1 and search_k >= 1 (or -1 for Annoy's default), "
                         f"got n_trees={n_trees}, search_k={search_k}")
    return {"n_trees": n_trees, "search_k": search_k, "seed": SEED, "on_disk_build": on_disk_build}


def open_tagging(tagging: dict | None, encoder):
    """A DocumentTagger from `{"index", "k", "min_similarity"}` (None: no tagging), for `encoder`'s model."""
    if not tagging:
        return None
    from indexer.tags import DEFAULT_K, open_tagger
    return open_tagger(tagging["index"], encoder, tagging.get("k", DEFAULT_K), tagging.get("min_similarity"))


def build_index(model_dir: str | Path, corpus: str | Path, out: str | Path, *, encoder=None,
                n_trees: int = DEFAULT_N_TREES, search_k: int = DEFAULT_SEARCH_K, on_duplicate: str = "error",
                on_disk_build: bool = False, batch_size: int = BATCH_SIZE,
                progress: Progress | None = None, tagging: dict | None = None, passages: dict | None = None,
                analyzer_name: str = DEFAULT_ANALYZER, force: bool = False) -> dict:
    """Build an index of `corpus` with the model at `model_dir` into `out`; returns the manifest.

    force: replace an `out` that holds something else (a model, a tag index, other files).
    analyzer_name: the BM25 side's analysis (indexer/analysis.py: english, russian, simple).
    tagging: `{"index": tag index dir, "k", "min_similarity"}` to store each document's predicted tags.
    passages: `{"window", "stride"}` (indexer/passages.py) to encode each document's passages too.
    """
    out, annoy, analysis = Path(out), annoy_params(n_trees, search_k, on_disk_build), analyzer(analyzer_name)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}; e.g. 1024 documents encoded per batch")
    if encoder is None:
        from dssm.export import load_encoder
        encoder = load_encoder(model_dir)
    tagger = open_tagging(tagging, encoder)  # refuses another model's tag index before any encoding
    keep = scan_ids(corpus, on_duplicate)
    if not keep:
        raise ValueError(f"corpus {corpus} has no documents; give a JSONL/TSV/CSV file with id, title, text")
    model = {"fingerprint": encoder.fingerprint, "path": str(Path(model_dir).resolve()), "dim": encoder.dim}
    out.parent.mkdir(parents=True, exist_ok=True)
    check_output(out, DOCUMENT_INDEX, force)  # before any encoding
    with index_lock(out), staging(out, force=force) as tmp:
        store = DocumentStore.create(tmp / STORE_FILE)
        store.connection.execute("PRAGMA journal_mode=OFF")
        writer = VectorWriter(tmp / VECTORS_FILE, encoder.dim)
        passage_writer = PassageWriter(tmp, encoder.dim, passages) if passages else None
        encode_into(iter_documents(corpus, on_duplicate, keep), encoder, store, writer, batch_size, progress,
                    tagger=tagger, passages=passage_writer)
        writer.close()
        manifest = finish(tmp, writer.ids, store, model, annoy, analysis,
                          {"tagging": tagger.describe()} if tagger else None, passage_writer)
    return manifest


def open_for_update(index_dir: Path) -> tuple[dict, list[str], np.ndarray]:
    """The current generation's manifest, ids and vectors, checked in full (the caller holds the lock,
    so the generation stays current)."""
    source = generation_dir(index_dir)
    manifest = read_manifest(source)
    verify_files(source, manifest, shown=index_dir)
    ids = read_ids(source / IDS_FILE)
    return manifest, ids, open_vectors(source / VECTORS_FILE, len(ids), manifest["model"]["dim"])


def rewrite_index(index_dir: Path, manifest: dict, ids: list[str], vectors: np.ndarray, remove: set[str],
                  add: Iterable[Document], encoder, batch_size: int, progress: Progress | None,
                  tagger=None) -> dict:
    """Copy the kept rows, append encoded new documents, rebuild BM25 and Annoy, swap in atomically."""
    annoy = {key: manifest["annoy"][key] for key in ("n_trees", "search_k", "seed", "on_disk_build")}
    source = generation_dir(index_dir)
    with staging(index_dir) as tmp:
        shutil.copy2(source / STORE_FILE, tmp / STORE_FILE)
        store = DocumentStore.open(tmp / STORE_FILE, readonly=False)
        store.delete(remove)
        writer = VectorWriter(tmp / VECTORS_FILE, manifest["model"]["dim"])
        kept = np.array([row for row, doc_id in enumerate(ids) if doc_id not in remove], dtype=np.int64)
        for start in range(0, len(kept), 65536):
            rows = kept[start:start + 65536]
            writer.append([ids[row] for row in rows], np.asarray(vectors[rows]))
        passages = PassageWriter(tmp, manifest["model"]["dim"], manifest["passages"]) if "passages" in manifest else None
        if passages is not None:
            copy_passages(source, manifest, kept, passages)
        encode_into(add, encoder, store, writer, batch_size, progress, tagger=tagger, passages=passages)
        writer.close()
        carried = {key: manifest[key] for key in (*SECTIONS, "tagging") if key in manifest}   # same model: still valid
        if tagger is not None:
            carried["tagging"] = tagger.describe()
        return finish(tmp, writer.ids, store, manifest["model"], annoy, index_analyzer(manifest["bm25"]), carried,
                      passages)


def add_documents(index_dir: str | Path, corpus: str | Path, *, model_dir: str | Path | None = None,
                  encoder=None, on_duplicate: str = "error", batch_size: int = BATCH_SIZE,
                  progress: Progress | None = None, tagging: dict | None = None,
                  analyzer_name: str | None = None) -> dict:
    """Add the documents of `corpus`; ids already in the index are refused unless on_duplicate is
    'last' (the new document replaces the old) or 'first' (the indexed one is kept).

    tagging: as for `build_index`; None tags new documents as the index's `tagging` section says, if any.
    analyzer_name: None keeps the index's analyzer; another name than the index's is refused.
    """
    index_dir = Path(index_dir)
    check_analyzer(read_manifest(index_dir)["bm25"], analyzer_name, index_dir)  # before taking the lock
    with index_lock(index_dir):
        return add_locked(index_dir, corpus, model_dir, encoder, on_duplicate, batch_size, progress, tagging)


def recorded_tagging(manifest: dict, index_dir: Path) -> dict | None:
    """The index's own `tagging` section, refusing one whose tag index is gone."""
    tagging = manifest.get("tagging")
    if tagging and not (Path(tagging["index"]) / MANIFEST_FILE).is_file():
        raise ValueError(f"index {index_dir} was built --with-tags {tagging['index']}, which is gone; "
                         f"pass --with-tags with a tag index built with the index's model")
    return tagging


def add_locked(index_dir: Path, corpus, model_dir, encoder, on_duplicate: str, batch_size: int,
               progress: Progress | None, tagging: dict | None = None) -> dict:
    manifest, ids, vectors = open_for_update(index_dir)
    model_dir = model_dir or manifest["model"]["path"]
    if encoder is None:
        from dssm.export import load_encoder
        encoder = load_encoder(model_dir)
    check_model(manifest, encoder.fingerprint, model_dir, index_dir)
    tagger = open_tagging(tagging or recorded_tagging(manifest, index_dir), encoder)
    keep = scan_ids(corpus, on_duplicate)
    present = set(keep).intersection(ids)
    if present and on_duplicate == "error":
        listed = ", ".join(repr(doc_id) for doc_id in sorted(present)[:10])
        raise ValueError(f"{len(present)} ids of {corpus} are already in the index: {listed}; "
                         f"pass --on-duplicate last to replace them or first to keep the indexed ones")
    remove = present if on_duplicate == "last" else set()
    add = (doc for doc in iter_documents(corpus, on_duplicate, keep) if doc.id not in present or on_duplicate == "last")
    return rewrite_index(index_dir, manifest, ids, vectors, remove, add, encoder, batch_size, progress, tagger)


def delete_documents(index_dir: str | Path, doc_ids: Iterable[str]) -> dict:
    """Delete documents by id; every id must be in the index (unknown ids are listed in the error)."""
    index_dir, remove = Path(index_dir), set(doc_ids)
    read_manifest(index_dir)  # a clear error for a missing index before taking its lock
    with index_lock(index_dir):
        manifest, ids, vectors = open_for_update(index_dir)
        unknown = remove.difference(ids)
        if unknown:
            listed = ", ".join(repr(doc_id) for doc_id in sorted(unknown)[:10])
            raise ValueError(f"{len(unknown)} ids are not in the index: {listed}; check the ids (nothing was deleted)")
        return rewrite_index(index_dir, manifest, ids, vectors, remove, (), None, BATCH_SIZE, None)
