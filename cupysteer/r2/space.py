r"""The plane R² as the base space of the planar groups (e2cnn ``R2Conv``'s conventions).

* grid: k×k points, row-major, y up (:func:`cupysteer.r2.settings.grid_points`);
* settings: e2cnn's rings, sigma and frequency cut-offs (:mod:`cupysteer.r2.settings`);
* pair bases: rings × angular harmonics (:mod:`cupysteer.r2.pair_basis`); weights are
  ring-major, as in e2cnn;
* exact grid symmetries: every element of a finite group; for SO(2)/O(2) the rotations by
  multiples of 90° and the reflections whose axis is a multiple of π/4. On a rectangular or
  anisotropic grid (``kernel_size=(k_H, k_W)``, ``spacing=(s_H, s_W)`` with k_H·s_H ≠ k_W·s_W
  or s_H ≠ s_W) only those that permute its physical points remain: the rotation by 180° and
  the reflections across the x and y axes (the symmetries of the rectangle).
"""
from __future__ import annotations

import math

from ..space import Space
from . import pair_basis, point, settings

__all__ = ["Plane", "SPACE"]


class Plane(Space):
    """R², the space of :mod:`cupysteer.r2`'s groups; the instance is :data:`SPACE`."""

    name = "r2"
    dimension = 2
    group_spellings = ("C<N> (e.g. C8), D<N> (e.g. D4), D<N>:axis=<radians>, SO2, SO2:<max "
                       "frequency>, O2, O2:<max frequency>[:axis=<radians>], flip, "
                       "flip:axis=<radians>, trivial")
    field_spellings = ("regular, trivial, irrep:k, irrep:j,k, quotient:M, quotient:None,M, "
                       "quotient:a,M; comma-separated, repeated with regular*4 or 4*regular")
    _settings, _pair_basis = settings, pair_basis
    _point = point

    def resolve_settings(self, kernel_size, dilation=1, rings=None, sigma=None,
                         frequencies_cutoff=None, maximum_offset=None, points=None,
                         spacing=None):
        return settings.resolve_settings(kernel_size, dilation, rings, sigma,
                                         frequencies_cutoff, maximum_offset, points, spacing)

    def element_order(self, pb):
        return pb.ring

    def grid_candidates(self, group):
        """Every element of a finite group of order ≤ :data:`ALL_ELEMENTS_UP_TO`; otherwise
        (SO(2), O(2), huge C_N / D_N) the elements among the 8 symmetries of the square: the
        rotations by multiples of 90° and the reflections whose axis is a multiple of π/4."""
        if group.is_finite and group.order <= ALL_ELEMENTS_UP_TO:
            return group.elements()
        quarter = [m * math.pi / 2 for m in range(4)]
        beta = group.reflection_axis
        refl = [(2 * (m * math.pi / 4 - beta)) % (2 * math.pi) for m in range(4)]
        pairs = [(0, a) for a in quarter]
        if group.has_reflections:
            pairs += [(1, a) for a in refl]
        if not group.is_finite:
            return [a for _, a in pairs] if not group.has_reflections else pairs
        return [g for g in (_finite_element(group, f, a) for f, a in pairs) if g is not None]


def _finite_element(group, flip: int, angle: float):
    """The element (flip, r) of a finite planar group with rotation angle ``angle``, or None."""
    N = group.rotation_order
    r = angle * N / (2 * math.pi)
    if abs(r - round(r)) > 1e-9:
        return None
    return group._join(flip, int(round(r)) % N)


#: finite groups up to this order are checked on every element
ALL_ELEMENTS_UP_TO = 4096


#: the plane
SPACE = Plane()
