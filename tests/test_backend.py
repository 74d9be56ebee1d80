"""Quiet loading of Keras/TensorFlow (dssm/backend.py) and the training progress output (dssm/train.py)."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOISE = ("absl::InitializeLog", "cuInit", "cudart_stub", "oneDNN")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_importing_the_training_stack_prints_no_native_noise():
    # without dssm.backend this printed the absl/oneDNN/cuda lines twice and `failed call to cuInit`
    done = run_python("import dssm.train, dssm.losses, dssm.negatives\nprint('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert not [line for line in done.stderr.splitlines() if any(word in line for word in NOISE)], done.stderr


def test_captured_native_output_is_replayed_when_the_block_fails():
    done = run_python(
        "import os\n"
        "from dssm.backend import native_stderr_captured\n"
        "try:\n"
        "    with native_stderr_captured():\n"
        "        os.write(2, b'native says why\\n')\n"
        "        raise RuntimeError('import failed')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "with native_stderr_captured():\n"
        "    os.write(2, b'start-up chatter\\n')\n"
        "os.write(2, b'after\\n')\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["native says why", "after"]


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_bar_only_on_a_terminal():
    from dssm.train import progress_verbosity
    assert progress_verbosity(1, FakeStream(tty=True)) == 1
    assert progress_verbosity(1, FakeStream(tty=False)) == 2      # a pipe or log: one line per epoch
    assert progress_verbosity(2, FakeStream(tty=True)) == 2
    assert progress_verbosity(0, FakeStream(tty=False)) == 0


def test_step_count_never_passes_the_epochs_steps():
    from dssm.train import StepProgress
    progress = StepProgress()
    progress.set_params({"verbose": 0, "epochs": 1, "steps": 7})
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(7, {"loss": 1.0})   # Keras names step 8 for a last call of 7 steps
    assert progress.seen == 7
    progress.on_train_batch_end(3, {"loss": 1.0})
    assert progress.seen == 4
