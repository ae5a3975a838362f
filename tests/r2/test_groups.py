"""Property tests for the planar groups (cupysteer.r2.groups) and their subgroups.

Conventions checked against e2cnn 0.2.3 (reference §2): element encodings and order, the
group law (f1, r1)(f2, r2) = (f1 xor f2, r1 + (-1)^f1 r2), and the action on the plane
g = (f, r) -> rot(theta_r) R_beta^f with R_beta = rot(2 beta) diag(1, -1).
"""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cupysteer import O2, SO2, CyclicGroup, DihedralGroup, FlipGroup, trivial_group

from _strategies import (
    TWO_PI,
    element_strategy,
    finite_subgroup_ids,
    group_strategies,
    numpy_subgroup_id,
    orders,
    prop,
    reference_subgroup_elements,
    rot,
    subgroup_ids,
)

PROP = prop(25)
ATOL = 1e-10

# ----------------------------------------------------------------------------- strategies

axes, max_freqs, finite_groups, continuous_groups, all_groups = group_strategies(
    max_frequency=8, special_axes=(math.pi / 4,), defaults=True)


def split(G, g):
    """(flip, rotation angle) of an element, computed from the public encoding."""
    if isinstance(G, CyclicGroup):
        return 0, TWO_PI * g / G.N
    if isinstance(G, DihedralGroup):
        return g[0], TWO_PI * g[1] / G.N
    if isinstance(G, FlipGroup):
        return g, 0.0
    if isinstance(G, SO2):
        return 0, float(g)
    return g[0], float(g[1])


def reference_action(G, g):
    """rot(theta) · R_beta^f with R_beta = rot(2 beta) diag(1, -1) (reference §2)."""
    f, theta = split(G, g)
    beta = getattr(G, "axis", math.pi / 2)
    R = rot(2 * beta) @ np.diag([1.0, -1.0])
    return rot(theta) @ np.linalg.matrix_power(R, f)


def is_valid_element(G, g) -> bool:
    if isinstance(G, CyclicGroup):
        return isinstance(g, int) and 0 <= g < G.N
    if isinstance(G, DihedralGroup):
        return (isinstance(g, tuple) and len(g) == 2 and g[0] in (0, 1)
                and isinstance(g[1], int) and 0 <= g[1] < G.N)
    if isinstance(G, FlipGroup):
        return g in (0, 1)
    if isinstance(G, SO2):
        return isinstance(g, float) and 0.0 <= g < TWO_PI
    return (isinstance(g, tuple) and len(g) == 2 and g[0] in (0, 1)
            and isinstance(g[1], float) and 0.0 <= g[1] < TWO_PI)


def same(G, a, b) -> bool:
    return G.equal(a, b, atol=1e-9)


# ----------------------------------------------------------------------------- group law


@PROP
@given(st.data(), all_groups)
def test_identity_and_inverse(data, G):
    g = data.draw(element_strategy(G))
    e = G.identity
    assert is_valid_element(G, e)
    assert same(G, G.compose(e, g), g)
    assert same(G, G.compose(g, e), g)
    gi = G.inverse(g)
    assert is_valid_element(G, gi)
    assert same(G, G.compose(g, gi), e)
    assert same(G, G.compose(gi, g), e)
    assert same(G, G.inverse(gi), g)


@PROP
@given(st.data(), all_groups)
def test_compose_is_associative_and_closed(data, G):
    a, b, c = (data.draw(element_strategy(G)) for _ in range(3))
    ab = G.compose(a, b)
    assert is_valid_element(G, ab)
    assert same(G, G.compose(ab, c), G.compose(a, G.compose(b, c)))


@PROP
@given(st.data(), all_groups)
def test_compose_matches_reference_product(data, G):
    """(f1, r1)(f2, r2) = (f1 xor f2, r1 + (-1)^f1 r2)."""
    a, b = data.draw(element_strategy(G)), data.draw(element_strategy(G))
    fa, ta = split(G, a)
    fb, tb = split(G, b)
    fc, tc = split(G, G.compose(a, b))
    assert fc == fa ^ fb
    d = (tc - (ta + (-tb if fa else tb))) % TWO_PI
    assert min(d, TWO_PI - d) < 1e-9


@PROP
@given(orders)
def test_dihedral_product_table(N):
    G = DihedralGroup(N)
    for f1 in (0, 1):
        for r1 in range(N):
            for f2 in (0, 1):
                for r2 in range(N):
                    assert G.compose((f1, r1), (f2, r2)) == (f1 ^ f2, (r1 + (-1) ** f1 * r2) % N)


