r"""Groups of rotations about z and their planar-type relatives, labelled by the elements of a
planar group of :mod:`cupysteer.r2.groups`: C_N / SO(2) (RotationsZ), D_N / O(2) with π-rotations
(DihedralZ) or mirrors (Conical), a mirror, the inversion, the trivial group, and the products
C2 × C_N (Cylindrical), C2 × D_N (FullCylindrical); re-exported by :mod:`cupysteer.r3.groups`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._checks import angle
from ..r2 import groups as _pg
from ..r2.irreps import Irrep, rotation_matrix
from ..representation import block_diag
from . import _finite
from ._base import _GENERIC_ANGLES, ATOL, DEFAULT_AXIS, Group3, _det, _mf, _rz
from ._product import _Product


def _check_n(N, minimum, hint):
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or not (N == -1 or N >= minimum):
        raise ValueError(f"N must be an integer >= {minimum} (number of rotations) or -1 (all "
                         f"rotations about z), got {N!r}{hint}")
    return int(N)


def _normalise(group, minimum, hint=""):
    """Check and store a group's N (>= ``minimum`` or -1), its axis (where it has one) and its
    maximum_frequency."""
    object.__setattr__(group, "N", _check_n(group.N, minimum, hint))
    if hasattr(group, "axis"):
        object.__setattr__(group, "axis", angle(group.axis, "axis"))
    object.__setattr__(group, "maximum_frequency", _mf(group.maximum_frequency))


class _PlanarKind(Group3):
    """Groups whose elements are labelled by a planar element (f, r) of ``planar``."""

    z_flip = False  # does the flip (f = 1) send z ↦ −z (π-rotation) rather than keep it (mirror)?

    @property
    def order(self):
        return self.planar.order

    @property
    def beta(self) -> float:
        """Reflection axis of the planar group (the xy block of (1, 0) reflects across it)."""
        return getattr(self.planar, "axis", DEFAULT_AXIS)

    def from_planar(self, f, r) -> np.ndarray:
        """3×3 matrices of the planar elements given as flip bits ``f`` and rotations ``r``."""
        f = np.asarray(f).reshape(-1)
        alpha = self.planar.rotation_angle(np.asarray(r).reshape(-1)) + 2 * self.beta * f
        M = _rz(alpha)
        M[:, :, 1] *= np.where(f == 1, -1.0, 1.0)[:, None]
        if self.z_flip:
            M[:, 2, 2] = np.where(f == 1, -1.0, 1.0)
        return M

    def to_planar(self, mats):
        """(f, r, ok): planar labels of the matrices and a mask of those that are members."""
        mats = np.asarray(mats, dtype=np.float64).reshape(-1, 3, 3)
        P = self.planar
        if not P.has_reflections:
            f = np.zeros(len(mats), np.int64)
        elif self.z_flip:
            f = (mats[:, 2, 2] < 0).astype(np.int64)
        else:
            f = (_det(mats) < 0).astype(np.int64)
        theta = np.arctan2(mats[:, 1, 0], mats[:, 0, 0]) - 2 * self.beta * f
        if P.is_finite:
            N = P.rotation_order
            r = np.rint(theta * N / (2 * math.pi)).astype(np.int64) % N
        else:
            r = theta % (2 * math.pi)
        ok = np.abs(self.from_planar(f, r) - mats).max(axis=(1, 2), initial=0) <= ATOL
        return f, r, ok

    def _member_mask(self, mats):
        return self.to_planar(mats)[2]

    def _planar_mats(self, elements):
        return self.from_planar(*self.planar.split_batch(elements))

    def _elements(self):
        return self._planar_mats(self.planar.elements())

    def _generators(self):
        P, gens = self.planar, []
        if P.rotation_order > 1:
            gens.append(P._join(0, 1))
        if P.has_reflections:
            gens.append(P._join(1, 0))
        return self._planar_mats(gens) if gens else np.eye(3)[None]

    def _constraint(self):
        gens = [self.planar._join(0, a) for a in _GENERIC_ANGLES]
        if self.planar.has_reflections:
            gens.append(self.planar._join(1, 0.0))
        return self._planar_mats(gens)

    def _sample(self, n, rng):
        return self._planar_mats(self.planar.sample(n, rng))

    def _irrep_ids(self):
        return self.planar._irrep_ids()

    @property
    def num_irreps(self) -> int:
        return self.planar.num_irreps

    def _trivial_id(self):
        return self.planar.irrep_id(0, 0)

    def _planar_irrep(self, id):
        return Irrep.from_id(self.planar, id)

    def _check_id(self, id):
        try:
            self._planar_irrep(id)
        except ValueError as e:
            raise ValueError(f"unknown irrep id {id!r} of {self!r}: {e}") from None
        return id

    def _info(self, id):
        p = self._planar_irrep(id)
        return p.dim, "C" if p.sum_of_squares_constituents == 2 else "R", p.name

    def _evaluate(self, id, mats):
        f, r, _ = self.to_planar(mats)
        return self._planar_irrep(id).evaluate_split(f, r)

    def _subgroup_elements(self, sid):
        try:
            sub = self.planar.subgroup(sid)
        except (ValueError, TypeError) as e:
            raise ValueError(f"subgroup_id {sid!r} of {self!r}: {e}") from None
        return self._planar_mats(sub.elements())

    @property
    def name(self):
        return self.planar.name

    def _standard_parts(self):
        """(ψ_xy, ψ_z, C): the standard representation of a continuous planar-type group is
        ψ_xy ⊕ ψ_z with xy block C ψ_xy Cᵀ, C = rot(β)."""
        refl = self.planar.has_reflections
        xy = self.irrep(1, 1) if refl else self.irrep(1)
        z = self.irrep(1, 0) if (refl and self.z_flip) else self.irrep(0, 0) if refl else \
            self.irrep(0)
        return xy, z, rotation_matrix(self.beta) if refl else np.eye(2)

    def _standard_basis(self):
        xy, z, C = self._standard_parts()
        return [xy, z], block_diag(C, np.eye(1))


@dataclass(frozen=True, repr=False)
class RotationsZ(_PlanarKind):
    """C_N (N ≥ 1) / SO(2) (N = −1) of rotations Rz(θ) about z (escnn ``rot2dOnR3``); element
    r ↦ Rz(2πr/N). Irreps ``(k,)`` of :class:`cupysteer.CyclicGroup` / :class:`cupysteer.SO2`."""

    N: int
    maximum_frequency: int = field(default=2, compare=False)
    kind = "CN"

    def __post_init__(self):
        _normalise(self, 1)

    @property
    def planar(self):
        return _pg.SO2(self.maximum_frequency) if self.N == -1 else _pg.CyclicGroup(self.N)

    def __repr__(self):
        return f"RotationsZ({self.N}, maximum_frequency={self.maximum_frequency})"


@dataclass(frozen=True, repr=False)
class DihedralZ(_PlanarKind):
    """D_N / O(2) (N = −1) of rotations about z and π-rotations about axes in the xy plane, as
    escnn's ``dihedralOnR3(N, axis)``: (0, θ) ↦ Rz(θ), (1, θ) ↦ Rπ(axis + θ/2). The planar group
    is ``DihedralGroup(N, axis)`` / ``O2(axis=axis)`` (xy block = planar action, z ↦ (−1)^f z)."""

    N: int
    axis: float = DEFAULT_AXIS
    maximum_frequency: int = field(default=2, compare=False)
    kind = "DN"
    z_flip = True

    def __post_init__(self):
        _normalise(self, 2, "; escnn's N = 1 case is a C2 about an in-plane axis, not supported")

    @property
    def planar(self):
        b = self._planar_axis
        return _pg.O2(self.maximum_frequency, b) if self.N == -1 else _pg.DihedralGroup(self.N, b)

    @property
    def _planar_axis(self):
        return self.axis

    def __repr__(self):
        return (f"{type(self).__name__}({self.N}, axis={self.axis!r}, "
                f"maximum_frequency={self.maximum_frequency})")


@dataclass(frozen=True, repr=False)
class Conical(DihedralZ):
    """D_N / O(2) of rotations about z and mirrors through planes containing z, as escnn's
    ``conicalOnR3(N, axis)``: (1, θ) ↦ Rz(θ − 2·axis)·diag(1, −1, 1), the mirror through the plane
    spanned by z and the direction at angle θ/2 − axis. Planar group axis β = −axis."""

    kind = "conical"
    z_flip = False

    def __post_init__(self):
        if self.N == 1:
            raise ValueError("N must be >= 2 or -1; conicalOnR3(1, axis) is Mirror(axis)")
        super().__post_init__()

    @property
    def _planar_axis(self):
        return -self.axis


class _Explicit(_PlanarKind):
    """C2 / C1 given by an explicit element list (element r ↦ ``_list()[r]``)."""

    def from_planar(self, f, r):
        return self._list()[np.asarray(r, dtype=np.int64).reshape(-1)]

    def to_planar(self, mats):
        idx = _finite.element_indices(self._list(), mats, ATOL)
        return np.zeros(len(idx), np.int64), np.maximum(idx, 0), idx >= 0

    @property
    def planar(self):
        return _pg.CyclicGroup(len(self._list()))

    def _constraint(self):
        return self._generators()

    def __repr__(self):
        return f"{type(self).__name__}()"


@dataclass(frozen=True, repr=False)
class Mirror(_Explicit):
    """C2 = {I, M} with M = Rz(−2·axis)·diag(1, −1, 1) = I − 2nnᵀ, n = (sin axis, cos axis, 0),
    as escnn's ``mirOnR3(axis)`` (default: x ↦ −x). Irreps (0,), (1,)."""

    axis: float = DEFAULT_AXIS
    kind = "mirror"

    def __post_init__(self):
        object.__setattr__(self, "axis", angle(self.axis, "axis"))

    def _list(self):
        n = np.array([math.sin(self.axis), math.cos(self.axis), 0.0])
        return np.stack([np.eye(3), np.eye(3) - 2 * np.outer(n, n)])

    def __repr__(self):
        return f"Mirror(axis={self.axis!r})"


