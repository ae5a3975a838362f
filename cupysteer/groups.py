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

Groups are immutable, hashable by value and picklable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ._base import GroupBase

__all__ = [
    "PlanarGroup", "CyclicGroup", "DihedralGroup", "SO2", "O2", "FlipGroup",
    "trivial_group", "Subgroup", "rotation_matrix",
]

TWO_PI = 2.0 * math.pi
DEFAULT_AXIS = math.pi / 2
DEFAULT_MAXIMUM_FREQUENCY = 6


def rotation_matrix(angle) -> np.ndarray:
    """rot(a) = [[cos a, -sin a], [sin a, cos a]]; vectorised over ``angle`` (shape (..., 2, 2))."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _check_order(N, name="N"):
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"{name} must be an integer >= 1 (the number of rotations), got {N!r}")
    return int(N)


def _check_axis(axis):
    try:
        a = float(axis)
    except (TypeError, ValueError):
        raise ValueError(f"axis must be a real angle in radians, got {axis!r}") from None
    if not math.isfinite(a):
        raise ValueError(f"axis must be a finite angle in radians, got {axis!r}")
    return a


@dataclass(frozen=True)
class PlanarGroup(GroupBase):
    """Base class; use :class:`CyclicGroup`, :class:`DihedralGroup`, :class:`SO2`,
    :class:`O2`, :class:`FlipGroup` or :func:`trivial_group`."""

    # rotation order N (-1 for the continuous groups) and presence of reflections
    rotation_order: int = field(init=False)
    has_reflections: bool = field(init=False)

    # ---- structure -------------------------------------------------------------------
    @property
    def is_finite(self) -> bool:
        return self.rotation_order > 0

    @property
    def order(self) -> int:
        """Number of elements (-1 for continuous groups)."""
        if not self.is_finite:
            return -1
        return self.rotation_order * (2 if self.has_reflections else 1)

    @property
    def reflection_axis(self) -> float:
        return getattr(self, "axis", DEFAULT_AXIS)

    # ---- element encoding: (f, r) internally ----------------------------------------
    def _split(self, g) -> tuple[int, Any]:
        raise NotImplementedError

    def _join(self, f: int, r):
        raise NotImplementedError

    def _reduce_rotation(self, r):
        if self.is_finite:
            return int(r) % self.rotation_order
        return float(r) % TWO_PI

    def split_batch(self, elements) -> tuple[np.ndarray, np.ndarray]:
        """Flip bits (int64) and rotations (int64 for finite, float64 for continuous groups)."""
        pairs = [self._split(g) for g in elements]
        f = np.array([p[0] for p in pairs], dtype=np.int64).reshape(-1)
        dt = np.int64 if self.is_finite else np.float64
        r = np.array([p[1] for p in pairs], dtype=dt).reshape(-1)
        return f, r

    def rotation_angle(self, r) -> np.ndarray:
        """The angle of a rotation ``r`` (vectorised)."""
        r = np.asarray(r)
        if self.is_finite:
            return TWO_PI * (r % self.rotation_order) / self.rotation_order
        return r.astype(np.float64)

    def phase(self, frequency: int, r) -> np.ndarray:
        """frequency · angle(r), reduced exactly modulo 2π for finite groups."""
        r = np.asarray(r)
        if self.is_finite:
            N = self.rotation_order
            return TWO_PI * ((frequency * r) % N) / N
        return frequency * r.astype(np.float64)

    # ---- group law -----------------------------------------------------------------
    @property
    def identity(self):
        return self._join(0, 0)

    def compose(self, a, b):
        """The product a·b."""
        fa, ra = self._split(a)
        fb, rb = self._split(b)
        return self._join(fa ^ fb, self._reduce_rotation(ra + (-rb if fa else rb)))

    def inverse(self, g):
        f, r = self._split(g)
        return self._join(f, r if f else self._reduce_rotation(-r))

    def equal(self, a, b, atol: float = 1e-9) -> bool:
        fa, ra = self._split(a)
        fb, rb = self._split(b)
        if fa != fb:
            return False
        if self.is_finite:
            return ra == rb
        d = (ra - rb) % TWO_PI
        return min(d, TWO_PI - d) <= atol

    def elements(self) -> list:
        """All elements of a finite group, in e2cnn's order."""
        if not self.is_finite:
            raise ValueError(f"{self} is continuous: use sample() or testing_elements()")
        flips = (0, 1) if self.has_reflections else (0,)
        return [self._join(f, r) for f in flips for r in range(self.rotation_order)]

    def sample(self, n: int, rng: np.random.Generator | None = None) -> list:
        """``n`` elements drawn uniformly (Haar measure) with the NumPy Generator ``rng``."""
        rng = np.random.default_rng() if rng is None else rng
        flips = rng.integers(0, 2, n) if self.has_reflections else np.zeros(n, dtype=int)
        if self.is_finite:
            rots = rng.integers(0, self.rotation_order, n)
        else:
            rots = rng.uniform(0.0, TWO_PI, n)
        return [self._join(int(f), self._reduce_rotation(r)) for f, r in zip(flips, rots)]

    def testing_elements(self) -> list:
        """All elements (finite groups) or a fixed, irregular set of 16 elements per coset."""
        if self.is_finite:
            return self.elements()
        angles = [0.0, math.pi / 2, math.pi, 0.3, 1.1, 2.9, 4.0, 5.5, 0.01, 1.7, 2.2,
                  3.3, 4.6, 5.2, 6.0, math.pi / 4]
        flips = (0, 1) if self.has_reflections else (0,)
        return [self._join(f, a) for f in flips for a in angles]

    # ---- action on the plane -----------------------------------------------------------
    def action_matrix(self, g) -> np.ndarray:
        """2×2 matrix of g acting on R²: rot(θ_r) · R_β^f."""
        return self.action_matrices([g])[0]

    def action_matrices(self, elements) -> np.ndarray:
        """Vectorised :meth:`action_matrix`: shape (n, 2, 2)."""
        f, r = self.split_batch(elements)
        beta = self.reflection_axis
        # rot(θ)·rot(2β)·diag(1,-1) = rot(θ + 2β)·diag(1,-1)
        ang = self.rotation_angle(r) + 2.0 * beta * f
        m = rotation_matrix(ang)
        m[..., :, 1] *= np.where(f == 1, -1.0, 1.0)[:, None]
        return m

    # ---- irreps and representations (thin delegations) ----------------------------------
    def irrep(self, *id):
        from .irreps import Irrep
        return Irrep.from_id(self, id)

    def irreps(self) -> tuple:
        """All irreps (finite) or those up to ``maximum_frequency`` in e2cnn's insertion order."""
        from .irreps import Irrep
        return tuple(Irrep.from_id(self, i) for i in self._irrep_ids())

    def _irrep_ids(self) -> list[tuple]:
        raise NotImplementedError

    @property
    def trivial_irrep(self):
        return self.irreps()[0]

    def _representations(self):
        from . import representation
        return representation

    def subgroup(self, subgroup_id) -> "Subgroup":
        """The subgroup with e2cnn's id and its embedding (see :class:`Subgroup`)."""
        from ._subgroups import make_subgroup
        return make_subgroup(self, subgroup_id)

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        raise NotImplementedError