@PROP
@given(finite_groups)
def test_finite_group_axioms_exhaustive(G):
    els = G.elements()
    idx = {g: i for i, g in enumerate(els)}
    table = np.array([[idx[G.compose(a, b)] for b in els] for a in els])
    # every row and column of the Cayley table is a permutation (Latin square)
    for row in table:
        assert sorted(row) == list(range(len(els)))
    for col in table.T:
        assert sorted(col) == list(range(len(els)))
    e = idx[G.identity]
    assert list(table[e]) == list(range(len(els)))
    for a in els:
        assert table[idx[a], idx[G.inverse(a)]] == e


# ----------------------------------------------------------------------------- elements


@PROP
@given(orders)
def test_elements_order_as_e2cnn(N):
    assert CyclicGroup(N).elements() == list(range(N))
    assert DihedralGroup(N).elements() == [(0, r) for r in range(N)] + [(1, r) for r in range(N)]
    assert CyclicGroup(N).order == N
    assert DihedralGroup(N).order == 2 * N


def test_small_groups_elements():
    assert trivial_group().elements() == [0]
    assert trivial_group().order == 1
    assert FlipGroup().elements() == [0, 1]
    assert FlipGroup(0.3).order == 2
    assert SO2().order == -1 and O2().order == -1
    assert not SO2().is_finite and not O2().is_finite
    assert CyclicGroup(3).is_finite


@pytest.mark.parametrize("G", [SO2(), O2(), SO2(2), O2(3, 0.1)])
def test_elements_of_continuous_group_raise(G):
    with pytest.raises(ValueError, match="continuous"):
        G.elements()


@PROP
@given(all_groups, st.integers(0, 50), st.integers(0, 2**32 - 1))
def test_sample_returns_valid_elements(G, n, seed):
    s = G.sample(n, np.random.default_rng(seed))
    assert len(s) == n
    assert all(is_valid_element(G, g) for g in s)
    # reproducible with the same generator seed
    assert G.sample(n, np.random.default_rng(seed)) == s
    if G.is_finite:
        assert set(s) <= set(G.elements())


def test_sample_covers_finite_group():
    G = DihedralGroup(3)
    s = G.sample(600, np.random.default_rng(0))
    assert set(s) == set(G.elements())
    f = np.array([g[0] for g in O2().sample(2000, np.random.default_rng(1))])
    assert 0.4 < f.mean() < 0.6


@PROP
@given(continuous_groups)
def test_testing_elements_are_valid(G):
    els = G.testing_elements()
    assert len(els) >= 16
    assert all(is_valid_element(G, g) for g in els)


# ----------------------------------------------------------------------------- action on R^2


@PROP
@given(st.data(), all_groups)
def test_action_matrix_matches_reference_formula(data, G):
    g = data.draw(element_strategy(G))
    A = G.action_matrix(g)
    assert A.shape == (2, 2)
    np.testing.assert_allclose(A, reference_action(G, g), atol=ATOL)


@PROP
@given(st.data(), all_groups)
def test_action_is_homomorphism_into_O2(data, G):
    a, b = data.draw(element_strategy(G)), data.draw(element_strategy(G))
    A, B, AB = G.action_matrix(a), G.action_matrix(b), G.action_matrix(G.compose(a, b))
    np.testing.assert_allclose(AB, A @ B, atol=ATOL)
    np.testing.assert_allclose(A.T @ A, np.eye(2), atol=ATOL)
    f, _ = split(G, a)
    assert np.linalg.det(A) == pytest.approx((-1) ** f, abs=ATOL)
    np.testing.assert_allclose(G.action_matrix(G.inverse(a)), A.T, atol=ATOL)
    np.testing.assert_allclose(G.action_matrix(G.identity), np.eye(2), atol=ATOL)


@PROP
@given(st.data(), all_groups)
def test_action_matrices_batch_equals_single(data, G):
    els = data.draw(st.lists(element_strategy(G), min_size=1, max_size=8))
    batch = G.action_matrices(els)
    assert batch.shape == (len(els), 2, 2)
    for g, M in zip(els, batch):
        np.testing.assert_allclose(M, G.action_matrix(g), atol=1e-12)


def test_default_axis_reflection_is_x_mirror():
    """beta = pi/2: (x, y) -> (-x, y); beta = 0: (x, y) -> (x, -y)."""
    mirror_x = np.array([[-1.0, 0.0], [0.0, 1.0]])
    for A in (FlipGroup().action_matrix(1), DihedralGroup(4).action_matrix((1, 0)),
              O2().action_matrix((1, 0.0))):
        np.testing.assert_allclose(A, mirror_x, atol=ATOL)
    for A in (FlipGroup(0.0).action_matrix(1), DihedralGroup(4, 0.0).action_matrix((1, 0)),
              O2(axis=0.0).action_matrix((1, 0.0))):
        np.testing.assert_allclose(A, np.diag([1.0, -1.0]), atol=ATOL)
    np.testing.assert_allclose(CyclicGroup(4).action_matrix(1), [[0, -1], [1, 0]], atol=ATOL)
    assert DihedralGroup(5).axis == pytest.approx(math.pi / 2)
    assert O2().axis == pytest.approx(math.pi / 2)
    assert FlipGroup().axis == pytest.approx(math.pi / 2)


