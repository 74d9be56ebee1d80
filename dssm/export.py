"""The model directory (docs/FORMAT.md section 2) and the TensorFlow-free numpy encoder.

`save_model` writes config.json + one little-endian float32 file per tensor + a fingerprint;
`load_encoder(dir).encode(texts)` reads them back with numpy only. This module must never import
TensorFlow or Keras: the search path (and a cold `dssm search`) depends on that.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse

from dssm.config import FeaturiserConfig, TowerConfig, from_dict, to_dict
from dssm.featurise import Featuriser

FORMAT = "dssm-search-model"
FORMAT_VERSION = 1
SIDES = ("query", "document")
WEIGHT_DTYPE = np.dtype("<f4")


def tower_prefixes(tower: TowerConfig) -> dict[str, str]:
    """Side -> weight prefix: both sides share 'tower' unless the towers are asymmetric."""
    if tower.shared:
        return {"query": "tower", "document": "tower"}
    return {"query": "query_tower", "document": "document_tower"}


def weight_shapes(featuriser: FeaturiserConfig, tower: TowerConfig, prefix: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of one tower's tensors, in manifest order."""
    layers = tower.layers
    shapes = {f"{prefix}/embedding": (featuriser.buckets + 1, layers[0]), f"{prefix}/bias_0": (layers[0],)}
    for k in range(1, len(layers)):
        shapes[f"{prefix}/kernel_{k}"] = (layers[k - 1], layers[k])
        shapes[f"{prefix}/bias_{k}"] = (layers[k],)
    return shapes


def all_weight_shapes(featuriser: FeaturiserConfig, tower: TowerConfig) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for prefix in dict.fromkeys(tower_prefixes(tower).values()):
        shapes.update(weight_shapes(featuriser, tower, prefix))
    return shapes


