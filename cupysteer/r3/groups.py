r"""Symmetry groups acting on R³ (subgroups of O(3)) and their real irreps, as in escnn 1.0.11.

Every element is a 3×3 orthogonal matrix: its action on (x, y, z). All groups act faithfully, so
the matrix is a canonical encoding; ``split_batch(elements)`` validates a batch and returns
``(mats (n, 3, 3), None)``. Rz/Rx/Ry(α) are right-handed rotations; Rπ(φ) is the π-rotation about
the axis (cos φ, sin φ, 0).

======================================  =====================================================
constructor (escnn gspace factory)      elements
======================================  =====================================================
SO3 (rot3dOnR3), O3 (flipRot3dOnR3)     rotations / rotations and −rotations
Octahedral, Icosahedral                 rotations of the cube / icosahedron (SciPy's order)
FullOctahedral, FullIcosahedral         C2 × O, C2 × I: h and −h
RotationsZ(N) (rot2dOnR3)               Rz(2πr/N) (N = −1: every Rz(θ))
DihedralZ(N, axis) (dihedralOnR3)       (0, θ) ↦ Rz(θ), (1, θ) ↦ Rπ(axis + θ/2)
Conical(N, axis) (conicalOnR3)          (0, θ) ↦ Rz(θ), (1, θ) ↦ Rz(θ − 2·axis)·diag(1, −1, 1)
Cylindrical(N) (cylindricalOnR3)        (c, θ) ↦ (−1)^c Rz(θ)
FullCylindrical(N, axis)                (c, h) ↦ (−1)^c h, h ∈ DihedralZ(N, axis/2)
Mirror(axis) (mirOnR3)                  I and Rz(−2·axis)·diag(1, −1, 1)
Inversion (invOnR3), Trivial3           {I, −I} / {I}
======================================  =====================================================

``axis`` is exactly the ``axis`` argument of the escnn factory (default π/2), so e.g.
``dihedralOnR3(n, axis)`` is ``DihedralZ(n, axis)``: its π-rotation axes lie at angles
axis + πk/N in the xy plane (default: Ry(π) ∈ D_N); ``conicalOnR3``/``mirOnR3``'s mirror planes
contain z and the direction at angle −axis + πk/N (default: the mirror x ↦ −x), and
``fullCylindricalOnR3(n, axis)``'s π-rotation axes lie at axis/2 + πk/N (escnn passes 2·axis for
dihedral/conical but axis for the full cylinder). Planar-type elements map to the planar group
``planar`` of :mod:`cupysteer.groups` (axis β = axis for DihedralZ, −axis for Conical) so that the
xy block of the matrix is the planar action; their irreps are the planar (e2cnn = escnn) ones.

Irreps: SO(3) ``(l,)`` = D^l (real Wigner, Y^l(Ru) = D^l(R) Y^l(u)); O(3) ``(j, l)`` =
det^j · D^l(det·M); O: ``(0,) (1,) (-1,) (2,) (3,)``; I: ``(0,)``..``(4,)`` (see :mod:`._finite`);
planar: ``(k,)`` / ``(j, k)``; C2 × H: ``((a,), id_H, 0)`` = det^a · ψ_H(det·M).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from .._base import GroupBase, IrrepBase
from .. import groups as _pg
from . import _finite

__all__ = ["Group3", "Irrep3", "SO3", "O3", "Octahedral", "FullOctahedral", "Icosahedral",
           "FullIcosahedral", "RotationsZ", "DihedralZ", "Conical", "Cylindrical",
           "FullCylindrical", "Mirror", "Inversion", "Trivial3", "axis_angle_matrix"]

ATOL = 1e-6
DEFAULT_AXIS = math.pi / 2
_GENERIC_ANGLES = (1.0, math.sqrt(2.0))


def axis_angle_matrix(axis, angle) -> np.ndarray:
    """Right-handed rotation by ``angle`` about ``axis`` (Rodrigues)."""
    n = np.asarray(axis, dtype=np.float64)
    n = n / np.linalg.norm(n)
    K = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def _rz(theta) -> np.ndarray:
    t = np.asarray(theta, dtype=np.float64).reshape(-1)
    M = np.zeros((len(t), 3, 3))
    M[:, 0, 0] = M[:, 1, 1] = np.cos(t)
    M[:, 1, 0] = np.sin(t)
    M[:, 0, 1] = -M[:, 1, 0]
    M[:, 2, 2] = 1.0
    return M


def _grid_elements() -> np.ndarray:
    """Identity, 90°/180°/270° rotations about x, y, z, inversion and the coordinate mirrors."""
    out = [np.eye(3)]
    for ax in np.eye(3):
        out += [axis_angle_matrix(ax, k * math.pi / 2) for k in (1, 2, 3)]
    out.append(-np.eye(3))
    out += [np.diag(np.where(np.arange(3) == i, -1.0, 1.0)) for i in range(3)]
    return np.rint(np.stack(out))


def _as_id(id) -> tuple:
    def norm(x):
        if isinstance(x, (tuple, list)):
            return tuple(norm(y) for y in x)
        if isinstance(x, np.integer):
            return int(x)
        return x
    return norm(tuple(id))


class Group3(GroupBase):
    """Base class of the groups acting on R³ (see the module docstring)."""

    space_dimension = 3
    kind = ""

    # ---- structure ------------------------------------------------------------------
    @property
    def is_finite(self) -> bool:
        return self.order > 0

    def __str__(self):
        return self.name

    def identity(self) -> np.ndarray:
        return np.eye(3)

    def elements(self) -> np.ndarray:
        """All elements (|G|, 3, 3) in escnn's order (finite groups)."""
        if not self.is_finite:
            raise ValueError(f"{self.name} is continuous: use sample(n, rng) or testing_elements()")
        a = np.array(self._elements())
        return a

    def generators(self) -> np.ndarray:
        """escnn's generators of a finite group, (k, 3, 3)."""
        if not self.is_finite:
            raise ValueError(f"{self.name} is continuous; use constraint_elements()")
        return np.array(self._generators())

    def constraint_elements(self) -> np.ndarray:
        """A few elements whose common fixed vectors (in any representation of bounded
        frequency) are fixed by the whole group: the generators (finite groups), rotations by
        1 and √2 rad (plus reflections / inversion) for continuous ones."""
        return self.generators() if self.is_finite else np.array(self._constraint())

    def testing_elements(self) -> np.ndarray:
        """Identity, the grid-preserving elements the group contains (90°/180° axis rotations,
        inversion, coordinate mirrors) and the constraint elements, without repeats."""
        grid = _grid_elements()
        cand = np.concatenate([grid[self.contains(grid)], self.constraint_elements()])
        keep = []
        for m in cand:
            if not any(np.abs(m - k).max() < 1e-9 for k in keep):
                keep.append(m)
        return np.stack(keep)

    def sample(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """``n`` elements drawn uniformly (Haar measure) with the NumPy Generator ``rng``."""
        rng = np.random.default_rng() if rng is None else rng
        if self.is_finite:
            return self.elements()[rng.integers(0, self.order, int(n))]
        return self._sample(int(n), rng)

    # ---- elements ---------------------------------------------------------------------
    def _member_mask(self, mats: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def contains(self, elements) -> np.ndarray:
        """Boolean mask: which orthogonal matrices of ``elements`` (n, 3, 3) lie in the group."""
        return self._member_mask(np.asarray(elements, dtype=np.float64).reshape(-1, 3, 3))

    def split_batch(self, elements):
        """Validate a batch of elements (a (3, 3) matrix, an (n, 3, 3) array or a list of
        matrices) and return ``(mats (n, 3, 3) float64, None)``."""
        try:
            mats = np.asarray(elements, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"elements of {self.name} are 3×3 orthogonal matrices; got "
                             f"{type(elements).__name__}") from None
        if mats.shape == (3, 3):
            mats = mats[None]
        if mats.ndim != 3 or mats.shape[1:] != (3, 3):
            raise ValueError(f"elements of {self.name} must have shape (3, 3) or (n, 3, 3), got "
                             f"{mats.shape}")
        if not np.isfinite(mats).all():
            raise ValueError("elements contain NaN or inf")
        err = np.abs(np.swapaxes(mats, 1, 2) @ mats - np.eye(3)).max(axis=(1, 2), initial=0)
        if mats.size and err.max() > ATOL:
            i = int(err.argmax())
            raise ValueError(f"element {i} is not orthogonal (max |MᵀM − I| = {err[i]:.2e}); "
                             f"elements of {self.name} are orthogonal 3×3 matrices")
        ok = self._member_mask(mats) if len(mats) else np.ones(0, bool)
        if not ok.all():
            i = int(np.argmin(ok))
            raise ValueError(f"element {i} = {np.round(mats[i], 6).tolist()} is not in "
                             f"{self!r}; use group.elements(), sample() or testing_elements(), "
                             f"or pick a group that contains it")
        return mats, None

    # ---- irreps -------------------------------------------------------------------------
    def irrep(self, *id) -> "Irrep3":
        """The irrep with escnn id ``id`` (e.g. ``SO3().irrep(2)``, ``O3().irrep(1, 1)``,
        ``FullOctahedral().irrep((1,), (-1,), 0)``)."""
        return Irrep3(self, self._check_id(_as_id(id)))

    def irreps(self) -> tuple:
        """All irreps (finite) or those up to ``maximum_frequency``, in escnn's order."""
        return tuple(Irrep3(self, i) for i in self._irrep_ids())

    @property
    def trivial_irrep(self) -> "Irrep3":
        return self.irreps()[0]

    @property
    def trivial_representation(self):
        return self.trivial_irrep.representation

    @property
    def regular_representation(self):
        from .representations import regular_representation
        return regular_representation(self)

    def quotient_representation(self, subgroup_id):
        from .representations import quotient_representation
        return quotient_representation(self, subgroup_id)

    @property
    def standard_representation(self):
        from .representations import standard_representation
        return standard_representation(self)

    def _id_error(self, id, expected):
        return ValueError(f"unknown irrep id {id!r} of {self.name}: expected {expected}")


@dataclass(frozen=True, eq=False)
class Irrep3(IrrepBase):
    """An irrep of a group acting on R³; build it with ``group.irrep(*id)``."""

    group: Group3
    id: tuple

    def __eq__(self, other):
        return isinstance(other, Irrep3) and self.group == other.group and self.id == other.id

    def __hash__(self):
        return hash((self.group, self.id))

    def __repr__(self):
        return f"{self.group.name}|{self.name}"

    @property
    def _info(self):
        return _irrep_info(self.group, self.id)

    @property
    def dim(self) -> int:
        return self._info[0]

    @property
    def type(self) -> str:
        """'R' (real type) or 'C' (complex type: the 2-dim irreps of C_N / SO(2) and products)."""
        return self._info[1]

    @property
    def name(self) -> str:
        return self._info[2]

    @property
    def sum_of_squares_constituents(self) -> int:
        return 2 if self.type == "C" else 1

    @property
    def is_trivial(self) -> bool:
        return self == self.group.trivial_irrep

    def evaluate(self, elements) -> np.ndarray:
        """ψ at a (3, 3) element → (d, d), or at (n, 3, 3) elements → (n, d, d)."""
        single = np.shape(elements) == (3, 3)
        mats, _ = self.group.split_batch(elements)
        out = self.evaluate_split(mats, None)
        return out[0] if single else out

    __call__ = evaluate

    def evaluate_split(self, f, r=None) -> np.ndarray:
        """ψ at validated elements ``f`` (n, 3, 3) (``r`` is unused)."""
        f = np.asarray(f, dtype=np.float64).reshape(-1, 3, 3)
        if not len(f):
            return np.zeros((0, self.dim, self.dim))
        return self.group._evaluate(self.id, f)

    def character(self, g) -> float:
        return float(np.trace(self.evaluate(g)))

    @cached_property
    def representation(self):
        from ..representation import Representation
        return Representation(self.group, [self], np.eye(self.dim), name=self.name)

    def __reduce__(self):
        return (Irrep3, (self.group, self.id))


@lru_cache(maxsize=None)
def _irrep_info(group, id):
    return group._info(id)


def _det(mats):
    return np.sign(np.linalg.det(mats))


# =========================================================================================
# SO(3), O(3)
# =========================================================================================
def _mf(x):
    mf = _pg._int(x, "maximum_frequency")
    if mf < 0:
        raise ValueError(f"maximum_frequency must be >= 0, got {mf}")
    return mf


def _wigner(l, R):
    from .so3 import wigner_D
    if l == 0:
        return np.ones((len(R), 1, 1))
    return wigner_D(l, R)


_GENERIC_ROTATIONS = (axis_angle_matrix([1.0, 2.0, 3.0], 1.0),
                      axis_angle_matrix([-2.0, 0.5, 1.0], math.sqrt(2.0)))


@dataclass(frozen=True, repr=False)
class SO3(Group3):
    """All rotations. Irreps ``(l,)`` = real Wigner D^l (name ``irrep_l``), l ≤ maximum_frequency
    in :meth:`irreps` (any l ≥ 0 via :meth:`irrep`); maximum_frequency does not enter equality."""

    maximum_frequency: int = field(default=2, compare=False)
    kind = "SO3"
    name = "SO(3)"
    order = -1

    def __post_init__(self):
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

    def __repr__(self):
        return f"SO3(maximum_frequency={self.maximum_frequency})"

    def _member_mask(self, mats):
        return _det(mats) > 0

    def _constraint(self):
        return list(_GENERIC_ROTATIONS)

    def _sample(self, n, rng):
        from scipy.spatial.transform import Rotation
        return Rotation.random(n, random_state=rng).as_matrix().reshape(n, 3, 3)

    def _irrep_ids(self):
        return [(l,) for l in range(self.maximum_frequency + 1)]

    def _check_id(self, id):
        if len(id) != 1 or not isinstance(id[0], int) or isinstance(id[0], bool) or id[0] < 0:
            raise self._id_error(id, "(l,) with an integer l >= 0")
        return id

    def _info(self, id):
        return 2 * id[0] + 1, "R", f"irrep_{id[0]}"

    def _evaluate(self, id, mats):
        return _wigner(id[0], mats)


@dataclass(frozen=True, repr=False)
class O3(Group3):
    """Rotations and rotations composed with the inversion. Irrep ``(j, l)`` (name ``irrep_j,l``):
    M ↦ det(M)^j · D^l(det(M)·M); the vector is (1, 1), the pseudo-scalar (1, 0)."""

    maximum_frequency: int = field(default=2, compare=False)
    kind = "O3"
    name = "O(3)"
    order = -1

    def __post_init__(self):
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

    def __repr__(self):
        return f"O3(maximum_frequency={self.maximum_frequency})"

    def _member_mask(self, mats):
        return np.ones(len(mats), bool)

    def _constraint(self):
        return list(_GENERIC_ROTATIONS) + [-np.eye(3)]

    def _sample(self, n, rng):
        s = np.where(rng.integers(0, 2, n) == 1, -1.0, 1.0)
        return SO3()._sample(n, rng) * s[:, None, None]

    def _irrep_ids(self):
        return [(j, l) for j in (0, 1) for l in range(self.maximum_frequency + 1)]

    def _check_id(self, id):
        if (len(id) != 2 or id[0] not in (0, 1) or not isinstance(id[1], int)
                or isinstance(id[1], bool) or id[1] < 0):
            raise self._id_error(id, "(j, l) with parity j in {0, 1} and degree l >= 0")
        return id

    def _info(self, id):
        return 2 * id[1] + 1, "R", f"irrep_{id[0]},{id[1]}"

    def _evaluate(self, id, mats):
        d = _det(mats)
        return _wigner(id[1], mats * d[:, None, None]) * (d ** id[0])[:, None, None]


# =========================================================================================
# Octahedral, Icosahedral
# =========================================================================================
@lru_cache(maxsize=None)
def _platonic_table(kind: str, l: int) -> np.ndarray:
    E = _finite.octahedral_elements() if kind == "O" else _finite.icosahedral_elements()
    if l in ((0, 1) if kind == "O" else (0, 1, 2)):
        t = _wigner(l, E)
        t.setflags(write=False)
        return t
    return _finite.octahedral_irrep_table(l) if kind == "O" else _finite.icosahedral_irrep_table(l)


class _Platonic(Group3):
    _ids = ()
    _dims = {}
    _axes = {}
    _self_id = ""

    def __repr__(self):
        return f"{type(self).__name__}()"

    @property
    def order(self):
        return len(self._table())

    def _table(self):
        return _finite.octahedral_elements() if self.kind == "O" else _finite.icosahedral_elements()

    def _elements(self):
        return self._table()

    def _generators(self):
        gens = _finite.OCTAHEDRAL_GENERATORS if self.kind == "O" else _finite.ICOSAHEDRAL_GENERATORS
        return self._table()[list(gens)]

    def _member_mask(self, mats):
        return _finite.element_indices(self._table(), mats, ATOL) >= 0

    def _irrep_ids(self):
        return list(self._ids)

    def _check_id(self, id):
        if id not in self._ids:
            raise self._id_error(id, "one of " + ", ".join(map(str, self._ids)))
        return id

    def _info(self, id):
        return self._dims[id[0]], "R", f"irrep_{id[0]}"

    def _evaluate(self, id, mats):
        idx = _finite.element_indices(self._table(), mats, ATOL)
        return np.array(_platonic_table(self.kind, id[0])[idx])

    def _subgroup_elements(self, sid):
        """escnn's subgroup ids: (False, N) = C_N about the listed axis, (True, 1) = the C2
        about adj⁻¹ẑ with adj the 120° rotation about (1, 1, −1), ('octa',)/('ico',) = G."""
        sid = sid if isinstance(sid, tuple) else (sid,)
        if sid == (self._self_id,):
            return self._table()
        if sid == (True, 1):
            adj = axis_angle_matrix([1.0, 1.0, -1.0], 2 * math.pi / 3)
            mats = np.stack([np.eye(3), adj.T @ _rz(math.pi)[0] @ adj])
        elif len(sid) == 2 and sid[0] is False and sid[1] in self._axes:
            N = sid[1]
            mats = np.stack([axis_angle_matrix(self._axes[N], 2 * math.pi * k / N)
                             for k in range(N)])
        else:
            raise ValueError(f"subgroup_id {sid!r} is not supported for {self.name}; expected "
                             f"(False, N) with N in {sorted(self._axes)}, (True, 1) or "
                             f"('{self._self_id}',)")
        return self._table()[_finite.element_indices(self._table(), mats, ATOL)]


@dataclass(frozen=True, repr=False)
class Octahedral(_Platonic):
    """The 24 rotations of the cube (escnn ``octaOnR3``). Irreps (0,) trivial, (1,) = D¹,
    (-1,) = sign·D¹, (2,) (2-dim), (3,) sign; escnn's exact matrices (see :mod:`._finite`)."""

    kind = "O"
    name = "Octahedral"
    _self_id = "octa"
    _ids = ((0,), (1,), (-1,), (2,), (3,))
    _dims = {0: 1, 1: 3, -1: 3, 2: 2, 3: 1}
    _axes = {1: [0.0, 0.0, 1.0], 2: [0.0, 0.0, 1.0], 3: [1.0, 1.0, 1.0], 4: [0.0, 0.0, 1.0]}


@dataclass(frozen=True, repr=False)
class Icosahedral(_Platonic):
    """The 60 rotations of the icosahedron (escnn ``icoOnR3``). Irreps (0,), (1,), (2,) = D⁰, D¹,
    D²; (3,) the second 3-dim irrep, (4,) the 4-dim one (escnn's exact matrices)."""

    kind = "I"
    name = "Icosahedral"
    _self_id = "ico"
    _ids = ((0,), (1,), (2,), (3,), (4,))
    _dims = {0: 1, 1: 3, 2: 5, 3: 3, 4: 4}
    _axes = {1: [0.0, 0.0, 1.0], 2: [0.0, 0.0, 1.0], 3: [1.0, 1.0, 1.0],
             5: [_finite.PHI, 0.0, 1.0]}


# =========================================================================================
# planar-type groups: rotations about z, dihedral, conical, mirror, inversion, trivial
# =========================================================================================
def _check_n(N, minimum, hint):
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or not (N == -1 or N >= minimum):
        raise ValueError(f"N must be an integer >= {minimum} (number of rotations) or -1 (all "
                         f"rotations about z), got {N!r}{hint}")
    return int(N)


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

    def _planar_irrep(self, id):
        from ..irreps import Irrep
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


@dataclass(frozen=True, repr=False)
class RotationsZ(_PlanarKind):
    """C_N (N ≥ 1) / SO(2) (N = −1) of rotations Rz(θ) about z (escnn ``rot2dOnR3``); element
    r ↦ Rz(2πr/N). Irreps ``(k,)`` of :class:`cupysteer.CyclicGroup` / :class:`cupysteer.SO2`."""

    N: int
    maximum_frequency: int = field(default=2, compare=False)
    kind = "CN"

    def __post_init__(self):
        object.__setattr__(self, "N", _check_n(self.N, 1, ""))
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

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
        object.__setattr__(self, "N", _check_n(self.N, 2, "; escnn's N = 1 case is a C2 about "
                                               "an in-plane axis, not supported"))
        object.__setattr__(self, "axis", _pg._check_axis(self.axis))
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

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
        object.__setattr__(self, "axis", _pg._check_axis(self.axis))

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


# =========================================================================================
# direct products C2 × H (H ⊂ SO(3)); c = 1 means "composed with the inversion"
# =========================================================================================
class _Product(Group3):
    """C2 × H: element (c, h) ↦ (−1)^c h, order: all c = 0 (H's order), then c = 1. Irreps
    ((a,), id_H, 0): (c, h) ↦ (−1)^{ac} ψ_H(h); names ``irrep_[(a,),id_H](0)``."""

    @property
    def order(self):
        return -1 if self.factor.order < 0 else 2 * self.factor.order

    def split_inversion(self, mats):
        """(c, h): inversion bits c (int64, 1 where det = −1) and h = (−1)^c M ∈ H."""
        c, h = self._split(np.asarray(mats, dtype=np.float64).reshape(-1, 3, 3))
        return (c < 0).astype(np.int64), h

    def _split(self, mats):
        d = _det(mats)
        return d, mats * d[:, None, None]

    def _member_mask(self, mats):
        return self.factor._member_mask(self._split(mats)[1])

    def _elements(self):
        F = self.factor.elements()
        return np.concatenate([F, -F])

    def _generators(self):
        return np.concatenate([-np.eye(3)[None], self.factor._generators()])

    def _constraint(self):
        return np.concatenate([-np.eye(3)[None], self.factor._constraint()])

    def _sample(self, n, rng):
        s = np.where(rng.integers(0, 2, n) == 1, -1.0, 1.0)
        return self.factor.sample(n, rng) * s[:, None, None]

    def _irrep_ids(self):
        return [((a,), i, 0) for a in (0, 1) for i in self.factor._irrep_ids()]

    def _check_id(self, id):
        if len(id) == 2:
            id = id + (0,)
        if len(id) != 3 or id[0] not in ((0,), (1,)) or id[2] != 0 or not isinstance(id[1], tuple):
            raise self._id_error(id, "((a,), id_H, 0) with a in {0, 1} and id_H an irrep id of "
                                     f"{self.factor.name}, e.g. ((1,), {self.factor._irrep_ids()[-1]}, 0)")
        return (id[0], self.factor._check_id(id[1]), 0)

    def _info(self, id):
        d, t, _ = self.factor._info(id[1])
        return d, t, f"irrep_[{id[0]},{id[1]}](0)"

    def _evaluate(self, id, mats):
        d, h = self._split(mats)
        return self.factor._evaluate(id[1], h) * (d ** id[0][0])[:, None, None]

    def _subgroup_elements(self, sid):
        """(id_C2, id_H): id_C2 = 1 ({e}) or 2 (C2), id_H a subgroup id of H."""
        if not (isinstance(sid, tuple) and len(sid) == 2 and sid[0] in (1, 2)):
            raise ValueError(f"subgroup_id {sid!r} of {self.name}: expected (M, id_H) with M = 1 "
                             f"or 2 (the C2 part) and id_H a subgroup id of {self.factor.name}")
        H = self.factor._subgroup_elements(sid[1])
        return np.concatenate([H, -H]) if sid[0] == 2 else H

    def __repr__(self):
        return f"{type(self).__name__}()"


@dataclass(frozen=True, repr=False)
class FullOctahedral(_Product):
    """O_h = C2 × O (escnn ``fullOctaOnR3``, 48 elements)."""

    kind = "Oh"
    name = "FullOctahedral"
    factor = Octahedral()


@dataclass(frozen=True, repr=False)
class FullIcosahedral(_Product):
    """I_h = C2 × I (escnn ``fullIcoOnR3``, 120 elements)."""

    kind = "Ih"
    name = "FullIcosahedral"
    factor = Icosahedral()


@dataclass(frozen=True, repr=False)
class Cylindrical(_Product):
    """C2 × C_N / C2 × SO(2) (escnn ``cylindricalOnR3(N)``): Rz(θ) with and without inversion.
    escnn names it 'Cylindrical' (N = −1), 'Klein4' (N = 2) or 'CylindricalDiscrete'."""

    N: int
    maximum_frequency: int = field(default=2, compare=False)
    kind = "cyl"

    def __post_init__(self):
        object.__setattr__(self, "N", _check_n(self.N, 2, "; cylindricalOnR3(1) is Inversion()"))
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

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
        object.__setattr__(self, "N", _check_n(self.N, 2, "; escnn's N = 1 case is a C2 × C2 "
                                               "about other axes, not supported"))
        object.__setattr__(self, "axis", _pg._check_axis(self.axis))
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

    @property
    def factor(self):
        return DihedralZ(self.N, self.axis / 2, self.maximum_frequency)

    @property
    def name(self):
        return "FullCylindrical" if self.N == -1 else "FullCylindricalDiscrete"

    def __repr__(self):
        return (f"FullCylindrical({self.N}, axis={self.axis!r}, "
                f"maximum_frequency={self.maximum_frequency})")
