"""`manifest.json` of an embedded index: what was built, with which model, and a checksum per file.

```json
{"format": "dssm-search-index", "format_version": 1,
 "model": {"fingerprint": "<64 hex>", "path": "/abs/models/demo", "dim": 128},
 "metric": "angular", "annoy": {"n_trees": 50, "search_k": 20000, "seed": 42, "items": 99990},
 "bm25": {"k1": 1.2, "b": 0.75, "documents": 100000, "terms": 181234, "average_length": 61.2},
 "counts": {"documents": 100000, "zero_vectors": 10},
 "files": {"vectors.f32": {"bytes": 51200000, "sha256": "...", "sample_sha256": "..."}, ...}}
```
Loading checks the format, every file's size and checksum (`verify_files`), and the model
fingerprint; each refusal names the fix. Search checks the whole of every file ("cached": its sha256,
remembered per file identity in `checked-files.json` under DSSM_CACHE_DIR, else
$XDG_CACHE_HOME/dssm-search or ~/.cache/dssm-search, so a warm open reads nothing; a file changed in
place changes its identity and is hashed again).

Since the layout with generations (indexer/build.py), the files live in `INDEX/g-NNNNNN/`, the one
`INDEX/current` points to; `INDEX/manifest.json` etc. are links through `current`, so code that reads
`INDEX/NAME` keeps working; `generation_dir` gives the directory a reader should open everything from.

Optional sections written after the build by
`update_sections` (`dssm tune-fusion`, `dssm calibrate`): `"fusion"` (the tuned default fusion,
indexer/tuning.py) and `"calibration"` (cosine thresholds per false-accept rate, indexer/calibration.py).
They describe no file, so adding them leaves every checksum valid.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

FORMAT = "dssm-search-index"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"


SAMPLE_BYTES = 1 << 20  # "quick" checks hash the first and last MiB of each file
VERIFY = ("quick", "cached", "full")
CURRENT = "current"      # INDEX/current -> g-NNNNNN, the generation readers open (indexer/build.py)
CACHE_FILE = "checked-files.json"
CACHE_ENTRIES = 4096     # file identities remembered (the oldest are forgotten first)
SETTLED_NS = 2 * 10 ** 9  # a file changed less than 2 s ago is not remembered: its mtime may not move
# on a change within the file system's timestamp granularity ("racily clean", as git calls it)


class DamagedIndexError(ValueError):
    """An index file is missing, truncated, corrupt or holds values out of range."""


def damaged(directory: Path, name: str, problem: str, rebuild: str = "dssm index build",
            label: str = "index") -> DamagedIndexError:
    """The one-line error for a damaged file: what is wrong and the fix."""
    check = f" `dssm index verify --index {directory}` checks every file;" if label == "index" else ""
    return DamagedIndexError(f"{label} {directory}: {name} {problem};{check} rebuild it with `{rebuild}`")


def recover_index(directory: Path) -> None:
    """A missing index whose complete copy a killed writer left beside it is put back (with a line on
    stderr; dssm.export.recover_directory)."""
    if not directory.exists():
        from dssm.export import recover_directory   # lazy: keeps numpy/scipy out of this module's import

        recover_directory(directory, MANIFEST_FILE)


def generation_dir(directory: str | Path) -> Path:
    """The directory holding the index's files: `directory/g-NNNNNN` that `directory/current`
    points to, or `directory` itself (an index written before generations, or a copy of one made by
    following links). Puts back an index lost by a writer killed between two renames."""
    directory = Path(directory)
    recover_index(directory)
    link = directory / CURRENT
    if link.is_symlink():
        return directory / os.readlink(link)     # writers replace the link by a rename: always one target
    return directory


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sample_sha256(path: Path) -> str:
    """sha256 of the first and last MiB (the whole file when it is at most 2 MiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        size = path.stat().st_size
        if size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            digest.update(handle.read())
    return digest.hexdigest()


def describe_files(directory: Path, names: list[str]) -> dict[str, dict]:
    return {name: {"bytes": (directory / name).stat().st_size, "sha256": sha256_file(directory / name),
                   "sample_sha256": sample_sha256(directory / name)} for name in names}


def write_manifest(directory: Path, manifest: dict, files: list[str]) -> dict:
    """Add format fields and the size/sha256 of `files`, write manifest.json; returns the manifest."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest,
                "files": describe_files(directory, files)}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


SECTIONS = ("fusion", "calibration")  # written by update_sections; the build's fields are not


def update_sections(directory: str | Path, sections: dict[str, dict]) -> dict:
    """Set optional manifest `sections` (see SECTIONS) atomically; returns the new manifest.

    Holds the index's writer lock (no `index add`/`delete` can swap the directory meanwhile), checks
    the files first (a corrupt index is not tuned), writes a temporary file beside manifest.json and
    renames it over (a reader sees the old or the new manifest, never half of one).
    """
    from indexer.build import index_lock  # build imports this module

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown manifest sections {unknown}; choose from {list(SECTIONS)}")
    directory = Path(directory)
    read_manifest(directory)  # a clear error for a missing index before taking its lock
    with index_lock(directory.resolve()):
        generation = generation_dir(directory)      # the lock keeps it current
        manifest = read_manifest(generation)
        verify_files(generation, manifest, "cached")
        manifest.update(sections)
        handle, tmp = tempfile.mkstemp(prefix=f".{MANIFEST_FILE}.", dir=generation)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, generation / MANIFEST_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return manifest


def read_manifest(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    recover_index(directory)
    if not directory.is_dir():
        raise ValueError(f"index {directory} does not exist; build it with `dssm index build --out {directory}`")
    if not path.is_file():
        raise ValueError(f"{directory} is not a dssm index (no {MANIFEST_FILE}); "
                         f"build one with `dssm index build --out {directory}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is corrupt ({error}); rebuild the index with `dssm index build`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dssm-search index manifest; rebuild the index with `dssm index build`")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory} has index format version {manifest.get('format_version')}, this "
                         f"dssm-search reads version {FORMAT_VERSION}; rebuild it with `dssm index build`")
    missing = missing_fields(manifest)
    if missing:
        listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"{path} lacks {listed} (incomplete or from an older build); "
                         f"rebuild the index with `dssm index build`")
    return manifest


def missing_fields(manifest: dict) -> list[str]:
    """The required manifest fields that are absent, as dotted paths."""
    required = {"model": ("fingerprint", "path", "dim"), "annoy": ("n_trees", "search_k", "seed", "items"),
                "bm25": ("documents",), "counts": ("documents",), "files": ()}
    missing = [key for key in required if not isinstance(manifest.get(key), dict)]
    missing += [f"{key}.{field}" for key, fields in required.items() if key not in missing
                for field in fields if field not in manifest[key]]
    missing += [f"files.{name}.{field}" for name, entry in manifest.get("files", {}).items()
                for field in ("bytes", "sha256", "sample_sha256") if not isinstance(entry, dict) or field not in entry]
    return missing


def verify_files(directory: Path, manifest: dict, verify: str = "full", names: list[str] | None = None,
                 label: str = "index", rebuild: str = "dssm index build", shown: Path | None = None) -> None:
    """Refuse a missing, truncated or altered file of the index (or of a tag index: `names`, `label`
    and the `rebuild` command in the messages; `shown`: the index path the messages name).

    `full` recomputes every file's sha256 (what `index add`/`delete` and `dssm index verify` do);
    `cached` (search) too, except for files whose identity (device, inode, size, mtime, ctime) was
    hashed before (`ChecksumCache`), so a warm open costs a stat per file; `quick` checks sizes and
    the sha256 of each file's first and last MiB only, so its cost does not grow with the index.
    """
    if verify not in VERIFY:
        raise ValueError(f"unknown verification {verify!r}; choose from {list(VERIFY)}")
    files, shown = manifest.get("files", {}), shown or directory
    names = list(files) if names is None else names
    for name in names:
        expected, path = files.get(name), directory / name
        if not isinstance(expected, dict) or not path.is_file():
            raise DamagedIndexError(f"{label} {shown} is missing {name}; rebuild it with `{rebuild}`")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise damaged(shown, name, f"has {size} bytes, the manifest says {expected['bytes']} "
                                       f"(truncated or corrupt)", rebuild, label)
    cache = None if verify == "quick" else ChecksumCache(fresh=verify == "full")
    key, checksum = ("sample_sha256", sample_sha256) if cache is None else ("sha256", cache.sha256)
    try:
        for name in names:
            try:
                digest = checksum(directory / name)
            except OSError as error:        # removed meanwhile (a generation no longer in use), unreadable
                raise DamagedIndexError(f"{label} {shown} is missing {name} ({error.strerror}); "
                                        f"rebuild it with `{rebuild}`") from None
            if digest != files[name][key]:
                raise damaged(shown, name, "fails its sha256 checksum (corrupt)", rebuild, label)
    finally:
        if cache is not None:
            cache.save()


def cache_path() -> Path:
    root = os.environ.get("DSSM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dssm-search")
    return Path(root) / CACHE_FILE


def file_identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


class ChecksumCache:
    """sha256 of files remembered by identity (device, inode, size, mtime, ctime): a file written
    again, in place or by a new build, has another identity and is hashed again. `fresh`: hash every
    file (and remember the results). Best effort: an unreadable or unwritable cache only costs time."""

    def __init__(self, fresh: bool = False) -> None:
        self.path, self.fresh, self.changed = cache_path(), fresh, False
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}

    def sha256(self, path: Path) -> str:
        before = os.stat(path)
        identity = file_identity(before)
        if not self.fresh and isinstance(self.entries.get(identity), list):
            return self.entries[identity][0]
        digest = sha256_file(path)
        after = os.stat(path)
        now = time.time_ns()
        settled = now - max(after.st_mtime_ns, after.st_ctime_ns) > SETTLED_NS
        if file_identity(after) == identity and settled:
            self.entries[identity] = [digest, now]
            self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        entries = sorted(self.entries.items(), key=lambda item: item[1][1] if isinstance(item[1], list) else 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", dir=self.path.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(dict(entries[-CACHE_ENTRIES:]), out)
                os.replace(tmp, self.path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass


def check_model(manifest: dict, fingerprint: str, model_dir: str | Path | None, index_dir: Path,
                label: str = "index", rebuild: str | None = None,
                otherwise: str = "search with the model it was built with") -> None:
    """Refuse a model other than the one the index was built with, naming both fingerprints and the fix."""
    built_with = manifest["model"]["fingerprint"]
    if fingerprint != built_with:
        rebuild = rebuild or f"rebuild the index with `dssm index build --model {model_dir} --out {index_dir}`"
        raise ValueError(
            f"{label} {index_dir} was built with model fingerprint {built_with[:16]}… "
            f"({manifest['model'].get('path')}), but model {model_dir} has {fingerprint[:16]}…; "
            f"{rebuild} or {otherwise}")
