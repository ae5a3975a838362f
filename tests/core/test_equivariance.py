r"""Steerability of the expanded filters (reference §1, §8):

    K(g·p) = ρ_out(g) K(p) ρ_in(g)⁻¹

(a) exactly on the grid for every grid-preserving g (point permutation computed from the
group's action matrix), plus the np.rot90 / flip conventions of §1;
(b) for arbitrary g on an arbitrary point set, by sampling a second basis at g·p.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cupysteer as cs

from _helpers import (
    SETTINGS,
    build,
    conjugate,
    field_types,
    grid_symmetries,
    group,
    is_signed_permutation,
    point_permutation,
    rel_err,
)

GRID_GROUPS = ["C4", "C8", "C16", "D4", "D8", "SO2", "O2", "D4axis0", "Flip0", "FlipPi2",
               "D2", "D3", "C2"]


def _rho(ftype, g):
    return ftype.representation(g)


def check_grid_equivariance(b, w, tol64=1e-12, tol32=1e-5):
    G = b.in_type.group
    els = grid_symmetries(G)
    assert len(els) >= 1
    P = len(b.points)
    K64 = b.expand(w.astype(np.float64)).reshape(b.shape[0], b.shape[1], P)
    K32 = b.expand(w.astype(np.float32)).reshape(b.shape[0], b.shape[1], P)
    assert np.abs(K64).max() > 0
    for g in els:
        A = G.action_matrix(g)
        perm = point_permutation(A, b.points)
        ro = _rho(b.out_type, g)
        ri_inv = np.linalg.inv(_rho(b.in_type, g))
        for K, tol in ((K64, tol64), (K32, tol32)):
            lhs = K[:, :, perm]  # K(g·p)
            rhs = np.einsum("ab,bcp,cd->adp", ro, K.astype(np.float64), ri_inv, optimize=True)
            err = rel_err(lhs, rhs)
            assert err < tol, (G, g, K.dtype, err)
    return len(els)


@pytest.mark.parametrize("name,count", [
    ("C4", 4), ("C8", 4), ("C16", 4), ("C2", 2), ("C3", 1), ("C6", 2), ("D4", 8), ("D8", 8),
    ("D2", 4), ("D3", 2), ("D6", 4), ("SO2", 4), ("O2", 8), ("D4axis0", 8), ("Flip0", 2),
    ("FlipPi2", 2)])
def test_grid_symmetry_counts(name, count):
    """Rotations by multiples of 90° and reflections whose axis is a multiple of π/4."""
    G = group(name)
    els = grid_symmetries(G)
    assert len(els) == count
    for g in els:
        A = G.action_matrix(g)
        assert is_signed_permutation(A)
        if np.linalg.det(A) < 0:  # a reflection: axis angle is a multiple of π/4
            v = np.linalg.eigh(A)[1][:, 1]  # eigenvector of eigenvalue +1
            ang = math.atan2(v[1], v[0]) % math.pi
            assert min(abs(ang / (math.pi / 4) - round(ang / (math.pi / 4))), 1) < 1e-9


@settings(**{**SETTINGS, "max_examples": 60})
@given(data=st.data(), name=st.sampled_from(GRID_GROUPS),
       k=st.sampled_from([3, 4, 5, 7]), d=st.sampled_from([1, 2]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_grid_equivariance_random_types(data, name, k, d, seed):
    tin = data.draw(field_types(name, max_fields=3, max_size=32), label="in_type")
    tout = data.draw(field_types(name, max_fields=3, max_size=32), label="out_type")
    b = build(tin, tout, k, d)
    w = np.random.default_rng(seed).standard_normal(b.dim)
    check_grid_equivariance(b, w)


@pytest.mark.parametrize("name", ["C4", "C8", "C16", "D4", "D8"])
@pytest.mark.parametrize("k", [3, 5, 7])
def test_grid_equivariance_regular(name, k):
    G = group(name)
    ft = cs.FieldType(G, [G.regular_representation, G.trivial_representation])
    b = cs.LayerBasis(ft, ft, k)
    n = check_grid_equivariance(b, np.random.default_rng(k).standard_normal(b.dim))
    assert n == (8 if G.has_reflections else 4)


@pytest.mark.parametrize("k,d", [(3, 3), (4, 3), (5, 3)])
@pytest.mark.parametrize("name", ["D4", "Flip0", "C8", "O2"])
def test_grid_equivariance_coarse_dilated_grids(name, k, d):
    """Dilation 3 puts high frequencies on coarse rings; some elements nearly vanish on the
    grid and are rescaled by n_b ~ 1e-4 (e2cnn keeps them), which amplifies round-off to
    ~1e-12. Still exact up to that amplified round-off."""
    G = group(name)
    reps = [G.regular_representation] if G.is_finite else list(G.irreps())[:3]
    ft = cs.FieldType(G, reps + [G.trivial_representation])
    b = cs.LayerBasis(ft, ft, k, d)
    check_grid_equivariance(b, np.random.default_rng(k * d).standard_normal(b.dim),
                            tol64=1e-9, tol32=1e-4)


@pytest.mark.parametrize("name", ["SO2", "O2"])
def test_grid_equivariance_continuous_irreps(name):
    G = group(name)
    ft = cs.FieldType(G, list(G.irreps()))  # max frequency 4
    b = cs.LayerBasis(ft, ft, 9)
    check_grid_equivariance(b, np.random.default_rng(0).standard_normal(b.dim))
    # He-initialised weights too
    check_grid_equivariance(b, b.init_weights(np.random.default_rng(1), np.float64))


@pytest.mark.parametrize("name", ["C8", "D4", "O2", "SO2"])
def test_he_init_weights_equivariant(name):
    G = group(name)
    reps = [G.regular_representation] if G.is_finite else list(G.irreps())[:3]
    ft = cs.FieldType(G, reps + [G.irreps()[1]])
    b = cs.LayerBasis(ft, ft, 5)
    for dtype in (np.float32, np.float64):
        w = b.init_weights(np.random.default_rng(7), dtype)
        assert w.dtype == dtype
        check_grid_equivariance(b, w)


def test_negative_control_detects_wrong_element():
    """The check is not vacuous: using g⁻¹ on one side breaks it."""
    G = cs.CyclicGroup(4)
    tin = cs.FieldType(G, [G.irrep(1)])
    tout = cs.FieldType(G, [G.trivial_representation])
    b = cs.LayerBasis(tin, tout, 3)
    K = b.expand(np.random.default_rng(0).standard_normal(b.dim)).reshape(1, 2, 9)
    perm = point_permutation(G.action_matrix(1), b.points)
    good = conjugate(tout.representation(1), K, tin.representation(1))
    bad = conjugate(tout.representation(3), K, tin.representation(3))
    assert rel_err(K[:, :, perm], good) < 1e-12
    assert rel_err(K[:, :, perm], bad) > 0.1


# ---- array conventions of reference §1 ------------------------------------------------------

def _mixed_basis(G, k=5):
    if G.is_finite:
        ft = cs.FieldType(G, [G.regular_representation, G.irreps()[1]])
    else:
        ft = cs.FieldType(G, list(G.irreps())[:3])
    return cs.LayerBasis(ft, ft, k), ft


@pytest.mark.parametrize("name,k", [("C4", 5), ("C8", 4), ("SO2", 5), ("O2", 6), ("D4", 3)])
def test_rot90_convention(name, k):
    """A CCW rotation by 90° of an [..., H, W] array is np.rot90(x, 1, axes=(-2, -1)):
    (rot·K)(p) = K(g⁻¹p), so ρ_out(g) · rot90(K) · ρ_in(g)⁻¹ = K."""
    G = group(name)
    b, ft = _mixed_basis(G, k)
    K = b.expand(np.random.default_rng(0).standard_normal(b.dim))
    g = {"C4": 1, "C8": 2, "SO2": math.pi / 2, "O2": (0, math.pi / 2), "D4": (0, 1)}[name]
    np.testing.assert_allclose(G.action_matrix(g), [[0, -1], [1, 0]], atol=1e-15)
    R = ft.representation(g)
    lhs = conjugate(R, np.rot90(K, 1, axes=(-2, -1)), R)  # R·X·Rᵀ = R·X·R⁻¹
    assert rel_err(lhs, K) < 1e-12
    # and the action-matrix permutation agrees with np.rot90
    perm = point_permutation(G.action_matrix(g), b.points)
    idx = np.arange(k * k).reshape(k, k)
    np.testing.assert_array_equal(np.rot90(idx, 1).ravel()[perm], idx.ravel())


@pytest.mark.parametrize("axis,flip_axis", [(math.pi / 2, -1), (0.0, -2)])
def test_reflection_convention(axis, flip_axis):
    """β = π/2: (x, y) ↦ (−x, y) reverses the columns; β = 0 reverses the rows."""
    for G in (cs.DihedralGroup(4, axis=axis), cs.FlipGroup(axis), cs.O2(3, axis=axis)):
        b, ft = _mixed_basis(G, 5)
        K = b.expand(np.random.default_rng(2).standard_normal(b.dim))
        g = {cs.DihedralGroup: (1, 0), cs.FlipGroup: 1, cs.O2: (1, 0.0)}[type(G)]
        R = ft.representation(g)
        lhs = conjugate(R, np.flip(K, axis=flip_axis), R)
        assert rel_err(lhs, K) < 1e-12, G


# ---- (b) arbitrary elements on arbitrary points ---------------------------------------------

def _points(rng, n=40, rmax=2.5):
    r = rng.uniform(0.15, rmax, n)
    a = rng.uniform(-math.pi, math.pi, n)
    pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    pts[0] = [0.0, 0.0]                      # the origin
    pts[1] = rmax * np.array([0.6, 0.8])     # largest radius (ring bound)
    pts[2] = [1.0, 0.0]                      # on the branch cut θ = 0 / θ = ±π below
    pts[3] = [-1.3, 0.0]
    return pts


def _elements(G, rng):
    if G.is_finite:
        return G.elements()
    return G.sample(5, rng)


def check_continuous(tin, tout, k, rng, points, dense_checks=2, **kw):
    b = build(tin, tout, k, points=points, **kw)
    G = tin.group
    w = rng.standard_normal(b.dim)
    K = b.expand(w)
    assert K.shape == b.shape == (tout.size, tin.size, len(points))
    D1 = b.dense()
    for n, g in enumerate(_elements(G, rng)):
        A = G.action_matrix(g)
        moved = points @ A.T
        b2 = cs.LayerBasis(tin, tout, k, points=moved, **kw)
        assert b2.dim == b.dim, (g, b.dim, b2.dim)
        for key in ("radius", "frequency", "gamma", "s", "out_field", "in_field"):
            np.testing.assert_array_equal(b2.element_attributes[key],
                                          b.element_attributes[key])
        R_out, R_in_inv = tout.representation(g), np.linalg.inv(tin.representation(g))
        K2 = b2.expand(w)  # K at g·p
        rhs = np.einsum("ab,bcp,cd->adp", R_out, K, R_in_inv, optimize=True)
        assert rel_err(K2, rhs) < 1e-10, (G, g, rel_err(K2, rhs))
        if n < dense_checks:
            # per element as well (normalisation is per element over the point set)
            ref = np.einsum("ab,nbcp,cd->nadp", R_out, D1, R_in_inv, optimize=True)
            assert rel_err(b2.dense(), ref) < 1e-10
    return b


CONT_GROUPS = ["C4", "C8", "C16", "D4", "D8", "SO2", "O2", "C3", "D3", "Flip0", "D4axis0"]


@settings(**{**SETTINGS, "max_examples": 15})
@given(data=st.data(), name=st.sampled_from(CONT_GROUPS), k=st.sampled_from([3, 5]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_arbitrary_points_and_elements(data, name, k, seed):
    tin = data.draw(field_types(name, max_fields=2, max_size=20), label="in_type")
    tout = data.draw(field_types(name, max_fields=2, max_size=20), label="out_type")
    rng = np.random.default_rng(seed)
    check_continuous(tin, tout, k, rng, _points(rng, rmax=(k - 1) / 2 * 1.3))


@pytest.mark.parametrize("name", ["SO2", "O2"])
def test_arbitrary_angles_continuous_groups(name):
    G = group(name)
    ft = cs.FieldType(G, list(G.irreps()))
    rng = np.random.default_rng(11)
    check_continuous(ft, ft, 7, rng, _points(rng, n=60, rmax=3.5), frequencies_cutoff=1.5)


def test_arbitrary_points_regular_c16_and_d8():
    rng = np.random.default_rng(5)
    for name in ("C16", "D8"):
        G = group(name)
        tin = cs.FieldType(G, [G.regular_representation])
        tout = cs.FieldType(G, [G.regular_representation, G.irreps()[2]])
        check_continuous(tin, tout, 5, rng, _points(rng, n=30, rmax=2.4))


def test_grid_element_on_grid_points_matches_point_set_version():
    """On a grid-preserving element, (a) and (b) agree: the basis at the permuted grid is
    the grid basis with permuted points."""
    G = cs.DihedralGroup(4)
    ft = cs.FieldType(G, [G.regular_representation])
    b = cs.LayerBasis(ft, ft, 5)
    g = (1, 1)
    A = G.action_matrix(g)
    b2 = cs.LayerBasis(ft, ft, 5, points=b.points @ A.T)
    w = np.random.default_rng(0).standard_normal(b.dim)
    perm = point_permutation(A, b.points)
    K = b.expand(w).reshape(8, 8, 25)
    np.testing.assert_allclose(b2.expand(w), K[:, :, perm], atol=1e-12)
