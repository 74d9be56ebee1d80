"""Compiling the fused kernels (dssm/native) into the per-user cache on first use: once per stamp, shared
by concurrent processes, crash-safe, one notice line; without a compiler one warning, TensorFlow's own
ops, and no compile on every later run.

Most tests run a stand-in compiler (a script that counts its calls, waits for a release file and writes a
fake library); one (slow) compiles for real into a temporary cache and loads it in fresh processes.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dssm import native

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "dssm: compiling the fused training kernels once"
WAITING = "dssm: waiting for another process compiling the fused training kernels"
QUIET_IMPORT = "from dssm.backend import load_keras; load_keras()\nfrom dssm import native\n"
STAND_IN = """#!/bin/sh
# a stand-in C++ compiler: records its pid, waits (at most 60 s) for `release`, writes a fake library
here=$(dirname "$0")
echo $$ >> "$here/calls"
i=0; while [ ! -e "$here/release" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
while [ "$1" != "-o" ]; do shift; done
printf 'not a library' > "$2"
"""


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private DSSM_CACHE_DIR; ops() forgets what it loaded before and after the test."""
    monkeypatch.setenv("DSSM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(native.SWITCH, raising=False)
    native.ops.cache_clear()
    yield tmp_path / "cache" / "native"
    native.ops.cache_clear()


@pytest.fixture
def compiler(tmp_path, monkeypatch) -> Path:
    """The stand-in compiler as $CXX, released; returns its folder (`calls`: one line per compile)."""
    folder = tmp_path / "compiler"
    folder.mkdir()
    script = folder / "c++"
    script.write_text(STAND_IN)
    script.chmod(0o755)
    (folder / "release").touch()
    monkeypatch.setenv("CXX", str(script))
    return folder


def calls(compiler: Path) -> int:
    return len((compiler / "calls").read_text().split()) if (compiler / "calls").exists() else 0


def start_python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", QUIET_IMPORT + code], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_first_run_compiles_once_with_one_notice_and_later_runs_reuse_it(cache, compiler, capsys):
    library = native.ensure_built()
    assert capsys.readouterr().err.splitlines() == [
        f"dssm: compiling the fused training kernels once (~{native.COMPILE_SECONDS} s), cached in {cache}"]
    assert library.parent == cache and library.read_text() == "not a library" and calls(compiler) == 1
    built = library.stat().st_mtime_ns
    assert native.ensure_built() == library
    assert calls(compiler) == 1 and library.stat().st_mtime_ns == built
    assert capsys.readouterr().err == ""
    assert {path.name for path in cache.iterdir()} == {library.name, library.with_suffix(".json").name,
                                                       library.with_suffix(".lock").name}
    from dssm.native.__main__ import main                    # `python -m dssm.native --force` compiles anew
    assert main(["--force"]) == 0 and calls(compiler) == 2 and library.stat().st_mtime_ns != built
    assert capsys.readouterr().out == f"fused training kernels: {library}\n"


def test_concurrent_first_runs_compile_once_and_share_one_library(cache, compiler):
    (compiler / "release").unlink()
    first = start_python("print(native.ensure_built())")
    wait_for(lambda: calls(compiler) == 1)                  # the first is compiling, held by the stand-in
    second = start_python("print(native.ensure_built())")
    assert second.stderr.readline().startswith(WAITING)     # the second waits on the lock
    (compiler / "release").touch()
    (first_out, first_err), (second_out, second_err) = first.communicate(timeout=120), second.communicate(timeout=120)
    assert first.returncode == second.returncode == 0, first_err + second_err
    assert first_out == second_out and Path(first_out.strip()).read_text() == "not a library"
    assert calls(compiler) == 1
    assert first_err.count(NOTICE) == 1 and NOTICE not in second_err and len(first_err.splitlines()) == 1
    assert not list(cache.glob("*.partial")) and len(list(cache.glob("*.so"))) == 1


def test_a_killed_build_leaves_no_library_and_the_next_build_cleans_up(cache, compiler):
    (compiler / "release").unlink()
    killed = start_python("print(native.ensure_built())")
    wait_for(lambda: calls(compiler) == 1)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    os.kill(int((compiler / "calls").read_text().split()[0]), signal.SIGKILL)   # its compiler
    library = native.library_path()
    assert not library.exists() and len(list(cache.glob(".*.partial"))) == 1
    (compiler / "release").touch()
    assert native.ensure_built() == library                  # the lock died with its holder
    assert library.read_text() == "not a library" and calls(compiler) == 2
    assert not list(cache.glob(".*.partial"))


def test_no_compiler_is_one_warning_then_tensorflow_ops_and_no_compile_on_later_runs(cache, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert native.ops() is None
    assert capsys.readouterr().err.splitlines() == [               # no notice: nothing was compiled
        "dssm: no fused training kernels: no C++ compiler (/nonexistent/c++); install g++ or set CXX; training "
        "uses TensorFlow's own ops (about 2x slower on CPU; DSSM_NATIVE=0 hides this)"]
    assert native.library_path().with_suffix(".failed").exists()

    from dssm.tower import _tf_embedding_bag                 # the fallback trains: a bag and its gradient
    table = tf.Variable(np.arange(8, dtype=np.float32).reshape(4, 2))
    with tf.GradientTape() as tape:
        bags = _tf_embedding_bag(table, tf.constant([[1, 3, 0]]))
    np.testing.assert_allclose(bags.numpy(), [[(2 + 6) / 2 ** 0.5, (3 + 7) / 2 ** 0.5]], rtol=1e-6)
    gradient = tape.gradient(bags, table)
    assert sorted(gradient.indices.numpy().tolist()) == [1, 3]

    native.ops.cache_clear()                                 # a later run: remembered, not compiled again
    monkeypatch.setattr(native, "build", lambda output: pytest.fail("compiled again"))
    assert native.ops() is None
    (line,) = capsys.readouterr().err.splitlines()
    assert "no C++ compiler (/nonexistent/c++); install g++ or set CXX (remembered from an earlier run; " \
           "`python -m dssm.native` tries again)" in line
    monkeypatch.setenv("CXX", "/nonexistent/g++")             # another stamp: tried again
    with pytest.raises(native.BuildError, match=r"^no C\+\+ compiler \(/nonexistent/g\+\+\); install g\+\+ or set CXX$"):
        native.ensure_built()


def test_python_m_dssm_native_tries_again_and_is_optional_at_install(cache, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.raises(native.BuildError, match=r"no C\+\+ compiler \(/nonexistent/c\+\+\); install g\+\+ or set CXX"):
        native.ensure_built()
    for flags, code in (([], 1), (["--optional"], 0)):
        result = subprocess.run([sys.executable, "-m", "dssm.native", *flags], capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == code
        assert "no C++ compiler" in result.stderr and "remembered" not in result.stderr
        assert "Traceback" not in result.stderr


def test_a_library_that_fails_to_load_is_remembered_not_rebuilt(cache, compiler, capsys):
    assert native.ops() is None                               # the stand-in's library is no library
    notice, warning = capsys.readouterr().err.splitlines()
    assert notice.startswith(NOTICE) and f"cannot load {native.library_path()}" in warning
    assert not native.library_path().exists()
    native.ops.cache_clear()
    assert native.ops() is None and calls(compiler) == 1
    assert "remembered from an earlier run" in capsys.readouterr().err


def test_switched_off_nothing_is_compiled_or_said(cache, compiler, monkeypatch, capsys):
    monkeypatch.setenv("DSSM_NATIVE", "0")
    assert native.ops() is None
    assert capsys.readouterr().err == "" and calls(compiler) == 0 and not cache.exists()


def test_an_unwritable_cache_is_one_warning(tmp_path, cache, compiler, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("DSSM_CACHE_DIR", str(tmp_path / "file"))
    assert native.ops() is None
    (line,) = capsys.readouterr().err.splitlines()
    assert f"cannot write the kernel cache {tmp_path / 'file' / 'native'}" in line
    assert "set DSSM_CACHE_DIR to a writable directory" in line and calls(compiler) == 0


def test_the_stamp_names_the_build(cache, monkeypatch):
    stamp = native.stamp()
    assert stamp["tensorflow"] == tf.__version__ and not any(flag.startswith(("-I", "-L")) for flag in stamp["flags"])
    library = native.library_path(stamp)
    assert library.parent == cache and library.name.startswith("dssm_ops-")
    for change in ({"tensorflow": "2.99.0"}, {"source_sha256": "0" * 64}, {"flags": stamp["flags"][1:]},
                   {"compiler": ["/usr/bin/clang++"]}, {"machine": "aarch64"}):
        assert native.library_path({**stamp, **change}) != library
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    monkeypatch.delenv("DSSM_CACHE_DIR")
    assert native.cache_dir() == Path("/xdg/dssm-search/native")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX") or "g++") is None, reason="no C++ compiler")
def test_a_real_build_is_shared_by_concurrent_runs_and_reused_by_fresh_processes(cache):
    """One real compile: two first runs at once, then a third process that loads it without compiling."""
    use = ("lib = native.ops()\nimport tensorflow as tf\n"
           "print(*(f'{x:.4f}' for x in lib.dssm_embedding_bag(tf.ones((4, 3)), tf.constant([[1, 2, 0]], tf.int32))[0]))")
    runs = [start_python(use), start_python(use)]
    results = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert {out for out, _ in results} == {"1.4142 1.4142 1.4142\n"}
    assert sum(err.count(NOTICE) for _, err in results) == 1, results
    (library,) = cache.glob("*.so")
    built = library.stat()
    again = start_python(use)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and out == "1.4142 1.4142 1.4142\n" and err == ""
    assert (library.stat().st_ino, library.stat().st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    assert not list(cache.glob(".*.partial"))
