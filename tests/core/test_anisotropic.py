"""Anisotropic and non-cubic grids: ``LayerBasis(..., kernel_size=(…), spacing=(…))``.

Unit spacing is today's grid bit for bit; the basis lives at the physical points; the radial
defaults come from the largest ball inside the sampled box; the exact equivariance check runs
on exactly the group elements that permute the physical points."""
from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3
from cupysteer.cache import pair_keys
from cupysteer.equivariance import point_permutation
from cupysteer.settings import grid_geometry

DATA = Path(__file__).resolve().parents[1] / "data"


def _types(G, out_regular=2):
    """Small field types: trivial + regular → regular×n in 2D; trivial + the standard
    representation → regular in 3D (the filters stay a few MB)."""
    if G.space.dimension == 3:
        return (cs.FieldType(G, [G.trivial_representation, G.standard_representation]),
                cs.FieldType(G, [G.regular_representation] if G.is_finite else
                             [G.trivial_representation, G.standard_representation]))
    if not G.is_finite:  # O(2): irreps 0, (1, 1) and (1, 2)
        return (cs.FieldType(G, [G.irrep(0, 0), G.irrep(1, 1)]),
                cs.FieldType(G, [G.irrep(1, 1), G.irrep(1, 2), G.irrep(0, 0)]))
    return (cs.FieldType(G, [G.trivial_representation, G.regular_representation]),
            cs.FieldType(G, [G.regular_representation] * out_regular))


def _brute_symmetries(G, points, candidates):
    """The candidates whose matrix maps the point set onto itself, by an O(P²) comparison
    (independent of the sorted-key matching of cupysteer.equivariance)."""
    out = []
    for g in candidates:
        moved = points @ G.action_matrices([g])[0].T
        dist = np.abs(moved[:, None, :] - points[None, :, :]).max(axis=2)
        if np.all(dist.min(axis=1) < 1e-9):
            out.append(g)
    return out


def _key(g):
    return tuple(np.round(g, 12).ravel().tolist()) if isinstance(g, np.ndarray) else g


# ---- unit spacing is today's grid ---------------------------------------------------------
@pytest.mark.parametrize("G,k", [(cs.DihedralGroup(4), 5), (cs.CyclicGroup(8), 4),
                                 (r3.Octahedral(), 3)])
def test_unit_spacing_is_todays_grid_bit_for_bit(G, k):
    tin, tout = _types(G, 1)
    d = G.space.dimension
    today = cs.LayerBasis(tin, tout, k, cache=False)
    w = today.init_weights(np.random.default_rng(1), np.float64)
    for kw in (dict(spacing=1.0), dict(spacing=(1,) * d), dict(kernel_size=(k,) * d),
               dict(kernel_size=[k] * d, spacing=np.ones(d))):
        kernel_size = kw.pop("kernel_size", k)
        b = cs.LayerBasis(tin, tout, kernel_size, cache=False, **kw)
        assert b == today and hash(b) == hash(today) and b.definition == today.definition
        assert b.spacing is None and b.filter_shape == (k,) * d
        np.testing.assert_array_equal(b.points, today.points)
        assert b.settings == today.settings
        np.testing.assert_array_equal(b.expand(w), today.expand(w))
        pairs = today.irreps_pairs
        assert pair_keys(pairs, b.settings, b.points) == pair_keys(pairs, today.settings,
                                                                   today.points)


def test_spacing_changes_keys_and_identity():
    G = cs.CyclicGroup(4)
    tin, tout = _types(G, 1)
    a = cs.LayerBasis(tin, tout, 5, cache=False)
    b = cs.LayerBasis(tin, tout, 5, spacing=(1.0, 2.0), cache=False)
    assert a != b and a.definition != b.definition and b.spacing == (1.0, 2.0)
    assert pair_keys(a.irreps_pairs, a.settings, a.points) != pair_keys(
        a.irreps_pairs, b.settings, b.points)
    assert "spacing (1.0, 2.0)" in repr(b)


