#!/usr/bin/env bash
# GPU check of cupysteer's CUDA backend, sized for a borrowed GPU machine (one command of at
# most 10 minutes; issue 13).
#
#   bash scripts/gpu_check.sh provenance      # BEFORE copying the tree to the GPU machine (the
#                                             # copy has no .git): writes GPU_PROVENANCE.txt
#   bash scripts/gpu_check.sh quick           # GPU tests + benchmark, <= 480 s of timeouts
#                                             # (v2 kernels = method "fused", the default; the
#                                             # benchmark measures method "fused_v1" beside it:
#                                             # fused_v1_fwd_s / v1_over_v2_* columns, issue 14)
#   bash scripts/gpu_check.sh sanitize        # compute-sanitizer memcheck + racecheck on
#                                             # cupysteer's own kernels, <= 480 s of timeouts
#   bash scripts/gpu_check.sh --dry-run MODE  # print MODE's steps and timeouts, run nothing
#   bash scripts/gpu_check.sh --prepare-wheels  # on a machine WITH network: pytest and
#                                             # hypothesis wheels into .gpu_wheels/
#
# Every step runs under `timeout` with its budget from the STEPS_* lines below, and nothing
# else has a timeout of its own: a mode's worst case is the sum of its budgets (checked by
# tests/contracts/test_bench_gpu.py: <= 480 s, leaving 2 minutes of a 10-minute command for the
# machine's start and the copies; `timeout --kill-after=5` adds at most 5 s per step, counted
# too; the few untimed commands are local checks of well under a second). Output is unbuffered and goes to $OUT (else ./gpu_results/)
# as it is produced: the log gpu_check-<time>.txt, the JUnit XML of the tests, and the
# benchmark's bench_gpu-<time>.jsonl, one line appended per layer as soon as it is measured (a
# kill keeps every finished layer), plus bench_gpu-<time>.json at the end.
#
# Expects python3 with cupy (cupy-cuda13x), numpy, scipy, pytest and hypothesis, optionally
# torch with CUDA (machines of this kind usually have all of them; if pytest/hypothesis are
# missing they are installed from .gpu_wheels/ with --no-index). cupysteer runs from this tree
# through PYTHONPATH; nothing is installed. TF32 is switched off for the whole run
# (NVIDIA_TF32_OVERRIDE=0, CUPY_TF32=0): float32 comparisons at 1e-4 must not see TF32 rounding.
# Exit status: 0 only if every step of the mode passed (and the GPU tests ran, not skipped).
set -uo pipefail

# ---- step budgets in seconds (the only timeouts of this script) -------------------------
STEPS_quick="info:20 versions:40 gpu_tests:200 benchmark:200"
STEPS_sanitize="info:20 versions:40 memcheck:200 racecheck:200"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WHEELS="${GPU_WHEELS:-$REPO/.gpu_wheels}"
PROVENANCE="${GPU_PROVENANCE:-$REPO/GPU_PROVENANCE.txt}"

budget() {  # budget MODE STEP -> seconds
    local steps="STEPS_$1" item
    for item in ${!steps}; do
        [ "${item%%:*}" = "$2" ] && { echo "${item#*:}"; return 0; }
    done
    echo "gpu_check.sh: no budget for step $2 of mode $1" >&2
    exit 2
}

origin() {  # the commit this tree is: from git, else from the provenance file
    if git -C "$REPO" rev-parse HEAD >/dev/null 2>&1; then
        echo "commit: $(git -C "$REPO" rev-parse HEAD)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (dirty: local changes)')"
    elif [ -f "$PROVENANCE" ]; then
        echo "no .git here; provenance written before the copy:"
        sed 's/^/  /' "$PROVENANCE"
    else
        echo "commit: unknown (no .git and no $(basename "$PROVENANCE"): run 'bash scripts/gpu_check.sh provenance' before copying)"
    fi
}

dry_run() {
    local steps="STEPS_$1" item total=0
    [ -n "${!steps:-}" ] || { echo "unknown mode: $1 (quick or sanitize)"; exit 2; }
    echo "mode $1 (dry run: nothing is executed)"
    for item in ${!steps}; do
        printf '  %-10s timeout %4ss\n' "${item%%:*}" "${item#*:}"
        total=$((total + ${item#*:}))
    done
    echo "total worst case: ${total}s"
}

case "${1:-}" in
    --prepare-wheels)
        mkdir -p "$WHEELS"
        "$PY" -m pip download --only-binary :all: --dest "$WHEELS" pytest hypothesis
        exit $? ;;
    --dry-run)
        origin
        dry_run "${2:-quick}"
        exit 0 ;;
    provenance)
        {
            echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
            if git -C "$REPO" diff --quiet HEAD 2>/dev/null; then echo "dirty: no"
            else echo "dirty: yes"; fi
            echo "written: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
            echo "changes:"
            git -C "$REPO" status --short 2>/dev/null | sed 's/^/  /'
        } > "$PROVENANCE"
        cat "$PROVENANCE"
        exit 0 ;;
    quick|sanitize) MODE="$1" ;;
    *)
        echo "usage: bash scripts/gpu_check.sh provenance|quick|sanitize|--dry-run MODE|--prepare-wheels"
        exit 2 ;;
esac

export PYTHONUNBUFFERED=1 NVIDIA_TF32_OVERRIDE=0 CUPY_TF32=0
. "$REPO/scripts/_common.sh"
log_setup gpu_check gpu_results
run_step() {  # run_step STEP command...: the command under the step's budget
    local t
    t="$(budget "$MODE" "$1")" || exit 2
    shift
    timeout --kill-after=5 "$t" "$@"
}

