"""Property tests for representations (cupysteer.representation): regular and quotient
representations with e2cnn 0.2.3's change of basis (reference §3), direct sums, restriction
to subgroups, evaluation, value semantics and errors."""
from __future__ import annotations

import math
import pickle
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import block_diag

from cupysteer import (
    O2,
    SO2,
    CyclicGroup,
    DihedralGroup,
    FlipGroup,
    Irrep,
    Representation,
    directsum,
    quotient_representation,
    regular_representation,
    trivial_group,
)

from _strategies import (
    angles,
    divisors,
    element_strategy,
    finite_subgroup_ids,
    group_strategies,
    numpy_subgroup_id,
    orders,
    prop,
    random_orthogonal,
    reference_subgroup_elements,
    seeds,
    some_elements,
    subgroup_ids,
)

PROP = prop(20)
ATOL = 1e-9

axes, max_freqs, finite_groups, continuous_groups, all_groups = group_strategies(max_frequency=6)


# ----------------------------------------------------------------------------- helpers


def coset_permutations(G, H):
    """rho(g)[j, i] = 1 iff g r_i in r_j H, with representatives scanned in element order."""
    els = G.elements()
    reps, label = [], {}
    for x in els:
        if x in label:
            continue
        for h in H:
            label[G.compose(x, h)] = len(reps)
        reps.append(x)
    n = len(reps)
    out = np.zeros((len(els), n, n))
    for k, g in enumerate(els):
        for i, r in enumerate(reps):
            out[k, label[G.compose(g, r)], i] = 1.0
    return out, reps


def character_multiplicities(rep):
    """m_psi = (1/|G|) sum_g tr rho(g) tr psi(g^-1) / sos_psi (finite groups)."""
    G = rep.group
    els = G.elements()
    chi = np.trace(rep.evaluate(els), axis1=1, axis2=2)
    inv = [G.inverse(g) for g in els]
    out = {}
    for psi in G.irreps():
        chi_psi = np.trace(psi.evaluate(inv), axis1=1, axis2=2)
        m = float(chi @ chi_psi) / len(els) / psi.sum_of_squares_constituents
        assert abs(m - round(m)) < 1e-8
        if round(m):
            out[psi] = int(round(m))
    return out


def assert_orthogonal(Q):
    np.testing.assert_allclose(Q.T @ Q, np.eye(len(Q)), atol=1e-10)
    np.testing.assert_allclose(Q @ Q.T, np.eye(len(Q)), atol=1e-10)


@st.composite
def base_reps(draw, G):
    options = ["irrep"]
    if G.is_finite:
        options += ["regular", "quotient"]
    if isinstance(G, O2):
        options += ["quotient"]
    kind = draw(st.sampled_from(options))
    if kind == "irrep":
        if G.is_finite:
            return draw(st.sampled_from(G.irreps())).representation
        k = draw(st.integers(0, G.maximum_frequency + 2))
        if isinstance(G, SO2):
            return G.irrep(k).representation
        j = 1 if k > 0 else draw(st.integers(0, 1))
        return G.irrep(j, k).representation
    if kind == "regular":
        return G.regular_representation
    if isinstance(G, O2):
        return G.quotient_representation((None, -1))
    return G.quotient_representation(draw(finite_subgroup_ids(G)))


@st.composite
def reps_of(draw, G, max_parts=3):
    parts = draw(st.lists(base_reps(G), min_size=1, max_size=max_parts))
    if len(parts) == 1 and draw(st.booleans()):
        return parts[0]
    P = None
    if draw(st.booleans()):
        P = random_orthogonal(sum(p.size for p in parts), draw(seeds))
    return directsum(parts, change_of_basis=P)


@st.composite
def group_and_rep(draw, groups=all_groups):
    G = draw(groups)
    return G, draw(reps_of(G))


# ----------------------------------------------------------------------------- regular


