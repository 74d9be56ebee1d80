"""Optional fused CPU kernels for TensorFlow training (dssm_ops.cc), built from source on this machine.

`python -m dssm.native` (run by `make install`) compiles dssm_ops.cc against the installed TensorFlow
into `_dssm_ops.so` beside it, with a stamp of the source and TensorFlow version it was built from.
`ops()` loads it, or returns None when it is absent, stale (another TensorFlow, another source), fails
to load, or DSSM_NATIVE=0; then training runs on TensorFlow's own ops (same maths, about 2x slower on
CPU). A stale or broken library is reported once on stderr with the fix.

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
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).with_name("dssm_ops.cc")
LIBRARY = Path(__file__).with_name("_dssm_ops.so")
STAMP = LIBRARY.with_suffix(".json")


class BuildError(RuntimeError):
    """The kernels could not be compiled: the message names the compiler's complaint."""


def stamp() -> dict:
    """What a library must have been built from to be loaded: the source's sha256 and TensorFlow's version."""
    import tensorflow as tf

    return {"source_sha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest(), "tensorflow": tf.__version__}


def compile_command(output: Path) -> list[str]:
    """The compiler call: $CXX (default g++), C++17, -O3, AVX2/FMA where the CPU has them, TensorFlow's flags."""
    import tensorflow as tf

    compiler = shlex.split(os.environ.get("CXX", "g++"))
    return [*compiler, "-shared", "-fPIC", "-O3", "-fno-math-errno", *arch_flags(), "-Wno-deprecated-declarations",
            *tf.sysconfig.get_compile_flags(), str(SOURCE), "-o", str(output), *tf.sysconfig.get_link_flags()]


def arch_flags() -> list[str]:
    """-march=x86-64-v3 (AVX2, FMA: 2013 and later CPUs) on x86-64 machines that have it, else nothing.

    Not -march=native: a library built on one machine may run on another (a copied virtualenv)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return ["-march=x86-64-v3"] if {"avx2", "fma", "bmi2", "movbe"} <= set(flags) else []


def build() -> Path:
    """Compile dssm_ops.cc into _dssm_ops.so (atomically, with its stamp) and return its path."""
    partial = LIBRARY.with_suffix(".so.partial")
    try:
        result = subprocess.run(compile_command(partial), capture_output=True, text=True)
    except FileNotFoundError as error:
        raise BuildError(f"no C++ compiler ({error.filename}); install g++ or set CXX") from None
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()[-1:]
        raise BuildError(f"compiling {SOURCE.name} failed: {errors[0] if errors else 'no message'}")
    os.replace(partial, LIBRARY)
    STAMP.write_text(json.dumps(stamp()) + "\n")
    ops.cache_clear()
    return LIBRARY


@functools.cache
def ops():
    """The loaded op library (dssm_embedding_bag, dssm_embedding_bag_grad, dssm_sparse_adam), or None."""
    if os.environ.get("DSSM_NATIVE", "1") == "0" or not LIBRARY.exists():
        return None
    try:
        built = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        built = {}
    if built != stamp():
        warn(f"{LIBRARY.name} was built from another source or TensorFlow; rebuild it with `python -m dssm.native`")
        return None
    import tensorflow as tf

    try:
        return tf.load_op_library(str(LIBRARY))
    except (tf.errors.NotFoundError, OSError) as error:
        warn(f"cannot load {LIBRARY.name} ({str(error).splitlines()[0]}); rebuild it with `python -m dssm.native`")
        return None


def warn(message: str) -> None:
    print(f"dssm: {message}; training uses TensorFlow's own ops meanwhile", file=sys.stderr)