@PROP
@given(orders, axes, st.data())
def test_dihedral_reflection_axes(N, beta, data):
    """(1, a) in D_N is the reflection whose axis is beta + pi a / N."""
    a = data.draw(st.integers(0, N - 1))
    A = DihedralGroup(N, beta).action_matrix((1, a))
    ax = beta + math.pi * a / N
    u = np.array([math.cos(ax), math.sin(ax)])
    n = np.array([-math.sin(ax), math.cos(ax)])
    np.testing.assert_allclose(A @ u, u, atol=ATOL)
    np.testing.assert_allclose(A @ n, -n, atol=ATOL)


# ------------------------------------------------------------------------ equality, hash, pickle


@PROP
@given(max_freqs, max_freqs)
def test_maximum_frequency_does_not_enter_equality(m1, m2):
    assert SO2(m1) == SO2(m2) and hash(SO2(m1)) == hash(SO2(m2))
    assert O2(m1) == O2(m2) and hash(O2(m1)) == hash(O2(m2))
    assert len(SO2(m1).irreps()) == m1 + 1
    assert len(O2(m1).irreps()) == m1 + 2


def test_so2_3_equals_so2_5():
    assert SO2(3) == SO2(5)
    assert hash(SO2(3)) == hash(SO2(5))
    assert {SO2(3), SO2(5), SO2()} == {SO2()}


@PROP
@given(orders, orders, axes, axes)
def test_equality_by_value(N, M, a, b):
    assert CyclicGroup(N) == CyclicGroup(N) and hash(CyclicGroup(N)) == hash(CyclicGroup(N))
    assert (CyclicGroup(N) == CyclicGroup(M)) == (N == M)
    assert DihedralGroup(N, a) == DihedralGroup(N, a)
    assert hash(DihedralGroup(N, a)) == hash(DihedralGroup(N, a))
    assert (DihedralGroup(N, a) == DihedralGroup(M, b)) == (N == M and a == b)
    assert (FlipGroup(a) == FlipGroup(b)) == (a == b)
    assert (O2(axis=a) == O2(axis=b)) == (a == b)
    assert CyclicGroup(N) != DihedralGroup(N)
    assert SO2() != O2()
    assert DihedralGroup(N) == DihedralGroup(N, math.pi / 2)


def test_trivial_group_is_C1():
    assert trivial_group() == CyclicGroup(1)
    assert hash(trivial_group()) == hash(CyclicGroup(1))
    assert trivial_group().name == "C1"
    assert [p.name for p in trivial_group().irreps()] == ["irrep_0"]


@PROP
@given(all_groups)
def test_group_pickle_roundtrip(G):
    H = pickle.loads(pickle.dumps(G))
    assert H == G and hash(H) == hash(G)
    assert type(H) is type(G)
    assert H.reflection_axis == G.reflection_axis
    if isinstance(G, (SO2, O2)):
        assert H.maximum_frequency == G.maximum_frequency


@PROP
@given(all_groups)
def test_groups_are_immutable(G):
    with pytest.raises(AttributeError):
        G.rotation_order = 7
    with pytest.raises(AttributeError):
        G.N = 3
    with pytest.raises(AttributeError):
        G.axis = 0.0


@PROP
@given(all_groups)
def test_repr_and_name(G):
    assert isinstance(G.name, str) and G.name
    assert str(G) == G.name
    assert isinstance(repr(G), str)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("N", [0, -1, -5, 2.5, "3", True, None])
@pytest.mark.parametrize("cls", [CyclicGroup, DihedralGroup])
def test_bad_order_raises(cls, N):
    with pytest.raises(ValueError, match="N"):
        cls(N)


@pytest.mark.parametrize("axis", [float("nan"), float("inf"), "x", None])
def test_bad_axis_raises(axis):
    for make in (lambda: DihedralGroup(3, axis), lambda: FlipGroup(axis),
                 lambda: O2(axis=axis)):
        with pytest.raises(ValueError, match="axis"):
            make()


@pytest.mark.parametrize("mf", [-1, 2.5])
def test_bad_maximum_frequency_raises(mf):
    with pytest.raises(ValueError, match="maximum_frequency"):
        SO2(mf)
    with pytest.raises(ValueError, match="maximum_frequency"):
        O2(mf)


@pytest.mark.parametrize("G, g", [
    (DihedralGroup(4), 3), (DihedralGroup(4), (2, 1)), (FlipGroup(), 2),
    (O2(), 0.5), (O2(), (3, 0.1)), (CyclicGroup(3), (0, 1)), (SO2(), "a"),
])
def test_invalid_elements_raise(G, g):
    with pytest.raises(ValueError):
        G.action_matrix(g)


