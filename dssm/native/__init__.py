"""Optional fused CPU kernels for TensorFlow training (dssm_ops.cc), compiled on this machine on first use.

The first CPU training run compiles dssm_ops.cc against the installed TensorFlow, with one line on
stderr (`dssm: compiling the fused training kernels once (~15 s), cached in DIR`), into the per-user
cache: $DSSM_CACHE_DIR/native, else $XDG_CACHE_HOME or ~/.cache, then dssm-search/native (the root that
indexer.manifest keeps its checksums under). The file is named after a digest of its `stamp()`: the
source's sha256, TensorFlow's version, the machine, the compiler and its flags. Another TensorFlow, an
edited source or another $CXX gets a build of its own; every later run, from any install (editable or
not, a read-only site-packages), loads the cached one. `python -m dssm.native` (run by `make install`)
does the same ahead of time.

Builds are crash-safe and shared: the compiler writes a unique name beside the library, renamed over it
once complete; concurrent first runs take a lock per stamp, so one compiles and the others wait and load
its result; a temporary file left by a killed build is removed by the next build.

Without a compiler, or when compiling or loading fails, `ops()` returns None with one warning line and
training runs on TensorFlow's own ops (the same maths, about 2x slower on CPU). The failure is remembered
for that stamp, so no run compiles again until the stamp changes (a compiler installed on PATH changes
it) or `python -m dssm.native` tries again. DSSM_NATIVE=0 turns the kernels off: nothing is compiled
or loaded.

The kernels: the embedding-bag forward (sum / sqrt(n) over the intra-op threads), its gradient over the
touched rows, and lazy Adam's update of those rows in place (dssm.tower, dssm.optim use them).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SOURCE = Path(__file__).with_name("dssm_ops.cc")
SWITCH = "DSSM_NATIVE"                  # "0": never compile or load the kernels
COMPILE_SECONDS = 15                    # what the notice announces: 10-15 s measured on 2 cores
COMPILE_TIMEOUT_SECONDS = 600


class BuildError(RuntimeError):
    """The kernels could not be compiled (now or on an earlier run): the message names the reason."""


@functools.cache
def ops():
    """The loaded op library (dssm_embedding_bag, dssm_embedding_bag_grad, dssm_sparse_adam), compiled
    first when the cache has none for this stamp; None when DSSM_NATIVE=0 or it cannot be built or loaded."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    try:
        library = ensure_built()
    except BuildError as error:
        warn(str(error))
        return None
    import tensorflow as tf

    try:
        return tf.load_op_library(str(library))
    except (tf.errors.OpError, OSError) as error:
        reason = f"cannot load {library} ({str(error).splitlines()[0]})"
        remember_failure(library, reason)
        warn(reason)
        return None


def ensure_built(retry: bool = False, rebuild: bool = False) -> Path:
    """The cached library for this stamp, compiled first when there is none.

    Raises BuildError when it cannot be compiled, or could not be on an earlier run with this stamp (retry:
    try again). rebuild: compile even when a library is cached."""
    built_from = stamp()
    library = library_path(built_from)
    if library.exists() and not rebuild:
        return library
    failed = library.with_suffix(".failed")
    if failed.exists() and not retry:
        raise BuildError(f"{read_text(failed)} (remembered from an earlier run; `python -m dssm.native` tries again)")
    try:
        library.parent.mkdir(parents=True, exist_ok=True)
        with locked(library.with_suffix(".lock")) as exclusive:
            if library.exists() and not rebuild:        # compiled by another process while this one waited
                return library
            if exclusive:
                remove_partials(library)
            compile_once(library, built_from)
    except OSError as error:
        raise BuildError(f"cannot write the kernel cache {library.parent} ({error.strerror or error}); "
                         "set DSSM_CACHE_DIR to a writable directory") from None
    return library


def compile_once(library: Path, built_from: dict) -> None:
    """Compile library (its lock held) after the one-line notice; a failure is recorded beside it (.failed),
    a success described (.json: the stamp)."""
    failed = library.with_suffix(".failed")
    try:
        compiler = built_from["compiler"][0]
        if shutil.which(compiler) is None:      # said without a notice: nothing is compiled
            raise BuildError(f"no C++ compiler ({compiler}); install g++ or set CXX")
        print(f"dssm: compiling the fused training kernels once (~{COMPILE_SECONDS} s), cached in {library.parent}",
              file=sys.stderr, flush=True)
        build(library)
    except BuildError as error:
        write_atomically(failed, str(error))
        raise
    failed.unlink(missing_ok=True)
    write_atomically(library.with_suffix(".json"), json.dumps(built_from, indent=1) + "\n")


