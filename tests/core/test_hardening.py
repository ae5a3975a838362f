"""Issue 16 (hardening II): no silent wrong filter, no hang, no blow-up.

Huge groups build their trivial fields in O(1) and refuse to list what does not fit; every
large allocation is estimated first and refused naming the argument (the memory limit is set
with CUPYSTEER_MEMORY_LIMIT so that the estimates, not this machine, decide); the point
matching of the equivariance check is O(P); sigma, points, sizes, rings, representations and
field lists reject junk naming the argument; broadcast batches are size-checked before their
values are read. Every probe runs in milliseconds.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3
from cupysteer._checks import float_array
from cupysteer.equivariance import equivariance_errors, point_permutation, point_symmetries

HUGE = 10 ** 9


@pytest.fixture
def limit(monkeypatch):
    """A 1 GiB memory limit: the estimates decide, whatever this machine has free."""
    monkeypatch.setenv("CUPYSTEER_MEMORY_LIMIT", "1G")


def _c8_layer(n=1, k=3):
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation] * n)
    return cs.LayerBasis(t, t, k, cache=False)


# ---- huge groups: the trivial field in O(1) -----------------------------------------------
HUGE_GROUPS = [
    lambda: cs.CyclicGroup(HUGE), lambda: cs.DihedralGroup(HUGE), lambda: cs.SO2(HUGE),
    lambda: cs.O2(HUGE), lambda: r3.RotationsZ(HUGE), lambda: r3.DihedralZ(HUGE),
    lambda: r3.Conical(HUGE), lambda: r3.Cylindrical(HUGE), lambda: r3.FullCylindrical(HUGE),
]


@pytest.mark.parametrize("make", HUGE_GROUPS)
def test_trivial_field_of_a_huge_group_is_built_directly(make, limit):
    G = make()
    t0 = time.perf_counter()
    rep = G.trivial_representation
    assert time.perf_counter() - t0 < 5  # generous: it was minutes and ~100 GB before
    assert rep.size == 1 and rep.is_trivial and G.trivial_irrep.is_trivial


@pytest.mark.parametrize("make", HUGE_GROUPS)
def test_listing_the_irreps_of_a_huge_group_is_refused_first(make, limit):
    G = make()
    with pytest.raises(MemoryError, match=r"listing the irreps of .*(N|maximum_frequency)"):
        G.irreps()


@pytest.mark.parametrize("make", [lambda: cs.CyclicGroup(HUGE), lambda: cs.DihedralGroup(HUGE),
                                  lambda: r3.RotationsZ(HUGE)])
def test_regular_representation_and_elements_of_a_huge_group_are_refused(make, limit):
    G = make()
    with pytest.raises(MemoryError, match="regular representation of .* needs"):
        G.regular_representation
    with pytest.raises(MemoryError, match=r"elements .* needs"):
        G.elements()


@pytest.mark.parametrize("N, sid", [(10 ** 6, 2), (10 ** 6, 1)])
def test_quotient_of_a_large_group_is_refused_before_listing_cosets(N, sid, limit):
    with pytest.raises(MemoryError, match=r"quotient representation C1000000/C\d+ .* needs"):
        cs.CyclicGroup(N).quotient_representation(sid)


@pytest.mark.parametrize("make", [
    lambda: cs.CyclicGroup(1), lambda: cs.CyclicGroup(7), lambda: cs.CyclicGroup(8),
    lambda: cs.DihedralGroup(1), lambda: cs.DihedralGroup(5), lambda: cs.DihedralGroup(6),
    lambda: cs.FlipGroup(), lambda: cs.SO2(0), lambda: cs.SO2(4), lambda: cs.O2(0),
    lambda: cs.O2(3), lambda: r3.RotationsZ(5), lambda: r3.DihedralZ(4), lambda: r3.Conical(3),
    lambda: r3.Cylindrical(4), lambda: r3.FullCylindrical(3), lambda: r3.Octahedral(),
    lambda: r3.FullIcosahedral(), lambda: r3.SO3(2), lambda: r3.O3(1), lambda: r3.Inversion(),
])
def test_direct_trivial_irrep_and_count_agree_with_the_listing(make):
    G = make()
    irreps = G.irreps()
    assert G.trivial_irrep == irreps[0] and G.num_irreps == len(irreps)


def test_layer_and_check_of_trivial_fields_of_a_huge_group(limit):
    G = cs.SO2(HUGE)
    t = cs.FieldType(G, [G.trivial_representation, G.irrep(2)])
    basis = cs.LayerBasis(t, t, 5, cache=False)
    errs = equivariance_errors(basis, basis.expand(np.ones(basis.dim)))
    assert len(errs) == 4 and max(errs.values()) < 1e-12  # the quarter turns


# ---- memory estimates before the big allocations, naming the argument ------------------------
@pytest.mark.parametrize("make, k", [(lambda: cs.CyclicGroup(4), 30001),
                                     (lambda: r3.Octahedral(), 1001)])
def test_huge_sample_grid_is_refused_naming_kernel_size(make, k, limit):
    G = make()
    t = cs.FieldType(G, [G.trivial_representation])
    with pytest.raises(MemoryError, match=rf"sample grid of kernel_size {k} .* needs"):
        cs.LayerBasis(t, t, k, cache=False)
    with pytest.raises(MemoryError, match="kernel_size"):
        G.space.grid_points(k)


def test_wide_layer_is_refused_before_its_plan(limit):
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation] * 20000)
    with pytest.raises(MemoryError, match=r"layout and plan of a layer from 20000 to 20000 "
                                          r"fields .* fewer fields"):
        cs.LayerBasis(t, t, 3, cache=False)


def test_huge_direct_sum_is_refused_before_block_diag(limit):
    G = cs.CyclicGroup(8)
    with pytest.raises(MemoryError, match="direct sum of reps"):
        cs.directsum([G.regular_representation] * 20000)


def test_broadcast_batch_is_size_checked_before_its_values(limit):
    basis = _c8_layer()
    w = np.broadcast_to(np.ones(basis.dim, np.int64), (10 ** 6, basis.dim))
    with pytest.raises(MemoryError, match=r"(weights|expand).* needs"):
        basis.expand(w)
    w = np.broadcast_to(np.ones(basis.dim, np.int64), (10 ** 7, basis.dim))
    with pytest.raises(MemoryError, match="weights: a converted copy of shape"):
        float_array(w, "weights")
    w = np.broadcast_to(np.ones(basis.dim), (10 ** 6, basis.dim))
    with pytest.raises(MemoryError, match="expand"):
        basis.expand(w)


def test_broadcast_non_finite_value_is_found_in_the_distinct_values():
    basis = _c8_layer()
    row = np.zeros(basis.dim)
    row[5] = np.nan
    w = np.broadcast_to(row, (3, basis.dim))
    with pytest.raises(ValueError, match=r"at flat index 5\)"):
        basis.expand(w)


# ---- point matching in O(P) ----------------------------------------------------------------
def _old_permutation(group, g, pts, atol=1e-6):
    """The former P×P matcher, as the reference."""
    moved = pts @ group.action_matrices([g])[0].T
    d = np.abs(moved[:, None, :] - pts[None, :, :]).max(-1)
    perm = d.argmin(1)
    ok = np.all(d[np.arange(len(pts)), perm] < atol) and len(set(perm.tolist())) == len(pts)
    return perm if ok else None


@pytest.mark.parametrize("make, k", [(lambda: cs.DihedralGroup(8), 5), (lambda: cs.O2(3), 4),
                                     (lambda: r3.FullOctahedral(), 3),
                                     (lambda: cs.CyclicGroup(6), 3)])
def test_hashed_point_matching_equals_the_quadratic_one(make, k):
    G = make()
    pts = G.space.grid_points(k)
    for g in G.space.grid_candidates(G):
        new, old = point_permutation(G, g, pts), _old_permutation(G, g, pts)
        assert (new is None) == (old is None)
        if new is not None:
            np.testing.assert_array_equal(new, old)


def test_point_matching_across_a_rounding_boundary_and_with_duplicates():
    G = cs.CyclicGroup(4)
    pts = np.array([[0.5e-6 + 1e-12, 1.0], [-1.0, 0.5e-6 + 1e-12], [-0.5e-6, -1.0],
                    [1.0, -0.5e-6]])
    perm = point_permutation(G, 1, pts, atol=1e-5)
    assert perm is not None and sorted(perm.tolist()) == [0, 1, 2, 3]
    dup = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert point_permutation(G, 1, dup) is None


def test_point_matching_is_linear_in_memory(limit):
    G = r3.FullOctahedral()
    pts = G.space.grid_points(31)  # P×P×3 float64 would be 21 GiB
    assert len(point_symmetries(G, pts)) == 48


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros((8, 8, 3, 3, 1)), "x",
                                 np.zeros((8, 8, 3, 3), complex)])
def test_equivariance_errors_names_filt(bad):
    basis = _c8_layer()
    with pytest.raises(ValueError, match="filt"):
        equivariance_errors(basis, bad)


def test_equivariance_errors_refuses_non_finite_filters():
    basis = _c8_layer()
    f = np.zeros(basis.shape)
    f[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="filt contains NaN"):
        equivariance_errors(basis, f)


# ---- clear errors naming the argument --------------------------------------------------------
def test_sigma_whose_square_underflows_is_refused():
    basis_args = dict(kernel_size=3, cache=False)
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    for s in (1e-160, 1e-200, [0.5, 1e-170]):
        with pytest.raises(ValueError, match="sigma: .* underflows"):
            cs.LayerBasis(t, t, sigma=s, **basis_args)
    cs.LayerBasis(t, t, sigma=1e-3, **basis_args)  # small but fine


@pytest.mark.parametrize("points", [np.ones((4, 2)) * (1 + 1j), [[1j, 0], [0, 1]],
                                    "points", [["a", "b"]], None])
def test_complex_or_junk_points_are_refused(points):
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    if points is None:  # None means the grid: not junk
        cs.LayerBasis(t, t, 3, points=points, cache=False)
        return
    with pytest.raises(ValueError, match="points"):
        cs.LayerBasis(t, t, 3, points=points, cache=False)


@pytest.mark.parametrize("kw, arg", [
    (dict(kernel_size=None), "kernel_size"), (dict(kernel_size="5"), "kernel_size"),
    (dict(kernel_size=5.0), "kernel_size"), (dict(kernel_size=True), "kernel_size"),
    (dict(kernel_size=[3]), "kernel_size"), (dict(kernel_size=3, dilation=None), "dilation"),
    (dict(kernel_size=3, dilation="2"), "dilation"), (dict(kernel_size=3, rings="0,1"), "rings"),
    (dict(kernel_size=3, rings=[1j]), "rings"), (dict(kernel_size=3, rings=[True]), "rings"),
    (dict(kernel_size=3, rings=[object()]), "rings"), (dict(kernel_size=3, sigma="0.6"), "sigma"),
    (dict(kernel_size=3, sigma=1j), "sigma"), (dict(kernel_size=3, sigma=True), "sigma"),
    (dict(kernel_size=3, sigma=[[0.5, 0.5]]), "sigma"), (dict(kernel_size=3, cache="yes"), "cache"),
    (dict(kernel_size=3, maximum_offset="1"), "maximum_offset"),
])
def test_junk_layer_arguments_name_the_argument(kw, arg):
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    with pytest.raises((ValueError, TypeError), match=arg):
        cs.LayerBasis(t, t, **kw)


@pytest.mark.parametrize("reps", [None, "regular", 5, [None], ["regular"], {"a": 1}])
def test_junk_field_lists_name_representations(reps):
    G = cs.CyclicGroup(4)
    with pytest.raises(ValueError, match="representations"):
        cs.FieldType(G, reps)


@pytest.mark.parametrize("irreps", [None, "irrep_0", 3, [None]])
def test_junk_irreps_name_irreps(irreps):
    G = cs.CyclicGroup(4)
    with pytest.raises(ValueError, match="irreps"):
        cs.Representation(G, irreps)


@pytest.mark.parametrize("group", [None, "C4", 4])
def test_junk_group_of_a_representation(group):
    with pytest.raises(ValueError, match="group"):
        cs.Representation(group, [cs.CyclicGroup(4).irrep(0)])


@pytest.mark.parametrize("reps", [None, "x", [None], [1, 2]])
def test_junk_directsum_names_reps(reps):
    with pytest.raises(ValueError, match="reps"):
        cs.directsum(reps)


def test_grid_points_follow_the_integer_rule():
    for bad in (5.0, None, "5", True, 0):
        with pytest.raises(ValueError, match="kernel_size"):
            cs.CyclicGroup(4).space.grid_points(bad)


# ---- empty batches (NumPy) -------------------------------------------------------------------
def test_empty_batches_give_empty_results_on_numpy():
    basis = _c8_layer()
    for dtype in (np.float32, np.float64):
        f = basis.expand(np.zeros((0, basis.dim), dtype))
        assert f.shape == (0,) + basis.shape and f.dtype == dtype
        g = basis.adjoint(np.zeros((0,) + basis.shape, dtype))
        assert g.shape == (0, basis.dim) and g.dtype == dtype
        b = basis.expand_bias(np.zeros((0, basis.num_bias), dtype))
        assert b.shape == (0, basis.shape[0])


# ---- method= on every backend ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["junk", None, 3, "FUSED"])
def test_method_is_validated_on_the_numpy_backend(method):
    basis = _c8_layer()
    with pytest.raises(ValueError, match="method"):
        basis.expand(np.zeros(basis.dim), method=method)
    with pytest.raises(ValueError, match="method"):
        basis.adjoint(np.zeros(basis.shape), method=method)


def test_underflow_threshold_is_the_documented_one():
    assert math.isfinite(1.0 / (2.0 * 1e-150 ** 2))