# ---- physical points -----------------------------------------------------------------------
def test_points_are_index_offsets_times_spacing():
    p2 = cs.r2.grid_points((5, 3), 1, (1.5, 0.5))  # rows (−y) step 1.5, columns (x) step 0.5
    assert p2.shape == (15, 2)
    np.testing.assert_array_equal(p2[0], [-0.5, 3.0])  # row 0, col 0: x = −1·0.5, y = +2·1.5
    np.testing.assert_array_equal(p2[1], [0.0, 3.0])  # the next column: x grows
    np.testing.assert_array_equal(p2[3], [-0.5, 1.5])  # the next row: y falls
    p3 = r3.grid_points((3, 5, 2), 2, (3.0, 1.0, 0.5))  # axes (−z, −y, x), dilation 2
    assert p3.shape == (30, 3)
    np.testing.assert_array_equal(p3[0], [-0.5, 4.0, 6.0])
    np.testing.assert_array_equal(p3[1], [0.5, 4.0, 6.0])
    np.testing.assert_array_equal(p3[2], [-0.5, 2.0, 6.0])
    np.testing.assert_array_equal(p3[10], [-0.5, 4.0, 0.0])
    # unit spacing: the same values as the k×k grid of today (x, y up)
    np.testing.assert_array_equal(cs.r2.grid_points((5, 5), 2, 1.0), cs.r2.grid_points(5, 2))


@pytest.mark.parametrize("G,ks,sp", [(cs.DihedralGroup(8), (5, 3), (1.0, 2.0)),
                                     (r3.FullOctahedral(), (3, 5, 5), (3.0, 1.0, 1.0))])
def test_basis_at_physical_points_equals_basis_on_scaled_points(G, ks, sp):
    """The grid basis is the basis sampled at the unit grid's points scaled per axis."""
    tin, tout = _types(G)
    b = cs.LayerBasis(tin, tout, ks, spacing=sp, cache=False)
    unit = G.space.grid_points(ks)
    scale = np.array(sp)[::-1]  # filter axis i is coordinate d−1−i
    s = b.settings
    cut = dict(zip(s.rings, s.cutoff_per_ring))
    p = cs.LayerBasis(tin, tout, ks, points=unit * scale, rings=list(s.rings),
                      sigma=list(s.sigma), frequencies_cutoff=lambda r: cut[r], cache=False)
    assert p.dim == b.dim and p.settings.cutoff_per_ring == s.cutoff_per_ring
    np.testing.assert_allclose(p.dense().reshape(b.dense().shape), b.dense(), rtol=0,
                               atol=1e-14)
    w = b.init_weights(np.random.default_rng(2), np.float64)
    np.testing.assert_allclose(b.expand(w), np.einsum("n...,n->...", b.dense(), w), rtol=0,
                               atol=1e-13)


@pytest.mark.parametrize("G,ks", [(cs.CyclicGroup(8), 5), (r3.Octahedral(), 3)])
def test_uniform_spacing_is_a_change_of_units(G, ks):
    """spacing s on every axis scales points, rings and widths by s: the same filters."""
    tin, tout = _types(G, 1)
    d = G.space.dimension
    a = cs.LayerBasis(tin, tout, ks, cache=False)
    b = cs.LayerBasis(tin, tout, (ks,) * d, spacing=2.5, cache=False)
    np.testing.assert_allclose(b.points, 2.5 * a.points, rtol=0, atol=0)
    np.testing.assert_allclose(b.settings.rings, 2.5 * np.array(a.settings.rings))
    np.testing.assert_allclose(b.settings.sigma, 2.5 * np.array(a.settings.sigma))
    assert b.settings.cutoff_per_ring == a.settings.cutoff_per_ring and b.dim == a.dim
    np.testing.assert_allclose(b.dense(), a.dense(), rtol=0, atol=1e-12)


# ---- radial defaults ------------------------------------------------------------------------
@pytest.mark.parametrize("ks,sp,k_eff", [((5, 5, 3), None, 3), ((3, 5, 5), (3, 1, 1), 5),
                                         ((5, 5, 5), (3, 1, 1), 5), ((5, 3, 7), (1, 2, 1), 5),
                                         ((5, 5, 3), (0.5, 0.5, 1), 5)])
def test_default_rings_fit_the_box(ks, sp, k_eff):
    geom = grid_geometry(ks, 1, sp, 3)
    assert geom.effective_size == k_eff
    s = r3.resolve_settings(ks, spacing=sp)
    cubic = r3.resolve_settings(k_eff)
    step = geom.step
    # the rings of the cubic k_eff grid in units of the finest step, inside the inscribed ball
    np.testing.assert_allclose(s.rings, step * np.array(cubic.rings))
    assert max(s.rings) <= geom.inscribed_radius + 1e-12
    np.testing.assert_allclose(s.sigma, step * np.array(cubic.sigma))
    assert s.cutoff_per_ring == cubic.cutoff_per_ring
    half = np.array(ks) // 2 * np.array(sp if sp is not None else (1, 1, 1))
    assert geom.inscribed_radius == pytest.approx(min(half))


