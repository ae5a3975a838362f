"""The vectorised planar sampler (``sample_pair_bases``: all irreps pairs of a layer in one
pass, into one buffer) equals the per-pair reference ``sample_pair_basis`` BIT FOR BIT:
values, rings, frequencies, phases, signs, offsets and scales, dtypes and shapes, for random
groups (C_N, D_N with any axis, flip groups, SO(2), O(2), the trivial group), random irreps
pairs (in any order, with repeats), grids and arbitrary points (with and without the
origin), cut-off policies, callables that keep vanishing elements (dropped), rings, widths
and alias bounds. Also: the values are consecutive read-only views of one buffer (what the
plan uses without a copy), and the memory checks still name the same pair."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer import _memory
from cupysteer.r2.pair_basis import sample_pair_bases, sample_pair_basis
from cupysteer.r2.settings import grid_points, resolve_settings
from tests._strategies import group_strategies, prop

FIELDS = ("values", "ring", "frequency", "gamma", "s", "offset", "scale")
GROUPS = group_strategies(4, special_axes=(math.pi / 4,)).all_groups


def assert_identical(got, want):
    assert (got.in_irrep, got.out_irrep) == (want.in_irrep, want.out_irrep)
    for f in FIELDS:
        a, b = getattr(got, f), getattr(want, f)
        assert a.dtype == b.dtype and a.shape == b.shape, f
        assert a.tobytes() == b.tobytes(), f  # bit-identical (also -0.0 and NaN payloads)
        assert not a.flags.writeable, f


@st.composite
def layers(draw):
    """(pairs, settings, points): a group, some of its irreps pairs, a grid or point set and
    settings that exercise every branch of the sampler."""
    G = draw(GROUPS)
    irreps = list(G.irreps())
    pairs = draw(st.lists(st.tuples(st.sampled_from(irreps), st.sampled_from(irreps)),
                          min_size=1, max_size=12))
    if draw(st.booleans()):
        k = draw(st.integers(1, 7))
        points, extent = grid_points(k, draw(st.integers(1, 2))), None
    else:
        n = draw(st.integers(1, 12))
        seed = draw(st.integers(0, 2**31))
        points = np.random.default_rng(seed).uniform(-3, 3, (n, 2))
        if draw(st.booleans()):
            points[0] = 0.0  # the origin: harmonics with μ ≠ 0 vanish there
        k, extent = draw(st.sampled_from([3, 5, 7])), float(np.hypot(*points.T).max())
    cutoff = draw(st.sampled_from([None, -1.0, -2.0, -3.0, 0.7, 2.0, 5.0, "const"]))
    if cutoff == "const":  # fco(0) > 0: elements on the ring at radius 0 vanish and are dropped
        cutoff = lambda r: 3.0  # noqa: E731
    rings = sigma = None
    if extent is not None or draw(st.booleans()):
        top = extent if extent is not None else float(np.hypot(*points.T).max())
        rings = sorted(draw(st.lists(st.floats(0.0, top), min_size=1, max_size=4)))
        sigma = draw(st.one_of(st.none(), st.floats(0.05, 1.5)))
        if sigma is None:
            sigma = 0.6
    offset = draw(st.sampled_from([None, 0, 1, 2]))
    settings = resolve_settings(k, rings=rings, sigma=sigma, frequencies_cutoff=cutoff,
                                maximum_offset=offset, points=points)
    return pairs, settings, points


@prop(150)
@given(layers())
def test_vectorised_sampler_is_bit_identical_to_the_per_pair_one(layer):
    pairs, settings, points = layer
    got = sample_pair_bases(pairs, settings, points)
    assert len(got) == len(pairs)
    for (a, b), pb in zip(pairs, got):
        assert_identical(pb, sample_pair_basis(a, b, settings, points))


@prop(60)
@given(layers())
def test_values_are_consecutive_views_of_one_buffer(layer):
    pairs, settings, points = layer
    got = [pb.values for pb in sample_pair_bases(pairs, settings, points)]
    parts = [v for v in got if v.size]
    if not parts:
        return
    base = parts[0].base
    assert base is not None and base.ndim == 1 and not base.flags.writeable
    pos = (parts[0].ctypes.data - base.ctypes.data) // 8
    assert pos == 0
    for v in parts:
        assert v.base is base and v.flags.c_contiguous
        assert (v.ctypes.data - base.ctypes.data) // 8 == pos
        pos += v.size
    assert pos == base.size


@pytest.mark.parametrize("make", [lambda: cs.CyclicGroup(8), lambda: cs.DihedralGroup(4),
                                  lambda: cs.SO2(3), lambda: cs.O2(2),
                                  lambda: cs.DihedralGroup(3, axis=0.3)])
def test_reference_layers_all_pairs(make):
    """Every irreps pair of a group at once (all four shapes in one call), e2cnn defaults."""
    G = make()
    irreps = list(G.irreps())
    pairs = [(a, b) for a in irreps for b in irreps]
    for k in (3, 5, 7):
        settings, points = resolve_settings(k), grid_points(k)
        for (a, b), pb in zip(pairs, sample_pair_bases(pairs, settings, points)):
            assert_identical(pb, sample_pair_basis(a, b, settings, points))


def test_pairs_of_several_groups_in_one_call():
    """Different reflection axes (and no axis) in one batch: each pair keeps its own θ − β."""
    groups = [cs.DihedralGroup(3, axis=0.3), cs.DihedralGroup(3, axis=1.1), cs.CyclicGroup(4),
              cs.O2(2, axis=0.0), cs.FlipGroup(2.0)]
    pairs = [(a, b) for G in groups for a in G.irreps() for b in G.irreps()][::2]
    settings, points = resolve_settings(5, frequencies_cutoff=3.0), grid_points(5)
    for (a, b), pb in zip(pairs, sample_pair_bases(pairs, settings, points)):
        assert_identical(pb, sample_pair_basis(a, b, settings, points))


def test_empty_and_single():
    G = cs.CyclicGroup(4)
    settings, points = resolve_settings(3), grid_points(3)
    assert sample_pair_bases([], settings, points) == []
    (pb,) = sample_pair_bases([(G.irrep(1), G.irrep(2))], settings, points)
    assert_identical(pb, sample_pair_basis(G.irrep(1), G.irrep(2), settings, points))


def test_pairs_of_two_groups_are_refused():
    a, b = cs.CyclicGroup(4), cs.CyclicGroup(5)
    with pytest.raises(ValueError, match="belongs to"):
        sample_pair_bases([(a.irrep(0), b.irrep(0))], resolve_settings(3), grid_points(3))


def test_memory_checks_name_the_first_failing_pair(monkeypatch):
    """The batched checks fall back to the per-pair order: the error names the same pair as
    sampling the pairs one by one does."""
    G = cs.CyclicGroup(4)
    pairs = [(G.irrep(0), G.irrep(0)), (G.irrep(1), G.irrep(1)), (G.irrep(2), G.irrep(1))]
    settings, points = resolve_settings(51, maximum_offset=0), grid_points(51)
    monkeypatch.setenv(_memory.ENV, "10M")  # the 1×1 pair fits, the 2×2 one's elements do not
    errors = []
    for f in (lambda: sample_pair_bases(pairs, settings, points),
              lambda: [sample_pair_basis(a, b, settings, points) for a, b in pairs]):
        with pytest.raises(MemoryError) as e:
            f()
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "irrep_1 → irrep_1 (" in errors[0]
    assert "ring × harmonic elements" in errors[0]
