"""Property tests for the irreps (cupysteer.r2.irreps) against e2cnn 0.2.3's real forms
(reference §2): names, ids, insertion order, dimensions, sum_of_squares_constituents,
closed-form matrices, homomorphism, orthogonality and character orthogonality."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cupysteer import O2, SO2, CyclicGroup, DihedralGroup, FlipGroup, Irrep

from _strategies import TWO_PI, element_strategy, group_strategies, orders, prop, rot, some_elements

PROP = prop(25)
ATOL = 1e-10

axes, max_freqs, finite_groups, continuous_groups, all_groups = group_strategies(max_frequency=8)


def irrep_tables(G, table) -> list:
    """[table(psi, elements) for every irrep psi of the finite group G]."""
    els = G.elements()
    return [table(p, els) for p in G.irreps()]


def reference_irrep(G, psi, g):
    """The matrix of reference §2's table, computed independently of the package."""
    if isinstance(G, FlipGroup):
        (j,) = psi.id
        return np.array([[(-1.0) ** (j * g)]])
    if isinstance(G, CyclicGroup):
        (k,) = psi.id
        N = G.N
        if k == 0:
            return np.eye(1)
        if 2 * k == N:
            return np.array([[(-1.0) ** g]])
        return rot(TWO_PI * k * g / N)
    if isinstance(G, SO2):
        (k,) = psi.id
        return np.eye(1) if k == 0 else rot(k * g)
    j, k = psi.id
    f, r = g
    if isinstance(G, DihedralGroup):
        N = G.N
        theta = TWO_PI * r / N
        if k == 0:
            return np.array([[(-1.0) ** (j * f)]])
        if 2 * k == N:
            return np.array([[(-1.0) ** (r + j * f)]])
        return rot(k * theta) @ np.diag([1.0, (-1.0) ** f])
    # O(2)
    if k == 0:
        return np.array([[(-1.0) ** (j * f)]])
    return rot(k * r) @ np.diag([1.0, (-1.0) ** f])


# ----------------------------------------------------------------------------- catalogue


