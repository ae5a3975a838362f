"""kernels/expand.cu run on the CPU (g++ + tests/cuda_emulation/cuda_cpu_shim.h) against the
NumPy reference: forward and adjoint, random plans, edge cases, whole networks, half outputs.

The launches are the CuPy backend's own: ``CupyExpander`` on a stand-in ``cupy`` (see
tests/cuda_emulation/harness.py), so the same source text, template instantiations (name
expressions), launch configuration and argument lists; the kernels run in a worker subprocess
with a timeout per launch. Outputs are pre-filled with NaN and
dynamic shared memory is refilled with NaN bytes before every block, so an element the kernel
forgets to write or a shared value read before it is written fails the comparison.

Set CUPYSTEER_EMU_SANITIZE=address or =thread to run this whole file under ASan+UBSan or TSan
(tests/backends/test_kernels_sanitizers.py runs a smaller set under both in every CI run).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer.backends import cupy_backend as cb
from cupysteer.backends.kernel_source import (
    all_name_expressions,
    forward_args,
    kernel_source,
    name_expression,
)
from cupysteer.backends.launch import launch_config
from cupysteer.backends.packing import FP, pack_plans

from _helpers import (
    TOL,
    assert_bf16_close,
    assert_half_close,
    assert_split_views,
    ft,
    group,
    irrep,
    layers,
    network,
    reference_adjoint,
    reference_forward,
    rel_err,
)
from cuda_emulation import harness as H

pytestmark = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                        "the CUDA kernels needs a host C++20 "
                                                        "compiler")
HAVE_CUDA_HEADERS = bool(H.cuda_include_dirs())
needs_half = pytest.mark.skipif(not HAVE_CUDA_HEADERS, reason="cuda_fp16.h/cuda_bf16.h not "
                                "found (pip install nvidia-cuda-runtime nvidia-cuda-crt "
                                "nvidia-cuda-cccl)")


@pytest.fixture(scope="module", autouse=True)
def emulated_modules():
    """Build both modules (COMPILE_OPTIONS and HALF_OPTIONS) in parallel, once."""
    t0 = time.perf_counter()
    configs = [(False, "env")] + ([(True, "env")] if HAVE_CUDA_HEADERS else [])
    builds = H.prebuild(configs)
    took = ", ".join(f"{b.so.name}: {'cached' if b.seconds == 0 else f'{b.seconds:.1f} s'}"
                     for b in builds)
    print(f"\n[emulation] g++ builds ({time.perf_counter() - t0:.1f} s): {took}", file=sys.stderr)
    yield builds


def limit_for_tiles(packed, dtype, tiles: int) -> int:
    """A shared-memory limit that makes launch_config split the points into about ``tiles``
    tiles (for the adjoint; the forward gets the same or slightly larger tiles)."""
    item = np.dtype(dtype).itemsize
    cell = 2 * packed.max_out_size * packed.max_in_size * item
    fixed = packed.max_fieldpair_weights * item
    return fixed + cell * max(1, packed.max_points // tiles)


def check(layers, dtype, batch, seed, *, shared_limit=None, flat=False, **kw):
    """Emulated forward and adjoint of the packed ``layers`` against NumPy; returns the
    expander (its last_config is the adjoint's)."""
    dtype = np.dtype(dtype)
    tol = TOL[dtype]
    rng = np.random.default_rng(seed)
    ex = H.CpuExpander([L.plan for L in layers], dtype, shared_limit=shared_limit, **kw)
    p = ex.packed
    W = rng.standard_normal((batch, p.dim)).astype(dtype)
    out = ex.expand(W[0] if flat else W)
    assert out.dtype == dtype
    assert out.shape == ((p.filter_size,) if flat else (batch, p.filter_size))
    ref = reference_forward(layers, W[:1] if flat else W)
    assert not np.isnan(out).any(), "the kernel left filter entries unwritten"
    err = rel_err(out.reshape(ref.shape), ref)
    assert err < tol, f"forward: relative error {err:.3g} (tolerance {tol:g})"
    fcfg = ex.last_config

    G = rng.standard_normal((batch, p.filter_size)).astype(dtype)
    gw = ex.adjoint(G[0] if flat else G)
    assert gw.dtype == dtype and gw.shape == ((p.dim,) if flat else (batch, p.dim))
    gref = reference_adjoint(layers, G[:1] if flat else G)
    assert not np.isnan(gw).any(), "the adjoint left weight-gradient entries unwritten"
    err = rel_err(gw.reshape(gref.shape), gref)
    assert err < tol, f"adjoint: relative error {err:.3g} (tolerance {tol:g})"
    # the exact transpose: <K(w), G> = <w, K*(G)>
    G64 = G[:len(ref)].astype(np.float64)
    lhs = float(np.vdot(ref, G64))
    rhs = float(np.vdot(W[:len(ref)].astype(np.float64), gw.reshape(gref.shape)))
    assert math.isclose(lhs, rhs, rel_tol=0, abs_tol=100 * tol * np.abs(ref * G64).sum())
    ex.forward_config = fcfg
    return ex


# ---- random plans (hypothesis) ------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                  HealthCheck.too_slow])
@given(L=layers(), dtype=st.sampled_from([np.float32, np.float64]), batch=st.integers(1, 3),
       seed=st.integers(0, 2 ** 32 - 1), tiles=st.sampled_from([None, None, 2, 3]),
       flat=st.booleans())
def test_random_layers(L, dtype, batch, seed, tiles, flat):
    limit = None
    if tiles:
        limit = limit_for_tiles(pack_plans([L.plan]), dtype, tiles)
    check([L], dtype, 1 if flat else batch, seed, shared_limit=limit, flat=flat)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                 HealthCheck.too_slow])
