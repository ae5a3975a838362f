#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment holding the 3D benchmark baseline escnn 1.0.11.
#
# escnn pins NumPy back to 1.x (1.26) and needs py3nj, which is built from source with a Fortran
# compiler; cupysteer itself runs on the project's Python with NumPy 2, so the baseline lives in
# its own venv and benchmarks/bench_build3d.py calls it through a subprocess
# (benchmarks/_escnn_driver.py).
#
#   bash benchmarks/escnn_env.sh            # venv in /tmp/escnn-venv
#   ESCNN_VENV=/some/dir bash benchmarks/escnn_env.sh
#
# Idempotent: an existing venv that already imports the pinned versions is left as it is.
# The last line printed is the venv's python; pass it to bench_build3d.py --escnn-python.
#
# torch is pinned to 2.13.0 on purpose: that version resolves to a CPU wheel available locally;
# an unpinned `torch` would pull the multi-GB CUDA build. escnn 1.0.11 imports and runs
# (R3Conv build, he init, expand_parameters) under torch 2.13 unpatched: nothing in
# site-packages is edited. (The driver empties escnn's own disk cache, escnn/group/_cache, for
# cold runs: that is the only thing it touches.)
#
# gfortran (for py3nj) is installed with apt-get when missing and we are root; otherwise the
# script stops with a message.
set -euo pipefail

VENV="${ESCNN_VENV:-/tmp/escnn-venv}"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"

check() {
    "$PY" - <<'PY'
import warnings
warnings.filterwarnings("ignore")
import sys, numpy, scipy, torch, importlib.metadata as md
assert numpy.__version__.startswith("1."), numpy.__version__
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert md.version("escnn") == "1.0.11", md.version("escnn")
import escnn  # noqa: F401
from escnn import gspaces, nn  # noqa: F401
import py3nj  # noqa: F401
print(" ".join(f"{p} {md.version(p)}" for p in
               ("escnn", "torch", "numpy", "scipy", "lie_learn", "py3nj", "pymanopt",
                "autograd", "sympy")), "python", sys.version.split()[0])
PY
}

if [ -x "$PY" ] && versions="$(check 2>/dev/null)"; then
    echo "escnn venv already complete: $VENV" >&2
else
    if ! command -v gfortran >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing gfortran (py3nj is built from source)" >&2
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gfortran >&2
        else
            echo "escnn_env.sh: py3nj needs a Fortran compiler; install gfortran first" >&2
            exit 1
        fi
    fi
    if [ ! -x "$PY" ]; then
        echo "creating venv $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    "$PY" -m pip install --quiet --upgrade "pip" "wheel" >&2
    # torch first and pinned, so that escnn's bare `torch` requirement is already satisfied
    "$PY" -m pip install --quiet "torch==2.13.0" "numpy<2" >&2
    # py3nj (meson + gfortran) and lie_learn have no wheels: they are built from source here
    "$PY" -m pip install --quiet "py3nj" "lie_learn" "torch==2.13.0" "numpy<2" >&2
    "$PY" -m pip install --quiet "escnn==1.0.11" "torch==2.13.0" "numpy<2" >&2
    if ! versions="$(check)"; then
        echo "escnn venv check failed:" >&2
        "$PY" -c "import numpy, scipy, torch, escnn" >&2 || true
        exit 1
    fi
fi
echo "$versions" >&2
echo "$PY"
