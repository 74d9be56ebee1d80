"""`python -m dssm.native [--force] [--optional]`: compile the fused training kernels into the cache now
(see dssm/native/__init__.py); training would on its first run. Tries again after a failure remembered
from an earlier run; a library already cached for this stamp is kept unless --force.

With --optional (as `make install` runs it) a machine without a compiler gets a one-line warning and
exit code 0: training then runs on TensorFlow's own ops.
"""
from __future__ import annotations

import os
import sys

from dssm.backend import QUIET_LOG_LEVEL, native_stderr_captured
from dssm.native import BuildError, ensure_built


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
    with native_stderr_captured():      # TensorFlow's start-up lines (see dssm.backend)
        import tensorflow  # noqa: F401
    try:
        path = ensure_built(retry=True, rebuild="--force" in argv)
    except BuildError as error:
        print(f"dssm: {error}; training will use TensorFlow's own ops (about 2x slower on CPU)", file=sys.stderr)
        return 0 if "--optional" in argv else 1
    print(f"fused training kernels: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
