"""Property tests for FieldType (cupysteer.field_type): layout (size, offsets, channels),
irreps, block-diagonal change of basis, the fibre representation, restriction, value
semantics and errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import block_diag

from cupysteer import O2, SO2, CyclicGroup, DihedralGroup, FieldType, Irrep, directsum

from _strategies import (
    element_strategy,
    group_strategies,
    prop,
    random_orthogonal,
    seeds,
    subgroup_ids,
)

PROP = prop(20)

axes, max_freqs, finite_groups, continuous_groups, all_groups = group_strategies(max_frequency=6)


@st.composite
def fields(draw, G):
    """One field: an Irrep, an irrep representation, regular, quotient or a rotated sum."""
    kinds = ["irrep", "irrep_rep", "sum"]
    if G.is_finite:
        kinds += ["regular", "quotient"]
    if isinstance(G, O2):
        kinds += ["quotient"]
    kind = draw(st.sampled_from(kinds))
    irreps = G.irreps()
    if kind == "irrep":
        return draw(st.sampled_from(irreps))
    if kind == "irrep_rep":
        return draw(st.sampled_from(irreps)).representation
    if kind == "regular":
        return G.regular_representation
    if kind == "quotient":
        if isinstance(G, O2):
            return G.quotient_representation((None, -1))
        sid = draw(subgroup_ids(G))
        return G.quotient_representation(sid)
    parts = draw(st.lists(st.sampled_from(irreps), min_size=1, max_size=3))
    size = sum(p.dim for p in parts)
    return directsum(parts, change_of_basis=random_orthogonal(size, draw(seeds)))


@st.composite
def field_types(draw, groups=all_groups):
    G = draw(groups)
    return FieldType(G, draw(st.lists(fields(G), min_size=1, max_size=5)))


def as_rep(x):
    return x.representation if isinstance(x, Irrep) else x


# ----------------------------------------------------------------------------- layout


@PROP
@given(st.data(), all_groups)
def test_layout(data, G):
    given_fields = data.draw(st.lists(fields(G), min_size=1, max_size=6))
    ft = FieldType(G, given_fields)
    reps = [as_rep(f) for f in given_fields]
    sizes = [r.size for r in reps]
    assert ft.group == G
    assert ft.representations == tuple(reps)
    assert len(ft) == len(reps) and list(ft) == reps
    assert ft.size == sum(sizes)
    assert list(ft.field_sizes) == sizes
    assert list(ft.field_offsets) == [sum(sizes[:i]) for i in range(len(sizes))]
    covered = []
    for i, r in enumerate(reps):
        sl = ft.channels(i)
        assert sl == slice(sum(sizes[:i]), sum(sizes[:i + 1]))
        covered.extend(range(ft.size)[sl])
    assert covered == list(range(ft.size))          # channels tile the fibre in order
    assert ft.irreps == tuple(p for r in reps for p in r.irreps)


@PROP
@given(st.data(), field_types())
def test_change_of_basis_is_block_diagonal(data, ft):
    Q = ft.change_of_basis
    assert Q.shape == (ft.size, ft.size)
    np.testing.assert_allclose(Q, block_diag(*[r.change_of_basis for r in ft]), atol=0)
    np.testing.assert_allclose(Q.T @ Q, np.eye(ft.size), atol=1e-10)
    for i, r in enumerate(ft):
        sl = ft.channels(i)
        np.testing.assert_array_equal(Q[sl, sl], r.change_of_basis)
        mask = np.ones(ft.size, bool)
        mask[sl] = False
        assert not Q[sl][:, mask].any() and not Q[mask][:, sl].any()
    np.testing.assert_allclose(ft.representation.change_of_basis, Q, atol=1e-15)
    assert not Q.flags.writeable


@PROP
@given(st.data(), field_types())
def test_representation_is_direct_sum(data, ft):
    G = ft.group
    rho = ft.representation
    assert rho == directsum(list(ft.representations), name="fibre")
    assert rho.group == G and rho.size == ft.size and rho.irreps == ft.irreps
    els = data.draw(st.lists(element_strategy(G), min_size=1, max_size=5))
    R = rho.evaluate(els)
    for g, Rg in zip(els, R):
        np.testing.assert_allclose(Rg, block_diag(*[r(g) for r in ft]), atol=1e-12)
        for i, r in enumerate(ft):
            np.testing.assert_allclose(Rg[ft.channels(i), ft.channels(i)], r(g), atol=1e-12)


@PROP
@given(st.data(), field_types())
def test_restrict(data, ft):
    G = ft.group
    sid = data.draw(subgroup_ids(G))
    sub = G.subgroup(sid)
    res = ft.restrict(sid)
    assert isinstance(res, FieldType)
    assert res.group == sub.group
    assert len(res) == len(ft)
    assert list(res.field_sizes) == list(ft.field_sizes)
    assert res.representations == tuple(r.restrict(sid) for r in ft)
    H = sub.group
    hs = data.draw(st.lists(element_strategy(H), min_size=1, max_size=5))
    np.testing.assert_allclose(res.representation.evaluate(hs),
                               ft.representation.evaluate([sub.embed(h) for h in hs]),
                               atol=1e-9)
    np.testing.assert_allclose(res.change_of_basis.T @ res.change_of_basis, np.eye(res.size),
                               atol=1e-10)


@PROP
@given(st.data(), all_groups)
def test_concatenation(data, G):
    a = FieldType(G, data.draw(st.lists(fields(G), min_size=1, max_size=3)))
    b = FieldType(G, data.draw(st.lists(fields(G), min_size=1, max_size=3)))
    c = a + b
    assert c.representations == a.representations + b.representations
    assert c.size == a.size + b.size
    assert c.channels(len(a)).start == a.size


def test_example_layout():
    G = CyclicGroup(4)
    ft = FieldType(G, [G.regular_representation, G.irrep(1), G.trivial_representation])
    assert ft.size == 7
    assert list(ft.field_offsets) == [0, 4, 6]
    assert ft.channels(1) == slice(4, 6)
    assert [p.name for p in ft.irreps] == [
        "irrep_0", "irrep_1", "irrep_2", "irrep_1", "irrep_0"]


# ----------------------------------------------------------------------------- value semantics


@PROP
@given(field_types())
def test_pickle_roundtrip(ft):
    ft2 = pickle.loads(pickle.dumps(ft))
    assert ft2 == ft and hash(ft2) == hash(ft)
    assert ft2.size == ft.size
    np.testing.assert_array_equal(ft2.change_of_basis, ft.change_of_basis)


@PROP
@given(finite_groups, st.integers(1, 4))
def test_equality_and_hash_by_content(G, n):
    a = FieldType(G, [G.regular_representation] * n + [G.irreps()[-1]])
    b = FieldType(G, [G.regular_representation] * n + [G.irreps()[-1].representation])
    assert a == b and hash(a) == hash(b)
    assert a != FieldType(G, [G.regular_representation] * (n + 1) + [G.irreps()[-1]])
    assert a != FieldType(G, [G.irreps()[-1]] + [G.regular_representation] * n)
    assert a != "not a field type"


def test_field_types_of_different_groups_differ():
    assert FieldType(CyclicGroup(4), [CyclicGroup(4).irrep(0)]) != FieldType(
        CyclicGroup(5), [CyclicGroup(5).irrep(0)])
    assert FieldType(SO2(2), [SO2(2).irrep(1)]) == FieldType(SO2(7), [SO2(7).irrep(1)])


@PROP
@given(field_types())
def test_field_types_are_immutable(ft):
    for attr, value in [("group", CyclicGroup(2)), ("representations", ()), ("x", 1)]:
        with pytest.raises(AttributeError):
            setattr(ft, attr, value)


# ----------------------------------------------------------------------------- errors


def test_mixed_groups_raise():
    with pytest.raises(ValueError, match="representations"):
        FieldType(CyclicGroup(4), [CyclicGroup(4).irrep(0), CyclicGroup(8).irrep(0)])
    with pytest.raises(ValueError, match="representations"):
        FieldType(CyclicGroup(4), [DihedralGroup(4).regular_representation])
    with pytest.raises(ValueError, match="representations"):
        FieldType(O2(), [SO2().irrep(1)])
    with pytest.raises(ValueError, match="representations"):
        FieldType(DihedralGroup(4), [DihedralGroup(4, 0.0).irrep(1, 1)])


def test_bad_arguments_raise():
    G = CyclicGroup(4)
    with pytest.raises(ValueError, match="representations"):
        FieldType(G, [])
    with pytest.raises(ValueError, match="representations"):
        FieldType(G, ["regular"])
    with pytest.raises(ValueError, match="representations"):
        FieldType(G, [np.eye(2)])
    with pytest.raises(ValueError, match="group"):
        FieldType("C4", [G.irrep(0)])
    with pytest.raises(ValueError):
        FieldType(G, [G.irrep(0)]) + FieldType(CyclicGroup(3), [CyclicGroup(3).irrep(0)])
