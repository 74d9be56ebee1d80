"""`python -m dssm.native [--optional]`: compile the fused training kernels (see dssm/native/__init__.py).

With --optional (as `make install` runs it) a machine without a compiler gets a one-line warning and
exit code 0: training then runs on TensorFlow's own ops.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dssm.native import BuildError, build  # noqa: E402


def main(argv: list[str]) -> int:
    try:
        path = build()
    except BuildError as error:
        print(f"dssm: {error}; training will use TensorFlow's own ops (about 2x slower on CPU)", file=sys.stderr)
        return 0 if "--optional" in argv else 1
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
