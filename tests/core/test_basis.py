"""LayerBasis: dimensions (reference §5 weight counts), empty bases, weight layout (§6.2),
normalisation (§6.1) and per-weight attributes, checked against the padded dense basis."""
from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cupysteer as cs

from _helpers import SETTINGS, field_types, group

D1 = {(3, 1): 6, (4, 1): 5, (5, 1): 11, (6, 1): 12, (7, 1): 18, (9, 1): 31, (11, 1): 46,
      (3, 2): 8, (5, 2): 21}
FINITE = ["C1"] + [f"C{n}" for n in range(2, 17)] + [f"D{n}" for n in range(1, 9)]


def regular_basis(G, k, d=1, **kw):
    ft = cs.FieldType(G, [G.regular_representation])
    return cs.LayerBasis(ft, ft, k, d, **kw)


# ---- dimensions ---------------------------------------------------------------------------

@pytest.mark.parametrize("kd", sorted(D1), ids=lambda kd: f"k{kd[0]}d{kd[1]}")
def test_trivial_group_counts(kd):
    G = cs.trivial_group()
    ft = cs.FieldType(G, [G.trivial_representation])
    assert cs.LayerBasis(ft, ft, *kd).dim == D1[kd]


@pytest.mark.parametrize("name", FINITE[1:])
def test_regular_counts_are_group_order_times_d1(name):
    G = group(name)
    for (k, d), n in D1.items():
        assert regular_basis(G, k, d).dim == G.order * n, (name, k, d)


@pytest.mark.parametrize("name,expected", [
    ("C4", (24, 44, 72, 124)), ("C8", (48, 88, 144, 248)), ("D4", (48, 88, 144, 248)),
    ("C16", (96, 176, 288, 496)), ("D8", (96, 176, 288, 496))])
def test_quoted_counts(name, expected):
    G = group(name)
    assert tuple(regular_basis(G, k).dim for k in (3, 5, 7, 9)) == expected


@pytest.mark.parametrize("name,expected", [("C1", 13), ("C4", 54), ("C8", 110), ("D4", 108)])
def test_coarse_grid_exceptions_k3_d3(name, expected):
    G = group(name)
    if name == "C1":
        ft = cs.FieldType(G, [G.trivial_representation])
        assert cs.LayerBasis(ft, ft, 3, 3).dim == expected
    else:
        assert regular_basis(G, 3, 3).dim == expected


def test_regular_to_trivial_d6():
    G = cs.DihedralGroup(6)
    reg, triv = G.regular_representation, G.trivial_representation
    assert cs.LayerBasis(cs.FieldType(G, [reg]), cs.FieldType(G, [triv]), 7).dim == 18
    b = cs.LayerBasis(cs.FieldType(G, [reg] * 2), cs.FieldType(G, [triv] * 3), 7)
    assert b.dim == 2 * 3 * 18
    assert b.shape == (3, 24, 7, 7)


def test_maximum_offset_removes_aliases():
    G = cs.CyclicGroup(4)
    full = regular_basis(G, 5).dim
    assert regular_basis(G, 5, maximum_offset=0).dim < full
    assert regular_basis(G, 5, maximum_offset=0).settings.maximum_offset == 0
    assert regular_basis(G, 5, maximum_offset=5).dim == full


@settings(**SETTINGS)
@given(data=st.data(), name=st.sampled_from(["C3", "C4", "D2", "D4", "SO2", "O2", "Flip0"]),
       k=st.sampled_from([3, 4, 5]))
def test_dim_is_sum_over_field_pairs(data, name, k):
    """The layer's weights are the disjoint union of the field pairs' weights."""
    tin = data.draw(field_types(name, max_fields=3, max_size=24), label="in")
    tout = data.draw(field_types(name, max_fields=3, max_size=24), label="out")
    G = group(name)
    total = 0
    for ro in tout:
        for ri in tin:
            try:
                total += cs.LayerBasis(cs.FieldType(G, [ri]), cs.FieldType(G, [ro]), k).dim
            except cs.EmptyBasisError:
                pass
    if total == 0:
        with pytest.raises(cs.EmptyBasisError):
            cs.LayerBasis(tin, tout, k)
    else:
        b = cs.LayerBasis(tin, tout, k)
        assert b.dim == total == len(b)


# ---- empty bases --------------------------------------------------------------------------