section "cupysteer GPU check ($MODE) $STAMP"
echo "repo: $REPO"
origin
echo "host: $(hostname)  kernel: $(uname -r)  cpus: $(nproc)"
dry_run "$MODE"

section "info"
run_step info nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,clocks.max.mem \
    --format=csv || echo "nvidia-smi failed or missing (rc=$?)"

section "versions"
run_step versions "$PY" - <<'PYEOF'
import importlib, platform
print("python", platform.python_version(), platform.platform())
for m in ("numpy", "scipy", "cupy", "torch", "pytest", "hypothesis", "cupysteer"):
    try:
        mod = importlib.import_module(m)
        print(f"{m:11s}", getattr(mod, "__version__", "?"), getattr(mod, "__file__", ""))
    except Exception as exc:
        print(f"{m:11s} not importable: {type(exc).__name__}: {exc}")
try:
    import cupy
    rt = cupy.cuda.runtime
    print("CUDA runtime", rt.runtimeGetVersion(), "driver", rt.driverGetVersion())
    for i in range(rt.getDeviceCount()):
        p = rt.getDeviceProperties(i)
        name = p["name"].decode() if isinstance(p["name"], bytes) else p["name"]
        print(f"device {i}: {name}, sm_{p['major']}{p['minor']}, "
              f"{p['totalGlobalMem'] / 2**30:.1f} GiB, {p['multiProcessorCount']} SMs")
except Exception as exc:
    print("CuPy/CUDA:", type(exc).__name__, exc)
try:
    import torch
    print("torch.cuda:", torch.cuda.is_available(), torch.version.cuda)
except Exception as exc:
    print("torch:", type(exc).__name__, exc)
PYEOF

if ! "$PY" -c "import pytest, hypothesis" 2>/dev/null && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    DEPS="$(mktemp -d)"
    trap 'rm -rf "$DEPS"' EXIT
    "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" --target "$DEPS" \
        pytest hypothesis && export PYTHONPATH="$PYTHONPATH:$DEPS"
fi
if ! "$PY" -c "import pytest, hypothesis" 2>/dev/null; then
    echo "pytest/hypothesis missing and no wheels in $WHEELS: nothing can be tested"
    exit 99
fi

if [ "$MODE" = quick ]; then
    section "gpu tests"
    XML="$RESULTS/gpu_tests-$STAMP.xml"
    run_step gpu_tests "$PY" -m pytest -m gpu -q -rs -p no:cacheprovider \
        --continue-on-collection-errors --junitxml="$XML" tests
    TEST_RC=$?
    if [ -f "$XML" ] && "$PY" - "$XML" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
tests, skipped = int(s.get("tests", 0)), int(s.get("skipped", 0))
print(f"gpu tests: {tests} collected, {skipped} skipped, {tests - skipped} ran")
sys.exit(0 if tests - skipped > 0 else 1)
PYEOF
    then :; else
        echo "no GPU test ran (all skipped?): a failure"
        [ "$TEST_RC" = 0 ] && TEST_RC=98
    fi
    section "benchmark"
    run_step benchmark "$PY" benchmarks/bench_gpu.py --quick \
        --jsonl "$RESULTS/bench_gpu-$STAMP.jsonl" --json "$RESULTS/bench_gpu-$STAMP.json"
    BENCH_RC=$?
    section "done"
    echo "gpu tests rc=$TEST_RC, benchmark rc=$BENCH_RC, total ${SECONDS}s; files in $RESULTS"
    [ "$TEST_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
    exit $?
fi

# ---- sanitize: compute-sanitizer on cupysteer's kernels (expand_forward / expand_adjoint,
# their _v2 forms and expand_reduce_v2: all match --kernel-name kns=expand_) -----------------
SANITIZER="$(command -v compute-sanitizer || true)"
for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
    [ -z "$SANITIZER" ] && [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ] && SANITIZER="$d/bin/compute-sanitizer"
done
if [ -z "$SANITIZER" ]; then
    echo "compute-sanitizer not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin): nothing checked"
    exit 97
fi
"$SANITIZER" --version | tail -n 2
# the GPU tests of the CuPy backend in-process with CuPy's pool off (every buffer its own
# cudaMalloc: an out-of-bounds access is not hidden inside a pooled block); the 3D-sized random
# plans and the 343-point field pair are left out (too slow under racecheck);
# test_tiled_60_channel_field covers the tiled kernels
RUN_GPU_TESTS='import sys, cupy, pytest
cupy.cuda.set_allocator(None)
cupy.cuda.set_pinned_memory_allocator(None)
sys.exit(pytest.main(["-m", "gpu", "-q", "-x", "-rs", "-p", "no:cacheprovider",
                     "-k", "not random_big_block_plans and not 343_points",
                     "tests/backends/test_cupy_gpu.py"]))'
SAN_RC=0
for TOOL in memcheck racecheck; do
    section "compute-sanitizer $TOOL"
    run_step "$TOOL" "$SANITIZER" --tool "$TOOL" --kernel-name kns=expand_ \
        --target-processes all --error-exitcode 86 --print-limit 20 "$PY" -c "$RUN_GPU_TESTS"
    RC=$?
    echo "compute-sanitizer $TOOL exit code: $RC (86: the tool reported errors, 124: timeout)"
    [ "$RC" = 0 ] || SAN_RC=$RC
done
section "done"
echo "compute-sanitizer rc=$SAN_RC, total ${SECONDS}s; files in $RESULTS"
[ "$SAN_RC" = 0 ]