def build(output: Path) -> Path:
    """Compile dssm_ops.cc into output. The compiler writes a unique name beside it, renamed over output
    once complete: a reader never sees half a library, and two builds never write the same file."""
    handle, partial = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".partial")
    os.close(handle)
    command = compile_command(Path(partial))
    try:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS)
        except FileNotFoundError as error:
            raise BuildError(f"no C++ compiler ({error.filename or command[0]}); install g++ or set CXX") from None
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BuildError(f"cannot run the C++ compiler {command[0]} ({error})") from None
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()[-1:]
            raise BuildError(f"compiling {SOURCE.name} failed: {errors[0] if errors else 'no message'}")
        os.replace(partial, output)
    finally:
        Path(partial).unlink(missing_ok=True)
    return output


def stamp() -> dict:
    """What a library is built from, digested into its name: the source's sha256, TensorFlow's version,
    the machine, the compiler (as found on PATH, so installing one changes the stamp) and the flags.
    TensorFlow's -I and -L paths are left out: virtualenvs with the same TensorFlow share one build."""
    import tensorflow as tf

    compiler = compiler_command()
    flags = [*compile_flags(), *tf.sysconfig.get_link_flags()]
    return {"source_sha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest(), "tensorflow": tf.__version__,
            "machine": platform.machine(), "compiler": [shutil.which(compiler[0]) or compiler[0], *compiler[1:]],
            "flags": [flag for flag in flags if not flag.startswith(("-I", "-L"))]}


def library_path(built_from: dict | None = None) -> Path:
    """cache_dir()/dssm_ops-<16 hex digits of the stamp's sha256>.so"""
    canonical = json.dumps(built_from or stamp(), sort_keys=True).encode()
    return cache_dir() / f"dssm_ops-{hashlib.sha256(canonical).hexdigest()[:16]}.so"


def cache_dir() -> Path:
    """$DSSM_CACHE_DIR/native, else ($XDG_CACHE_HOME or ~/.cache)/dssm-search/native: the cache root of
    indexer.manifest.cache_path (dssm never imports indexer, hence the copy)."""
    root = os.environ.get("DSSM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dssm-search")
    return Path(root) / "native"


def compiler_command() -> list[str]:
    """$CXX split as a shell would (e.g. `ccache g++`), default g++."""
    return shlex.split(os.environ.get("CXX", "")) or ["g++"]


def compile_flags() -> list[str]:
    """C++17 (TensorFlow's flags), -O3, AVX2/FMA where the CPU has them, a shared library."""
    import tensorflow as tf

    return ["-shared", "-fPIC", "-O3", "-fno-math-errno", *arch_flags(), "-Wno-deprecated-declarations",
            *tf.sysconfig.get_compile_flags()]


def compile_command(output: Path) -> list[str]:
    """The compiler call that writes output."""
    import tensorflow as tf

    return [*compiler_command(), *compile_flags(), str(SOURCE), "-o", str(output), *tf.sysconfig.get_link_flags()]


def arch_flags() -> list[str]:
    """-march=x86-64-v3 (AVX2, FMA: 2013 and later CPUs) on x86-64 machines that have it, else nothing.

    Not -march=native: a cache may be shared by machines with other CPUs of the same level."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return ["-march=x86-64-v3"] if {"avx2", "fma", "bmi2", "movbe"} <= set(flags) else []


@contextmanager
def locked(path: Path) -> Iterator[bool]:
    """Holds an exclusive lock on path (flock: released by the system if the process dies) for the block,
    saying once on stderr when it waits for another process. Yields whether the lock is exclusive:
    False where fcntl is missing (Windows), where builds still write unique names but may overlap."""
    try:
        import fcntl
    except ImportError:
        yield False
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"dssm: waiting for another process compiling the fused training kernels into {path.parent}",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield True


def remove_partials(library: Path) -> None:
    """Remove what killed builds of library left (called under its lock: no build of it is running)."""
    for partial in library.parent.glob(f".{library.stem}.*.partial"):
        partial.unlink(missing_ok=True)


def remember_failure(library: Path, reason: str) -> None:
    """Record reason for library's stamp and drop the library, so later runs neither load nor rebuild it."""
    try:
        write_atomically(library.with_suffix(".failed"), reason)
        library.unlink(missing_ok=True)
    except OSError:
        pass                            # an unwritable cache: the next run reports the same failure


def write_atomically(path: Path, text: str) -> None:
    """Write text beside path under a unique name, then rename it over path."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        return f"a failure recorded in {path} ({error.strerror})"


def warn(reason: str) -> None:
    print(f"dssm: no fused training kernels: {reason}; training uses TensorFlow's own ops "
          f"(about 2x slower on CPU; {SWITCH}=0 hides this)", file=sys.stderr, flush=True)
