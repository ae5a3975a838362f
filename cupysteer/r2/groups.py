r"""Planar symmetry groups: the subgroups of O(2) that act on :math:`\mathbb{R}^2`.

Every group here is a subgroup of O(2). An element is written ``(f, r)`` with a flip bit
``f`` and a rotation ``r`` (an integer modulo N for finite groups, an angle for SO(2)/O(2)).
It acts on the plane as

.. math::  g = (f, r) \mapsto \mathrm{rot}(\theta_r)\, R_\beta^f, \qquad
           R_\beta = \mathrm{rot}(2\beta)\,\mathrm{diag}(1, -1),

with :math:`\theta_r = 2\pi r / N` (finite) or :math:`\theta_r = r` (continuous) and the
reflection axis :math:`\beta` (default :math:`\pi/2`, i.e. :math:`(x, y) \mapsto (-x, y)`).
The product is :math:`(f_1, r_1)(f_2, r_2) = (f_1 \oplus f_2,\ r_1 + (-1)^{f_1} r_2)`.

Public elements use e2cnn's encoding: C_N and the flip group take an ``int``, D_N a
``(flip, rotation)`` tuple, SO(2) an angle and O(2) a ``(flip, angle)`` tuple.

Groups are immutable, hashable by value and picklable. The shared machinery is in
:mod:`cupysteer.r2._base` (:class:`PlanarGroup`); each group knows its own subgroups.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._base import DEFAULT_MAXIMUM_FREQUENCY, PlanarGroup, _angle, _check_axis, _check_order, _int
from .irreps import DEFAULT_AXIS, TWO_PI, rotation_matrix
from .subgroups import Subgroup

__all__ = [
    "PlanarGroup", "CyclicGroup", "DihedralGroup", "SO2", "O2", "FlipGroup",
    "trivial_group", "Subgroup", "rotation_matrix", "DEFAULT_AXIS", "DEFAULT_MAXIMUM_FREQUENCY",
]


@dataclass(frozen=True, repr=False)
class CyclicGroup(PlanarGroup):
    """C_N: rotations by multiples of 2π/N. Elements: ``int`` r in 0..N-1."""

    N: int

    def __post_init__(self):
        object.__setattr__(self, "N", _check_order(self.N))
        object.__setattr__(self, "rotation_order", self.N)
        object.__setattr__(self, "has_reflections", False)

    def _split(self, g):
        return 0, _int(g, f"an element of {self.name}") % self.N

    def _join(self, f, r):
        return int(r) % self.N

    def _irrep_ids(self):
        return [(k,) for k in range(self.N // 2 + 1)]

    def _subgroup(self, sid):
        if (not isinstance(sid, (int, np.integer)) or isinstance(sid, bool) or sid < 1
                or self.N % sid):
            raise self._subgroup_error(sid, f"an integer M >= 1 dividing N={self.N} "
                                       f"(the subgroup C_M)")
        return Subgroup(self, int(sid), CyclicGroup(int(sid)))

    @property
    def name(self):
        return f"C{self.N}"

    def __repr__(self):
        return f"CyclicGroup({self.N})"


@dataclass(frozen=True, repr=False)
class DihedralGroup(PlanarGroup):
    """D_N: N rotations and N reflections; the reflection (1, 0) has axis ``axis``.

    Elements: ``(flip, rotation)`` tuples, ordered (0,0)…(0,N-1),(1,0)…(1,N-1).
    """

    N: int
    axis: float = DEFAULT_AXIS

    def __post_init__(self):
        object.__setattr__(self, "N", _check_order(self.N))
        object.__setattr__(self, "axis", _check_axis(self.axis))
        object.__setattr__(self, "rotation_order", self.N)
        object.__setattr__(self, "has_reflections", True)

    def _split(self, g):
        try:
            f, r = g
        except (TypeError, ValueError):
            raise ValueError(f"an element of {self.name} is a (flip, rotation) pair, "
                             f"got {g!r}") from None
        f = _int(f, "the flip of a D_N element")
        if f not in (0, 1):
            raise ValueError(f"the flip of a D_N element must be 0 or 1, got {f}")
        return f, _int(r, "the rotation of a D_N element") % self.N

    def _join(self, f, r):
        return (int(f), int(r) % self.N)

    def _irrep_ids(self):
        ids = [(0, 0), (1, 0)] + [(1, k) for k in range(1, self.N // 2 + 1)]
        if self.N % 2 == 0:
            ids.append((0, self.N // 2))
        return ids

    def _subgroup(self, sid):
        beta = self.reflection_axis
        N = self.N
        ok = isinstance(sid, tuple) and len(sid) == 2
        if ok:
            a, M = sid
            ok = isinstance(M, (int, np.integer)) and M >= 1 and N % M == 0
        if not ok:
            raise self._subgroup_error(sid, f"(None, M) for C_M or (a, M) for a dihedral/flip "
                                            f"subgroup, M dividing N={N}")
        M = int(M)
        if a is None:
            return Subgroup(self, (None, M), CyclicGroup(M))
        if not isinstance(a, (int, np.integer)) or not (0 <= a < N // M):
            raise self._subgroup_error(sid, f"a reflection index a with 0 <= a < N/M = {N // M}")
        delta = TWO_PI * int(a) / N
        axis = beta + delta / 2
        H = FlipGroup(axis) if M == 1 else DihedralGroup(M, axis)
        return Subgroup(self, (int(a), M), H, delta)

    @property
    def name(self):
        return f"D{self.N}"

    def __repr__(self):
        return f"DihedralGroup({self.N}, axis={self.axis!r})"


@dataclass(frozen=True, repr=False)
class FlipGroup(PlanarGroup):
    """The reflection group {e, R_axis} (isomorphic to C_2). Elements: ``int`` f in {0, 1}."""

    axis: float = DEFAULT_AXIS

    def __post_init__(self):
        object.__setattr__(self, "axis", _check_axis(self.axis))
        object.__setattr__(self, "rotation_order", 1)
        object.__setattr__(self, "has_reflections", True)

    def _split(self, g):
        f = _int(g, "an element of the flip group")
        if f not in (0, 1):
            raise ValueError(f"an element of the flip group is 0 or 1, got {g!r}")
        return f, 0

    def _join(self, f, r):
        return int(f)

    def _irrep_ids(self):
        return [(0,), (1,)]

    def irrep_id(self, flip_frequency: int, frequency: int) -> tuple:
        return (flip_frequency,)

    def _subgroup(self, sid):
        if sid == 1:
            return Subgroup(self, 1, CyclicGroup(1))
        if sid == 2:
            return Subgroup(self, 2, self)
        raise self._subgroup_error(sid, "1 (trivial) or 2 (the whole group)")

    @property
    def name(self):
        return "Flip"

    def __repr__(self):
        return f"FlipGroup(axis={self.axis!r})"


@dataclass(frozen=True, repr=False)
class SO2(PlanarGroup):
    """All rotations. Elements: angles. ``maximum_frequency`` only bounds :meth:`irreps`
    (it does not enter equality: every SO2() is the same group)."""

    maximum_frequency: int = field(default=DEFAULT_MAXIMUM_FREQUENCY, compare=False)

    def __post_init__(self):
        mf = _int(self.maximum_frequency, "maximum_frequency")
        if mf < 0:
            raise ValueError(f"maximum_frequency must be >= 0, got {mf}")
        object.__setattr__(self, "maximum_frequency", mf)
        object.__setattr__(self, "rotation_order", -1)
        object.__setattr__(self, "has_reflections", False)

    def _split(self, g):
        return 0, _angle(g, "an element of SO(2)")

    def _join(self, f, r):
        return float(r) % TWO_PI

    def _irrep_ids(self):
        return [(k,) for k in range(self.maximum_frequency + 1)]

    def _subgroup(self, sid):
        if sid == -1:
            return Subgroup(self, -1, self)
        if isinstance(sid, (int, np.integer)) and not isinstance(sid, bool) and sid >= 1:
            return Subgroup(self, int(sid), CyclicGroup(int(sid)))
        raise self._subgroup_error(sid, "an integer M >= 1 (C_M) or -1 (SO(2) itself)")

    @property
    def name(self):
        return "SO(2)"

    def __repr__(self):
        return f"SO2(maximum_frequency={self.maximum_frequency})"


@dataclass(frozen=True, repr=False)
class O2(PlanarGroup):
    """Rotations and reflections. Elements: ``(flip, angle)``. ``maximum_frequency`` only
    bounds :meth:`irreps` and does not enter equality."""

    maximum_frequency: int = field(default=DEFAULT_MAXIMUM_FREQUENCY, compare=False)
    axis: float = DEFAULT_AXIS

    def __post_init__(self):
        mf = _int(self.maximum_frequency, "maximum_frequency")
        if mf < 0:
            raise ValueError(f"maximum_frequency must be >= 0, got {mf}")
        object.__setattr__(self, "maximum_frequency", mf)
        object.__setattr__(self, "axis", _check_axis(self.axis))
        object.__setattr__(self, "rotation_order", -1)
        object.__setattr__(self, "has_reflections", True)

    def _split(self, g):
        try:
            f, a = g
        except (TypeError, ValueError):
            raise ValueError(f"an element of O(2) is a (flip, angle) pair, got {g!r}") from None
        f = _int(f, "the flip of an O(2) element")
        if f not in (0, 1):
            raise ValueError(f"the flip of an O(2) element must be 0 or 1, got {f}")
        return f, _angle(a, "the angle of an O(2) element")

    def _join(self, f, r):
        return (int(f), float(r) % TWO_PI)

    def _irrep_ids(self):
        return [(0, 0), (1, 0)] + [(1, k) for k in range(1, self.maximum_frequency + 1)]

    def _subgroup(self, sid):
        beta = self.reflection_axis
        ok = isinstance(sid, tuple) and len(sid) == 2
        if ok:
            a, M = sid
            ok = isinstance(M, (int, np.integer)) and (M >= 1 or M == -1)
        if not ok:
            raise self._subgroup_error(sid, "(None, M) for C_M / (None, -1) for SO(2), or "
                                            "(angle, M) for D_M / (angle, 1) for a flip / "
                                            "(angle, -1) for O(2)")
        M = int(M)
        if a is None:
            H = SO2(self.maximum_frequency) if M == -1 else CyclicGroup(M)
            return Subgroup(self, (None, M), H)
        delta = float(a) % TWO_PI
        axis = beta + delta / 2
        H = O2(self.maximum_frequency, axis) if M == -1 else FlipGroup(axis) if M == 1 \
            else DihedralGroup(M, axis)
        return Subgroup(self, (float(a), M), H, delta)

    @property
    def name(self):
        return "O(2)"

    def __repr__(self):
        return f"O2(maximum_frequency={self.maximum_frequency}, axis={self.axis!r})"


def trivial_group() -> CyclicGroup:
    """The trivial group {e}, i.e. C_1 (as in e2cnn's ``TrivialOnR2``)."""
    return CyclicGroup(1)