@given(name=st.sampled_from(["C4", "D2", "SO2", "C3"]), data=st.data(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 32 - 1))
def test_random_networks(name, data, dtype, seed):
    """2–3 layers of one group with different fields and kernel sizes, packed together."""
    n = data.draw(st.integers(2, 3), label="layers")
    Ls = [data.draw(layers(names=[name], kernel_sizes=(1, 3, 4, 5), max_size=12),
                    label=f"layer{i}") for i in range(n)]
    tiles = data.draw(st.sampled_from([None, 3]), label="tiles")
    limit = limit_for_tiles(pack_plans([L.plan for L in Ls]), dtype, tiles) if tiles else None
    check(Ls, dtype, data.draw(st.integers(1, 2), label="batch"), seed, shared_limit=limit)


# ---- edge cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_field(dtype):
    G = group("C4")
    R = G.regular_representation
    L = cs.LayerBasis(ft(G, R), ft(G, R), 3)
    for batch in (1, 3):
        ex = check([L], dtype, batch, 1)
        assert ex.packed.num_fieldpairs == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dimension_one(dtype):
    """Trivial → trivial, kernel size 1: one weight, one point, one field pair."""
    G = group("C1")
    T = G.trivial_representation
    L = cs.LayerBasis(ft(G, T), ft(G, T), 1)
    assert L.dim == 1 and L.plan.num_points == 1
    ex = check([L], dtype, 2, 2)
    assert ex.last_config.tile == 1 and ex.last_config.grid == (1, 1, 2)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_field_pairs(k, dtype):
    """Field pairs without any basis element (written as zeros by the forward, skipped by the
    adjoint) next to non-empty ones."""
    G = group("SO2")
    L = cs.LayerBasis(ft(G, irrep(G, 0), irrep(G, 3)), ft(G, irrep(G, 0), irrep(G, 2), irrep(G, 0)),
                      k)
    fp = pack_plans([L.plan]).fieldpairs
    begin, end = fp[:, FP.block_begin], fp[:, FP.block_end]
    assert (begin == end).any() and (begin < end).any()
    check([L], dtype, 2, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_irreps_pairs_inside_a_field_pair(dtype):
    """Regular C4 fields at kernel size 1: most irreps pairs of the field pair have no basis,
    and Q ≠ I on both sides."""
    G = group("C4")
    R = G.regular_representation
    L = cs.LayerBasis(ft(G, R, R), ft(G, R), 1)
    p = pack_plans([L.plan])
    per_fp = p.fieldpairs[:, FP.block_end] - p.fieldpairs[:, FP.block_begin]
    assert (per_fp < 4).all() and (p.fieldpairs[:, FP.out_cob] >= 0).all()  # < 4 of 16 pairs
    check([L], dtype, 3, 4)


@pytest.mark.parametrize("k", [3, 4, 5, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_odd_sizes(k, dtype):
    """Odd channel counts (C3 / C5 regular, trivial) and odd or even kernel sizes."""
    C3, C5 = group("C3"), group("C5")
    L3 = cs.LayerBasis(ft(C3, C3.regular_representation, C3.trivial_representation),
                       ft(C3, C3.trivial_representation, C3.regular_representation,
                          C3.regular_representation), k)
    L5 = cs.LayerBasis(ft(C5, C5.regular_representation), ft(C5, irrep(C5, 1),
                                                           C5.trivial_representation), k)
    check([L3], dtype, 3, 5)
    check([L5], dtype, 1, 6, flat=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_points_not_dividing_the_tile(dtype):
    """49 points in tiles of 10 (five tiles, the last one of 9) for the forward and the adjoint."""
    G = group("C8")
    R = G.regular_representation
    L = cs.LayerBasis(ft(G, R, irrep(G, 1)), ft(G, R), 7)
    p = pack_plans([L.plan])
    item = np.dtype(dtype).itemsize
    cell = 2 * p.max_out_size * p.max_in_size * item
    limit = p.max_fieldpair_weights * item + 10 * cell
    ex = check([L], dtype, 2, 7, shared_limit=limit)
    for cfg in (ex.forward_config, ex.last_config):
        assert cfg.tile == 10 and p.max_points % cfg.tile != 0, cfg
    assert ex.forward_config.grid[1] == 5  # forward: one CUDA block per tile
    # one point per tile: the most tiles and barriers
    check([L], dtype, 1, 8, shared_limit=p.max_fieldpair_weights * item + cell)


@pytest.mark.parametrize("tiles", [None, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_network(dtype, tiles):
    """One launch for three layers: weights and filters laid end to end; the 9- and 1-point
    layers see CUDA blocks past their last point (early return) when tiles are small."""
    Ls = network()
    p = pack_plans([L.plan for L in Ls])
    limit = limit_for_tiles(p, dtype, tiles) if tiles else None
    ex = check(Ls, dtype, 2, 9, shared_limit=limit)
    if tiles:
        assert ex.forward_config.grid[1] > 1
    W = np.random.default_rng(10).standard_normal((2, p.dim)).astype(dtype)
    views = ex.split(ex.expand(W))
    assert_split_views(Ls, views, W, p.weight_offsets, dtype)


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bits, round to nearest even (what __float2bfloat16_rn does)."""
    b = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


@needs_half
@pytest.mark.parametrize("case", ["layer", "network"])
def test_half_outputs(case):
    """float16 / bfloat16 filters with float32 accumulation: bit-identical to rounding the
    float32 kernel's output (same accumulation, one final rounding), and within half precision
    of the float64 reference."""
    Ls = network() if case == "network" else [
        cs.LayerBasis(ft(group("D4"), group("D4").regular_representation),
                      ft(group("D4"), group("D4").regular_representation,
                         irrep(group("D4"), 1)), 5)]
    ex = H.CpuExpander([L.plan for L in Ls], np.float32)
    W = np.random.default_rng(11).standard_normal((2, ex.packed.dim)).astype(np.float32)
    f32 = ex.expand(W)
    ref = reference_forward(Ls, W)
    h = ex.expand(W, out_dtype="float16")
    assert h.dtype == np.float16 and h.shape == f32.shape
    np.testing.assert_array_equal(h, f32.astype(np.float16))
    assert_half_close(h, ref)
    b = ex.expand(W, out_dtype="bfloat16")
    assert b.dtype == np.uint16 and b.shape == f32.shape
    np.testing.assert_array_equal(b, bf16_round(f32))
    assert_bf16_close(b, ref)
    # unbatched, and np.float16 accepted as dtype
    h1 = ex.expand(W[1], out_dtype=np.float16)
    np.testing.assert_array_equal(h1, h[1])
    with pytest.raises(ValueError, match="out_dtype"):
        ex.expand(W, out_dtype="int8")


# ---- the checks the harness adds (they are what makes a pass meaningful) -----------------------

def test_emulated_source_is_the_kernel_source():
    """g++ compiles kernel_source("expand.cu") with only its `extern __shared__` lines
    rewritten, followed by one launcher per name expression, in CuPy's order."""
    src = kernel_source("expand.cu")
    text, n = H.rewrite_extern_shared(src)
    assert n == src.count("extern __shared__") == 2
    changed = [(a, b) for a, b in zip(src.splitlines(), text.splitlines()) if a != b]
    assert len(changed) == n and len(src.splitlines()) == len(text.splitlines())
    for a, b in changed:
        assert "extern __shared__ unsigned char cs_smem[];" in a
        assert b.strip() == "unsigned char* cs_smem = cudashim::dynamic_shared<unsigned char>();"
    full, names = H.emulation_source(src, all_name_expressions(True))
    assert full.startswith(text) and names == all_name_expressions(True)
    assert H.expand_module(HAVE_CUDA_HEADERS).build.names == tuple(
        all_name_expressions(HAVE_CUDA_HEADERS))


def test_arguments_match_kernel_parameters():
    """forward_args / adjoint_args pass exactly the kernels' parameter types (pointer element
    types, const-ness, 8-byte strides, 4-byte tile), and a mismatch is caught."""
    mod = H.expand_module(HAVE_CUDA_HEADERS)
    for name in all_name_expressions(HAVE_CUDA_HEADERS):
        sig = mod.get_function(name).signature
        kinds = "".join(k for k, _, _ in sig)
        if name.startswith("expand_forward"):  # ..., tile, rows, cols, col_tiles
            assert kinds == "PsPPPPPpsssss", (name, sig)
            assert [s for _, _, s in sig if s] == [8, 8, 4, 4, 4, 4]
        else:  # ..., tile, rows, max_weights, passes
            assert kinds == "PsPPPPPpsssss", (name, sig)
            assert [s for _, _, s in sig if s] == [8, 8, 4, 4, 4, 4]
    L = cs.LayerBasis(ft(group("C2"), group("C2").regular_representation),
                      ft(group("C2"), group("C2").regular_representation), 3)
    ex = H.CpuExpander(L.plan, np.float32)
    p, t = ex.packed, ex.tables
    cfg = launch_config(p, "forward", 1, 4)
    kern = H.expand_module(False).get_function(name_expression("forward", np.float32))
    w = np.ones(p.dim, np.float32)
    out = np.empty(p.filter_size, np.float32)
    good = list(forward_args(w, p.dim, t["basis"], t["cob"], t["fieldpairs"], t["blocks"],
                             t["positions"], out, p.filter_size, cfg))
    for i, bad, msg in [(9, np.int64(cfg.tile), "int32"), (9, cfg.tile, "int32"),
                        (1, np.int32(p.dim), "int64"), (0, w.astype(np.float64), "f4"),
                        (4, p.fieldpairs.astype(np.int32), "i8"), (7, out[::2], "contiguous")]:
        args = list(good)
        args[i] = bad
        with pytest.raises(TypeError, match=msg):
            kern(cfg.grid, cfg.block, args, shared_mem=cfg.shared_mem)
    with pytest.raises(H.LaunchError, match="48 KiB"):
        kern(cfg.grid, cfg.block, good, shared_mem=48 * 1024 + 1)
    with pytest.raises(H.LaunchError, match="block"):
        kern(cfg.grid, (2048, 1, 1), good, shared_mem=cfg.shared_mem)
    kern(cfg.grid, cfg.block, good, shared_mem=cfg.shared_mem)
    assert rel_err(out, L.expand(w.astype(np.float64)).ravel()) < 1e-5


TEST_KERNELS = r"""
extern "C" __global__ void spin_on_later_block(int* flag) {
    // block 0 waits for block 1: deadlocks when blocks run one after another
    if (blockIdx.x == 0) { while (atomicAdd(flag, 0) == 0) { } }
    else if (threadIdx.x == 0) atomicExch(flag, 1);
}
extern "C" __global__ void early_exit_sum(const float* x, float* out, int n) {
    extern __shared__ float s[];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;  // threads past n leave before the barrier
    s[threadIdx.x] = x[i];
    __syncthreads();
    if (threadIdx.x == 0) {
        float acc = 0.f;
        const int m = min(blockDim.x, n - blockIdx.x * blockDim.x);
        for (int j = 0; j < m; ++j) acc += s[j];
        out[blockIdx.x] = acc;
    }
}
"""


def test_shim_barrier_semantics_and_timeout_guard():
    """Early-returning threads leave the barrier (as on the GPU); a kernel that waits on a
    later block deadlocks here and is stopped by the launch timeout, after which the worker
    is restarted and runs kernels again."""
    if H.sanitizer_from_env():
        pytest.skip("timeout path not exercised under a sanitizer")
    mod = H.EmulatedModule(TEST_KERNELS, timeout=20)
    x = np.arange(70, dtype=np.float32)
    out = np.zeros(3, np.float32)
    mod.get_function("early_exit_sum")((3,), (32,), (x, out, np.int32(70)), shared_mem=32 * 4)
    np.testing.assert_array_equal(out, [x[:32].sum(), x[32:64].sum(), x[64:].sum()])
    spin = mod.get_function("spin_on_later_block")
    spin.signature  # noqa: B018 -- asked now, so that only the launch runs under 3 s
    mod.timeout = 3
    t0 = time.perf_counter()
    with pytest.raises(H.EmulationTimeout):
        spin((2,), (4,), (np.zeros(1, np.int32),))
    assert time.perf_counter() - t0 < 30
    mod.timeout = 20  # a fresh worker starts for the next launch
    out[:] = 0
    mod.get_function("early_exit_sum")((3,), (32,), (x, out, np.int32(70)), shared_mem=32 * 4)
    assert out[2] == x[64:].sum()


# ---- the CuPy backend's own code, driven by the emulated kernels ---------------------------------

def test_cupy_backend_code_runs_the_emulated_kernels(monkeypatch):
    """CupyExpander itself, as the library builds it (through ``import_cupy`` and the
    backend's per-device module cache), with the harness's stand-in ``cupy`` whose RawModule
    is the emulated module: its packing, launch configuration, argument lists, module
    options, output allocation and error checks, fused and padded, forward and adjoint."""
    monkeypatch.setattr(cb, "import_cupy", lambda: H.HostCupy())
    monkeypatch.setattr(cb, "_MODULES", {})
    Ls = network()
    plans = [L.plan for L in Ls]
    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64):
        tol = TOL[np.dtype(dtype)]
        ex = cb.CupyExpander(plans, dtype)
        p = ex.packed
        W = rng.standard_normal((2, p.dim)).astype(dtype)
        out = ex.expand(W.view(H.HostArray))
        assert isinstance(out, H.HostArray) and out.shape == (2, p.filter_size)
        assert rel_err(out, reference_forward(Ls, W)) < tol
        assert rel_err(ex.expand(W[1].view(H.HostArray)), reference_forward(Ls, W[1:])[0]) < tol
        G = rng.standard_normal((2, p.filter_size)).astype(dtype)
        gw = ex.adjoint(G.view(H.HostArray))
        assert rel_err(gw, reference_adjoint(Ls, G)) < tol
        blocks = [L.padded_blocks(dtype) for L in Ls]
        pad = cb.CupyExpander(plans, dtype, method="padded", padded_blocks=blocks)
        assert rel_err(pad.expand(W.view(H.HostArray)), out) < 10 * tol
        assert rel_err(pad.adjoint(G.view(H.HostArray)), gw) < 10 * tol
        # caller-provided outputs (another framework's memory) receive the same values
        given = np.full((2, p.filter_size), np.nan, dtype).view(H.HostArray)
        assert ex.expand(W.view(H.HostArray), out=given) is given
        np.testing.assert_array_equal(given, out)
        given_w = np.full((2, p.dim), np.nan, dtype).view(H.HostArray)
        assert ex.adjoint(G.view(H.HostArray), out=given_w) is given_w
        np.testing.assert_array_equal(given_w, gw)
        with pytest.raises(ValueError, match="out must have shape"):
            ex.expand(W.view(H.HostArray), out=given[:1])
        given_p = np.full((2, p.filter_size), np.nan, dtype).view(H.HostArray)
        pad.expand(W.view(H.HostArray), out=given_p)
        assert rel_err(given_p, out) < 10 * tol
        for got, L in zip(ex.split(out), Ls):
            assert got.shape == (2,) + L.shape
    if HAVE_CUDA_HEADERS:
        ex = cb.CupyExpander(plans, np.float32)
        W = rng.standard_normal((2, ex.packed.dim)).astype(np.float32)
        f32 = ex.expand(W.view(H.HostArray))
        np.testing.assert_array_equal(ex.expand(W.view(H.HostArray), out_dtype="float16"),
                                      np.asarray(f32).astype(np.float16))
        np.testing.assert_array_equal(ex.expand(W.view(H.HostArray), out_dtype="bfloat16"),
                                      bf16_round(f32))
    # the checks before a launch
    ex = cb.CupyExpander(plans, np.float32)
    w = np.zeros(ex.packed.dim, np.float32)
    with pytest.raises(TypeError, match="cupy.ndarray"):
        ex.expand(w)
    with pytest.raises(ValueError, match="dtype"):
        ex.expand(w.astype(np.float64).view(H.HostArray))
    with pytest.raises(ValueError, match="shape"):
        ex.expand(w[:-1].view(H.HostArray))
    with pytest.raises(ValueError, match="shape"):
        ex.adjoint(np.zeros((1, 2, ex.packed.filter_size), np.float32).view(H.HostArray))
    with pytest.raises(ValueError, match="out_dtype"):
        cb.CupyExpander(plans, np.float64).expand(w.astype(np.float64).view(H.HostArray),
                                                 out_dtype="float16")