@pytest.mark.parametrize("G,a,b,k", [
    (cs.O2(4), (0, 0), (1, 0), 3),    # trivial → sign: nothing at μ = 0, O(2) has t = 0 only
    (cs.O2(4), (0, 0), (1, 0), 9),
    (cs.O2(4), (1, 1), (1, 4), 3),    # μ ∈ {3, 5} > fco = 2
    (cs.SO2(4), (0,), (3,), 3),       # μ = 3
    (cs.DihedralGroup(4), (0, 0), (1, 0), 3),  # μ = 4t > 0 exceeds F = 2
])
def test_empty_layer_raises(G, a, b, k):
    tin, tout = cs.FieldType(G, [G.irrep(*a)]), cs.FieldType(G, [G.irrep(*b)])
    with pytest.raises(cs.EmptyBasisError) as info:
        cs.LayerBasis(tin, tout, k)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "frequencies_cutoff" in msg and "kernel_size" in msg


def test_empty_layer_becomes_non_empty_with_larger_cutoff():
    G = cs.O2(4)
    tin, tout = cs.FieldType(G, [G.irrep(1, 1)]), cs.FieldType(G, [G.irrep(1, 4)])
    b = cs.LayerBasis(tin, tout, 5, frequencies_cutoff=2.0)  # ring 2 allows |μ| ≤ 4
    assert b.dim >= 1
    assert set(np.abs(b.element_attributes["frequency"])) <= {3}


@pytest.mark.parametrize("G,tin,tout,zero_out", [
    # O(2): trivial → [trivial, sign]; the sign field gets nothing
    (cs.O2(4), [(0, 0)], [(0, 0), (1, 0)], [1]),
    # D4, k = 3: trivial → sign is empty, the regular and trivial fields are not
    (cs.DihedralGroup(4), [(0, 0)], ["regular", (1, 0), (0, 0)], [8]),
    # non-contiguous: sign fields interleaved with regular ones
    (cs.DihedralGroup(4), [(0, 0), "regular"], [(1, 0), "regular", (1, 0)], [0, 9]),
])
def test_empty_pair_leaves_block_zero(G, tin, tout, zero_out):
    def ft(spec):
        return cs.FieldType(G, [G.regular_representation if s == "regular" else G.irrep(*s)
                                for s in spec])
    Tin, Tout = ft(tin), ft(tout)
    b = cs.LayerBasis(Tin, Tout, 3)
    w = np.random.default_rng(1).standard_normal(b.dim)
    for dtype in (np.float64, np.float32):
        K = b.expand(w.astype(dtype))
        in_triv = [c for f, r in enumerate(Tin) if r.name.startswith("irrep_0")
                   for c in range(Tin.channels(f).start, Tin.channels(f).stop)]
        for row in zero_out:
            assert not K[row, in_triv].any()  # exactly zero
        assert np.abs(K).max() > 0
    D = b.dense()
    for row in zero_out:
        assert not D[:, row, in_triv].any()


# ---- layout, normalisation and attributes -------------------------------------------------

def _irreps_coords(b, D):
    """Dense basis in irreps coordinates: Q_outᵀ D Q_in."""
    Qo, Qi = b.out_type.change_of_basis, b.in_type.change_of_basis
    Df = D.reshape(D.shape[0], D.shape[1], D.shape[2], -1)
    return np.einsum("ba,nbcp,cd->nadp", Qo, Df, Qi, optimize=True)


LAYOUT_CASES = [
    ("C4", ["regular", (1,), "regular"], ["regular", (0,), (2,), (1,)], 5, 1),
    ("D4", ["regular", (1, 1), (0, 0)], [(1, 1), "regular", (0, 2)], 4, 1),
    ("D3", [("q", (None, 3)), "regular"], ["regular", ("q", (0, 1))], 5, 2),
    ("O2", [(1, 1), (0, 0), (1, 2), (1, 1)], [(1, 2), (0, 0), (1, 0)], 5, 1),
    ("SO2", [(0,), (2,), (1,)], [(1,), (1,), (3,)], 7, 1),
    ("Flip0", ["regular", (1,)], [(1,), (0,), "regular"], 3, 1),
    ("C6", [("q", 2), ("q", 3), (3,)], [("q", 3), "regular"], 4, 1),
]


def _ft(G, spec):
    reps = []
    for s in spec:
        if s == "regular":
            reps.append(G.regular_representation)
        elif s[0] == "q":
            reps.append(cs.quotient_representation(G, s[1]))
        else:
            reps.append(G.irrep(*s).representation)
    return cs.FieldType(G, reps)