@PROP
@given(orders)
def test_cyclic_irreps_catalogue(N):
    G = CyclicGroup(N)
    irreps = G.irreps()
    assert [p.name for p in irreps] == [f"irrep_{k}" for k in range(N // 2 + 1)]
    assert [p.id for p in irreps] == [(k,) for k in range(N // 2 + 1)]
    for p in irreps:
        k = p.frequency
        one = k == 0 or 2 * k == N
        assert p.dim == (1 if one else 2)
        assert p.sum_of_squares_constituents == (1 if one else 2)
        assert p.flip_frequency == 0
    assert irreps[0].is_trivial and not any(p.is_trivial for p in irreps[1:])
    assert G.trivial_irrep == irreps[0]


@PROP
@given(orders, axes)
def test_dihedral_irreps_catalogue(N, axis):
    G = DihedralGroup(N, axis)
    ids = [(0, 0), (1, 0)] + [(1, k) for k in range(1, N // 2 + 1)]
    if N % 2 == 0:
        ids.append((0, N // 2))
    irreps = G.irreps()
    assert [p.id for p in irreps] == ids
    assert [p.name for p in irreps] == [f"irrep_{j},{k}" for j, k in ids]
    for p in irreps:
        j, k = p.id
        assert (p.flip_frequency, p.frequency) == (j, k)
        assert p.dim == (1 if k == 0 or 2 * k == N else 2)
        assert p.sum_of_squares_constituents == 1


def test_d6_irreps_order():
    assert [p.name for p in DihedralGroup(6).irreps()] == [
        "irrep_0,0", "irrep_1,0", "irrep_1,1", "irrep_1,2", "irrep_1,3", "irrep_0,3"]
    assert [p.dim for p in DihedralGroup(6).irreps()] == [1, 1, 2, 2, 1, 1]


def test_small_catalogues():
    assert [p.name for p in FlipGroup().irreps()] == ["irrep_0", "irrep_1"]
    assert [p.frequency for p in FlipGroup().irreps()] == [0, 0]
    assert [p.flip_frequency for p in FlipGroup().irreps()] == [0, 1]
    assert [p.name for p in CyclicGroup(2).irreps()] == ["irrep_0", "irrep_1"]
    assert [p.dim for p in CyclicGroup(2).irreps()] == [1, 1]
    assert [p.name for p in DihedralGroup(1).irreps()] == ["irrep_0,0", "irrep_1,0"]
    assert [p.name for p in DihedralGroup(2).irreps()] == [
        "irrep_0,0", "irrep_1,0", "irrep_1,1", "irrep_0,1"]


@PROP
@given(max_freqs, axes)
def test_continuous_irreps_catalogue(mf, axis):
    so2 = SO2(mf).irreps()
    assert [p.name for p in so2] == [f"irrep_{k}" for k in range(mf + 1)]
    assert [p.dim for p in so2] == [1] + [2] * mf
    assert [p.sum_of_squares_constituents for p in so2] == [1] + [2] * mf
    o2 = O2(mf, axis).irreps()
    assert [p.name for p in o2] == ["irrep_0,0", "irrep_1,0"] + [
        f"irrep_1,{k}" for k in range(1, mf + 1)]
    assert [p.dim for p in o2] == [1, 1] + [2] * mf
    assert all(p.sum_of_squares_constituents == 1 for p in o2)
    # irreps beyond maximum_frequency are still available by id
    assert SO2(mf).irrep(mf + 3).dim == 2
    assert O2(mf).irrep(1, mf + 3).dim == 2


@PROP
@given(finite_groups)
def test_sum_of_dimensions_squared_over_sos_is_group_order(G):
    """Real irreps: sum d^2 / sos = |G| (complete decomposition of the regular rep)."""
    assert sum(p.dim ** 2 // p.sum_of_squares_constituents for p in G.irreps()) == G.order


@PROP
@given(all_groups)
def test_id_roundtrip(G):
    for p in G.irreps():
        assert G.irrep(*p.id) == p
        assert isinstance(p, Irrep) and p.group == G
        assert p.name == "irrep_" + ",".join(map(str, p.id))


# ----------------------------------------------------------------------------- matrices


@PROP
@given(st.data(), all_groups)
def test_irrep_matches_reference_formula(data, G):
    for g in some_elements(G, data, n=6):
        for p in G.irreps():
            M = p(g)
            assert M.shape == (p.dim, p.dim)
            np.testing.assert_allclose(M, reference_irrep(G, p, g), atol=ATOL)
            assert p.character(g) == pytest.approx(np.trace(M), abs=ATOL)


@PROP
@given(st.data(), all_groups)
def test_homomorphism_and_orthogonality(data, G):
    """psi(gh) = psi(g) psi(h); psi(g^-1) = psi(g)^T; psi(e) = I."""
    els = some_elements(G, data, n=8)
    n = len(els)
    for p in G.irreps():
        M = p.evaluate(els)
        assert M.shape == (n, p.dim, p.dim)
        np.testing.assert_allclose(p(G.identity), np.eye(p.dim), atol=ATOL)
        Minv = p.evaluate([G.inverse(g) for g in els])
        np.testing.assert_allclose(Minv, np.transpose(M, (0, 2, 1)), atol=ATOL)
        np.testing.assert_allclose(np.einsum("nab,nac->nbc", M, M),
                                   np.broadcast_to(np.eye(p.dim), M.shape), atol=ATOL)
        prods = p.evaluate([G.compose(a, b) for a in els for b in els])
        expected = np.einsum("iab,jbc->ijac", M, M).reshape(n * n, p.dim, p.dim)
        np.testing.assert_allclose(prods, expected, atol=1e-9)


@PROP
@given(finite_groups)
def test_character_orthogonality(G):
    """(1/|G|) sum_g chi_psi(g) chi_phi(g) = sos_psi delta_{psi, phi} (real irreps)."""
    chars = np.array(irrep_tables(G, lambda p, els: [p.character(g) for g in els]))
    gram = chars @ chars.T / G.order
    expected = np.diag([p.sum_of_squares_constituents for p in G.irreps()]).astype(float)
    np.testing.assert_allclose(gram, expected, atol=1e-9)


@PROP
@given(finite_groups)
def test_schur_orthogonality_of_matrix_entries(G):
    """Entries of inequivalent irreps are orthogonal; (1/|G|) sum psi_ab psi_cd relates by sos."""
    cols = irrep_tables(G, lambda p, els: p.evaluate(els).reshape(len(els), -1))
    for i, (p, A) in enumerate(zip(G.irreps(), cols)):
        for k, B in enumerate(cols):
            if i != k:
                np.testing.assert_allclose(A.T @ B, 0.0, atol=1e-9)
        # the squared norm of every entry is |G| / d
        np.testing.assert_allclose(np.einsum("na,na->a", A, A), G.order / p.dim, atol=1e-9)


@PROP
@given(st.data(), all_groups)
def test_evaluate_batch_equals_single_calls(data, G):
    els = data.draw(st.lists(element_strategy(G), min_size=1, max_size=10))
    for p in G.irreps():
        batch = p.evaluate(els)
        for g, M in zip(els, batch):
            np.testing.assert_array_equal(M, p(g))


@PROP
@given(all_groups)
def test_irrep_as_representation(G):
    for p in G.irreps():
        rep = p.representation
        assert rep.irreps == (p,)
        assert rep.name == p.name
        assert rep.size == p.dim
        np.testing.assert_array_equal(rep.change_of_basis, np.eye(p.dim))
        g = G.testing_elements()[-1]
        np.testing.assert_allclose(rep(g), p(g), atol=1e-12)


# ----------------------------------------------------------------------------- value semantics


@PROP
@given(all_groups)
def test_irrep_pickle_equality_hash(G):
    for p in G.irreps():
        q = pickle.loads(pickle.dumps(p))
        assert q == p and hash(q) == hash(p)
        assert q.group == G
        assert G.irrep(*p.id) == p and hash(G.irrep(*p.id)) == hash(p)
    ps = G.irreps()
    assert len(set(ps)) == len(ps)


def test_irreps_of_different_groups_differ():
    assert CyclicGroup(4).irrep(1) != CyclicGroup(8).irrep(1)
    assert CyclicGroup(4).irrep(0) != DihedralGroup(4).irrep(0, 0)
    assert SO2(3).irrep(2) == SO2(5).irrep(2)
    assert hash(SO2(3).irrep(2)) == hash(SO2(5).irrep(2))
    assert DihedralGroup(4, 0.0).irrep(1, 1) != DihedralGroup(4).irrep(1, 1)


@PROP
@given(all_groups)
def test_irreps_are_immutable(G):
    p = G.irreps()[-1]
    with pytest.raises(AttributeError):
        p.frequency = 5
    with pytest.raises(AttributeError):
        p.group = CyclicGroup(3)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("G, id", [
    (CyclicGroup(4), (3,)), (CyclicGroup(4), (-1,)), (CyclicGroup(4), (1, 1)),
    (CyclicGroup(4), ()), (CyclicGroup(5), (3,)), (CyclicGroup(4), (1.5,)),
    (DihedralGroup(4), (0, 1)), (DihedralGroup(4), (2, 0)), (DihedralGroup(4), (1, 3)),
    (DihedralGroup(4), (1,)), (DihedralGroup(5), (0, 2)), (DihedralGroup(4), (0, -1)),
    (FlipGroup(), (2,)), (FlipGroup(), (0, 0)),
    (SO2(), (-1,)), (SO2(), (0, 1)), (O2(), (0, 1)), (O2(), (2, 1)), (O2(), (1,)),
])
def test_unknown_irreps_raise(G, id):
    with pytest.raises(ValueError, match="irrep"):
        G.irrep(*id)


def test_unknown_irrep_messages_name_the_group():
    with pytest.raises(ValueError, match="C4"):
        CyclicGroup(4).irrep(3)
    with pytest.raises(ValueError, match="D4"):
        DihedralGroup(4).irrep(0, 1)
