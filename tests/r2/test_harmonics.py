"""Angular solutions of one irreps pair (reference §4.2, §4.3), checked against hand-derived
cases and an independent brute-force enumeration of the aliases."""
from __future__ import annotations

import math

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.r2.harmonics import alias_offsets, evaluate_angular, pair_harmonics

H = math.pi / 2


def rows(h):
    """(μ, γ, s, t) per element, γ as 0/1 (multiples of π/2)."""
    g = np.round(h.gamma / H).astype(int)
    assert np.allclose(h.gamma, g * H)
    return [(int(m), int(gg), int(s), int(t))
            for m, gg, s, t in zip(h.frequency, g, h.s, h.offset)]


# ---- alias offsets -----------------------------------------------------------------------

def test_alias_offsets_hand_cases():
    # [ceil((−F − k0)/N), floor((F − k0)/N)]
    assert alias_offsets(1, 4, 6, None) == [-1, 0, 1]      # μ = −3, 1, 5
    assert alias_offsets(0, 4, 6, None) == [-1, 0, 1]      # μ = −4, 0, 4
    assert alias_offsets(2, 4, 6, None) == [-2, -1, 0, 1]  # μ = −6, −2, 2, 6
    assert alias_offsets(2, 8, 2, None) == [0]
    assert alias_offsets(3, 8, 2, None) == []              # nothing admissible
    assert alias_offsets(1, 4, 6, 0) == [0]
    assert alias_offsets(2, 4, 6, 1) == [-1, 0, 1]
    # non-negative (1×1 pairs): L = 0
    assert alias_offsets(-3, 4, 6, None, non_negative=True) == [1, 2]  # μ = 1, 5
    assert alias_offsets(0, 1, 3, None, non_negative=True) == [0, 1, 2, 3]
    # F = None: only the offset bound
    assert alias_offsets(5, 3, None, 2) == [-2, -1, 0, 1, 2]
    with pytest.raises(ValueError):
        alias_offsets(0, 4, None, None)


