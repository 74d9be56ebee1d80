"""The vector file: raw little-endian float32 `[rows, dim]` (`vectors.f32`) and its ids (`ids.json`).

Row `i` of the file, id `i` of the list, Annoy item `i` and BM25 column `i` are the same document.
The file is memory-mapped for exact re-ranking and is what Annoy is rebuilt from after `index add` /
`index delete`, so documents are never encoded twice.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from indexer.manifest import damaged

VECTORS_FILE = "vectors.f32"
IDS_FILE = "ids.json"
DTYPE = np.dtype("<f4")
UNIT_TOLERANCE = 1e-3   # stored vectors have norm 1 (or 0: no features); float32 rounding stays far below


class VectorWriter:
    """Appends `[n, dim]` blocks to a vector file and collects their ids."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim, self.ids = path, dim, []
        self.handle = open(path, "ab")

    def append(self, ids: list[str], vectors: np.ndarray) -> None:
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape [{len(ids)}, {self.dim}], got {list(vectors.shape)}")
        self.handle.write(np.ascontiguousarray(vectors, dtype=DTYPE).tobytes())
        self.ids.extend(ids)

    def close(self) -> None:
        self.handle.close()


def open_vectors(path: Path, rows: int, dim: int) -> np.ndarray:
    """Memory-mapped float32 `[rows, dim]`, read-only; refuses a file of the wrong size."""
    expected = rows * dim * DTYPE.itemsize
    if not path.is_file() or path.stat().st_size != expected:
        raise ValueError(f"{path} is missing or has the wrong size (expected {expected} bytes for "
                         f"[{rows}, {dim}] float32); the index is damaged: rebuild it with `dssm index build`")
    if rows == 0:
        return np.zeros((0, dim), dtype=DTYPE)
    return np.memmap(path, dtype=DTYPE, mode="r", shape=(rows, dim))


def check_unit(vectors: np.ndarray, numbers: np.ndarray, directory: Path, name: str, what: str = "document row") -> None:
    """Refuse stored vectors [n, dim] (numbered `numbers` [n] in the message) whose norm is neither
    1 nor 0: what search reads from a vector file is bounds-checked, whatever its checksum says."""
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1) if len(vectors) else np.zeros(0)
    bad = ~((np.abs(norms - 1) <= UNIT_TOLERANCE) | (norms == 0))
    if np.any(bad):
        first = int(np.argmax(bad))
        raise damaged(directory, name, f"holds a vector of norm {norms[first]:.6g} for {what} {int(numbers[first])} "
                                       f"(stored vectors are unit length: the file is corrupt)")


def write_vectors(path: Path, vectors: np.ndarray) -> None:
    np.ascontiguousarray(vectors, dtype=DTYPE).tofile(path)


def write_ids(path: Path, ids: list[str]) -> None:
    path.write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")


def read_ids(path: Path) -> list[str]:
    return json.loads(path.read_text(encoding="utf-8"))


def exact_search(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force cosine top k of unit `vectors` [n, dim] against a unit `query` [dim]: (rows, cosines)."""
    scores = vectors @ query.astype(DTYPE)
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    rows = np.argpartition(-scores, k - 1)[:k]
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    return rows, scores[rows].astype(np.float64)