def test_planar_defaults_and_explicit_settings():
    s = cs.r2.resolve_settings((7, 3), spacing=(1.0, 1.0))  # rectangle: k_eff = 3
    assert s == cs.r2.resolve_settings(3)
    s = cs.r2.resolve_settings((7, 3), spacing=(1.0, 3.0))  # 7 rows of 1, 3 columns of 3
    assert s == cs.r2.resolve_settings(7)
    # explicit rings and sigma are physical and kept; a float cut-off acts on r / step
    e = cs.r2.resolve_settings((5, 5), rings=[0, 0.5, 1], sigma=0.3, frequencies_cutoff=2.0,
                               spacing=0.5)
    assert e.rings == (0.0, 0.5, 1.0) and e.sigma == (0.3,) * 3
    assert e.cutoff_per_ring == (0.0, 2.0, 4.0)
    with pytest.raises(ValueError, match="largest sampled radius"):
        cs.r2.resolve_settings((5, 3), rings=[0, 3], spacing=(1.0, 1.0))


# ---- exact grid symmetries -------------------------------------------------------------------
CASES = [
    (cs.DihedralGroup(8), (5, 3), (1.0, 2.0), 4),  # x: 3 steps of 2, y: 5 of 1
    (cs.DihedralGroup(4), (3, 5), None, 4),  # a unit rectangle
    (cs.DihedralGroup(4), (3, 3), (1.0, 2.0), 4),
    (cs.O2(3), (5, 3), (1.0, 2.0), 4),  # continuous: the square's candidates, filtered
    (r3.Octahedral(), (3, 5, 5), (3.0, 1.0, 1.0), 8),  # 1×1×3 voxels: keep z
    (r3.FullOctahedral(), (5, 5, 3), None, 16),  # 5×5×3 unit voxels: keep x
    (r3.FullOctahedral(), (3, 5, 5), (2.0, 1.0, 1.0), 16),
    (r3.FullOctahedral(), (3, 5, 3), (1.0, 1.0, 2.0), 8),  # three extents: the sign flips
    (r3.SO3(2), (3, 5, 5), (3.0, 1.0, 1.0), 8),
]


@pytest.mark.parametrize("G,ks,sp,count", CASES)
def test_exact_equivariance_on_exactly_the_grid_symmetries(G, ks, sp, count):
    tin, tout = _types(G)
    b = cs.LayerBasis(tin, tout, ks, spacing=sp, cache=False)
    filt = b.expand(b.init_weights(np.random.default_rng(3), np.float64))
    errors = cs.equivariance_errors(b, filt)
    candidates = G.space.grid_candidates(G)
    expected = _brute_symmetries(G, b.points, candidates)
    assert len(expected) == count and sorted(map(str, errors)) == sorted(
        str(_key(g)) for g in expected)
    assert max(errors.values()) <= 1e-10
    # every candidate outside the set: not a symmetry of the points, so never checked exactly
    rejected = [g for g in candidates if _key(g) not in errors]
    assert len(rejected) == len(candidates) - count and rejected
    for g in rejected:
        assert point_permutation(G, g, b.points) is None