@pytest.mark.parametrize("N", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("nonneg", [False, True])
def test_alias_offsets_brute_force(N, nonneg):
    for k0 in range(-9, 10):
        for F, T in [(0, None), (2, None), (6, None), (6, 1), (None, 2), (3, 0)]:
            Fb = 10000 if F is None else F
            L = 0 if nonneg else -Fb
            window = range(-T, T + 1) if T is not None else range(-40, 41)
            expected = [t for t in window if L <= k0 + t * N <= Fb]
            assert alias_offsets(k0, N, F, T, non_negative=nonneg) == expected, (k0, F, T)


# ---- independent enumeration of the expected element lists --------------------------------

def _mus(k0, N, F, T, nonneg=False):
    if N <= 0:  # continuous groups: t = 0 only
        return [(k0, 0)] if (not nonneg or k0 >= 0) else []
    Fb = 10000 if F is None else F
    out = []
    for t in range(-60, 61):
        mu = k0 + t * N
        if (0 if nonneg else -Fb) <= mu <= Fb and (T is None or abs(t) <= T):
            out.append((mu, t))
    return out


def expected_rows(pin, pout, F, T):
    G = pin.group
    N = G.rotation_order
    n, m, ji, jo = pin.frequency, pout.frequency, pin.flip_frequency, pout.flip_frequency
    di, do = pin.dim, pout.dim
    out = []
    if isinstance(G, cs.FlipGroup):
        g = (ji + jo) % 2
        return [(mu, g, -1, t) for mu, t in _mus(0, 1, F, T, True) if mu > 0 or g == 0]
    if not G.has_reflections:
        for g in (0, 1):
            if do == di == 2:
                for s in (0, 1):
                    out += [(mu, g, s, t) for mu, t in _mus(m - n * (-1) ** s, N, F, T)]
            elif do == di == 1:
                out += [(mu, g, -1, t) for mu, t in _mus(m - n, N, F, T, True)
                        if mu > 0 or g == 0]
            else:
                out += [(mu, g, -1, t) for mu, t in _mus(n + m, N, F, T)]
        return out
    if do == di == 2:
        for s in (0, 1):
            out += [(mu, 0, s, t) for mu, t in _mus(m - n * (-1) ** s, N, F, T)]
    elif do == di == 1:
        g = (ji + jo) % 2
        out += [(mu, g, -1, t) for mu, t in _mus(m - n, N, F, T, True) if mu > 0 or g == 0]
    else:
        g = jo if do == 1 else ji
        out += [(mu, g, -1, t) for mu, t in _mus(n + m, N, F, T)]
    return out


GROUPS = [cs.trivial_group(), cs.CyclicGroup(2), cs.CyclicGroup(3), cs.CyclicGroup(4),
          cs.CyclicGroup(5), cs.CyclicGroup(8), cs.DihedralGroup(1), cs.DihedralGroup(2),
          cs.DihedralGroup(3), cs.DihedralGroup(6), cs.SO2(4), cs.O2(4), cs.FlipGroup(),
          cs.FlipGroup(0.0)]


@pytest.mark.parametrize("G", GROUPS, ids=lambda G: G.name)
@pytest.mark.parametrize("F,T", [(2, None), (6, None), (7, 1), (3, 0)])
def test_all_pairs_match_enumeration(G, F, T):
    for pin in G.irreps():
        for pout in G.irreps():
            h = pair_harmonics(pin, pout, F, T)
            assert rows(h) == expected_rows(pin, pout, F, T), (pin, pout)
            assert h.shape == (pout.dim, pin.dim)
            assert len(h) == len(h.frequency) == len(h.gamma) == len(h.s) == len(h.offset)
            expected_axis = G.reflection_axis if G.has_reflections else 0.0
            assert h.axis == expected_axis


# ---- hand-derived cases (reference §4.2) ----------------------------------------------------

def test_cn_2x2_four_elements_per_alias():
    G = cs.CyclicGroup(8)
    h = pair_harmonics(G.irrep(1), G.irrep(1), 2)
    # s=0: k0 = 0 → μ = 0; s=1: k0 = 2 → μ = 2; both for γ = 0, π/2
    assert rows(h) == [(0, 0, 0, 0), (2, 0, 1, 0), (0, 1, 0, 0), (2, 1, 1, 0)]
    G = cs.CyclicGroup(4)
    h = pair_harmonics(G.irrep(1), G.irrep(1), 6)
    # s=0: μ ∈ {−4, 0, 4}; s=1: μ ∈ {−6, −2, 2, 6}; ×2 (γ)
    assert len(h) == 2 * (3 + 4)
    assert [r[0] for r in rows(h)[:7]] == [-4, 0, 4, -6, -2, 2, 6]
    assert [r[3] for r in rows(h)[:7]] == [-1, 0, 1, -2, -1, 0, 1]
    assert rows(h)[7:] == [(m, 1, s, t) for (m, _, s, t) in rows(h)[:7]]
    # one alias per (s, t) → 4 elements per alias (2 γ × 2 s) when both s alias the same way
    h = pair_harmonics(G.irrep(1), G.irrep(1), 6, maximum_offset=0)
    assert rows(h) == [(0, 0, 0, 0), (2, 0, 1, 0), (0, 1, 0, 0), (2, 1, 1, 0)]


def test_dn_2x2_two_elements_per_alias():
    G = cs.DihedralGroup(8)
    h = pair_harmonics(G.irrep(1, 1), G.irrep(1, 1), 2)
    assert rows(h) == [(0, 0, 0, 0), (2, 0, 1, 0)]
    G = cs.DihedralGroup(4)
    h = pair_harmonics(G.irrep(1, 1), G.irrep(1, 1), 6)
    assert rows(h) == [(-4, 0, 0, -1), (0, 0, 0, 0), (4, 0, 0, 1),
                       (-6, 0, 1, -2), (-2, 0, 1, -1), (2, 0, 1, 0), (6, 0, 1, 1)]


def test_trivial_to_sign_has_nothing_at_mu_zero():
    G = cs.DihedralGroup(4)
    h = pair_harmonics(G.irrep(0, 0), G.irrep(1, 0), 6)
    assert rows(h) == [(4, 1, -1, 1)]  # μ = 0 (γ = π/2) dropped
    h = pair_harmonics(G.irrep(0, 0), G.irrep(1, 0), 3)
    assert len(h) == 0
    G = cs.O2(3)
    assert len(pair_harmonics(G.irrep(0, 0), G.irrep(1, 0))) == 0
    assert rows(pair_harmonics(G.irrep(0, 0), G.irrep(0, 0))) == [(0, 0, -1, 0)]
    G = cs.FlipGroup()
    assert rows(pair_harmonics(G.irrep(0), G.irrep(1), 2)) == [(1, 1, -1, 1), (2, 1, -1, 2)]
    assert rows(pair_harmonics(G.irrep(1), G.irrep(1), 2)) == [(0, 0, -1, 0), (1, 0, -1, 1),
                                                              (2, 0, -1, 2)]


def test_trivial_group_and_cn_1x1():
    G = cs.trivial_group()
    h = pair_harmonics(G.irrep(0), G.irrep(0), 2)
    # γ = 0: μ = 0, 1, 2; γ = π/2: μ = 1, 2
    assert rows(h) == [(0, 0, -1, 0), (1, 0, -1, 1), (2, 0, -1, 2), (1, 1, -1, 1), (2, 1, -1, 2)]
    G = cs.CyclicGroup(4)
    h = pair_harmonics(G.irrep(0), G.irrep(2), 6)  # k0 = 2: μ = 2, 6
    assert rows(h) == [(2, 0, -1, 0), (6, 0, -1, 1), (2, 1, -1, 0), (6, 1, -1, 1)]


def test_1x2_and_2x1():
    G = cs.CyclicGroup(6)
    h = pair_harmonics(G.irrep(1), G.irrep(0), 3)  # 1×2, k0 = 1: μ = 1 only (−5, 7 out)
    assert h.shape == (1, 2)
    assert rows(h) == [(1, 0, -1, 0), (1, 1, -1, 0)]
    G = cs.DihedralGroup(6)
    h = pair_harmonics(G.irrep(1, 2), G.irrep(1, 0), 4)  # 1×2: γ = j_out·π/2 = π/2
    assert rows(h) == [(-4, 1, -1, -1), (2, 1, -1, 0)]
    h = pair_harmonics(G.irrep(0, 0), G.irrep(1, 1), 5)  # 2×1: γ = j_in·π/2 = 0
    assert h.shape == (2, 1)
    assert rows(h) == [(-5, 0, -1, -1), (1, 0, -1, 0)]
    h = pair_harmonics(G.irrep(1, 0), G.irrep(1, 1), 5)  # 2×1, γ = π/2
    assert rows(h) == [(-5, 1, -1, -1), (1, 1, -1, 0)]


def test_continuous_groups_ignore_bounds():
    G = cs.SO2(6)
    h = pair_harmonics(G.irrep(2), G.irrep(5), 1, 0)
    assert rows(h) == [(3, 0, 0, 0), (7, 0, 1, 0), (3, 1, 0, 0), (7, 1, 1, 0)]
    h = pair_harmonics(G.irrep(5), G.irrep(2))  # 2×2 k0 = −3 allowed (not 1×1)
    assert rows(h) == [(-3, 0, 0, 0), (7, 0, 1, 0), (-3, 1, 0, 0), (7, 1, 1, 0)]
    h = pair_harmonics(G.irrep(0), G.irrep(0))
    assert rows(h) == [(0, 0, -1, 0)]
    G = cs.O2(6)
    assert rows(pair_harmonics(G.irrep(1, 2), G.irrep(1, 5))) == [(3, 0, 0, 0), (7, 0, 1, 0)]
    # 1×1 with μ = m − n < 0 has no solution
    S = cs.SO2(6)
    assert len(pair_harmonics(S.irrep(0), S.irrep(0))) == 1


def test_mismatched_groups_rejected():
    with pytest.raises(ValueError):
        pair_harmonics(cs.CyclicGroup(4).irrep(0), cs.CyclicGroup(8).irrep(0), 2)


# ---- evaluate_angular: the matrices of the table --------------------------------------------

def _rot(a):
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


@pytest.mark.parametrize("G", [cs.CyclicGroup(5), cs.DihedralGroup(6, axis=0.4), cs.O2(3),
                               cs.SO2(3), cs.FlipGroup(0.0)], ids=lambda G: repr(G))
def test_evaluate_angular_matrices(G):
    rng = np.random.default_rng(0)
    theta = rng.uniform(-math.pi, math.pi, 7)
    origin = np.zeros(7, bool)
    beta = G.reflection_axis if G.has_reflections else 0.0
    for pin in G.irreps():
        for pout in G.irreps():
            h = pair_harmonics(pin, pout, 5)
            A = evaluate_angular(h, theta, origin)
            assert A.shape == (len(h), pout.dim, pin.dim, 7)
            for e in range(len(h)):
                for p in range(7):
                    x = h.frequency[e] * (theta[p] - beta) + h.gamma[e]
                    c, s = math.cos(x), math.sin(x)
                    if A.shape[1:3] == (2, 2):
                        sig = -1.0 if h.s[e] == 1 else 1.0
                        M = _rot(x) @ np.diag([1.0, sig])
                    elif A.shape[1:3] == (1, 2):
                        M = np.array([[c, s]])
                    elif A.shape[1:3] == (2, 1):
                        M = np.array([[c], [s]])
                    else:
                        M = np.array([[c]])
                    np.testing.assert_allclose(A[e, :, :, p], M, atol=1e-12)


def test_evaluate_angular_origin():
    G = cs.trivial_group()
    h = pair_harmonics(G.irrep(0), G.irrep(0), 2)
    A = evaluate_angular(h, np.array([0.7, 1.3]), np.array([True, False]))
    # at the origin only μ = 0 survives, evaluated at θ = 0
    np.testing.assert_array_equal(A[:, 0, 0, 0], [1.0, 0, 0, 0, 0])
    assert np.abs(A[1:, 0, 0, 1]).min() > 0
    D = cs.DihedralGroup(4, axis=0.3)
    h = pair_harmonics(D.irrep(1, 1), D.irrep(1, 1), 4)
    A = evaluate_angular(h, np.array([2.0]), np.array([True]))
    for e in range(len(h)):
        if h.frequency[e] == 0:  # θ = 0 at the origin, not θ − β
            sig = -1.0 if h.s[e] == 1 else 1.0
            np.testing.assert_allclose(A[e, :, :, 0], np.diag([1.0, sig]), atol=1e-15)
        else:
            assert not A[e].any()
