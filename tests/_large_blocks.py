"""Shared by the large-block kernel tests (tests/backends/test_kernels_large_blocks.py) and the
fuzz suite (tests/core/test_fuzz.py): the NumPy reference of packed plans and one emulated
expand + adjoint checked against it (kernels/expand.cu through g++ and the CUDA shim)."""
from __future__ import annotations

import numpy as np

from cupysteer.backends.launch import SHARED_MEMORY_LIMIT, launch_config
from cupysteer.backends.numpy_backend import NumpyExpander
from cupysteer.backends.packing import pack_plans

from _helpers import TOL, rel_err
from cuda_emulation import harness as H

# relative to the largest entry; float32: each entry here sums up to ~10³ products (Q over
# 120 channels on both sides), and a plan with one weight has no larger entry to hide behind
BIG_TOL = {np.dtype(np.float64): TOL[np.dtype(np.float64)], np.dtype(np.float32): 5e-5}


def reference(plans, W, G):
    """NumPy float64 filters (b, filter_size) and weight gradients (b, dim) of packed plans."""
    W, G = np.asarray(W, np.float64), np.asarray(G, np.float64)
    fs, gs, wo, fo = [], [], 0, 0
    for p in plans:
        ex = NumpyExpander(p, np.float64)
        n = p.out_size * p.in_size * p.num_points
        fs.append(ex.expand(W[:, wo:wo + p.dim]).reshape(len(W), -1))
        gs.append(ex.adjoint(G[:, fo:fo + n].reshape((len(G), p.out_size, p.in_size)
                                                     + p.filter_shape)))
        wo, fo = wo + p.dim, fo + n
    return np.concatenate(fs, 1), np.concatenate(gs, 1)


def fitting_limit(packed, item, limit):
    """``limit`` raised to the smallest shared memory the packed plan can launch with."""
    if limit is None:
        return None
    while True:
        try:
            for kind in ("forward", "adjoint"):
                launch_config(packed, kind, 1, item, shared_limit=limit)
            return limit
        except ValueError:
            limit += 2048
            assert limit <= SHARED_MEMORY_LIMIT


def affordable(plans, limit) -> bool:
    """Bounds the emulation time of one random example (a CUDA block costs ~0.3 ms of
    barriers here, a multiply-add a few ns)."""
    p = pack_plans(plans)
    work = sum(q.out_size * q.in_size * q.num_points * (q.out_size + q.in_size) for q in plans)
    cfg = launch_config(p, "forward", 1, 4, shared_limit=fitting_limit(p, 8, limit)
                        or SHARED_MEMORY_LIMIT)
    return work <= 4e7 and cfg.grid[0] * cfg.grid[1] <= 4000


def check(plans, dtype, batch, seed, limit=None):
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    probe = pack_plans(plans)
    ex = H.CpuExpander(plans, dtype, shared_limit=fitting_limit(probe, dtype.itemsize, limit))
    p = ex.packed
    W = rng.standard_normal((batch, p.dim)).astype(dtype)
    G = rng.standard_normal((batch, p.filter_size)).astype(dtype)
    ref, gref = reference(plans, W, G)
    out = ex.expand(W)
    fcfg = ex.last_config
    assert not np.isnan(out).any(), f"the kernel left filter entries unwritten ({fcfg})"
    err = rel_err(out, ref)
    assert err < BIG_TOL[dtype], f"forward: relative error {err:.3g} with {fcfg}"
    gw = ex.adjoint(G)
    acfg = ex.last_config
    assert not np.isnan(gw).any(), f"the adjoint left weight gradients unwritten ({acfg})"
    err = rel_err(gw, gref)
    assert err < BIG_TOL[dtype], f"adjoint: relative error {err:.3g} with {acfg}"
    for cfg in (fcfg, acfg):
        assert cfg.shared_mem <= (ex.shared_limit or SHARED_MEMORY_LIMIT)
    return ex, fcfg, acfg