@pytest.fixture(scope="module", params=LAYOUT_CASES, ids=lambda c: c[0])
def layout_case(request):
    name, sin, sout, k, d = request.param
    G = group(name)
    b = cs.LayerBasis(_ft(G, sin), _ft(G, sout), k, d)
    return b, b.dense()


def test_dense_shape_and_bytes(layout_case):
    b, D = layout_case
    assert D.shape == (b.dim,) + b.shape
    assert b.shape == (b.out_type.size, b.in_type.size, *b.filter_shape)
    # e2cnn's padded float32 basis: one (d, size_out, size_in, P) buffer per name block
    size = {r.name: r.size for r in list(b.in_type) + list(b.out_type)}
    assert b.padded_bytes == 4 * len(b.points) * sum(
        d * size[i] * size[o] for i, o, _, _, _, _, d in b.weight_blocks)
    assert b.stored_bytes > 0
    assert b.dense(np.float32).dtype == np.float32


def test_weight_blocks_sorted_by_names(layout_case):
    """One contiguous slice per (in name, out name), sorted as strings (§6.2), laid out as
    (out field, in field, element)."""
    b, D = layout_case
    blocks = b.weight_blocks
    keys = [(bl[0], bl[1]) for bl in blocks]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert blocks[0][2] == 0 and blocks[-1][3] == b.dim
    for prev, nxt in zip(blocks, blocks[1:]):
        assert prev[3] == nxt[2]
    tin, tout = b.in_type, b.out_type
    for in_name, out_name, lo, hi, n_out, n_in, d in blocks:
        fo = [f for f, r in enumerate(tout) if r.name == out_name]
        fi = [f for f, r in enumerate(tin) if r.name == in_name]
        assert (n_out, n_in) == (len(fo), len(fi)) and hi - lo == n_out * n_in * d
        for a, P in enumerate(fo):
            for c, Q in enumerate(fi):
                sl = slice(lo + (a * n_in + c) * d, lo + (a * n_in + c + 1) * d)
                mask = np.zeros(D.shape[1:3], bool)
                mask[tout.channels(P), tin.channels(Q)] = True
                block = D[sl]
                assert not block[:, ~mask].any()  # nothing outside the field pair
                assert (np.abs(block.reshape(d, -1)).max(1) > 0).all()
                # every field pair of the same names uses the same d elements
                ref = D[lo:lo + d][:, tout.channels(fo[0]), tin.channels(fi[0])]
                np.testing.assert_array_equal(block[:, tout.channels(P), tin.channels(Q)], ref)


def test_element_attributes_match_dense(layout_case):
    b, D = layout_case
    att = b.element_attributes
    for key in ("radius", "sigma", "frequency", "gamma", "s", "offset", "out_field",
                "in_field", "out_irrep_idx", "in_irrep_idx", "in_irrep_name"):
        assert len(att[key]) == b.dim
    tin, tout = b.in_type, b.out_type
    # irreps-coordinate blocks of every field
    out_blk = np.concatenate([[0], np.cumsum([p.dim for p in tout.irreps])])
    in_blk = np.concatenate([[0], np.cumsum([p.dim for p in tin.irreps])])
    first_out = np.cumsum([0] + [len(r.irreps) for r in tout])
    first_in = np.cumsum([0] + [len(r.irreps) for r in tin])
    I = _irreps_coords(b, D)
    rings = np.asarray(b.settings.rings)
    sig = np.asarray(b.settings.sigma)
    for w in range(b.dim):
        Pf, Qf = att["out_field"][w], att["in_field"][w]
        o = first_out[Pf] + att["out_irrep_idx"][w]
        i = first_in[Qf] + att["in_irrep_idx"][w]
        mask = np.zeros(I.shape[1:3], bool)
        mask[out_blk[o]:out_blk[o + 1], in_blk[i]:in_blk[i + 1]] = True
        assert not np.abs(I[w][~mask]).max(initial=0) > 1e-12
        psi_in = tin.representations[Qf].irreps[att["in_irrep_idx"][w]]
        psi_out = tout.representations[Pf].irreps[att["out_irrep_idx"][w]]
        assert att["in_irrep_name"][w] == psi_in.name
        # §6.1: Σ_p ‖E_b(p)‖²_F = dim of the output irrep
        assert np.sum(D[w] ** 2) == pytest.approx(psi_out.dim, rel=1e-10)
        r = int(np.flatnonzero(np.isclose(rings, att["radius"][w]))[0])
        assert att["sigma"][w] == sig[r]
        assert abs(att["frequency"][w]) <= b.settings.cutoff_per_ring[r] + 1e-12
        assert att["gamma"][w] in (0.0, math.pi / 2)
        assert att["s"][w] in (-1, 0, 1)
        assert (att["s"][w] >= 0) == (psi_in.dim == psi_out.dim == 2)


