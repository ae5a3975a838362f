"""Point convolutions: the contract (adjoint identities, validation) and the NumPy reference
(dense filters, exact equivariance in 2D and 3D, translation and permutation invariance)."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3
from cupysteer.backends import point_numpy as pn
from cupysteer.fields_spec import parse_group
from cupysteer.pointconv import PointConvBasis


def _graph(rng, n, d, E=40):
    x = rng.normal(size=(n, d))
    ei = rng.integers(0, n, size=(2, E))
    ei[:, :3] = np.arange(3)  # self loops: the basis at δ = 0
    return x, ei


def _layer(group, reps_in, reps_out, **kw):
    kw = dict(dict(width=2.0, n_rings=3), **kw)
    return PointConvBasis(cs.FieldType(group, reps_in), cs.FieldType(group, reps_out), **kw)


C8 = cs.CyclicGroup(8)
D4 = cs.DihedralGroup(4)


def _cases():
    yield "C8", _layer(C8, [C8.regular_representation], [C8.regular_representation] * 2)
    yield "D4", _layer(D4, [D4.trivial_representation, D4.regular_representation],
                       [D4.irrep(1, 1), D4.regular_representation], frequencies_cutoff=2.0)
    so2 = parse_group("SO2:3")
    yield "SO2", _layer(so2, [so2.irrep(0), so2.irrep(1), so2.irrep(2)],
                        [so2.irrep(1), so2.irrep(3), so2.irrep(0)])
    o2 = parse_group("O2:2")
    yield "O2", _layer(o2, [o2.irrep(0, 0), o2.irrep(1, 1)], [o2.irrep(1, 2), o2.irrep(1, 0)])
    so3 = r3.SO3(2)
    yield "SO3", _layer(so3, [so3.irrep(0), so3.irrep(1)], [so3.irrep(1), so3.irrep(2)])
    o3 = r3.O3(2)
    yield "O3", _layer(o3, [o3.irrep(0, 0), o3.irrep(1, 1)], [o3.irrep(0, 1), o3.irrep(1, 1)],
                       width=1.5, n_rings=2)
    O = r3.Octahedral()
    yield "O", _layer(O, [O.regular_representation], [O.regular_representation], width=1.0,
                      n_rings=2, frequencies_cutoff=2.0)


CASES = dict(_cases())


# ---- the contract ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["C8", "D4", "SO3"])
def test_contract_adjoint_identities(name):
    b = CASES[name]
    rng = np.random.default_rng(1)
    n, E = 9, 31
    B = rng.normal(size=(E, b.n_entries))
    w = rng.normal(size=b.dim)
    g = rng.normal(size=(n, b.in_type.size))
    h = rng.normal(size=(n, b.out_type.size))
    src, dst = rng.integers(0, n, E), rng.integers(0, n, E)
    y = pn.contract(b.table, B, w, g, src, dst, n)
    h = h[:, :y.shape[1]]
    ga = pn.contract_adjoint_features(b.table, B, w, h, src, dst, n)
    assert np.isclose(np.sum(y * h), np.sum(g[:, :ga.shape[1]] * ga), rtol=1e-12)
    gw = pn.contract_adjoint_weights(b.table, B, h, g, src, dst, b.dim)
    assert np.isclose(np.sum(y * h), w @ gw, rtol=1e-12)
    # linear in w: contract(w) = Σ_k w_k contract(e_k) for a few k
    for k in (0, b.dim // 2, b.dim - 1):
        e = np.zeros(b.dim)
        e[k] = 1
        assert np.isclose(np.sum(pn.contract(b.table, B, e, g, src, dst, n) * h), gw[k])


def test_contract_matches_dense_per_block_definition():
    b = CASES["D4"]
    rng = np.random.default_rng(2)
    n, E = 5, 12
    B, w = rng.normal(size=(E, b.n_entries)), rng.normal(size=b.dim)
    g = rng.normal(size=(n, b.in_type.size))
    src, dst = rng.integers(0, n, E), rng.integers(0, n, E)
    y = pn.contract(b.table, B, w, g, src, dst, n)
    ref = np.zeros_like(y)
    for e in range(E):
        for o, i, do, di, nb, wo, bo in b.table.tolist():
            K = sum(w[wo + k] * B[e, bo + k * do * di: bo + (k + 1) * do * di].reshape(do, di)
                    for k in range(nb))
            ref[dst[e], o:o + do] += K @ g[src[e], i:i + di]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_contract_without_edges_gives_zeros():
    b = CASES["SO3"]
    e = np.zeros(0, np.int64)
    y = pn.contract(b.table, np.zeros((0, b.n_entries)), np.ones(b.dim),
                    np.ones((4, b.in_type.size)), e, e, 4)
    assert y.shape[0] == 4 and not y.any()
    ga = pn.contract_adjoint_features(b.table, np.zeros((0, b.n_entries)), np.ones(b.dim), y,
                                      e, e, 4)
    assert ga.shape[0] == 4 and not ga.any()
    gw = pn.contract_adjoint_weights(b.table, np.zeros((0, b.n_entries)), y,
                                     np.ones((4, b.in_type.size)), e, e, b.dim)
    assert gw.shape == (b.dim,) and not gw.any()
    assert not b.filters(np.ones(b.dim), np.zeros((0, 3))).size


def test_contract_rejects_bad_inputs():
    b = CASES["C8"]
    B, w, g = np.zeros((4, b.n_entries)), np.zeros(b.dim), np.zeros((3, b.in_type.size))
    s = d = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="table"):
        pn.contract(b.table[:, :6], B, w, g, s, d, 3)
    with pytest.raises(ValueError, match="basis"):
        pn.contract(b.table, B[:, :-1], w, g, s, d, 3)
    with pytest.raises(ValueError, match="src"):
        pn.contract(b.table, B, w, g, s[:3], d, 3)
    with pytest.raises(ValueError, match="dst"):
        pn.contract(b.table, B, w, g, s, d + 5, 3)
    with pytest.raises(ValueError, match="dtype"):
        pn.contract(b.table, B.astype(np.float32), w, g, s, d, 3)
    with pytest.raises(ValueError, match="weights"):
        pn.contract_adjoint_weights(b.table, B, np.zeros((3, b.out_type.size)), g, s, d, 2)
    assert pn.BLOCK_COLUMNS[0] == "out_offset" and len(pn.BLOCK_COLUMNS) == 7


# ---- the reference -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_apply_equals_dense_filters(name):
    b = CASES[name]
    d = b.in_type.group.space.dimension
    rng = np.random.default_rng(3)
    x, ei = _graph(rng, 10, d)
    f, w = rng.normal(size=(10, b.in_type.size)), rng.normal(size=b.dim)
    K = b.filters(w, x[ei[0]] - x[ei[1]])
    ref = np.zeros((10, b.out_type.size))
    np.add.at(ref, ei[1], np.einsum("eoi,ei->eo", K, f[ei[0]]))
    np.testing.assert_allclose(b.apply(w, f, x, ei, aggregation="sum", chunk_edges=7), ref,
                               atol=1e-12)
    deg = np.maximum(np.bincount(ei[1], minlength=10), 1)[:, None]
    np.testing.assert_allclose(b.apply(w, f, x, ei), ref / deg, atol=1e-12)


def _elements(group, rng):
    els = list(group.testing_elements())[:6]
    if not group.is_finite:
        els += list(group.sample(3, rng))
    return els


@pytest.mark.parametrize("name", list(CASES))
def test_exact_equivariance(name):
    """y(g·x, ρ_in(g) f) = ρ_out(g) y(x, f) — rotations/reflections of the positions, random
    elements of continuous groups included (float64, ≤ 1e-12)."""
    b = CASES[name]
    G, d = b.in_type.group, b.in_type.group.space.dimension
    rng = np.random.default_rng(4)
    x, ei = _graph(rng, 11, d)
    f, w = rng.normal(size=(11, b.in_type.size)), rng.normal(size=b.dim)
    bias = rng.normal(size=b.n_bias)
    y = b.apply(w, f, x, ei, bias=bias)
    scale = np.abs(y).max()
    for g in _elements(G, rng):
        A = G.action_matrices([g])[0]
        rin, rout = b.in_type.representation(g), b.out_type.representation(g)
        yg = b.apply(w, f @ rin.T, x @ A.T, ei, bias=bias)
        assert np.abs(yg - y @ rout.T).max() <= 1e-12 * max(scale, 1.0), g


@pytest.mark.parametrize("name", ["C8", "SO3"])
def test_translation_and_permutation_invariance(name):
    b = CASES[name]
    d = b.in_type.group.space.dimension
    rng = np.random.default_rng(5)
    x, ei = _graph(rng, 12, d, E=50)
    f, w = rng.normal(size=(12, b.in_type.size)), rng.normal(size=b.dim)
    y = b.apply(w, f, x, ei)
    np.testing.assert_allclose(b.apply(w, f, x + rng.normal(size=d) * 3, ei), y, atol=1e-12)
    p = rng.permutation(12)  # node p[i] of the new graph is node i
    inv = np.argsort(p)
    x2, f2 = np.empty_like(x), np.empty_like(f)
    x2[p], f2[p] = x, f
    ei2 = p[ei][:, rng.permutation(ei.shape[1])]
    np.testing.assert_allclose(b.apply(w, f2, x2, ei2)[p], y, atol=1e-12)
    assert inv.shape == (12,)


def test_basis_is_immutable_picklable_hashable():
    b = CASES["D4"]
    for c in (pickle.loads(pickle.dumps(b)), copy.deepcopy(b)):
        assert c == b and hash(c) == hash(b)
        np.testing.assert_array_equal(c.table, b.table)
    with pytest.raises(AttributeError, match="immutable"):
        b.dim = 3
    other = PointConvBasis(b.in_type, b.out_type, width=2.0, n_rings=4)
    assert other != b


def test_point_settings_errors_name_the_argument():
    t = cs.FieldType(C8, [C8.regular_representation])
    with pytest.raises(ValueError, match="width and n_rings"):
        PointConvBasis(t, t)
    with pytest.raises(ValueError, match="sigma"):
        PointConvBasis(t, t, width=1.0, n_rings=2, sigma=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="frequencies_cutoff"):
        PointConvBasis(t, t, width=1.0, n_rings=2, frequencies_cutoff=-1.0)
    b = PointConvBasis(t, t, width=1.0, n_rings=2)
    with pytest.raises(ValueError, match="positions"):
        b.apply(np.zeros(b.dim), np.zeros((3, 8)), np.zeros((3, 3)), np.zeros((2, 0), int))
    with pytest.raises(ValueError, match="edge_index"):
        b.apply(np.zeros(b.dim), np.zeros((3, 8)), np.zeros((3, 2)), np.array([[0, 5]]).T)
    with pytest.raises(ValueError, match="aggregation"):
        b.apply(np.zeros(b.dim), np.zeros((3, 8)), np.zeros((3, 2)), np.zeros((2, 0), int),
                aggregation="max")