@PROP
@given(finite_groups)
def test_regular_is_left_multiplication_permutation(G):
    """rho(e)[j, i] = 1 iff g_j = e g_i (e2cnn's element order)."""
    rho = G.regular_representation
    els = G.elements()
    idx = {g: i for i, g in enumerate(els)}
    assert rho.size == G.order == len(els)
    mats = rho.evaluate(els)
    for e, R in zip(els, mats):
        P = np.zeros((len(els), len(els)))
        for i, g in enumerate(els):
            P[idx[G.compose(e, g)], i] = 1.0
        np.testing.assert_allclose(R, P, atol=1e-10)
    assert_orthogonal(rho.change_of_basis)
    assert rho.name == "regular"


@PROP
@given(finite_groups)
def test_regular_irreps_and_change_of_basis_formula(G):
    """Each psi appears d/sos times; Q[g, (psi, c, i)] = sqrt(d/|G|) psi(g)[i, c]."""
    rho = regular_representation(G)
    expected_irreps = [p for p in G.irreps()
                       for _ in range(p.dim // p.sum_of_squares_constituents)]
    assert list(rho.irreps) == expected_irreps
    els = G.elements()
    cols = []
    for p in G.irreps():
        for c in range(p.dim // p.sum_of_squares_constituents):
            for i in range(p.dim):
                cols.append([math.sqrt(p.dim / len(els)) * p(g)[i, c] for g in els])
    np.testing.assert_allclose(rho.change_of_basis, np.array(cols).T, atol=1e-12)
    assert character_multiplicities(rho) == dict(Counter(rho.irreps))


def test_regular_c3_change_of_basis_matches_reference():
    Q = regular_representation(CyclicGroup(3)).change_of_basis
    s = math.sqrt
    expected = [[1 / s(3), s(2 / 3), 0.0],
                [1 / s(3), -1 / s(6), 1 / s(2)],
                [1 / s(3), -1 / s(6), -1 / s(2)]]
    np.testing.assert_allclose(Q, expected, atol=1e-12)
    assert [p.name for p in regular_representation(CyclicGroup(3)).irreps] == [
        "irrep_0", "irrep_1"]
    assert [p.name for p in DihedralGroup(3).regular_representation.irreps] == [
        "irrep_0,0", "irrep_1,0", "irrep_1,1", "irrep_1,1"]


@pytest.mark.parametrize("G", [SO2(), O2(), SO2(2), O2(1, 0.0)])
def test_regular_of_continuous_group_raises(G):
    with pytest.raises(ValueError, match="regular representation"):
        regular_representation(G)
    with pytest.raises(ValueError, match="regular representation"):
        G.regular_representation


# ----------------------------------------------------------------------------- quotient


@PROP
@given(st.data(), finite_groups)
def test_quotient_is_coset_permutation(data, G):
    sid = data.draw(finite_subgroup_ids(G))
    rho = G.quotient_representation(sid)
    assert rho == quotient_representation(G, sid)
    H = reference_subgroup_elements(G, sid)
    perms, reps = coset_permutations(G, H)
    assert rho.size == len(reps) == G.order // len(H)
    np.testing.assert_allclose(rho.evaluate(G.elements()), perms, atol=1e-10)
    assert_orthogonal(rho.change_of_basis)
    # irreps: the group's irreps in their order, with the multiplicities of the characters
    order = {p: i for i, p in enumerate(G.irreps())}
    positions = [order[p] for p in rho.irreps]
    assert positions == sorted(positions)
    assert dict(Counter(rho.irreps)) == character_multiplicities(rho)
    assert rho.irreps[0].is_trivial
    assert rho.name == f"quotient[{G.subgroup(sid).id}]"


@PROP
@given(orders, st.data())
def test_cyclic_quotient_closed_form(N, data):
    """C_N / C_M: irreps irrep_k with M | k, k <= N/2; Q[r, psi_k] = psi_k(r) u_k / sqrt(N/M),
    u = 1 (1-dim) or (1, 1) (2-dim), representatives r = 0 .. N/M - 1."""
    M = data.draw(st.sampled_from(divisors(N)))
    G = CyclicGroup(N)
    rho = G.quotient_representation(M)
    ks = [k for k in range(0, N // 2 + 1) if k % M == 0]
    assert [p.name for p in rho.irreps] == [f"irrep_{k}" for k in ks]
    rows = []
    for r in range(N // M):
        row = []
        for k in ks:
            psi = G.irrep(k)
            u = np.ones(psi.dim)
            row.extend(psi(r) @ u / math.sqrt(N / M))
        rows.append(row)
    np.testing.assert_allclose(rho.change_of_basis, np.array(rows), atol=1e-12)


@pytest.mark.parametrize("N, M, names", [
    (6, 2, ["irrep_0", "irrep_2"]),
    (6, 3, ["irrep_0", "irrep_3"]),
    (12, 3, ["irrep_0", "irrep_3", "irrep_6"]),
    (12, 2, ["irrep_0", "irrep_2", "irrep_4", "irrep_6"]),
])
def test_cyclic_quotient_examples(N, M, names):
    assert [p.name for p in CyclicGroup(N).quotient_representation(M).irreps] == names


@pytest.mark.parametrize("sid, names", [
    ((None, 3), ["0,0", "1,0", "1,3", "0,3"]),
    ((None, 2), ["0,0", "1,0", "1,2", "1,2"]),
    ((0, 1), ["0,0", "1,1", "1,2", "0,3"]),
    ((1, 1), ["0,0", "1,1", "1,2", "1,3"]),
    ((0, 3), ["0,0", "0,3"]),
    ((1, 3), ["0,0", "1,3"]),
    ((0, 2), ["0,0", "1,2"]),
])
def test_d6_quotient_examples(sid, names):
    rho = DihedralGroup(6).quotient_representation(sid)
    assert [p.name for p in rho.irreps] == ["irrep_" + n for n in names]
    assert rho.name == f"quotient[{sid}]"


@PROP
@given(max_freqs, axes, st.lists(st.tuples(st.integers(0, 1), angles), min_size=1,
                                 max_size=10))
def test_o2_quotient_by_so2_is_two_point_permutation(mf, axis, els):
    G = O2(mf, axis)
    rho = G.quotient_representation((None, -1))
    assert [p.name for p in rho.irreps] == ["irrep_0,0", "irrep_1,0"]
    assert rho.size == 2
    assert_orthogonal(rho.change_of_basis)
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    for g, R in zip(els, rho.evaluate(els)):
        np.testing.assert_allclose(R, swap if g[0] else np.eye(2), atol=1e-12)


@pytest.mark.parametrize("G, sid", [
    (CyclicGroup(6), 4), (CyclicGroup(6), 0), (CyclicGroup(6), (None, 2)),
    (DihedralGroup(6), (None, 4)), (DihedralGroup(6), (3, 2)), (DihedralGroup(6), (6, 1)),
    (DihedralGroup(6), 2), (FlipGroup(), 3),
    (O2(), (None, 3)), (O2(), (0.0, 1)), (O2(), (0.0, -1)), (O2(), (None, 0)),
    (SO2(), 3), (SO2(), -1), (SO2(), 0),
])
def test_quotient_bad_subgroup_ids_raise(G, sid):
    with pytest.raises(ValueError, match="subgroup_id"):
        G.quotient_representation(sid)


# ----------------------------------------------------------------------------- direct sums


@PROP
@given(st.data(), all_groups, seeds, st.booleans())
def test_directsum_with_and_without_change_of_basis(data, G, seed, use_P):
    parts = data.draw(st.lists(base_reps(G), min_size=1, max_size=3))
    size = sum(p.size for p in parts)
    P = random_orthogonal(size, seed) if use_P else None
    rho = directsum(parts, change_of_basis=P)
    assert rho.size == size
    assert rho.irreps == tuple(psi for p in parts for psi in p.irreps)
    Q = block_diag(*[p.change_of_basis for p in parts])
    np.testing.assert_allclose(rho.change_of_basis, Q if P is None else P @ Q, atol=1e-12)
    assert_orthogonal(rho.change_of_basis)
    els = some_elements(G, data, n=5)
    blocks = np.stack([block_diag(*[p(g) for p in parts]) for g in els])
    expected = blocks if P is None else P @ blocks @ P.T
    np.testing.assert_allclose(rho.evaluate(els), expected, atol=1e-9)
    if len(parts) == 2 and P is None:
        np.testing.assert_allclose((parts[0] + parts[1]).evaluate(els), expected, atol=1e-9)


def test_directsum_accepts_irreps_and_names():
    G = DihedralGroup(4)
    rho = directsum([G.irrep(1, 1), G.regular_representation], name="mine")
    assert rho.name == "mine"
    assert rho.size == 10
    assert rho.irreps[0] == G.irrep(1, 1)
    assert directsum([G.irrep(0, 0)]).size == 1


# ----------------------------------------------------------------------------- every rep


@PROP
@given(st.data(), group_and_rep())
def test_every_rep_is_orthogonal_homomorphism(data, case):
    G, rho = case
    els = some_elements(G, data, n=6)
    if G.is_finite and len(els) > 12:
        els = data.draw(st.lists(st.sampled_from(els), min_size=12, max_size=12))
    n, d = len(els), rho.size
    R = rho.evaluate(els)
    assert R.shape == (n, d, d)
    np.testing.assert_allclose(rho(G.identity), np.eye(d), atol=ATOL)
    np.testing.assert_allclose(rho.evaluate([G.inverse(g) for g in els]),
                               np.transpose(R, (0, 2, 1)), atol=ATOL)
    prods = rho.evaluate([G.compose(a, b) for a in els for b in els])
    np.testing.assert_allclose(prods, np.einsum("iab,jbc->ijac", R, R).reshape(n * n, d, d),
                               atol=ATOL)
    assert_orthogonal(rho.change_of_basis)
    np.testing.assert_allclose(rho.change_of_basis_inv, rho.change_of_basis.T, atol=0)


@PROP
@given(st.data(), group_and_rep())
def test_evaluate_batch_equals_single_calls(data, case):
    G, rho = case
    els = data.draw(st.lists(element_strategy(G), min_size=1, max_size=8))
    batch = rho.evaluate(els)
    for g, M in zip(els, batch):
        np.testing.assert_allclose(M, rho(g), atol=1e-13)
    chars = rho.characters(els)
    np.testing.assert_allclose(chars, np.trace(batch, axis1=1, axis2=2), atol=1e-9)
    assert rho.character(els[0]) == pytest.approx(np.trace(batch[0]), abs=1e-9)


@PROP
@given(st.data(), group_and_rep())
def test_block_diagonal_and_change_of_basis(data, case):
    """rho(g) = Q (+)psi_i(g) Q^T with the irreps at irrep_offsets."""
    G, rho = case
    els = data.draw(st.lists(element_strategy(G), min_size=1, max_size=4))
    f, r = G.split_batch(els)
    D = rho.irreps_block_diagonal(f, r)
    for g, Dg in zip(els, D):
        expected = block_diag(*[psi(g) for psi in rho.irreps])
        np.testing.assert_allclose(Dg, expected, atol=1e-13)
    Q = rho.change_of_basis
    np.testing.assert_allclose(rho.evaluate(els), Q @ D @ Q.T, atol=1e-12)
    assert list(rho.irrep_offsets) == list(np.cumsum([0] + [p.dim for p in rho.irreps])[:-1])
    assert rho.multiplicities() == Counter(rho.irreps)
    assert rho.is_trivial == all(p.is_trivial for p in rho.irreps)


@PROP
@given(group_and_rep(finite_groups))
def test_multiplicities_from_characters(case):
    _, rho = case
    assert character_multiplicities(rho) == dict(Counter(rho.irreps))


# ----------------------------------------------------------------------------- restriction


@PROP
@given(st.data(), all_groups)
def test_restriction_agrees_with_embedding(data, G):
    """restrict(id)(h) = rho(embed(h)) for subgroup elements h; restricted Q orthogonal."""
    rho = data.draw(reps_of(G))
    sid = data.draw(subgroup_ids(G))
    sub = G.subgroup(sid)
    H = sub.group
    res = rho.restrict(sid)
    assert res.group == H
    assert res.size == rho.size
    assert all(isinstance(p, Irrep) and p.group == H for p in res.irreps)
    assert_orthogonal(res.change_of_basis)
    hs = some_elements(H, data, n=6)
    np.testing.assert_allclose(res.evaluate(hs), rho.evaluate([sub.embed(h) for h in hs]),
                               atol=1e-9)
    if H.is_finite:
        assert dict(Counter(res.irreps)) == character_multiplicities(res)


@pytest.mark.parametrize("G, sid", [
    (CyclicGroup(12), 4), (CyclicGroup(12), 1), (CyclicGroup(8), 8),
    (DihedralGroup(6), (None, 3)), (DihedralGroup(6), (None, 1)), (DihedralGroup(6), (4, 1)),
    (DihedralGroup(6), (1, 3)), (DihedralGroup(8), (0, 4)), (DihedralGroup(6), (0, 6)),
    (O2(4), (None, -1)), (O2(4), (None, 5)), (O2(4), (0.7, 3)), (O2(4), (2.0, 1)),
    (O2(4), (1.3, -1)), (SO2(4), 6), (SO2(4), -1),
    (FlipGroup(), 1), (FlipGroup(0.3), 2),
])
def test_restriction_listed_cases(G, sid):
    sub = G.subgroup(sid)
    H = sub.group
    parts = [p.representation for p in G.irreps()]
    if G.is_finite:
        parts.append(G.regular_representation)
    if isinstance(G, O2):
        parts.append(G.quotient_representation((None, -1)))
    rho = directsum(parts)
    res = rho.restrict(sid)
    assert_orthogonal(res.change_of_basis)
    hs = H.testing_elements()
    np.testing.assert_allclose(res.evaluate(hs), rho.evaluate([sub.embed(h) for h in hs]),
                               atol=1e-9)


def test_restriction_examples():
    # a 2-dim irrep of C_N restricted to C_M folds k mod M (or splits at 0 and M/2)
    assert [p.name for p in CyclicGroup(8).irrep(3).representation.restrict(4).irreps] == [
        "irrep_1"]
    assert [p.name for p in CyclicGroup(8).irrep(2).representation.restrict(4).irreps] == [
        "irrep_2", "irrep_2"]
    assert [p.name for p in DihedralGroup(6).irrep(1, 1).representation.restrict(
        (0, 1)).irreps] == ["irrep_0", "irrep_1"]
    assert [p.name for p in O2().irrep(1, 2).representation.restrict((None, -1)).irreps] == [
        "irrep_2"]
    # the trivial subgroup sees only trivial irreps
    res = DihedralGroup(5).regular_representation.restrict((None, 1))
    assert res.group == trivial_group() and res.is_trivial and res.size == 10


# ----------------------------------------------------------------------------- value semantics


@PROP
@given(group_and_rep())
def test_pickle_roundtrip(case):
    G, rho = case
    r2 = pickle.loads(pickle.dumps(rho))
    assert r2 == rho and hash(r2) == hash(rho)
    assert r2.name == rho.name and r2.irreps == rho.irreps
    np.testing.assert_array_equal(r2.change_of_basis, rho.change_of_basis)
    g = G.testing_elements()[-1]
    np.testing.assert_array_equal(r2(g), rho(g))
    assert not r2.change_of_basis.flags.writeable


@PROP
@given(finite_groups, st.data())
def test_equality_and_hash_by_content(G, data):
    a, b = regular_representation(G), G.regular_representation
    assert a is not b
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    sid = data.draw(finite_subgroup_ids(G))
    q1, q2 = G.quotient_representation(sid), quotient_representation(G, sid)
    assert q1 == q2 and hash(q1) == hash(q2)
    psi = G.irreps()[-1]
    assert psi.representation == Representation(G, [psi], np.eye(psi.dim), name=psi.name)
    # the name and the change of basis both enter equality
    assert Representation(G, a.irreps, a.change_of_basis, name="other") != a
    if G.order > 1:
        assert Representation(G, a.irreps, None, name="regular") != a
    assert a != "regular"


def test_equality_distinguishes_groups():
    assert regular_representation(CyclicGroup(4)) != regular_representation(CyclicGroup(5))
    assert regular_representation(DihedralGroup(3)) != regular_representation(
        DihedralGroup(3, 0.0))
    assert SO2(2).irrep(1).representation == SO2(5).irrep(1).representation


@PROP
@given(group_and_rep())
def test_representations_are_immutable(case):
    _, rho = case
    for attr, value in [("name", "x"), ("irreps", ()), ("group", CyclicGroup(2)),
                        ("change_of_basis", np.eye(rho.size)), ("new_attribute", 1)]:
        with pytest.raises(AttributeError):
            setattr(rho, attr, value)
    with pytest.raises(ValueError):
        rho.change_of_basis[0, 0] = 5.0


# ----------------------------------------------------------------------------- errors


def test_non_orthogonal_change_of_basis_raises():
    G = CyclicGroup(4)
    irreps = [G.irrep(0), G.irrep(1)]
    bad = np.eye(3)
    bad[0, 1] = 0.5
    with pytest.raises(ValueError, match="change_of_basis"):
        Representation(G, irreps, bad)
    with pytest.raises(ValueError, match="change_of_basis"):
        Representation(G, irreps, 2 * np.eye(3))
    with pytest.raises(ValueError, match="change_of_basis"):
        Representation(G, irreps, np.eye(2))
    with pytest.raises(ValueError, match="change_of_basis"):
        Representation(G, irreps, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="change_of_basis"):
        directsum([G.irrep(0), G.irrep(1)], change_of_basis=bad)
    with pytest.raises(ValueError, match="change_of_basis"):
        directsum([G.irrep(0), G.irrep(1)], change_of_basis=np.eye(4))


@PROP
@given(st.integers(2, 8), seeds)
def test_orthogonal_user_change_of_basis_accepted(n, seed):
    G = CyclicGroup(n)
    irreps = [G.irrep(0)] * n
    Q = random_orthogonal(n, seed)
    rho = Representation(G, irreps, Q)
    np.testing.assert_allclose(rho(1), np.eye(n), atol=1e-12)
    bad = Q.copy()
    bad[:, 0] *= 1.01
    with pytest.raises(ValueError, match="change_of_basis"):
        Representation(G, irreps, bad)


def test_bad_irreps_raise():
    G = CyclicGroup(4)
    with pytest.raises(ValueError, match="irreps"):
        Representation(G, [])
    with pytest.raises(ValueError, match="irreps"):
        Representation(G, [CyclicGroup(5).irrep(1)])
    with pytest.raises(ValueError, match="irreps"):
        Representation(G, ["irrep_0"])
    with pytest.raises(ValueError, match="reps"):
        directsum([])
    with pytest.raises(ValueError, match="reps"):
        directsum([G.irrep(0), CyclicGroup(5).irrep(0)])


@PROP
@given(finite_groups)
def test_equality_ignores_the_sign_of_zero(G):
    """Equal content compares equal: Q entries -0.0 and 0.0 are the same number."""
    a = G.regular_representation
    b = directsum([a], change_of_basis=np.eye(a.size), name="regular")
    assert np.array_equal(a.change_of_basis, b.change_of_basis)
    assert a == b and hash(a) == hash(b)
    Q = np.array(a.change_of_basis)
    flipped = np.where(Q == 0.0, -Q, Q)   # swap the sign of every zero
    c = Representation(G, a.irreps, flipped, name="regular")
    assert a == c and hash(a) == hash(c)


@PROP
@given(st.data(), finite_groups)
def test_quotient_with_numpy_integer_ids(data, G):
    sid = data.draw(finite_subgroup_ids(G))
    a, b = G.quotient_representation(sid), G.quotient_representation(numpy_subgroup_id(sid))
    assert a.name == b.name
    assert a == b and hash(a) == hash(b)