def test_a_rejected_element_is_really_not_exact():
    """The 90° rotation maps the 1×2 rectangle's points off the grid: the filter rebuilt at
    the moved points differs from every permutation of the grid filter (no exact test)."""
    G = cs.CyclicGroup(4)
    tin, tout = _types(G, 1)
    b = cs.LayerBasis(tin, tout, (5, 3), spacing=(1.0, 2.0), cache=False)
    assert set(cs.equivariance_errors(b, b.expand(np.ones(b.dim)))) == {0, 2}
    moved = b.points @ G.action_matrices([1])[0].T
    off = np.abs(moved[:, None] - b.points[None]).max(axis=2).min(axis=1)
    assert off.max() > 0.5


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,match", [
    (dict(kernel_size=(5, 5, 5)), "kernel_size must be an int or 2 ints"),
    (dict(kernel_size=(5,)), "kernel_size must be an int or 2 ints"),
    (dict(kernel_size=(5, 0)), "kernel_size must be an integer >= 1"),
    (dict(kernel_size=(5, 2.0)), "kernel_size must be an integer >= 1"),
    (dict(spacing=(1.0, 2.0, 3.0)), "spacing must be a positive float or 2 positive floats"),
    (dict(spacing=(1.0, 0.0)), "every step must be finite and > 0"),
    (dict(spacing=(1.0, -2.0)), "every step must be finite and > 0"),
    (dict(spacing=(1.0, float("nan"))), "every step must be finite and > 0"),
    (dict(spacing=float("inf")), "every step must be finite and > 0"),
    (dict(spacing="1,3"), "spacing must be a positive float"),
    (dict(spacing=True), "spacing must be a positive float"),
    (dict(spacing=(1.0, None)), "spacing must be a positive float"),
    (dict(points=np.zeros((3, 2)), spacing=(1.0, 2.0)), "with explicit points"),
    (dict(kernel_size=(5, 1)), "an axis of size 1"),
])
def test_clear_errors(kw, match):
    G = cs.CyclicGroup(4)
    tin, tout = _types(G, 1)
    kw.setdefault("kernel_size", 5)
    with pytest.raises(ValueError, match=match):
        cs.LayerBasis(tin, tout, cache=False, **kw)


def test_an_axis_of_size_one_with_explicit_rings():
    G = cs.CyclicGroup(4)
    tin, tout = _types(G, 1)
    b = cs.LayerBasis(tin, tout, (1, 5), rings=[0, 1, 2], cache=False)
    assert b.filter_shape == (1, 5) and set(cs.equivariance_errors(
        b, b.expand(np.ones(b.dim)))) == {0, 2}


# ---- identity, copies, pickles -------------------------------------------------------------
def test_pickle_deepcopy_and_value_equality():
    G = r3.Octahedral()
    tin, tout = _types(G, 1)
    b = cs.LayerBasis(tin, tout, (3, 5, 5), spacing=(3, 1, 1))
    w = b.init_weights(np.random.default_rng(4), np.float64)
    for c in (pickle.loads(pickle.dumps(b)), copy.deepcopy(b), copy.copy(b)):
        assert c == b and hash(c) == hash(b) and c.spacing == (3.0, 1.0, 1.0)
        assert c.dilation == 1 and c.filter_shape == (3, 5, 5)
        np.testing.assert_array_equal(c.expand(w), b.expand(w))
    again = cs.LayerBasis(tin, tout, (3, 5, 5), spacing=[3.0, 1, 1], cache=False)
    assert again == b and again.definition == b.definition


def test_pickles_of_0_1_still_load():
    with open(DATA / "pickles_0.1" / "objects.pkl", "rb") as f:
        old = pickle.load(f)
    for L in old["layers"]:
        # 0.1 stored no dilation: recovered from the points (the grid is part of identity)
        assert L.spacing is None and L.dilation == 1
        new = cs.LayerBasis(L.in_type, L.out_type, L.filter_shape[0], cache=False)
        assert new == L and new.definition == L.definition


def test_dense_and_padded_references_on_an_anisotropic_grid():
    G = cs.DihedralGroup(4)
    tin, tout = _types(G)
    b = cs.LayerBasis(tin, tout, (3, 5), spacing=(2.0, 1.0), dilation=2, cache=False)
    w = b.init_weights(np.random.default_rng(5), np.float64)
    D = b.dense()
    assert D.shape == (b.dim, tout.size, tin.size, 3, 5)
    np.testing.assert_allclose(b.expand(w), np.einsum("n...,n->...", D, w), rtol=0, atol=1e-13)
    P = b.padded_blocks()
    assert sum(blk["E"].shape[0] for blk in P) == sum(wb.elements for wb in b.weight_blocks)
    assert all(blk["E"].shape[-1] == 15 for blk in P)