# ----------------------------------------------------------------------------- subgroups


@st.composite
def finite_subgroup_cases(draw):
    N = draw(orders)
    G = CyclicGroup(N) if draw(st.booleans()) else DihedralGroup(N, draw(axes))
    return G, draw(finite_subgroup_ids(G))


@st.composite
def continuous_subgroup_cases(draw):
    G = SO2(draw(max_freqs)) if draw(st.booleans()) else O2(draw(max_freqs), draw(axes))
    return G, draw(subgroup_ids(G))


flip_subgroup_cases = st.tuples(st.builds(FlipGroup, axes), st.sampled_from([1, 2]))
subgroup_cases = st.one_of(finite_subgroup_cases(), continuous_subgroup_cases(),
                           flip_subgroup_cases)


@PROP
@given(finite_subgroup_cases())
def test_finite_subgroup_elements_match_reference(case):
    G, sid = case
    sub = G.subgroup(sid)
    els = sub.elements()
    assert len(els) == sub.group.order == len(set(els))
    assert set(els) == reference_subgroup_elements(G, sid)
    assert list(sub) == els
    assert sub.parent == G
    assert sub.embed(sub.group.identity) == G.identity


@PROP
@given(st.data(), subgroup_cases)
def test_embedding_is_homomorphism_and_preserves_the_action(data, case):
    """embed(h1 h2) = embed(h1) embed(h2), and H acts on R^2 like its image in G."""
    G, sid = case
    sub = G.subgroup(sid)
    H = sub.group
    h1, h2 = data.draw(element_strategy(H)), data.draw(element_strategy(H))
    g1, g2 = sub.embed(h1), sub.embed(h2)
    assert is_valid_element(G, g1)
    assert same(G, sub.embed(H.compose(h1, h2)), G.compose(g1, g2))
    assert same(G, sub.embed(H.inverse(h1)), G.inverse(g1))
    np.testing.assert_allclose(G.action_matrix(g1), H.action_matrix(h1), atol=1e-9)


def test_subgroup_groups():
    assert CyclicGroup(12).subgroup(3).group == CyclicGroup(3)
    assert DihedralGroup(6).subgroup((None, 3)).group == CyclicGroup(3)
    assert isinstance(DihedralGroup(6).subgroup((2, 1)).group, FlipGroup)
    assert DihedralGroup(6).subgroup((1, 3)).group.N == 3
    assert O2().subgroup((None, -1)).group == SO2()
    assert O2().subgroup((0.0, -1)).group == O2()
    assert SO2().subgroup(4).group == CyclicGroup(4)
    assert SO2().subgroup(-1).group == SO2()
    assert FlipGroup().subgroup(1).group == trivial_group()
    assert FlipGroup().subgroup(2).group == FlipGroup()


@pytest.mark.parametrize("G, sid", [
    (CyclicGroup(6), 4), (CyclicGroup(6), 0), (CyclicGroup(6), -1), (CyclicGroup(6), 12),
    (CyclicGroup(6), (None, 3)), (CyclicGroup(6), 2.0), (CyclicGroup(6), True),
    (DihedralGroup(6), 3), (DihedralGroup(6), (None, 4)), (DihedralGroup(6), (0, 0)),
    (DihedralGroup(6), (2, 3)), (DihedralGroup(6), (6, 1)), (DihedralGroup(6), (-1, 1)),
    (DihedralGroup(6), (None, 3, 1)), (DihedralGroup(6), ("a", 2)),
    (FlipGroup(), 3), (FlipGroup(), 0),
    (SO2(), 0), (SO2(), -2), (SO2(), (None, 3)),
    (O2(), 3), (O2(), (None, 0)), (O2(), (0.0, -2)), (O2(), (None, 3, 1)),
])
def test_bad_subgroup_ids_raise(G, sid):
    with pytest.raises(ValueError, match="subgroup_id"):
        G.subgroup(sid)


@PROP
@given(finite_subgroup_cases())
def test_numpy_integer_subgroup_ids_are_normalised(case):
    """A subgroup id given with NumPy integers is the same subgroup, with the same id."""
    G, sid = case
    sub, np_sub = G.subgroup(sid), G.subgroup(numpy_subgroup_id(sid))
    assert np_sub == sub
    assert repr(np_sub.id) == repr(sub.id)
    assert np_sub.group == sub.group
    assert np_sub.elements() == sub.elements()


@pytest.mark.parametrize("M", [1, 2, 3, -1])
def test_numpy_integer_o2_subgroup_ids_are_normalised(M):
    G = O2()
    assert repr(G.subgroup((None, np.int64(M))).id) == repr((None, M))
    assert G.subgroup((None, np.int64(M))) == G.subgroup((None, M))