def random_weights(featuriser: FeaturiserConfig, tower: TowerConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels, small uniform embeddings and biases: an untrained model for tests and golden files."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in all_weight_shapes(featuriser, tower).items():
        limit = np.sqrt(6.0 / (shape[0] + shape[1])) if "kernel" in name else 0.05 if "embedding" in name else 0.1
        weights[name] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
    return weights


def _canonical(config: dict) -> bytes:
    core = {key: value for key, value in config.items() if key not in ("fingerprint", "training")}
    return json.dumps(core, sort_keys=True, separators=(",", ":")).encode("utf-8")


def fingerprint(config: dict, model_dir: Path) -> str:
    """sha256 over the canonical config and the weight files in manifest order (FORMAT.md 2.3)."""
    digest = hashlib.sha256(_canonical(config))
    for entry in config["weights"]:
        with open(model_dir / entry["file"], "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def save_model(out_dir: str | Path, featuriser: FeaturiserConfig, tower: TowerConfig,
               weights: dict[str, np.ndarray], training: dict | None = None,
               keras_writer=None) -> str:
    """Write a model directory atomically (temp dir beside it, then rename); returns the fingerprint.

    keras_writer, if given, is called with the path `<tmp>/keras/model.keras` to save the Keras model.
    """
    out_dir = Path(out_dir)
    shapes = all_weight_shapes(featuriser, tower)
    if set(weights) != set(shapes):
        raise ValueError(f"weights {sorted(weights)} do not match the config's tensors {sorted(shapes)}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)                         # mkdtemp makes 0700; models are read by other users (ES)
        (tmp / "weights").mkdir()
        manifest = []
        for name, shape in shapes.items():
            array = np.ascontiguousarray(weights[name], dtype=WEIGHT_DTYPE)
            if array.shape != shape:
                raise ValueError(f"tensor {name} has shape {array.shape}, the config needs {shape}")
            file = f"weights/{name.replace('/', '.')}.f32"
            array.tofile(tmp / file)
            manifest.append({"name": name, "file": file, "shape": list(shape)})
        config = {"format": FORMAT, "format_version": FORMAT_VERSION,
                  "featuriser": to_dict(featuriser), "tower": to_dict(tower),
                  "towers": tower_prefixes(tower), "weights": manifest}
        config["fingerprint"] = fingerprint(config, tmp)
        if training:
            config["training"] = training
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        if keras_writer is not None:
            (tmp / "keras").mkdir()
            keras_writer(tmp / "keras" / "model.keras")
        replace_directory(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return config["fingerprint"]


ARTEFACTS = {"dssm-search-index": "a dssm-search document index", "dssm-search-tags": "a dssm-search tag index"}


def describe_directory(path: Path) -> str:
    """What `path` holds, in words: a model, a document or tag index, a file, or other files."""
    if path.is_file() or (path.exists() and not path.is_dir()):
        return "a file"
    if (path / "config.json").is_file():
        return "a dssm model"
    try:
        found = json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        found = None
    if found in ARTEFACTS:
        return ARTEFACTS[found]
    entries = sum(1 for _ in path.iterdir())
    return f"a directory of {entries} entries that dssm-search did not write"


def check_output(out: str | Path, wants: str, force: bool, option: str = "--out") -> None:
    """Refuse an output path that holds something other than `wants` (a describe_directory phrase, e.g.
    "a dssm model") unless `force`: writing there would replace a user's files or another artefact."""
    out = Path(out)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    found = describe_directory(out)
    if found != wants and not (force and out.is_dir()):
        fix = f"choose another {option}" + ("" if found == "a file" else " or pass --force to replace it")
        raise ValueError(f"{out} holds {found}, not {wants}; {fix}")


def replace_directory(new: Path, target: Path) -> None:
    """Swap `new` into place of `target`; the old directory is removed only after the rename.

    A writer killed between the two renames leaves no `target` and the old copy in
    `.TARGET.old-PID`: `recover_directory` puts it back (called here first, and by readers that find
    `target` missing); the `.old-PID` copies of dead writers beside a present `target` are removed.
    """
    recover_directory(target)
    remove_dead_copies(target, "old")
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (another user's process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_pid(path: Path, kind: str) -> int | None:
    """The writer's pid in a `.NAME.KIND-PID[-...]` leftover name, None if the name has none."""
    tail = path.name.rsplit(f".{kind}-", 1)[-1]
    head = tail.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def dead_copies(target: Path, kind: str) -> list[Path]:
    """`.TARGET.KIND-*` directories beside `target` whose writer is gone (a name without a pid counts
    as gone: only writers of older versions wrote those), newest first."""
    prefix = f".{target.name}.{kind}-"
    found = [path for path in target.parent.iterdir()
             if path.name.startswith(prefix) and path.is_dir() and not path.is_symlink()
             and not (leftover_pid(path, kind) is not None and pid_alive(leftover_pid(path, kind)))]
    return sorted(found, key=lambda path: path.stat().st_mtime_ns, reverse=True)


def remove_dead_copies(target: Path, kind: str) -> list[str]:
    """Remove the `.TARGET.KIND-*` leftovers of dead writers beside `target` (kind: tmp | old; an
    `old` copy only while `target` exists, else it is the copy to recover); returns their names."""
    if kind == "old" and not target.exists():
        return []
    removed = []
    for path in dead_copies(target, kind):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def recover_directory(target: Path, marker: str | None = None) -> bool:
    """Put back the newest complete `.TARGET.old-PID` copy of a dead writer when `target` is missing
    (a crash between the two renames of `replace_directory`), saying so on stderr; `marker`: a file
    that a complete copy holds. Returns whether it recovered one."""
    if target.exists() or target.is_symlink() or not target.parent.is_dir():
        return False
    for old in dead_copies(target, "old"):
        if marker is not None and not (old / marker).is_file():
            continue
        try:
            os.rename(old, target)
        except OSError:                 # another process recovered it first
            return target.exists()
        print(f"dssm: recovered {target} from {old.name}, left by a writer killed while replacing it",
              file=sys.stderr)
        return True
    return False


def read_config(model_dir: str | Path) -> dict:
    """config.json of a model directory, with a clear error when it is missing or not ours."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"{model_dir} is not a dssm model directory (no config.json); "
                         "train one with 'dssm train' or pass the directory it wrote")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); re-export the model") from None
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {config.get('format')!r} v{config.get('format_version')} "
                         f"is not {FORMAT} v{FORMAT_VERSION}; re-export the model with this version")
    return config


class Encoder:
    """Numpy implementation of the tower (FORMAT.md 2.2): texts -> unit vectors, float32 [n, dim]."""

    def __init__(self, config: dict, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        self.featuriser_config = from_dict(FeaturiserConfig, config["featuriser"])
        self.tower_config = from_dict(TowerConfig, config["tower"])
        self.featuriser = Featuriser(self.featuriser_config)
        self.fingerprint: str = config["fingerprint"]
        self.dim = self.tower_config.dim
        self._weights = weights

    def _layers(self, side: str) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        prefix = self.config["towers"][side]
        w = self._weights
        dense = [(w[f"{prefix}/kernel_{k}"], w[f"{prefix}/bias_{k}"])
                 for k in range(1, len(self.tower_config.layers))]
        return w[f"{prefix}/embedding"], [(None, w[f"{prefix}/bias_0"])] + dense

    def encode_ids(self, ids: np.ndarray, offsets: np.ndarray, side: str = "query") -> np.ndarray:
        """Encode CSR id sequences (Featuriser.batch) -> float32 [n, dim]."""
        embedding, layers = self._layers(side)
        n = len(offsets) - 1
        counts = np.diff(offsets)
        scale = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts).astype(np.float32)
        bag = scipy.sparse.csr_matrix((scale, ids, offsets), shape=(n, embedding.shape[0]))
        hidden = np.tanh(bag @ embedding + layers[0][1])
        for kernel, bias in layers[1:]:
            hidden = np.tanh(hidden @ kernel + bias)
        norms = np.linalg.norm(hidden, axis=1, keepdims=True)
        vectors = np.divide(hidden, norms, out=np.zeros_like(hidden), where=norms > 0)
        vectors[counts == 0] = 0.0
        return vectors.astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str], side: str = "query", batch_size: int = 2048) -> np.ndarray:
        """Encode texts -> float32 [n, dim] unit vectors; texts with no features give zero rows."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            ids, offsets = self.featuriser.batch(texts[start:start + batch_size])
            out[start:start + batch_size] = self.encode_ids(ids, offsets, side)
        return out


def load_weights(model_dir: Path, config: dict) -> dict[str, np.ndarray]:
    weights = {}
    for entry in config["weights"]:
        path = model_dir / entry["file"]
        shape = tuple(entry["shape"])
        expected = int(np.prod(shape)) * WEIGHT_DTYPE.itemsize
        if not path.is_file() or path.stat().st_size != expected:
            raise ValueError(f"{path} is missing or truncated (expected {expected} bytes for shape "
                             f"{list(shape)}); re-export the model")
        weights[entry["name"]] = np.fromfile(path, dtype=WEIGHT_DTYPE).reshape(shape)
    return weights


def load_encoder(model_dir: str | Path, verify: bool = True) -> Encoder:
    """Load a model directory for encoding with numpy only; verify=True recomputes the fingerprint."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    weights = load_weights(model_dir, config)
    if verify:
        actual = fingerprint(config, model_dir)
        if actual != config.get("fingerprint"):
            raise ValueError(f"model {model_dir} fails its checksum (stored fingerprint "
                             f"{config.get('fingerprint')}, files give {actual}); re-export the model")
    return Encoder(config, weights)
