"""Property-based fuzzing of the whole expansion path (hypothesis).

Random groups (every family of tests/_helpers.GROUPS), random field types (irreps, regular,
quotient and user representations with a random orthogonal change of basis; mixed, repeated
and non-contiguous), kernel sizes 1–7 (even and odd), dilations, explicit point sets, float32 and
float64, and weights passed as non-contiguous, negative-stride, Fortran-order or read-only views:

* NumPy expand vs two references: the padded basis ``dense()`` and e2cnn's per-block storage
  ``padded_blocks()`` (one GEMM per block + scatter, as the CuPy 'padded' method does);
* the adjoint identity ⟨expand(w), G⟩ = ⟨w, adjoint(G)⟩ and adjoint vs ``dense()``;
* equivariance on the grid: K(g·p) = ρ_out(g) K(p) ρ_in(g)ᵀ for every grid symmetry g;
* the CUDA kernels (CPU emulation) vs NumPy: packed networks, several point tiles, batches.

Profiles: ``ci`` (the default: a few hundred examples in all, well under a minute on two
cores) and ``nightly`` (25× more examples), chosen by ``HYPOTHESIS_PROFILE=nightly`` (see
scripts/nightly_fuzz.sh). A failure prints the example and a ``@reproduce_failure`` blob.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cupysteer as cs
from _large_blocks import affordable
from _large_blocks import check as check_plans
from cupysteer.backends.packing import pack_plans

from _helpers import (
    GROUPS,
    TOL,
    build,
    conjugate,
    grid_symmetries,
    group,
    point_permutation,
    pool,
    reference_adjoint,
    reference_forward,
    rel_err,
)
from _plan_strategies import build_plan, plan_specs
from cuda_emulation import harness as H

settings.register_profile(
    "ci", max_examples=50, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large])
settings.register_profile("nightly", settings.get_profile("ci"), max_examples=1250)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 25 if PROFILE == "nightly" else 1


def fuzz(examples: int):
    """``examples`` examples in CI, 25× as many with HYPOTHESIS_PROFILE=nightly."""
    return settings(settings.get_profile("nightly" if PROFILE == "nightly" else "ci"),
                    max_examples=examples * SCALE)


# ---- strategies ---------------------------------------------------------------------------------

seeds = st.integers(0, 2 ** 32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])
VIEWS = ("contiguous", "strided", "negative", "fortran", "read-only")


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@st.composite
def user_representation(draw, G):
    """1–3 irreps of G with a random orthogonal change of basis (a unique name per Q)."""
    irreps = draw(st.lists(st.sampled_from(G.irreps()), min_size=1, max_size=3))
    seed = draw(st.integers(0, 10 ** 6))
    Q = random_orthogonal(sum(p.dim for p in irreps), seed)
    return cs.Representation(G, irreps, Q,
                             name=f"user{seed}[{','.join(p.name for p in irreps)}]")


@st.composite
def field_type(draw, name, max_fields=4, max_size=24):
    G = group(name)
    reps = pool(name)
    rep = st.one_of(st.sampled_from(reps), user_representation(G)) if draw(st.booleans()) \
        else st.sampled_from(reps)
    lst = draw(st.lists(rep, min_size=1, max_size=max_fields))
    sizes = np.cumsum([r.size for r in lst])
    lst = lst[:int((sizes <= max_size).sum())]  # the longest prefix within max_size
    assume(lst)
    return cs.FieldType(G, lst)


@st.composite
def layer(draw, names=tuple(GROUPS), grid_only=False, max_size=24, kernel_sizes=range(1, 8)):
    name = draw(st.sampled_from(names), label="group")
    tin = draw(field_type(name, max_size=max_size), label="in_type")
    tout = draw(field_type(name, max_size=max_size), label="out_type")
    k = draw(st.sampled_from(list(kernel_sizes)), label="kernel_size")
    dilation = draw(st.sampled_from([1, 1, 2]), label="dilation")
    kw = {}
    if not grid_only and draw(st.integers(0, 5)) == 0:  # explicit points, rings inside them
        n = draw(st.integers(3, 20))
        pts = np.random.default_rng(draw(seeds)).uniform(-2, 2, (n, 2))
        r = np.hypot(pts[:, 0], pts[:, 1]).max()
        kw = dict(points=pts, rings=[0.0, r / 2, r], frequencies_cutoff=3.0)
    return build(tin, tout, k, dilation, cache=False, **kw)


def view(a: np.ndarray, kind: str) -> np.ndarray:
    """``a``'s values in a differently laid out (or read-only) array."""
    if kind == "strided":
        big = np.zeros(a.shape[:-1] + (3 * a.shape[-1],), a.dtype)
        big[..., 1::3] = a
        return big[..., 1::3]
    if kind == "negative":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "read-only":
        b = a.copy()
        b.setflags(write=False)
        return b
    return a


def padded_reference(L, W):
    """Filters from e2cnn's storage: per block, weights @ E, scattered to its channels."""
    K = np.zeros((len(W),) + L.shape[:2] + (len(L.points),))
    for b in L.padded_blocks():
        d, so, si, P = b["E"].shape
        no, ni = b["n_out"], b["n_in"]
        Wb = W[:, b["lo"]:b["lo"] + no * ni * d].reshape(len(W), no, ni, d)
        B = np.einsum("bxyd,dasp->bxaysp", Wb, b["E"]).reshape(len(W), no * so, ni * si, P)
        K[:, b["out_channels"][:, None], b["in_channels"][None, :]] = B
    return K.reshape((len(W),) + L.shape)


