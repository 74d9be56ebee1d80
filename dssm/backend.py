"""Loading Keras (and TensorFlow under it) without the native start-up noise.

TensorFlow's C++ side writes to file descriptor 2 before its logging is configured, whatever
`TF_CPP_MIN_LOG_LEVEL` says: `All log messages before absl::InitializeLog()`, oneDNN and
`Could not find cuda drivers` lines at import, and `failed call to cuInit` when the devices are first
listed on a machine without a GPU. `load_keras()` runs the import and that first device listing with
fd 2 sent to a temporary file, and replays what was captured only when the import fails, so a real
error is never hidden. Every training module takes Keras from here:

    keras = load_keras()      # then `from keras import ops` finds it loaded
"""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LOG_LEVEL = "2"          # TensorFlow's own warnings and info off; its errors stay visible


@contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Send what native code writes to fd 2 into a temporary file for the block; when the block
    raises, write the captured bytes back to stderr before the exception goes on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load_keras():
    """The `keras` module, imported quietly the first time (see the module docstring). A program that
    imported Keras itself keeps what it has; `TF_CPP_MIN_LOG_LEVEL` set by the user is respected."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)
    with native_stderr_captured():
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tf.config.list_physical_devices("GPU")   # where a CPU-only machine logs `failed call to cuInit`
    return keras
