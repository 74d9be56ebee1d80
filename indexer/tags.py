"""Zero-shot and one-shot tagging: texts and tags in one embedding space (issue 7).

A text is embedded with the query tower, a tag with the document tower; the letter-trigram towers
embed any string, so a tag never seen in training can be assigned from its name (zero-shot). A tag
given example texts is instead the L2-normalised mean of the examples' query-tower vectors (one-shot,
the prototype of Snell et al. 2017, "Prototypical Networks"). A text's tags are the tags whose
vectors have the highest cosine with its vector.

Tag index directory (docs/FORMAT.md section 4), written atomically (temp dir beside it, then rename):
```
TAGS/
  manifest.json   format "dssm-search-tags", kind "tags", model fingerprint, dim, Annoy params, counts, sha256 per file
  tags.json       the tag names; row i of the vectors and Annoy item i are tag i
  vectors.f32     float32 [tags, dim] unit rows (exact search, rebuilds)
  annoy.ann       angular Annoy over the rows (indexer/annoy_index.py)
```
Search is exact (one matrix product per batch) up to EXACT_TAGS tags and Annoy above that.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from dssm.data import ReadStats, read_jsonl
from dssm.tagdata import check_tag
from indexer.annoy_index import ANNOY_FILE, METRIC, SEED, AnnoySearcher, build_annoy
from indexer.manifest import MANIFEST_FILE, check_model, describe_files, verify_files
from indexer.vectors import DTYPE, VECTORS_FILE, open_vectors, write_vectors

FORMAT = "dssm-search-tags"
TAG_INDEX = "a dssm-search tag index"   # dssm.export.describe_directory's words for what we write
FORMAT_VERSION = 1
KIND = "tags"
TAGS_FILE = "tags.json"
FILES = [TAGS_FILE, VECTORS_FILE, ANNOY_FILE]
DEFAULT_N_TREES = 50         # at 200,000 tags: recall@10 ~0.94 at search_k 20,000 (20 trees: 0.89)
DEFAULT_SEARCH_K = 20_000   # Annoy nodes inspected per text; recall@10 vs exact in benchmarks/out/tags.md
EXACT_TAGS = 20_000         # up to this many tags, search is an exact matrix product
DEFAULT_K = 5
BATCH = 256                 # texts per encode block
SCORES_PER_BLOCK = 4_000_000  # exact search: texts x tags scored at once (16 MB of float32)

Prediction = list[tuple[str, float]]  # (tag, cosine), best first


def tag_vectors(encoder, tags: list[str], examples: dict[str, list[str]] | None = None) -> np.ndarray:
    """Unit tag vectors, float32 [len(tags), dim].

    Zero-shot: the tag's name on the document tower. One-shot: a tag with example texts in `examples`
    is the L2-normalised mean of the examples' query-tower vectors (examples without features, whose
    vector is zero, are left out of the mean; a tag whose examples all lack features is refused).
    """
    examples = examples or {}
    vectors = encoder.encode(list(tags), side="document")
    for row, tag in enumerate(tags):
        texts = examples.get(tag)
        if not texts:
            continue
        example_vectors = encoder.encode(list(texts), side="query")
        mean = example_vectors[np.any(example_vectors != 0, axis=1)].sum(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm == 0.0:
            raise ValueError(f"tag {tag!r}: none of its {len(texts)} example texts has a letter or digit; "
                             f"give examples with words, or drop them to embed the tag's name")
        vectors[row] = mean / norm
    return vectors.astype(np.float32, copy=False)


def read_tag_examples(path: str | Path) -> dict[str, list[str]]:
    """JSONL `{"tag", "example"}` lines (`"example"` a text or a list of texts) -> tag -> example texts."""
    examples: dict[str, list[str]] = {}
    for number, record in enumerate(read_jsonl(path, ReadStats(), ("tag", "example")), start=1):
        tag = check_tag(record["tag"], f"{path}:{number}")
        texts = record["example"] if isinstance(record["example"], list) else [record["example"]]
        if not texts or not all(isinstance(text, str) and text.strip() for text in texts):
            raise ValueError(f"{path}:{number}: \"example\" must be a non-empty text (or a list of them); fix the line")
        examples.setdefault(tag, []).extend(texts)
    if not examples:
        raise ValueError(f"{path}: no examples; give JSONL {{\"tag\", \"example\"}} lines")
    return examples


def read_tags(path: str | Path) -> list[str]:
    """The tags to index: a tag list (one per line, or JSONL `{"tag"}`), or every tag used in a tagged
    JSONL file (`{"text", "tags": [...]}`, the first line decides); dssm/tagdata.py checks them."""
    from dssm.data import read_lines
    from dssm.tagdata import load_tagged, read_tag_list

    if str(path).endswith((".jsonl", ".json")):
        first = next((line for _, line in read_lines(path, ReadStats())), "")
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            record = None  # read_tag_list names the bad line
        if isinstance(record, dict) and "tags" in record:
            return load_tagged(path).vocabulary()
    return read_tag_list(path)


def build_tag_index(model_dir: str | Path, tags: Sequence[str], out_dir: str | Path,
                    examples: dict[str, list[str]] | None = None, n_trees: int = DEFAULT_N_TREES,
                    search_k: int = DEFAULT_SEARCH_K, encoder=None, force: bool = False) -> dict:
    """Embed `tags` (plus the tags of `examples` not among them, appended) and write a tag index to
    `out_dir` atomically; returns its manifest. force: replace an `out_dir` holding something else."""
    examples = examples or {}
    tags = list(dict.fromkeys([*tags, *examples]))
    if not tags:
        raise ValueError("no tags to index; give a tag list with one tag per line")
    if n_trees < 1 or search_k == 0 or search_k < -1:
        raise ValueError(f"need n_trees >= 1 and search_k >= 1 (or -1), got n_trees={n_trees}, search_k={search_k}")
    if encoder is None:
        from dssm.export import load_encoder
        encoder = load_encoder(model_dir)
    vectors = tag_vectors(encoder, tags, examples)
    from indexer.build import staging  # temp dir beside out_dir, renamed into place (lazy: keeps scipy out of predict)

    with staging(Path(out_dir), TAG_INDEX, force) as tmp:
        (tmp / TAGS_FILE).write_text(json.dumps(tags, ensure_ascii=False), encoding="utf-8")
        write_vectors(tmp / VECTORS_FILE, vectors)
        items = build_annoy(vectors, tmp / ANNOY_FILE, n_trees, seed=SEED)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": KIND,
                    "model": {"fingerprint": encoder.fingerprint, "path": str(Path(model_dir).resolve()),
                              "dim": encoder.dim},
                    "metric": METRIC, "annoy": {"n_trees": n_trees, "search_k": search_k, "seed": SEED, "items": items},
                    "counts": {"tags": len(tags), "one_shot": sum(1 for tag in tags if examples.get(tag)),
                               "zero_vectors": len(tags) - items},
                    "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "files": describe_files(tmp, FILES)}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def read_tag_manifest(directory: str | Path) -> dict:
    """The tag index's manifest; a missing, foreign or other-version one is refused, naming the fix."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    fix = f"build it with `dssm tag index --model MODEL --tags TAGS --out {directory}`"
    if not path.is_file():
        raise ValueError(f"{directory} is not a tag index (no {MANIFEST_FILE}); {fix}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is corrupt ({error}); {fix}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("kind") != KIND:
        raise ValueError(f"{directory} is not a tag index (manifest format {manifest.get('format') if isinstance(manifest, dict) else None!r}); {fix}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory} has tag index format version {manifest.get('format_version')}, this "
                         f"dssm-search reads version {FORMAT_VERSION}; {fix}")
    return manifest


class TagIndex:
    """Tags of texts: `predict(texts, k, min_similarity) -> [[(tag, cosine), ...] per text]`."""

    def __init__(self, directory: Path, manifest: dict, encoder) -> None:
        self.directory, self.manifest, self.encoder = directory, manifest, encoder
        self.tags: list[str] = json.loads((directory / TAGS_FILE).read_text(encoding="utf-8"))
        if len(self.tags) != manifest["counts"]["tags"]:
            raise ValueError(f"tag index {directory}: {TAGS_FILE} lists {len(self.tags)} tags, the manifest "
                             f"{manifest['counts']['tags']}; rebuild it with `dssm tag index`")
        self.vectors = open_vectors(directory / VECTORS_FILE, len(self.tags), manifest["model"]["dim"])
        self.annoy = AnnoySearcher(directory / ANNOY_FILE, manifest["model"]["dim"], manifest["annoy"]["items"])
        self.search_k = manifest["annoy"]["search_k"]

    @classmethod
    def open(cls, directory: str | Path, encoder, verify: str = "quick",
             model_dir: str | Path | None = None) -> "TagIndex":
        """Open a tag index for `encoder`'s model (at `model_dir`, for messages); refuses another
        model's index and damaged files (`verify`: quick | full checksums)."""
        directory = Path(directory)
        manifest = read_tag_manifest(directory)
        check_model(manifest, encoder.fingerprint, model_dir or "(given)", directory, label="tag index",
                    rebuild=f"rebuild it with `dssm tag index --model {model_dir or 'MODEL'} --tags TAGS --out {directory}`",
                    otherwise="use the model it was built with")
        verify_files(directory, manifest, verify, names=FILES, label="tag index", rebuild="dssm tag index")
        try:
            return cls(directory, manifest, encoder)
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"tag index {directory} could not be opened ({error}); rebuild it with `dssm tag index`") from None

    def __len__(self) -> int:
        return len(self.tags)

    @property
    def exact(self) -> bool:
        return len(self.tags) <= EXACT_TAGS

    def predict(self, texts: Sequence[str], k: int = DEFAULT_K, min_similarity: float | None = None,
                exact: bool | None = None, search_k: int | None = None) -> list[Prediction]:
        """Best `k` tags of each text (query tower), cosine >= `min_similarity`; a text without features
        gets none. `exact` (default: up to EXACT_TAGS tags) scores every tag; else Annoy with `search_k`."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts, not one string")
        predictions: list[Prediction] = []
        for start in range(0, len(texts), BATCH):
            vectors = self.encoder.encode(list(texts[start:start + BATCH]), side="query", batch_size=BATCH)
            predictions.extend(self.predict_vectors(vectors, k, min_similarity, exact, search_k))
        return predictions

    def predict_vectors(self, vectors: np.ndarray, k: int = DEFAULT_K, min_similarity: float | None = None,
                        exact: bool | None = None, search_k: int | None = None) -> list[Prediction]:
        """`predict` for query-tower vectors float32 [n, dim] already computed."""
        check_prediction(k, min_similarity)
        if exact if exact is not None else self.exact:
            found = exact_top_k(self.vectors, vectors, k)
        else:
            search_k = self.search_k if search_k is None else search_k
            found = [self.annoy.search(vector, k, search_k) for vector in vectors]
        floor = -np.inf if min_similarity is None else min_similarity
        return [[(self.tags[row], float(score)) for row, score in zip(rows, scores) if score >= floor]
                for rows, scores in found]


def open_tag_index(directory: str | Path, model_dir: str | Path | None = None) -> TagIndex:
    """A tag index and its model: `model_dir`, else the one recorded in the tag index's manifest."""
    manifest = read_tag_manifest(directory)
    model_dir = model_dir or manifest["model"]["path"]
    if not Path(model_dir).is_dir():
        raise ValueError(f"model {model_dir} (recorded in tag index {directory}) is gone; "
                         f"pass --model with the model the tag index was built with")
    from dssm.export import load_encoder
    return TagIndex.open(directory, load_encoder(model_dir), model_dir=model_dir)