# ---- NumPy backend ----------------------------------------------------------------------------

@fuzz(150)
@given(L=layer(), dtype=dtypes, batch=st.integers(1, 3), seed=seeds,
       kind=st.sampled_from(VIEWS))
def test_expand_matches_dense_and_padded_references(L, dtype, batch, seed, kind):
    W = np.random.default_rng(seed).standard_normal((batch, L.dim)).astype(dtype)
    K = L.expand(view(W, kind))
    assert K.dtype == dtype and K.shape == (batch,) + L.shape
    W64 = W.astype(np.float64)
    dense = np.einsum("bd,d...->b...", W64, L.dense())
    tol = TOL[np.dtype(dtype)]
    assert rel_err(K, dense) < tol
    assert rel_err(padded_reference(L, W64), dense) < 1e-12
    # single items agree with the batch (to rounding: GEMM shapes differ)
    assert rel_err(L.expand(W[0]), K[0]) < tol


@fuzz(100)
@given(L=layer(), dtype=dtypes, seed=seeds, kind=st.sampled_from(VIEWS))
def test_adjoint_is_the_transpose(L, dtype, seed, kind):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(L.dim)
    G = rng.standard_normal((2,) + L.shape)
    gw = L.adjoint(view(G.astype(dtype), kind))
    assert gw.dtype == dtype and gw.shape == (2, L.dim)
    ref = G.astype(dtype).astype(np.float64).reshape(2, -1) @ L.dense().reshape(L.dim, -1).T
    assert rel_err(gw, ref) < TOL[np.dtype(dtype)]
    # <K(w), G> = <w, K*(G)> in float64
    lhs = float(np.vdot(L.expand(w), G[0]))
    rhs = float(np.vdot(w, L.adjoint(G[0])))
    assert math.isclose(lhs, rhs, rel_tol=1e-11, abs_tol=1e-11 * np.abs(G[0]).sum())


@fuzz(100)
@given(L=layer(grid_only=True), dtype=dtypes, seed=seeds)
def test_filters_are_equivariant_on_the_grid(L, dtype, seed):
    assume(len(L.filter_shape) == 2)
    w = np.random.default_rng(seed).standard_normal(L.dim).astype(dtype)
    K = L.expand(w).astype(np.float64).reshape(L.shape[0], L.shape[1], -1)
    assume(np.abs(K).max() > 0)
    Gp = L.in_type.group
    for g in grid_symmetries(Gp):
        perm = point_permutation(Gp.action_matrix(g), L.points)
        rhs = conjugate(L.out_type.representation(g), K, L.in_type.representation(g))
        err = rel_err(K[:, :, perm], rhs)
        assert err < 10 * TOL[np.dtype(dtype)], (g, err)


# ---- the CUDA kernels, emulated on the CPU ----------------------------------------------------

needs_gxx = pytest.mark.skipif(H.gxx() is None, reason="g++ not found: the CPU emulation of "
                                                       "the CUDA kernels needs a host C++ compiler")


@needs_gxx
@fuzz(60)
@given(data=st.data(), dtype=dtypes, batch=st.integers(1, 3), seed=seeds,
       tiles=st.sampled_from([None, None, 2, 4]), kind=st.sampled_from(VIEWS))
def test_emulated_kernels_match_numpy(data, dtype, batch, seed, tiles, kind):
    name = data.draw(st.sampled_from(sorted(GROUPS)), label="group")
    n = data.draw(st.integers(1, 3), label="layers")
    Ls = [data.draw(layer(names=(name,), max_size=12, kernel_sizes=(1, 2, 3, 4, 5)),
                    label=f"layer{i}") for i in range(n)]
    limit = None
    p = pack_plans([L.plan for L in Ls])
    if tiles:
        item = np.dtype(dtype).itemsize
        cell = 2 * p.max_out_size * p.max_in_size * item
        limit = p.max_fieldpair_weights * item + cell * max(1, p.max_points // tiles)
    ex = H.CpuExpander([L.plan for L in Ls], dtype, shared_limit=limit)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((batch, p.dim)).astype(dtype)
    out = ex.expand(view(W, kind))
    tol = TOL[np.dtype(dtype)]
    assert not np.isnan(out).any(), "the kernel left filter entries unwritten"
    assert rel_err(out, reference_forward(Ls, W)) < tol
    Gr = rng.standard_normal((batch, p.filter_size)).astype(dtype)
    gw = ex.adjoint(view(Gr, kind))
    assert not np.isnan(gw).any()
    assert rel_err(gw, reference_adjoint(Ls, Gr)) < tol


@needs_gxx
@fuzz(3)
@given(data=st.data(), dtype=dtypes, batch=st.integers(1, 2),
       limit=st.sampled_from([None, None, 8 * 1024, 3 * 1024]))
def test_emulated_kernels_on_3d_sized_plans(data, dtype, batch, limit):
    """Random plans straight from the plan contract: irreps up to 13, fields up to 90 channels
    with dense Q, P up to 343, any filter_shape; the forced shared-memory limits exercise the
    row chunks, column tiles and weight passes (tests/backends/test_kernels_large_blocks.py)."""
    plan = build_plan(**data.draw(plan_specs(max_dim=13, big_dims=(13,), max_field=60,
                                             max_channels=90, max_points=343, max_count=8),
                                  label="plan"))
    assume(plan.dim > 0 and affordable([plan], limit))
    check_plans([plan], dtype, batch, data.draw(seeds, label="seed"), limit)