def test_elements_ring_major_within_field_pair(layout_case):
    b, _ = layout_case
    att = b.element_attributes
    for in_name, out_name, lo, hi, n_out, n_in, d in b.weight_blocks:
        for j in range(n_out * n_in):
            r = att["radius"][lo + j * d: lo + (j + 1) * d]
            assert (np.diff(r) >= 0).all()
            # (in irrep, out irrep) order inside a ring
            for R in np.unique(r):
                sel = np.flatnonzero(r == R) + lo + j * d
                key = att["in_irrep_idx"][sel] * 1000 + att["out_irrep_idx"][sel]
                assert (np.diff(key) >= 0).all()


def test_basis_elements_linearly_independent(layout_case):
    b, D = layout_case
    M = D.reshape(b.dim, -1)
    assert np.linalg.matrix_rank(M) == b.dim


def test_layer_basis_pickles(layout_case):
    b, _ = layout_case
    b2 = pickle.loads(pickle.dumps(b))
    w = np.random.default_rng(3).standard_normal(b.dim)
    np.testing.assert_array_equal(b2.expand(w), b.expand(w))
    assert b2.dim == b.dim and b2.shape == b.shape


def test_dense_memory_larger_than_stored():
    b = regular_basis(cs.CyclicGroup(8), 7)
    assert b.stored_bytes < b.padded_bytes
    assert b.plan.nbytes >= b.stored_bytes


# ---- points= -------------------------------------------------------------------------------

def test_points_shape_and_validation():
    G = cs.CyclicGroup(4)
    ft = cs.FieldType(G, [G.regular_representation, G.irrep(1)])
    pts = np.random.default_rng(0).uniform(-2, 2, (13, 2))
    pts[0] = [2.5, 0.0]
    b = cs.LayerBasis(ft, ft, 5, points=pts)
    assert b.filter_shape == (13,) and b.shape == (6, 6, 13)
    np.testing.assert_array_equal(b.points, pts)
    K = b.expand(np.ones(b.dim))
    assert K.shape == (6, 6, 13)
    assert b.dense().shape == (b.dim, 6, 6, 13)
    for bad in (np.zeros((3, 3)), np.zeros((0, 2)), np.array([[0.0, np.nan]]), np.zeros(4)):
        with pytest.raises(ValueError, match="points"):
            cs.LayerBasis(ft, ft, 5, points=bad)
    # grid points given explicitly reproduce the grid basis
    g = cs.LayerBasis(ft, ft, 5)
    e = cs.LayerBasis(ft, ft, 5, points=cs.grid_points(5))
    w = np.random.default_rng(1).standard_normal(g.dim)
    assert e.dim == g.dim
    np.testing.assert_allclose(e.expand(w), g.expand(w).reshape(6, 6, 25), atol=1e-14)


def test_bad_field_types_rejected():
    G = cs.CyclicGroup(4)
    ft = cs.FieldType(G, [G.regular_representation])
    H = cs.CyclicGroup(8)
    with pytest.raises(ValueError, match="in_type"):
        cs.LayerBasis(G.regular_representation, ft, 3)
    with pytest.raises(ValueError):
        cs.LayerBasis(ft, cs.FieldType(H, [H.regular_representation]), 3)


def test_equal_layers_compare_and_hash_by_value():
    """Two bases with the same field types, settings and points are equal (jit caches and
    operator keys are shared), whatever cache built them; pickling and deepcopy keep it."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    a, b = cs.LayerBasis(t, t, 3), cs.LayerBasis(t, t, 3, cache=False)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != cs.LayerBasis(t, t, 5) and a != cs.LayerBasis(t, t, 3, sigma=0.5)
    assert a != cs.LayerBasis(t, t, 3, points=a.points + 1e-3)
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    assert a.__eq__("basis") is NotImplemented