@dataclass(frozen=True, repr=False)
class Inversion(_Explicit):
    """C2 = {I, −I} (escnn ``invOnR3``). Irreps (0,), (1,)."""

    kind = "inv"

    def _list(self):
        return np.stack([np.eye(3), -np.eye(3)])


@dataclass(frozen=True, repr=False)
class Trivial3(_Explicit):
    """C1 = {I} (escnn ``trivialOnR3``)."""

    kind = "trivial"

    def _list(self):
        return np.eye(3)[None]


# C2 × H with H a group about z
@dataclass(frozen=True, repr=False)
class Cylindrical(_Product):
    """C2 × C_N / C2 × SO(2) (escnn ``cylindricalOnR3(N)``): Rz(θ) with and without inversion.
    escnn names it 'Cylindrical' (N = −1), 'Klein4' (N = 2) or 'CylindricalDiscrete'."""

    N: int
    maximum_frequency: int = field(default=2, compare=False)
    kind = "cyl"

    def __post_init__(self):
        _normalise(self, 2, "; cylindricalOnR3(1) is Inversion()")

    @property
    def factor(self):
        return RotationsZ(self.N, self.maximum_frequency)

    @property
    def name(self):
        return {-1: "Cylindrical", 2: "Klein4"}.get(self.N, "CylindricalDiscrete")

    def __repr__(self):
        return f"Cylindrical({self.N}, maximum_frequency={self.maximum_frequency})"


@dataclass(frozen=True, repr=False)
class FullCylindrical(_Product):
    """C2 × D_N / C2 × O(2) (escnn ``fullCylindricalOnR3(N, axis)``): the elements of
    ``DihedralZ(N, axis/2)`` with and without inversion (π-rotation axes at axis/2 + πk/N)."""

    N: int
    axis: float = DEFAULT_AXIS
    maximum_frequency: int = field(default=2, compare=False)
    kind = "fullcyl"

    def __post_init__(self):
        _normalise(self, 2, "; escnn's N = 1 case is a C2 × C2 about other axes, not supported")

    @property
    def factor(self):
        return DihedralZ(self.N, self.axis / 2, self.maximum_frequency)

    @property
    def name(self):
        return "FullCylindrical" if self.N == -1 else "FullCylindricalDiscrete"

    def __repr__(self):
        return (f"FullCylindrical({self.N}, axis={self.axis!r}, "
                f"maximum_frequency={self.maximum_frequency})")
