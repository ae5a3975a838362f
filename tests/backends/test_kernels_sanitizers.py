"""The emulated kernels under AddressSanitizer + UndefinedBehaviorSanitizer and under
ThreadSanitizer.

Each sanitizer build runs in the harness's worker subprocess with the sanitizer runtime
preloaded (LD_PRELOAD) and a timeout per launch; any report in the worker's stderr fails the
launch. A small but complete set runs here (mixed fields, empty field pairs, several point
tiles, a whole network, float32/float64, half outputs); the whole emulated suite runs under a
sanitizer with CUPYSTEER_EMU_SANITIZE=address|thread pytest tests/backends/test_kernels_emulated.py.

Positive controls make sure a clean pass means something: ASan reports a launch whose
dynamic shared memory is one tile too small, UBSan a signed overflow, TSan a missing
__syncthreads.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.backends.kernel_source import forward_args, name_expression
from cupysteer.backends.launch import launch_config
from cupysteer.backends.numpy_backend import NumpyExpander
from cupysteer.backends.packing import pack_plans

from _helpers import group, rel_err
from cuda_emulation import harness as H

SANITIZERS = ("address", "thread")


def _skip_reason(sanitizer):
    if H.gxx() is None:
        return "g++ not found"
    if not H.cuda_include_dirs():
        return "CUDA headers (cuda_fp16.h) not found: pip install the test extra"
    lib = subprocess.run([H.gxx(), f"-print-file-name={H._RUNTIME[sanitizer]}"],
                         capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(lib):
        return f"{H._RUNTIME[sanitizer]} not installed for g++"
    return None


@pytest.fixture(scope="module", autouse=True)
def sanitized_builds():
    """Both sanitizer builds of the HALF_OPTIONS module (a superset: it holds every
    instantiation), in parallel."""
    todo = [(True, s) for s in SANITIZERS if _skip_reason(s) is None]
    t0 = time.perf_counter()
    builds = H.prebuild(todo) if todo else []
    print(f"\n[sanitizers] builds ({time.perf_counter() - t0:.1f} s): "
          + ", ".join(f"{b.so.name}: {'cached' if not b.seconds else f'{b.seconds:.1f} s'}"
                      for b in builds), file=sys.stderr)


def ft(G, *reps):
    return cs.FieldType(G, list(reps))


def cases():
    C4, SO2 = group("C4"), group("SO2")
    R, T = C4.regular_representation, C4.trivial_representation
    I1 = C4.irreps()[1].representation
    s = [p.representation for p in SO2.irreps()]
    mixed = cs.LayerBasis(ft(C4, R, I1, R), ft(C4, I1, R), 5)
    empty_pairs = cs.LayerBasis(ft(SO2, s[0], s[3]), ft(SO2, s[0], s[2], s[0]), 3)
    small = cs.LayerBasis(ft(C4, T, R), ft(C4, R), 1)
    return {"mixed fields": [mixed], "empty field pairs": [empty_pairs],
            "network": [mixed, cs.LayerBasis(ft(C4, R), ft(C4, I1, T), 3), small]}


def _run(sanitizer, layers, dtype, tiles=None, batch=2):
    ex = H.CpuExpander([L.plan for L in layers], dtype, sanitizer=sanitizer, half_module=True)
    p = ex.packed
    if tiles:
        item = np.dtype(dtype).itemsize
        cell = 2 * p.max_out_size * p.max_in_size * item
        ex.shared_limit = p.max_fieldpair_weights * item + cell * max(1, p.max_points // tiles)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((batch, p.dim)).astype(dtype)
    out = ex.expand(W)
    ref, off = [], 0
    for L in layers:
        ref.append(L.expand(W[:, off:off + L.dim].astype(np.float64)).reshape(batch, -1))
        off += L.dim
    ref = np.concatenate(ref, 1)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert rel_err(out, ref) < tol
    G = rng.standard_normal(out.shape).astype(dtype)
    gw = ex.adjoint(G)
    gref, off = [], 0
    for L in layers:
        n = int(np.prod(L.shape))
        gref.append(L.adjoint(G[:, off:off + n].astype(np.float64).reshape((batch,) + L.shape)))
        off += n
    assert rel_err(gw, np.concatenate(gref, 1)) < tol
    if dtype == np.float32:
        np.testing.assert_array_equal(ex.expand(W, out_dtype="float16"), out.astype(np.float16))
        ex.expand(W, out_dtype="bfloat16")
    return ex


@pytest.mark.parametrize("sanitizer", SANITIZERS)
def test_kernels_clean_under_sanitizer(sanitizer):
    reason = _skip_reason(sanitizer)
    if reason:
        pytest.skip(reason)
    c = cases()
    t0 = time.perf_counter()
    _run(sanitizer, c["mixed fields"], np.float32, tiles=3)
    _run(sanitizer, c["mixed fields"], np.float64)
    _run(sanitizer, c["empty field pairs"], np.float64, batch=1)
    _run(sanitizer, c["network"], np.float32, tiles=4)
    print(f"\n[sanitizers] {sanitizer}: clean, {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def _tiled_cases():
    """3D-sized plans (13-dimensional irreps, dense Q) with shared-memory limits that force
    the tiled layouts: row chunks straddled by blocks, column tiles, adjoint weight passes."""
    from _plan_strategies import build_plan
    counts = {(a, b): 1 + (a + 2 * b) % 3 for a in range(4) for b in range(4)}
    chunky = build_plan([1, 13, 5, 3], [[1, 0, 2], [3, 3, 2]], [False, False], [0, 1], [1, 0],
                        counts, (2, 2, 2), seed=11)
    passes = build_plan([1, 13, 3], [[1, 1, 0, 2], [0, 0, 0]], [False, False], [0], [1],
                        {(1, 0): 30, (1, 2): 7, (0, 0): 3, (2, 2): 4}, (2, 2, 2), seed=6)
    return [(chunky, 2048, lambda f, a: f.rows < 32 and f.col_tiles > 1 and a.rows < 32),
            (passes, 512, lambda f, a: a.passes > 1)]


@pytest.mark.parametrize("sanitizer", SANITIZERS)
def test_tiled_layouts_clean_under_sanitizer(sanitizer):
    reason = _skip_reason(sanitizer)
    if reason:
        pytest.skip(reason)
    for plan, limit, expect in _tiled_cases():
        for dtype in (np.float32, np.float64):
            ex = H.CpuExpander(plan, dtype, sanitizer=sanitizer, half_module=True,
                               shared_limit=limit * np.dtype(dtype).itemsize // 4)
            rng = np.random.default_rng(1)
            W = rng.standard_normal((2, plan.dim)).astype(dtype)
            out = ex.expand(W)
            fcfg = ex.last_config
            ref = NumpyExpander(plan).expand(W.astype(np.float64)).reshape(2, -1)
            tol = 1e-12 if dtype == np.float64 else 5e-5
            assert rel_err(out, ref) < tol
            G = rng.standard_normal(out.shape)
            gw = ex.adjoint(G.astype(dtype))
            assert expect(fcfg, ex.last_config), (fcfg, ex.last_config)
            gref = NumpyExpander(plan).adjoint(G.reshape((2, plan.out_size, plan.in_size)
                                                         + plan.filter_shape))
            assert rel_err(gw, gref) < tol
            if dtype == np.float32:
                np.testing.assert_array_equal(ex.expand(W, out_dtype="float16"),
                                              out.astype(np.float16))


def test_asan_reports_shared_memory_overrun():
    """Positive control: the forward launched with one tile's worth of shared memory too
    little writes past the buffer; ASan must say so (and the worker is restarted)."""
    reason = _skip_reason("address")
    if reason:
        pytest.skip(reason)
    L = cases()["mixed fields"][0]
    p = pack_plans([L.plan])
    cfg = launch_config(p, "forward", 1, 4)
    short = cfg.shared_mem - 2 * p.max_out_size * p.max_in_size * 4
    mod = H.expand_module(True, "address")
    kern = mod.get_function(name_expression("forward", np.float32))
    ex = H.CpuExpander(L.plan, np.float32, sanitizer="address", half_module=True)
    t = ex.tables
    args = forward_args(np.ones(p.dim, np.float32), p.dim, t["basis"], t["cob"], t["fieldpairs"],
                        t["blocks"], t["positions"], np.empty(p.filter_size, np.float32),
                        p.filter_size, cfg)
    with pytest.raises(H.SanitizerError, match="AddressSanitizer"):
        kern(cfg.grid, cfg.block, args, shared_mem=short)
    kern(cfg.grid, cfg.block, args, shared_mem=cfg.shared_mem)  # a fresh worker, clean


CONTROL_KERNELS = r"""
extern "C" __global__ void racy_reverse(float* x, int n) {
    extern __shared__ float t[];
    const int i = threadIdx.x;
    if (i < n) t[i] = x[i];
    // missing __syncthreads(): thread i reads what thread n-1-i writes
    if (i < n) x[i] = t[n - 1 - i];
}
extern "C" __global__ void synced_reverse(float* x, int n) {
    extern __shared__ float t[];
    const int i = threadIdx.x;
    if (i < n) t[i] = x[i];
    __syncthreads();
    if (i < n) x[i] = t[n - 1 - i];
}
extern "C" __global__ void scale(int* x, int f) { x[threadIdx.x] = x[threadIdx.x] * f; }
"""


def test_tsan_reports_missing_syncthreads():
    reason = _skip_reason("thread")
    if reason:
        pytest.skip(reason)
    mod = H.EmulatedModule(CONTROL_KERNELS, sanitizer="thread")
    x = np.arange(64, dtype=np.float32)
    mod.get_function("synced_reverse")((1,), (64,), (x, np.int32(64)), shared_mem=256)
    np.testing.assert_array_equal(x, np.arange(64, dtype=np.float32)[::-1])
    with pytest.raises(H.SanitizerError, match="ThreadSanitizer: data race"):
        mod.get_function("racy_reverse")((1,), (64,), (x, np.int32(64)), shared_mem=256)


def test_ubsan_reports_signed_overflow():
    reason = _skip_reason("address")
    if reason:
        pytest.skip(reason)
    mod = H.EmulatedModule(CONTROL_KERNELS, sanitizer="address")
    x = np.full(32, 3, np.int32)
    mod.get_function("scale")((1,), (32,), (x, np.int32(5)))
    assert (x == 15).all()
    with pytest.raises(H.SanitizerError, match="runtime error"):
        mod.get_function("scale")((1,), (32,), (x, np.int32(2 ** 30)))
