r"""The base class of the planar groups: element encoding, group law and action on the plane.

:class:`PlanarGroup` holds what every subgroup of O(2) shares (the encoding ``(f, r)`` and
its product, the action matrices, irreps, representations, subgroups); the concrete groups
live in :mod:`cupysteer.r2.groups`, which documents the encoding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _checks
from .._memory import check_host
from ..group import GroupBase
from . import grids as _grids
from . import representations as _representations
from .irreps import DEFAULT_AXIS, TWO_PI, Irrep, rotation_matrix
from .space import SPACE
from .subgroups import Subgroup

__all__ = ["PlanarGroup"]

DEFAULT_MAXIMUM_FREQUENCY = 6
#: bytes per listed irrep (the Irrep object, its id tuple and the tuple slot) and per listed
#: element with its batch encoding: for the estimate made before listing them
IRREP_BYTES = 400
ELEMENT_BYTES = 120


def _check_order(N, name="N"):
    return _checks.integer(N, name, 1, " (the number of rotations)")


def _check_axis(axis):
    return _checks.angle(axis, "axis")


def _int(x, what):
    return _checks.integer(x, what)


def _angle(x, what):
    return _checks.angle(x, what, finite=False) % TWO_PI


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
        self._check_enumeration(self.order, ELEMENT_BYTES, "the elements")
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

    # ---- irreps, representations, subgroups ----------------------------------------------
    space = SPACE  # the plane
    _representations = _representations
    #: the module whose ``grid(group, ...)`` lists grids of elements (Fourier transforms)
    _grids = _grids

    @property
    def cache_id(self) -> str:
        return f"{type(self).__name__}|N={self.rotation_order}|axis={self.reflection_axis!r}"

    def irrep(self, *id):
        return Irrep.from_id(self, id)

    def irreps(self) -> tuple:
        """All irreps (finite) or those up to ``maximum_frequency`` in e2cnn's insertion order."""
        self._check_enumeration(self.num_irreps, IRREP_BYTES, "the irreps")
        return tuple(Irrep.from_id(self, i) for i in self._irrep_ids())

    @property
    def num_irreps(self) -> int:
        """How many irreps :meth:`irreps` lists (computed without listing them)."""
        if not self.is_finite:
            return self.maximum_frequency + (2 if self.has_reflections else 1)
        N = self.rotation_order
        if not self.has_reflections:
            return N // 2 + 1
        if N == 1:  # the flip group
            return 2
        return 2 + N // 2 + (1 if N % 2 == 0 else 0)

    def _check_enumeration(self, count: int, bytes_each: int, what: str) -> None:
        """Refuse to list ``count`` objects of ``bytes_each`` bytes when they do not fit."""
        size = ("maximum_frequency" if not self.is_finite else "N")
        check_host(count * bytes_each,
                   lambda: f"listing {what} of {self!r} ({count})",
                   f"use a smaller {size}; a trivial field needs no listing "
                   f"(group.trivial_representation is built directly)")

    def _irrep_ids(self) -> list[tuple]:
        raise NotImplementedError

    def irrep_id(self, flip_frequency: int, frequency: int) -> tuple:
        """The id of the irrep with flip frequency j and frequency k: (k,), (j, k) or (j,)."""
        if not self.has_reflections:
            return (frequency,)
        return (flip_frequency, frequency)

    @property
    def trivial_irrep(self):
        """The trivial irrep, built directly (O(1) for any N or maximum frequency)."""
        return Irrep.from_id(self, self.irrep_id(0, 0))

    def subgroup(self, subgroup_id) -> Subgroup:
        """The subgroup with e2cnn's id and its embedding (see :class:`Subgroup`)."""
        return self._subgroup(subgroup_id)

    def _subgroup(self, sid) -> Subgroup:
        raise NotImplementedError

    def _subgroup_error(self, sid, expected):
        return ValueError(f"subgroup_id {sid!r} is not a subgroup of {self.name}; expected "
                          f"{expected}")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        raise NotImplementedError
