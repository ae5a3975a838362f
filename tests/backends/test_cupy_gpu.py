"""The CuPy backend on a real CUDA device (``pytest -m gpu``); skipped, with the reason
printed, where CuPy or a device is missing.

The same comparisons as the CPU emulation (tests/backends/test_kernels_emulated.py), on the GPU:
CupyExpander forward/adjoint vs the NumPy reference on random plans, whole-network packing,
half/bfloat16 outputs, method='padded', the checks before a launch, and LayerBasis.expand
returning CuPy arrays for CuPy input.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer.backends import cupy_backend as cb
from cupysteer.backends.launch import launch_config
from cupysteer.backends.numpy_backend import NumpyExpander

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


def _skip_reason():
    try:
        import cupy
    except Exception as exc:
        return f"CuPy is not installed ({type(exc).__name__}: {exc})"
    if not cb.is_available():
        try:
            n = cupy.cuda.runtime.getDeviceCount()
            return f"CuPy sees {n} CUDA devices"
        except Exception as exc:
            return f"no usable CUDA device ({type(exc).__name__}: {str(exc)[:200]})"
    return None


REASON = _skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None,
                                                  reason=f"GPU tests: {REASON}")]


@pytest.fixture(scope="module")
def cupy():
    import cupy
    return cupy


def check(cupy, layers, dtype, batch, seed, method="fused"):
    if method == "padded":  # cuBLAS in TF32 would round far beyond these tolerances
        assert os.environ.get("CUPY_TF32", "0") == "0", \
            "CUPY_TF32=1 lets cuBLAS use TF32 for float32: unset it for the GPU tests"
    dtype = np.dtype(dtype)
    tol = TOL[dtype]
    rng = np.random.default_rng(seed)
    blocks = [L.padded_blocks(dtype) for L in layers] if method == "padded" else None
    ex = cb.CupyExpander([L.plan for L in layers], dtype, method=method, padded_blocks=blocks)
    p = ex.packed
    W = rng.standard_normal((batch, p.dim)).astype(dtype)
    out = ex.expand(cupy.asarray(W))
    assert isinstance(out, cupy.ndarray) and out.dtype == dtype
    assert out.shape == (batch, p.filter_size)
    cupy.cuda.get_current_stream().synchronize()
    assert rel_err(out.get(), reference_forward(layers, W)) < tol
    G = rng.standard_normal((batch, p.filter_size)).astype(dtype)
    gw = ex.adjoint(cupy.asarray(G))
    assert isinstance(gw, cupy.ndarray) and gw.shape == (batch, p.dim)
    assert rel_err(gw.get(), reference_adjoint(layers, G)) < tol
    # unbatched
    o1 = ex.expand(cupy.asarray(W[0]))
    assert o1.shape == (p.filter_size,)
    assert rel_err(o1.get(), out[0].get()) < tol
    return ex


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                  HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(L=layers(max_size=24), dtype=st.sampled_from([np.float32, np.float64]),
       batch=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_random_layers(cupy, L, dtype, batch, seed):
    check(cupy, [L], dtype, batch, seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_cases(cupy, dtype):
    C1, SO2, C4, C8 = group("C1"), group("SO2"), group("C4"), group("C8")
    T = C1.trivial_representation
    check(cupy, [cs.LayerBasis(ft(C1, T), ft(C1, T), 1)], dtype, 2, 1)  # dim 1
    check(cupy, [cs.LayerBasis(ft(SO2, irrep(SO2, 0), irrep(SO2, 3)),
                               ft(SO2, irrep(SO2, 0), irrep(SO2, 2), irrep(SO2, 0)), 3)],
          dtype, 2, 2)  # empty field pairs
    R4 = C4.regular_representation
    check(cupy, [cs.LayerBasis(ft(C4, R4, R4), ft(C4, R4), 1)], dtype, 3, 3)  # empty irreps pairs
    R8 = C8.regular_representation
    # wide fields: several point tiles in float64
    check(cupy, [cs.LayerBasis(ft(C8, R8, R8, irrep(C8, 1)), ft(C8, R8, R8), 7)], dtype, 2, 4)


@pytest.mark.parametrize("method", ["fused", "padded"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_network(cupy, dtype, method):
    Ls = network()
    ex = check(cupy, Ls, dtype, 3, 5, method=method)
    W = np.random.default_rng(6).standard_normal((2, ex.packed.dim)).astype(dtype)
    views = ex.split(ex.expand(cupy.asarray(W)))
    assert_split_views(Ls, views, W, ex.packed.weight_offsets, dtype, to_numpy=cupy.asnumpy)


def test_fused_matches_padded(cupy):
    Ls = network()
    blocks = [L.padded_blocks(np.float64) for L in Ls]
    fused = cb.CupyExpander([L.plan for L in Ls], np.float64)
    padded = cb.CupyExpander([L.plan for L in Ls], np.float64, "padded", blocks)
    W = cupy.asarray(np.random.default_rng(7).standard_normal((4, fused.packed.dim)))
    assert rel_err(fused.expand(W).get(), padded.expand(W).get()) < 1e-12
    G = cupy.asarray(np.random.default_rng(8).standard_normal((4, fused.packed.filter_size)))
    assert rel_err(fused.adjoint(G).get(), padded.adjoint(G).get()) < 1e-12


def test_half_outputs(cupy):
    Ls = network()
    ex = cb.CupyExpander([L.plan for L in Ls], np.float32)
    W = np.random.default_rng(9).standard_normal((2, ex.packed.dim)).astype(np.float32)
    ref = reference_forward(Ls, W)
    h = ex.expand(cupy.asarray(W), out_dtype="float16")
    assert h.dtype == cupy.float16 and h.shape == ref.shape
    assert_half_close(h.get(), ref)
    b = ex.expand(cupy.asarray(W), out_dtype="bfloat16")
    assert b.dtype == cupy.uint16 and b.shape == ref.shape
    assert_bf16_close(b.get(), ref)


def test_layer_basis_returns_cupy(cupy):
    L = network()[0]
    w = np.random.default_rng(10).standard_normal(L.dim).astype(np.float32)
    K = L.expand(cupy.asarray(w))
    assert isinstance(K, cupy.ndarray) and K.shape == L.shape and K.dtype == np.float32
    assert rel_err(K.get(), L.expand(w.astype(np.float64))) < 1e-5
    Kp = L.expand(cupy.asarray(w), method="padded")
    assert isinstance(Kp, cupy.ndarray) and rel_err(Kp.get(), K.get()) < 1e-5
    g = L.adjoint(cupy.asarray(np.ones(L.shape, np.float32)))
    assert isinstance(g, cupy.ndarray)
    assert rel_err(g.get(), L.adjoint(np.ones(L.shape))) < 1e-5
    Kb = L.expand(cupy.asarray(np.stack([w, 2 * w])))
    assert Kb.shape == (2,) + L.shape


def test_errors(cupy):
    Ls = network()
    ex = cb.CupyExpander([L.plan for L in Ls], np.float32)
    p = ex.packed
    w = np.zeros(p.dim, np.float32)
    with pytest.raises(TypeError, match="cupy.ndarray"):
        ex.expand(w)  # NumPy array
    with pytest.raises(ValueError, match="dtype"):
        ex.expand(cupy.zeros(p.dim, cupy.float64))
    with pytest.raises(ValueError, match="shape"):
        ex.expand(cupy.zeros(p.dim + 1, cupy.float32))
    with pytest.raises(ValueError, match="shape"):
        ex.expand(cupy.zeros((2, 2, p.dim), cupy.float32))
    with pytest.raises(ValueError, match="shape"):
        ex.adjoint(cupy.zeros(p.filter_size - 1, cupy.float32))
    with pytest.raises(ValueError, match="out_dtype"):
        ex.expand(cupy.zeros(p.dim, cupy.float32), out_dtype="float64")
    with pytest.raises(ValueError, match="method"):
        cb.CupyExpander(Ls[0].plan, np.float32, method="dense")
    with pytest.raises(ValueError, match="padded_blocks"):
        cb.CupyExpander(Ls[0].plan, np.float32, method="padded")
    with pytest.raises(ValueError, match="dtype"):
        cb.CupyExpander(Ls[0].plan, np.float16)
    # non-contiguous input is made contiguous, not misread
    W = cupy.asarray(np.random.default_rng(11).standard_normal((p.dim, 2)).astype(np.float32))
    assert rel_err(ex.expand(W[:, 0]).get(), ex.expand(cupy.ascontiguousarray(W[:, 0])).get()) == 0
    if cupy.cuda.runtime.getDeviceCount() > 1:
        with cupy.cuda.Device(1):
            x1 = cupy.zeros(p.dim, cupy.float32)
        with pytest.raises(ValueError, match="device"):
            ex.expand(x1)


def test_plan_memory(cupy):
    L = network()[0]
    ex = cb.CupyExpander(L.plan, np.float32)
    assert 0 < ex.device_bytes < L.dense(np.float32).nbytes


# ---- 3D-sized plans (irreps to 13, fields to 120 with dense Q, P to 343) ------------------------

def _plan_reference(plan, W, G):
    ex = NumpyExpander(plan, np.float64)
    K = ex.expand(W.astype(np.float64)).reshape(len(W), -1)
    g = ex.adjoint(G.astype(np.float64).reshape((len(G), plan.out_size, plan.in_size)
                                                + plan.filter_shape))
    return K, g


def _check_plan(cupy, plan, dtype, batch=2, seed=0):
    dtype = np.dtype(dtype)
    tol = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 5e-5}[dtype]
    ex = cb.CupyExpander(plan, dtype)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((batch, plan.dim)).astype(dtype)
    G = rng.standard_normal((batch, ex.packed.filter_size)).astype(dtype)
    K, g = _plan_reference(plan, W, G)
    out = ex.expand(cupy.asarray(W)).get()
    assert rel_err(out, K) < tol
    gw = ex.adjoint(cupy.asarray(G)).get()
    assert rel_err(gw, g) < tol
    np.testing.assert_array_equal(ex.adjoint(cupy.asarray(G)).get(), gw)  # deterministic
    return ex


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                 HealthCheck.too_slow])
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_random_big_block_plans(cupy, data, dtype):
    from _plan_strategies import build_plan, plan_specs
    plan = build_plan(**data.draw(plan_specs(max_dim=9, big_dims=(13,), max_field=60,
                                             max_channels=90, max_points=343)))
    if plan.dim:
        _check_plan(cupy, plan, dtype, seed=data.draw(st.integers(0, 99)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_60_channel_field(cupy, dtype):
    """A 60-channel field with dense Q (8 points): too wide for one tile, so rows are chunked
    / columns tiled (small enough for compute-sanitizer, scripts/gpu_check.sh)."""
    from test_kernels_large_blocks import icosahedral_like
    ex = _check_plan(cupy, icosahedral_like((2, 2, 2), copies=1, extra=(13,)), dtype)
    cfg = launch_config(ex.packed, "forward", 2, np.dtype(dtype).itemsize)
    assert cfg.rows < ex.packed.max_out_size or cfg.col_tiles > 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_120_channel_field_pair_343_points(cupy, dtype):
    from test_kernels_large_blocks import icosahedral_like
    ex = _check_plan(cupy, icosahedral_like((7, 7, 7)), dtype, batch=1)
    W = cupy.asarray(np.ones((1, ex.packed.dim), np.float32))
    if dtype == np.float32:
        h = ex.expand(W, out_dtype="float16")
        np.testing.assert_array_equal(h.get(), ex.expand(W).get().astype(np.float16))
