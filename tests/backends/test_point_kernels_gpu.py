"""kernels/point_conv.cu on a real CUDA device (``pytest -m gpu``; run by
``scripts/gpu_check.sh quick``); skipped, with the reason printed, where CuPy or a device is
missing. The same properties are proven without a GPU by test_point_kernels_compile.py
(NVRTC/nvcc, ptxas budgets), test_point_kernels_emulated.py (CPU emulation vs the NumPy
reference) and test_point_kernels_sanitizers.py (ASan/UBSan/TSan); this file adds what only
a GPU shows: the RawModule load, GPU numerics (FMA, flush-to-zero) and real scheduling.
"""
from __future__ import annotations

import numpy as np
import pytest

from cupysteer.backends import cupy_backend as cb
from cupysteer.backends import point_cupy as pc

from _helpers import rel_err
from cuda_emulation.point_problems import harmonic_problem, make_problem, reference


def _skip_reason():
    try:
        import cupy  # noqa: F401
    except Exception as exc:
        return f"CuPy is not installed ({type(exc).__name__}: {exc})"
    if not cb.is_available():
        return "CuPy sees no usable CUDA device"
    return None


REASON = _skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None,
                                                  reason=f"GPU point-kernel tests: {REASON}")]
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-11}


@pytest.fixture(scope="module")
def cupy():
    import cupy
    return cupy


def _run(cupy, p, launch=None):
    L = launch or pc.PointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                                 c_in=p["g"].shape[1])
    b, w, g, gy = (cupy.asarray(p[k]) for k in ("basis", "w", "g", "gy"))
    out = (L.contract(b, w, g), L.adjoint_features(b, w, gy), L.adjoint_weights(b, gy, g))
    cupy.cuda.get_current_stream().synchronize()
    return tuple(o.get() for o in out), L


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_random_problems_match_the_reference(cupy, dtype, seed):
    p = make_problem(seed, n_blocks=1 + seed, c_out=3 + 2 * seed, c_in=2 + seed,
                     E=[0, 1, 30, 200, 57, 400][seed], dtype=dtype)
    got, _ = _run(cupy, p)
    ref = reference(p)
    got = (got[0], got[1][:, :ref[1].shape[1]], got[2])
    for a, b in zip(got, ref):
        assert a.shape == b.shape and rel_err(a, b) < TOL[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hub_and_3d_blocks_deterministic(cupy, dtype):
    """A 20000-edge hub (several lanes per element) and 13 × 13 blocks: matches the
    reference, and two runs are bit-identical (no atomics)."""
    rng = np.random.default_rng(0)
    E = 20000
    src = np.where(np.arange(E) < 15000, 0, rng.integers(1, 50, E))
    dst = np.where(np.arange(E) % 5 == 0, rng.integers(0, 50, E), 50)
    p = make_problem(1, n_blocks=12, c_out=30, c_in=26, n_src=50, n_tgt=51, src=src, dst=dst,
                     dtype=dtype, dims=(1, 3, 5, 13))
    (y, gg, gw), L = _run(cupy, p)
    assert L.config("forward", dtype).split > 1
    ref = reference(p)
    for a, b in zip((y, gg[:, :ref[1].shape[1]], gw), ref):
        assert rel_err(a, b) < 10 * TOL[np.dtype(dtype)]
    (y2, gg2, gw2), _ = _run(cupy, p, L)
    assert y.tobytes() == y2.tobytes() and gg.tobytes() == gg2.tobytes()
    assert gw.tobytes() == gw2.tobytes()


def test_checks_before_launch(cupy):
    p = make_problem(2, E=10)
    L = pc.PointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"])
    with pytest.raises(TypeError, match="basis: the CuPy backend takes cupy.ndarray"):
        L.contract(p["basis"], cupy.asarray(p["w"]), cupy.asarray(p["g"]))
    with pytest.raises(ValueError, match="g has dtype"):
        L.contract(cupy.asarray(p["basis"]), cupy.asarray(p["w"]),
                   cupy.asarray(p["g"], np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_2d_basis_matches_the_sampled_reference(cupy, dtype):
    """The *_2d kernels (basis evaluated on the GPU: exp, sin, cos with GPU numerics)."""
    p = harmonic_problem(3, dtype, n_blocks=5, E=300, origin_edges=10)
    L = pc.PointLaunch(p["table"], p["src"], p["dst"], p["n_src"], p["n_tgt"],
                       c_in=p["g"].shape[1])
    sample = p["h"].at(cupy.asarray(p["delta"]))
    w, g, gy = (cupy.asarray(p[k]) for k in ("w", "g", "gy"))
    got = (L.contract(sample, w, g).get(), L.adjoint_weights(sample, gy, g).get())
    ref = reference(dict(p, basis=p["h"].evaluate(p["delta"]).astype(dtype)))
    assert rel_err(got[0], ref[0]) < 10 * TOL[np.dtype(dtype)]
    assert rel_err(got[1], ref[2]) < 10 * TOL[np.dtype(dtype)]
