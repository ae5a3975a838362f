"""Hypothesis strategies and independent reference helpers shared by the property tests of
the group theory: tests/r2/test_groups.py, test_irreps.py, test_representation.py and
test_field_type.py.

Each test file picks its own sizes (``prop``'s example count, ``group_strategies``'s maximum
frequency and extra axes); what is shared is how groups, elements and subgroup ids are drawn.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cupysteer import O2, SO2, CyclicGroup, DihedralGroup, FlipGroup, PlanarGroup, trivial_group

TWO_PI = 2 * math.pi

orders = st.integers(1, 16)
angles = st.floats(0.0, TWO_PI, allow_nan=False, exclude_max=True)
seeds = st.integers(0, 2**32 - 1)


def prop(max_examples: int):
    """The settings of a property test: ``max_examples`` examples, no deadline."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


class GroupStrategies(NamedTuple):
    axes: st.SearchStrategy
    max_freqs: st.SearchStrategy
    finite_groups: st.SearchStrategy
    continuous_groups: st.SearchStrategy
    all_groups: st.SearchStrategy


def group_strategies(max_frequency: int, special_axes: tuple = (),
                     defaults: bool = False) -> GroupStrategies:
    """Strategies for reflection axes, maximum frequencies and the planar groups.

    Axes: π/2 (the default axis), 0, ``special_axes`` and any finite float in [-10, 10].
    Finite groups: C_N and D_N (N in 1..16), flip groups and the trivial group; continuous:
    SO(2) and O(2) with maximum frequency 0..``max_frequency``. With ``defaults`` the groups
    built with their default arguments are drawn too (D_N, FlipGroup(), SO2(), O2())."""
    axes = st.one_of(*(st.just(a) for a in (math.pi / 2, 0.0, *special_axes)),
                     st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False))
    max_freqs = st.integers(0, max_frequency)
    finite = [orders.map(CyclicGroup), st.builds(DihedralGroup, orders, axes)]
    if defaults:
        finite.append(orders.map(DihedralGroup))          # default axis
    finite.append(st.builds(FlipGroup, axes))
    if defaults:
        finite.append(st.just(FlipGroup()))
    finite.append(st.just(trivial_group()))
    continuous = [st.builds(SO2, max_freqs), st.builds(O2, max_freqs, axes)]
    if defaults:
        continuous += [st.just(SO2()), st.just(O2())]
    finite_groups, continuous_groups = st.one_of(*finite), st.one_of(*continuous)
    return GroupStrategies(axes, max_freqs, finite_groups, continuous_groups,
                           st.one_of(finite_groups, continuous_groups))


# ----------------------------------------------------------------------------- elements


def element_strategy(G: PlanarGroup):
    """Valid elements of G in e2cnn's public encoding."""
    if isinstance(G, CyclicGroup):
        return st.integers(0, G.N - 1)
    if isinstance(G, DihedralGroup):
        return st.tuples(st.integers(0, 1), st.integers(0, G.N - 1))
    if isinstance(G, FlipGroup):
        return st.integers(0, 1)
    if isinstance(G, SO2):
        return angles
    if isinstance(G, O2):
        return st.tuples(st.integers(0, 1), angles)
    raise AssertionError(G)


def some_elements(G: PlanarGroup, data, n: int = 8) -> list:
    """All elements of a finite group, else n drawn ones."""
    if G.is_finite:
        return G.elements()
    return data.draw(st.lists(element_strategy(G), min_size=n, max_size=n))


# ----------------------------------------------------------------------------- subgroups


def divisors(N: int) -> list:
    return [M for M in range(1, N + 1) if N % M == 0]


@st.composite
def finite_subgroup_ids(draw, G):
    """A subgroup id of a finite group (reference §3): C_M of C_N, or of D_N the rotations
    (None, M), a flip (axis, 1) or a dihedral subgroup (axis, M)."""
    if isinstance(G, FlipGroup):
        return draw(st.sampled_from([1, 2]))
    N = G.N
    if isinstance(G, CyclicGroup):
        return draw(st.sampled_from(divisors(N)))
    kind = draw(st.sampled_from(["rot", "flip", "dihedral"]))
    if kind == "rot":
        return (None, draw(st.sampled_from(divisors(N))))
    if kind == "flip":
        return (draw(st.integers(0, N - 1)), 1)
    M = draw(st.sampled_from(divisors(N)))
    return (draw(st.integers(0, N // M - 1)), M)


def subgroup_ids(G: PlanarGroup):
    """Subgroup ids that subgroup() / restrict() must support (the issue's list)."""
    if G.is_finite:
        return finite_subgroup_ids(G)
    if isinstance(G, SO2):
        return st.one_of(st.integers(1, 12), st.just(-1))
    return st.one_of(st.tuples(st.none(), st.one_of(st.just(-1), st.integers(1, 12))),
                     st.tuples(angles, st.one_of(st.integers(1, 12), st.just(-1))))


def reference_subgroup_elements(G, sid) -> set:
    """Subgroup elements from the id descriptions of reference §3 (finite groups)."""
    if isinstance(G, FlipGroup):
        return {0} if sid == 1 else {0, 1}
    N = G.N
    if isinstance(G, CyclicGroup):
        return {t * (N // sid) for t in range(sid)}
    a, M = sid
    rots = {(0, t * (N // M)) for t in range(M)}
    if a is None:
        return rots
    if M == 1:
        return {(0, 0), (1, a)}
    return rots | {(1, (a + t * (N // M)) % N) for t in range(M)}


def numpy_subgroup_id(sid):
    """The same subgroup id written with NumPy integers."""
    return np.int64(sid) if isinstance(sid, int) else tuple(
        None if x is None else np.int64(x) for x in sid)


# ----------------------------------------------------------------------------- matrices


def rot(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s], [s, c]])


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))