def predict_corpus(index: TagIndex, corpus: str | Path, k: int = DEFAULT_K, min_similarity: float | None = None,
                   batch_size: int = 1024) -> Iterator[tuple[str, list[list]]]:
    """`(id, [[tag, similarity], ...])` for each document of a corpus (JSONL/TSV/CSV, indexer/documents.py)."""
    from indexer.build import batched
    from indexer.documents import iter_documents

    check_prediction(k, min_similarity)
    for batch in batched(iter_documents(corpus), batch_size):
        predictions = index.predict([doc.encoder_text() for doc in batch], k, min_similarity)
        yield from ((doc.id, [list(pair) for pair in tags]) for doc, tags in zip(batch, predictions))


def check_prediction(k: int, min_similarity: float | None) -> None:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (tags per text) must be a positive integer, got {k!r}")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise ValueError(f"min_similarity is a cosine in [-1, 1], got {min_similarity!r}")


def exact_top_k(tag_vectors_: np.ndarray, vectors: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row of `vectors` [n, dim]: (tag rows, cosines) of its k best tags, cosine descending then row.
    A zero vector (no features) has none."""
    found, rows_per_block = [], max(1, SCORES_PER_BLOCK // max(len(tag_vectors_), 1))
    for start in range(0, len(vectors), rows_per_block):
        block = np.asarray(vectors[start:start + rows_per_block], dtype=DTYPE)
        scores = block @ np.asarray(tag_vectors_).T                          # [block, tags]
        top = min(k, scores.shape[1])
        rows = np.argpartition(-scores, top - 1, axis=1)[:, :top] if top else np.zeros((len(block), 0), int)
        for vector, row_scores, candidates in zip(block, scores, rows):
            if not np.any(vector):
                found.append((np.zeros(0, dtype=np.int64), np.zeros(0)))
                continue
            order = np.lexsort((candidates, -row_scores[candidates]))
            found.append((candidates[order], row_scores[candidates[order]].astype(np.float64)))
    return found


# --- tags of documents in an index ------------------------------------------------------------------


@dataclass(frozen=True)
class TagFilter:
    """`dssm search --tag`: a document passes when it carries every one of `tags`."""

    tags: tuple[str, ...]

    @classmethod
    def of(cls, tags: Sequence[str]) -> "TagFilter | None":
        tags = tuple(dict.fromkeys(tag.strip() for tag in tags))
        if any(not tag for tag in tags):
            raise ValueError("--tag needs a tag name, got an empty one")
        return cls(tags) if tags else None

    def es_query(self) -> dict:
        """Elasticsearch filter: one `terms` clause per tag on the keyword field `tags` (all must match)."""
        return {"bool": {"filter": [{"terms": {"tags": [tag]}} for tag in self.tags]}}


@dataclass(frozen=True)
class DocumentTagger:
    """Tags stored with each document of an index built `--with-tags`: the best `k` above `min_similarity`."""

    index: TagIndex
    k: int = DEFAULT_K
    min_similarity: float | None = 0.5

    def __call__(self, texts: Sequence[str], document_vectors: np.ndarray) -> list[Prediction]:
        """Tags of documents given their texts and document-tower vectors (reused when both towers are one)."""
        shared = self.index.encoder.config["towers"]["query"] == self.index.encoder.config["towers"]["document"]
        vectors = document_vectors if shared else self.index.encoder.encode(list(texts), side="query")
        return self.index.predict_vectors(vectors, self.k, self.min_similarity)

    def describe(self) -> dict:
        """The index manifest's `tagging` section."""
        return {"index": str(self.index.directory.resolve()), "tags": len(self.index), "k": self.k,
                "min_similarity": self.min_similarity}


def open_tagger(tags_dir: str | Path, encoder, k: int = DEFAULT_K, min_similarity: float | None = 0.5) -> DocumentTagger:
    check_prediction(k, min_similarity)
    return DocumentTagger(TagIndex.open(tags_dir, encoder), k, min_similarity)

