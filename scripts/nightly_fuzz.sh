#!/usr/bin/env bash
# Nightly-style robustness run of cupysteer (no GPU needed):
#
#   bash scripts/nightly_fuzz.sh            # all steps
#   bash scripts/nightly_fuzz.sh --quick    # the same steps with CI's example counts
#
# Steps, each with its own timeout:
#   1. tests/core/test_fuzz.py with HYPOTHESIS_PROFILE=nightly (25x CI's examples: NumPy expand vs
#      the dense and padded references, adjoint identity, equivariance, emulated CUDA kernels
#      vs NumPy, over random groups, field types, kernel sizes, dtypes and array layouts);
#   2. the sanitizer suite: tests/backends/test_kernels_sanitizers.py (ASan+UBSan and TSan builds with
#      positive controls), then the whole emulated-kernel suite (tests/backends/test_kernels_emulated.py
#      and the emulated fuzz test) under CUPYSTEER_EMU_SANITIZE=address and =thread, with
#      CI's example counts (SANITIZED_PROFILE=nightly for 25x: hours under TSan);
#   3. the validation, determinism and cache-robustness tests.
# Needs python3 with the test extra (pytest, hypothesis; g++ for steps 2 and the emulated fuzz).
# Output goes to $OUT/nightly_fuzz-<time>.txt if OUT is set, else ./nightly_results/.
# Hypothesis keeps failing examples in .hypothesis/ (replayed first on the next run).
# Exit status: 0 only if every step passed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
PROFILE=nightly
[ "${1:-}" = "--quick" ] && PROFILE=ci
SANITIZED_PROFILE="${SANITIZED_PROFILE:-ci}"

. "$REPO/scripts/_common.sh"
log_setup nightly_fuzz nightly_results
FAILED=()
step() {  # step NAME TIMEOUT_S ENV... -- PYTEST_ARGS...
    local name="$1" limit="$2"; shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    section "$name"
    env ${envs[@]+"${envs[@]}"} timeout "$limit" "$PY" -m pytest -q -rs -p no:cacheprovider "$@"
    local rc=$?
    echo "$name: exit code $rc"
    [ "$rc" = 0 ] || FAILED+=("$name (rc=$rc)")
}

section "cupysteer nightly fuzz $STAMP (profile $PROFILE)"
echo "commit: $(commit_id)"
echo "python: $(command -v "$PY") $("$PY" --version 2>&1); g++: $(command -v g++ || echo 'not found')"
"$PY" -c "import numpy, hypothesis, pytest; print('numpy', numpy.__version__, 'hypothesis', hypothesis.__version__, 'pytest', pytest.__version__)"

step "fuzz ($PROFILE profile)" 3000 HYPOTHESIS_PROFILE="$PROFILE" -- tests/core/test_fuzz.py \
    --hypothesis-show-statistics
step "sanitizer suite (positive controls)" 600 CUPYSTEER_EMU_SANITIZE= -- \
    tests/backends/test_kernels_sanitizers.py
for SAN in address thread; do
    step "emulated kernels under $SAN sanitizer" 1800 CUPYSTEER_EMU_SANITIZE="$SAN" \
        HYPOTHESIS_PROFILE="$SANITIZED_PROFILE" -- \
        tests/backends/test_kernels_emulated.py tests/core/test_fuzz.py -k "emulated or kernels"
done
step "validation, determinism, caches" 600 -- tests/core/test_validation.py \
    tests/core/test_determinism.py tests/core/test_cache_robustness.py

section "done"
echo "log: $LOG, total ${SECONDS}s"
if [ "${#FAILED[@]}" -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}"
    exit 1
fi
echo "all steps passed"
