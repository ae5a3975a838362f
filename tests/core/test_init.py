"""Generalised He initialisation (reference §6.3), against a naive per-weight computation."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cupysteer as cs

from _helpers import SETTINGS, build, field_types


def naive_he_std(b):
    """std_w = 1 / sqrt(A(o(w)) · c(a(w), o(w))), walking the weights one by one."""
    att = b.element_attributes
    first = [0]
    for r in b.out_type.representations:
        first.append(first[-1] + len(r.irreps))
    o_of, a_of = [], []
    for w in range(b.dim):
        o_of.append(first[att["out_field"][w]] + att["out_irrep_idx"][w])
        a_of.append(att["in_irrep_name"][w])
    names = defaultdict(set)
    count = defaultdict(int)
    for o, a in zip(o_of, a_of):
        names[o].add(a)
        count[(o, a)] += 1
    return np.array([1.0 / math.sqrt(len(names[o]) * count[(o, a)])
                     for o, a in zip(o_of, a_of)]), np.array(o_of)


@settings(**SETTINGS)
@given(data=st.data(), name=st.sampled_from(["C1", "C4", "C8", "D3", "D4", "SO2", "O2",
                                             "Flip0"]),
       k=st.sampled_from([3, 4, 5]))
def test_he_std_matches_naive(data, name, k):
    tin = data.draw(field_types(name, max_fields=3, max_size=24), label="in")
    tout = data.draw(field_types(name, max_fields=3, max_size=24), label="out")
    b = build(tin, tout, k)
    std, o = naive_he_std(b)
    got = b.he_std()
    assert got.shape == (b.dim,)
    np.testing.assert_allclose(got, std, rtol=1e-14)
    np.testing.assert_allclose(cs.he_std(b), std, rtol=1e-14)
    # every output irrep that receives weights gets unit total variance
    for oo in np.unique(o):
        assert np.sum(got[o == oo] ** 2) == pytest.approx(1.0, rel=1e-12)


def test_he_std_hand_cases():
    G = cs.trivial_group()
    ft = cs.FieldType(G, [G.trivial_representation])
    b = cs.LayerBasis(ft, ft, 3)  # 6 weights, one output irrep, one input name
    np.testing.assert_allclose(b.he_std(), np.full(6, 1 / math.sqrt(6)))
    # two trivial inputs share the name irrep_0: c = 12, A = 1
    b = cs.LayerBasis(cs.FieldType(G, [G.trivial_representation] * 2), ft, 3)
    np.testing.assert_allclose(b.he_std(), np.full(12, 1 / math.sqrt(12)))
    # C4: inputs irrep_0 (1 weight group) and irrep_2 feeding one trivial output → A = 2
    C = cs.CyclicGroup(4)
    tin = cs.FieldType(C, [C.irrep(0), C.irrep(2)])
    tout = cs.FieldType(C, [C.irrep(0)])
    b = cs.LayerBasis(tin, tout, 5)
    att = b.element_attributes
    names = att["in_irrep_name"].astype(str)
    for nm in ("irrep_0", "irrep_2"):
        c = int(np.sum(names == nm))
        assert c > 0
        np.testing.assert_allclose(b.he_std()[names == nm], 1 / math.sqrt(2 * c))


def test_he_init_reproducible_and_formula():
    G = cs.DihedralGroup(4)
    ft = cs.FieldType(G, [G.regular_representation, G.irrep(1, 1)])
    b = cs.LayerBasis(ft, ft, 5)
    w1 = b.init_weights(np.random.default_rng(123))
    w2 = cs.he_init(b, np.random.default_rng(123))
    assert w1.dtype == np.float32 and w1.shape == (b.dim,)
    np.testing.assert_array_equal(w1, w2)
    expected = b.he_std() * np.random.default_rng(123).standard_normal(b.dim)
    np.testing.assert_array_equal(w1, expected.astype(np.float32))
    w64 = b.init_weights(np.random.default_rng(123), np.float64)
    assert w64.dtype == np.float64
    np.testing.assert_array_equal(w64, expected)
    assert not np.array_equal(w1, b.init_weights(np.random.default_rng(124)))
    # a shared generator advances
    rng = np.random.default_rng(0)
    assert not np.array_equal(b.init_weights(rng), b.init_weights(rng))
    # rng=None draws fresh weights of the right shape
    assert b.init_weights().shape == (b.dim,)


def test_he_init_empirical_variance():
    G = cs.CyclicGroup(8)
    ft = cs.FieldType(G, [G.regular_representation])
    b = cs.LayerBasis(ft, ft, 3)
    rng = np.random.default_rng(0)
    W = np.stack([b.init_weights(rng, np.float64) for _ in range(2000)])
    ratio = W.std(0) / b.he_std()
    assert abs(ratio.mean() - 1) < 0.02 and ratio.min() > 0.85 and ratio.max() < 1.15


@pytest.mark.parametrize("bad", [0, 42, np.random.RandomState(0), "seed", np.random.PCG64(0)])
def test_he_init_rejects_non_generator(bad):
    G = cs.CyclicGroup(4)
    ft = cs.FieldType(G, [G.regular_representation])
    b = cs.LayerBasis(ft, ft, 3)
    with pytest.raises(ValueError, match="rng"):
        b.init_weights(bad)
    with pytest.raises(ValueError, match="rng"):
        cs.he_init(b, bad)