@pytest.mark.parametrize("seed", range(6))
def test_random_grids_exact_on_their_symmetries(seed):
    """Random sizes (2–5 per axis, even ones too), steps and dilations: the check runs on
    exactly the brute-force symmetries of the physical points, each exact."""
    rng = np.random.default_rng(seed)
    G = cs.DihedralGroup(4) if seed % 2 else r3.FullOctahedral()
    d = G.space.dimension
    while True:  # k_eff >= 3: a ring beyond the origin (k_eff <= 2 is empty, as k = 2 is)
        ks = tuple(int(k) for k in rng.integers(2, 6, d))
        sp = tuple(float(s) for s in rng.choice([0.5, 1.0, 2.0, 3.0], d))
        if grid_geometry(ks, 1, sp, d).effective_size >= 3:
            break
    tin, tout = _types(G, 1)
    b = cs.LayerBasis(tin, tout, ks, dilation=int(rng.integers(1, 3)), spacing=sp,
                      cache=False)
    errors = cs.equivariance_errors(b, b.expand(b.init_weights(rng, np.float64)))
    expected = _brute_symmetries(G, b.points, G.space.grid_candidates(G))
    assert sorted(map(str, errors)) == sorted(str(_key(g)) for g in expected)
    assert max(errors.values()) <= 1e-10


def _dilated_and_spaced():
    """``k=4, dilation=2`` and ``k=4, spacing=2`` with equal explicit radial settings: the
    same physical points (so the same filters) but other input strides."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    kw = dict(rings=[1, 3], sigma=[0.6, 0.6], frequencies_cutoff=lambda r: 2.0)
    return (cs.LayerBasis(t, t, 4, dilation=2, **kw), cs.LayerBasis(t, t, 4, spacing=2, **kw))


def test_a_dilated_and_a_spaced_basis_on_the_same_points_differ():
    a, b = _dilated_and_spaced()
    np.testing.assert_array_equal(a.points, b.points)  # same samples, same settings ...
    assert a.settings == b.settings and a.filter_shape == b.filter_shape
    assert (a.dilation, a.spacing) == (2, None) and (b.dilation, b.spacing) == (1, (2.0, 2.0))
    assert a != b and hash(a) != hash(b) and a.definition != b.definition  # ... other grids
    for L in (a, b):  # the grid survives copies and pickles, and so does the identity
        for c in (copy.deepcopy(L), pickle.loads(pickle.dumps(L))):
            assert c == L and hash(c) == hash(L) and (c.dilation, c.spacing) == (L.dilation,
                                                                                  L.spacing)
    w = a.init_weights(np.random.default_rng(0), np.float64)
    np.testing.assert_array_equal(a.expand(w), b.expand(w))  # one cached basis serves both



@pytest.mark.parametrize("spacing,n", [((2e-7, 2e-7), 8), ((2e6, 2e6), 8), ((1, 1.0000001), 4),
                                       ((1e-7, 3e-7), 4)])
def test_the_point_tolerance_is_relative_to_the_grid(spacing, n):
    """A 5×5 D4 grid of tiny steps keeps its 8 symmetries (an absolute atol=1e-6 matched
    none, not even the identity: a vacuous pass); near-equal steps are a rectangle."""
    G = cs.DihedralGroup(4)
    b = cs.LayerBasis(cs.FieldType(G, [G.trivial_representation]),
                      cs.FieldType(G, [G.regular_representation]), 5, spacing=spacing,
                      cache=False)
    syms = cs.point_symmetries(G, b.points)
    assert len(syms) == n
    assert [_key(g) for g, _ in syms] == [_key(g) for g in _brute_symmetries(
        G, b.points / np.abs(b.points).max(), G.elements())]
    errors = cs.equivariance_errors(b, b.expand(b.init_weights(np.random.default_rng(0),
                                                               np.float64)))
    assert len(errors) == n and max(errors.values()) <= 1e-10


def test_points_the_identity_does_not_permute_are_refused():
    G = cs.CyclicGroup(4)
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # a duplicate point
    with pytest.raises(ValueError, match="identity does not permute them"):
        cs.point_symmetries(G, pts)
    with pytest.raises(ValueError, match="atol must be a positive"):
        point_permutation(G, G.elements()[0], pts, atol=0.0)


def test_torch_check_equivariance_on_tiny_steps_is_not_vacuous():
    pytest.importorskip("torch", reason="the torch check needs torch")
    from cupysteer.torch import SteerableConv2d
    from cupysteer.torch.nn.equivariance import check_equivariance
    G = cs.DihedralGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    m = SteerableConv2d(t, t, 5, padding=2, spacing=2e-7).double()
    report = check_equivariance(m, t, t, atol=1e-9, spacing=2e-7)
    assert len(report) == 8 and max(e for _, e in report) <= 1e-9
