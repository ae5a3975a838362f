"""The v2 kernels on a real CUDA device (``pytest -m gpu``, run by ``scripts/gpu_check.sh
quick``); skipped, with the reason printed, where CuPy or a device is missing. The other GPU
tests (tests/backends/test_cupy_gpu.py) run ``method="fused"``, i.e. v2, against NumPy; these
add what is specific to v2: agreement with v1, bit-identical reruns of the adjoint with its
second pass, and a layer whose launch opts in to more than 48 KiB of shared memory.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_cupy_gpu import REASON

import cupysteer as cs
from cupysteer import r3
from cupysteer.backends import cupy_backend as cb

from _helpers import TOL, network, reference_adjoint, reference_forward, rel_err

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None,
                                                  reason=f"GPU tests: {REASON}")]


def octahedral():
    O = r3.Octahedral()
    return cs.LayerBasis(cs.FieldType(O, [O.regular_representation] * 2),
                         cs.FieldType(O, [O.regular_representation] * 2), 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_v2_matches_numpy_v1_and_itself(dtype):
    import cupy
    layers = network() + [octahedral()]
    plans = [L.plan for L in layers]
    two, one = cb.CupyExpander(plans, dtype), cb.CupyExpander(plans, dtype, method="fused_v1")
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2, two.packed.dim)).astype(dtype)
    G = rng.standard_normal((2, two.packed.filter_size)).astype(dtype)
    tol = 10 * TOL[np.dtype(dtype)]
    out, gw = two.expand(cupy.asarray(W)), two.adjoint(cupy.asarray(G))
    assert rel_err(out.get(), reference_forward(layers, W)) < tol
    assert rel_err(gw.get(), reference_adjoint(layers, G)) < tol
    assert rel_err(out.get(), one.expand(cupy.asarray(W)).get()) < tol
    assert rel_err(gw.get(), one.adjoint(cupy.asarray(G)).get()) < tol
    # bit-identical reruns (no float atomics; the adjoint's tiles summed in a fixed order)
    np.testing.assert_array_equal(two.expand(cupy.asarray(W)).get(), out.get())
    np.testing.assert_array_equal(two.adjoint(cupy.asarray(G)).get(), gw.get())
    fresh = cb.CupyExpander(plans, dtype)
    np.testing.assert_array_equal(fresh.adjoint(cupy.asarray(G)).get(), gw.get())


def test_opt_in_shared_memory_on_the_device():
    """O regular ×2 in float64 wants more than 48 KiB per CUDA block where the device allows
    it (sm_80+); the launch opts in and runs."""
    import cupy
    L = octahedral()
    ex = cb.CupyExpander(L.plan, np.float64)
    optin, sms = cb.device_limits(cupy, cupy.cuda.Device().id)
    W = np.random.default_rng(1).standard_normal(L.dim)
    out = ex.expand(cupy.asarray(W))
    cfg = ex.last_config
    assert cfg.shared_mem <= optin
    if optin > 48 * 1024:
        assert cfg.shared_mem > 48 * 1024, cfg
    assert rel_err(out.get(), L.expand(W).ravel()) < 1e-11
    print(f"\n[v2 gpu] opt-in limit {optin} B, {sms} SMs, forward {cfg}")
