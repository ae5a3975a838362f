"""Radial settings (rings, sigma, band-limit) and the sampling grid: e2cnn R2Conv defaults."""
from __future__ import annotations

import math

import numpy as np
import pytest

import cupysteer as cs
from cupysteer.r2.settings import grid_points, resolve_settings

# (k, d): rings, sigma, fco default, F default, fco "-2.0", fco "-3.0"
TABLE = {
    (3, 1): ([0, 1], [.005, .4], [0, 2], 2, [0, 1], [0, 1]),
    (4, 1): ([0, 1], [.005, .4], [0, 2], 2, [0, 2], [0, 2]),
    (5, 1): ([0, 1, 2], [.005, .6, .4], [0, 2, 2], 2, [0, 2, 1], [0, 2, 1]),
    (6, 1): ([0, 1, 2], [.005, .6, .4], [0, 2, 3], 3, [0, 2, 3], [0, 2, 2]),
    (7, 1): ([0, 1, 2, 3], [.005, .6, .6, .4], [0, 2, 3, 2], 3, [0, 2, 3, 1], [0, 2, 2, 1]),
    (9, 1): ([0, 1, 2, 3, 4], [.005, .6, .6, .6, .4], [0, 2, 3, 6, 2], 6,
             [0, 2, 3, 6, 1], [0, 2, 2, 2, 1]),
    (11, 1): ([0, 1, 2, 3, 4, 5], [.005, .6, .6, .6, .6, .4], [0, 2, 3, 6, 7, 2], 7,
              [0, 2, 3, 6, 7, 1], [0, 2, 2, 2, 2, 1]),
    (3, 2): ([0, 2], [.005, .4], [0, 3], 3, [0, 3], [0, 2]),
    (3, 3): ([0, 3], [.005, .4], [0, 6], 6, [0, 6], [0, 2]),
    (5, 2): ([0, 2, 4], [.005, .6, .4], [0, 2, 7], 7, [0, 1, 7], [0, 1, 2]),
    (7, 2): ([0, 2, 4, 6], [.005, .6, .6, .4], [0, 3, 7, 11], 11, [0, 3, 7, 11], [0, 2, 2, 2]),
    (9, 2): ([0, 2, 4, 6, 8], [.005, .6, .6, .6, .4], [0, 3, 2, 11, 15], 15,
             [0, 3, 1, 11, 15], [0, 2, 1, 2, 2]),
}


@pytest.mark.parametrize("kd", sorted(TABLE), ids=lambda kd: f"k{kd[0]}d{kd[1]}")
@pytest.mark.parametrize("policy", [None, -1.0, -2.0, -3.0])
def test_resolved_defaults_table(kd, policy):
    k, d = kd
    rings, sigma, fco1, F1, fco2, fco3 = TABLE[kd]
    s = resolve_settings(k, d, frequencies_cutoff=policy)
    assert s.rings == pytest.approx(rings, abs=1e-12)
    assert s.sigma == pytest.approx(sigma, abs=1e-12)
    expected = {None: fco1, -1.0: fco1, -2.0: fco2, -3.0: fco3}[policy]
    assert list(s.cutoff_per_ring) == pytest.approx(expected, abs=1e-12)
    assert s.maximum_frequency == int(max(expected))
    if policy is None:
        assert s.maximum_frequency == F1
    assert s.num_rings == math.ceil(k / 2)
    assert s.maximum_offset is None
    assert isinstance(s.maximum_frequency, int)


def test_settings_are_hashable_and_equal():
    a = resolve_settings(5, 1)
    b = resolve_settings(5, 1, frequencies_cutoff=-1.0)
    assert a == b and hash(a) == hash(b)
    assert a != resolve_settings(5, 1, frequencies_cutoff=-2.0)


def test_float_cutoff_is_linear_in_radius():
    s = resolve_settings(5, 1, frequencies_cutoff=3.0)
    assert s.cutoff_per_ring == pytest.approx((0.0, 3.0, 6.0))
    assert s.maximum_frequency == 6
    s = resolve_settings(7, 2, frequencies_cutoff=0.75)
    assert s.cutoff_per_ring == pytest.approx(tuple(0.75 * r for r in (0, 2, 4, 6)))
    assert s.maximum_frequency == int(0.75 * 6)  # 4
    s = resolve_settings(5, 1, frequencies_cutoff=np.float64(1.5))
    assert s.cutoff_per_ring == pytest.approx((0.0, 1.5, 3.0))
    assert s.maximum_frequency == 3


def test_callable_cutoff_used_as_is():
    seen = []

    def fco(r):
        seen.append(r)
        return 1.5 * r + 1

    s = resolve_settings(5, 1, frequencies_cutoff=fco)
    assert s.cutoff_per_ring == pytest.approx((1.0, 2.5, 4.0))
    assert s.maximum_frequency == 4
    assert sorted(seen) == pytest.approx([0.0, 1.0, 2.0])


def test_non_integer_ring_quirk():
    # reference §5: explicit ring 1.8 with "fco2" and k = 5 gives 2.8
    s = resolve_settings(5, 1, rings=[0.0, 1.8], frequencies_cutoff=-2.0)
    assert s.cutoff_per_ring == pytest.approx((0.0, 2.8))
    assert s.maximum_frequency == 2


@pytest.mark.parametrize("bad", [3, 2, np.int64(3), True])
def test_int_cutoff_rejected(bad):
    with pytest.raises(ValueError, match="frequencies_cutoff"):
        resolve_settings(5, 1, frequencies_cutoff=bad)
    G = cs.CyclicGroup(4)
    ft = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(ValueError, match="frequencies_cutoff"):
        cs.LayerBasis(ft, ft, 5, frequencies_cutoff=bad)


