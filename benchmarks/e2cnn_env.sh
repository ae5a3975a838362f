#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment holding the benchmark anchor e2cnn 0.2.3.
#
# e2cnn 0.2.3 needs NumPy < 2 (see the reference notes, "breakages"); cupysteer itself runs on
# the project's Python with NumPy 2, so the anchor lives in its own venv and the benchmark calls
# it through a subprocess (benchmarks/_e2cnn_driver.py).
#
#   bash benchmarks/e2cnn_env.sh            # venv in /tmp/e2cnn-venv
#   E2CNN_VENV=/some/dir bash benchmarks/e2cnn_env.sh
#
# Idempotent: an existing venv that already imports the pinned versions is left as it is.
# The last line printed is the venv's python; pass it to bench_expand.py --e2cnn-python.
#
# torch is pinned to 2.13.0 on purpose: that version resolves to a CPU wheel available locally;
# an unpinned `torch` would pull the multi-GB CUDA build.
set -euo pipefail

VENV="${E2CNN_VENV:-/tmp/e2cnn-venv}"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"

check() {
    "$PY" - <<'PY'
import sys, numpy, scipy, torch, e2cnn, importlib.metadata as md
assert numpy.__version__ == "1.26.4", numpy.__version__
assert tuple(int(x) for x in scipy.__version__.split(".")[:2]) < (1, 14), scipy.__version__
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert md.version("e2cnn") == "0.2.3", md.version("e2cnn")
print("numpy", numpy.__version__, "scipy", scipy.__version__, "torch", torch.__version__,
      "e2cnn", md.version("e2cnn"))
PY
}

if [ -x "$PY" ] && versions="$(check 2>/dev/null)"; then
    echo "e2cnn venv already complete: $VENV" >&2
else
    if [ ! -x "$PY" ]; then
        echo "creating venv $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    "$PY" -m pip install --quiet "numpy==1.26.4" "scipy<1.14" "torch==2.13.0" "e2cnn==0.2.3" >&2
    if ! versions="$(check)"; then
        echo "e2cnn venv check failed:" >&2
        "$PY" -c "import numpy, scipy, torch, e2cnn" >&2 || true
        exit 1
    fi
fi
echo "$versions" >&2
echo "$PY"