def _int(x, what):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {x!r}")
    return int(x)


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
            raise ValueError(f"an element of {self.name} is a (flip, rotation) pair, got {g!r}") from None
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

    @property
    def name(self):
        return "Flip"

    def __repr__(self):
        return f"FlipGroup(axis={self.axis!r})"


def _angle(x, what):
    try:
        a = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an angle in radians, got {x!r}") from None
    return a % TWO_PI


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

    @property
    def name(self):
        return "O(2)"

    def __repr__(self):
        return f"O2(maximum_frequency={self.maximum_frequency}, axis={self.axis!r})"


def trivial_group() -> CyclicGroup:
    """The trivial group {e}, i.e. C_1 (as in e2cnn's ``TrivialOnR2``)."""
    return CyclicGroup(1)


@dataclass(frozen=True)
class Subgroup:
    """A subgroup H of ``parent`` with its embedding.

    H's rotations map to the parent's rotation by the same angle and H's reflection
    (1, 0) maps to the parent's element whose rotation angle is ``reflection_angle``:
    ``(f, θ) ↦ (f, f·reflection_angle + θ)``.
    """

    parent: PlanarGroup
    id: Any
    group: PlanarGroup
    reflection_angle: float = 0.0

    def embed(self, h):
        """The parent element equal to the H element ``h``."""
        f, r = self.group._split(h)
        ang = float(self.group.rotation_angle(r)) + f * self.reflection_angle
        P = self.parent
        if P.is_finite:
            rp = ang * P.rotation_order / TWO_PI
            ri = int(round(rp))
            assert abs(rp - ri) < 1e-6, "subgroup element is not in the parent"
            return P._join(f, ri % P.rotation_order)
        return P._join(f, ang % TWO_PI)

    def elements(self) -> list:
        """The subgroup's elements as parent elements (finite H only)."""
        return [self.embed(h) for h in self.group.elements()]

    def __iter__(self) -> Iterator:
        return iter(self.elements())