@pytest.mark.parametrize("bad", [0.0, -0.5, -4.0, float("nan"), float("inf"), "3.0"])
def test_bad_float_cutoff_rejected(bad):
    with pytest.raises(ValueError, match="frequencies_cutoff"):
        resolve_settings(5, 1, frequencies_cutoff=bad)


def test_ring_beyond_grid_rejected():
    # largest radius of a 3×3 grid is √2
    with pytest.raises(ValueError, match="rings"):
        resolve_settings(3, 1, rings=[0.0, 1.5])
    resolve_settings(3, 1, rings=[0.0, 1.4])  # fine
    # dilation scales the grid
    resolve_settings(3, 2, rings=[0.0, 2.8])
    with pytest.raises(ValueError, match="rings"):
        resolve_settings(3, 2, rings=[0.0, 2.9])
    # explicit points bound the rings instead
    pts = np.array([[0.5, 0.0], [0.0, -0.7]])
    with pytest.raises(ValueError, match="rings"):
        resolve_settings(3, 1, points=pts)  # default ring 1 > 0.7
    assert resolve_settings(3, 1, rings=[0.0, 0.6], points=pts).rings == (0.0, 0.6)
    G = cs.CyclicGroup(2)
    ft = cs.FieldType(G, [G.regular_representation])
    with pytest.raises(ValueError, match="rings"):
        cs.LayerBasis(ft, ft, 3, rings=[0.0, 2.0])


@pytest.mark.parametrize("bad", [[], [-1.0, 1.0], [0.0, float("nan")]])
def test_bad_rings_rejected(bad):
    with pytest.raises(ValueError, match="rings"):
        resolve_settings(5, 1, rings=bad)


def test_sigma_broadcast_and_defaults():
    s = resolve_settings(7, 1, sigma=0.7)
    assert s.sigma == pytest.approx((0.7,) * 4)
    s = resolve_settings(5, 1, sigma=[0.1, 0.2, 0.3])
    assert s.sigma == pytest.approx((0.1, 0.2, 0.3))
    # default sigma for explicit rings: 0.6, last 0.4, 0.005 at radius 0
    s = resolve_settings(5, 1, rings=[0.0, 0.5, 1.0, 2.0])
    assert s.sigma == pytest.approx((0.005, 0.6, 0.6, 0.4))
    s = resolve_settings(5, 1, rings=[1.0, 2.0])
    assert s.sigma == pytest.approx((0.6, 0.4))
    s = resolve_settings(5, 1, rings=[1.5])
    assert s.sigma == pytest.approx((0.4,))
    with pytest.raises(ValueError, match="sigma"):
        resolve_settings(5, 1, sigma=[0.1, 0.2])
    with pytest.raises(ValueError, match="sigma"):
        resolve_settings(5, 1, sigma=-0.3)
    with pytest.raises(ValueError, match="sigma"):
        resolve_settings(5, 1, sigma=0.0)


def test_maximum_offset_and_size_validation():
    assert resolve_settings(5, 1, maximum_offset=2).maximum_offset == 2
    assert resolve_settings(5, 1, maximum_offset=0).maximum_offset == 0
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="maximum_offset"):
            resolve_settings(5, 1, maximum_offset=bad)
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="kernel_size"):
            resolve_settings(bad, 1)
    for bad in (0, 1.0):
        with pytest.raises(ValueError, match="dilation"):
            resolve_settings(3, bad)


# ---- grid convention (reference §1) --------------------------------------------------------

def test_grid_row0_top_y_up():
    p = grid_points(3)
    assert p.shape == (9, 2) and p.dtype == np.float64
    # point row*k + col = (col − 1, 1 − row)
    np.testing.assert_array_equal(p[0], [-1, 1])   # top-left
    np.testing.assert_array_equal(p[2], [1, 1])    # top-right
    np.testing.assert_array_equal(p[4], [0, 0])    # centre
    np.testing.assert_array_equal(p[6], [-1, -1])  # bottom-left
    np.testing.assert_array_equal(p[5], [1, 0])


@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (5, 2), (6, 3), (1, 1)])
def test_grid_formula(k, d):
    p = grid_points(k, d)
    c = d * (k - 1) / 2
    for row in range(k):
        for col in range(k):
            np.testing.assert_array_equal(p[row * k + col], [col * d - c, c - row * d])
    # as an image: x grows along columns, y decreases along rows
    X = p[:, 0].reshape(k, k)
    Y = p[:, 1].reshape(k, k)
    if k > 1:
        assert (np.diff(X, axis=1) == d).all() and (np.diff(Y, axis=0) == -d).all()


def test_even_grid_has_no_origin():
    p = grid_points(4)
    assert np.hypot(p[:, 0], p[:, 1]).min() == pytest.approx(math.sqrt(0.5))
    np.testing.assert_array_equal(p[0], [-1.5, 1.5])


def test_layer_basis_uses_grid_and_settings():
    G = cs.CyclicGroup(4)
    ft = cs.FieldType(G, [G.regular_representation])
    b = cs.LayerBasis(ft, ft, 5, dilation=2)
    np.testing.assert_array_equal(b.points, grid_points(5, 2))
    assert b.settings == resolve_settings(5, 2)
    assert b.shape == (4, 4, 5, 5)
    with pytest.raises(ValueError):
        b.points[0, 0] = 3.0  # read-only
