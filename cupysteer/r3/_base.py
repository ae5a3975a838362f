r"""The base classes of the groups acting on R³ and the helpers they share.

:class:`Group3` (elements are 3×3 orthogonal matrices; its irreps are
:class:`~cupysteer.r3.irreps.Irrep3`); the groups themselves live in :mod:`._rotation_groups`,
:mod:`._polyhedral`, :mod:`._axial` (with the C2 × H construction of :mod:`._product`), and
:mod:`cupysteer.r3.groups` is the public module that lists them.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .. import _checks
from .._memory import check_host
from ..group import GroupBase
from . import grids as _grids
from . import representations as _representations
from .irreps import Irrep3
from .so3 import wigner_D
from .space import SPACE

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
        if isinstance(x, (bool, np.bool_)):  # True == 1 would silently pick irrep 1
            raise ValueError(f"unknown irrep id {tuple(id)!r}: the entries of an irrep id are "
                             f"integers, not bools")
        if isinstance(x, np.integer):
            return int(x)
        return x
    return norm(tuple(id))


class Group3(GroupBase):
    """Base class of the groups acting on R³ (see :mod:`cupysteer.r3.groups`)."""

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
        check_host(self.order * ELEMENT_BYTES, lambda: f"the {self.order} elements of {self!r}",
                   "use a smaller group (a smaller N)")
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
        id = _as_id(id)
        try:
            return Irrep3(self, self._check_id(id))
        except ValueError as exc:
            if len(id) == 1 and isinstance(id[0], tuple):
                raise ValueError(f"{exc}; the id's entries are separate arguments: did you "
                                 f"mean irrep(*{id[0]!r})?") from None
            raise

    def irreps(self) -> tuple:
        """All irreps (finite) or those up to ``maximum_frequency``, in escnn's order."""
        n = self.num_irreps
        check_host(n * IRREP_BYTES, lambda: f"listing the irreps of {self!r} ({n})",
                   "use a smaller N or maximum_frequency; a trivial field needs no listing "
                   "(group.trivial_representation is built directly)")
        return tuple(Irrep3(self, i) for i in self._irrep_ids())

    @property
    def num_irreps(self) -> int:
        """How many irreps :meth:`irreps` lists (without listing them where that is costly)."""
        return len(self._irrep_ids())

    def _trivial_id(self) -> tuple:
        """The escnn id of the trivial irrep (the first of :meth:`irreps`)."""
        return self._irrep_ids()[0]

    @property
    def trivial_irrep(self) -> "Irrep3":
        """The trivial irrep, built directly (O(1) for any N)."""
        return _trivial_irrep(self)

    space = SPACE  # R³
    _representations = _representations
    #: the module whose ``grid(group, ...)`` lists grids of elements (Fourier transforms)
    _grids = _grids

    @property
    def cache_id(self) -> str:
        return f"{type(self).__name__}|{self!r}"

    def action_matrices(self, elements) -> np.ndarray:
        """The (n, 3, 3) matrices of the elements: every element is its own action on R³."""
        return self.split_batch(elements)[0]

    def check_single_element(self, g) -> None:
        if np.ndim(g) == 3:
            raise ValueError(f"ρ(g) takes one element (a 3×3 matrix), got an array of shape "
                             f"{np.shape(g)}; for a batch (n, 3, 3) use .evaluate(batch)")

    @property
    def standard_representation(self):
        """The 3×3 action ρ(g) = g, named 'standard'."""
        return _representations.standard_representation(self)

    def _standard_basis(self) -> tuple:
        """(irreps, Q) of the standard representation of a continuous group."""
        raise NotImplementedError

    def _id_error(self, id, expected):
        return ValueError(f"unknown irrep id {id!r} of {self.name}: expected {expected}")


@lru_cache(maxsize=256)
def _trivial_irrep(group) -> "Irrep3":
    return Irrep3(group, group._trivial_id())


#: bytes per listed irrep and per listed element (3×3 float64 and its temporaries), for the
#: estimate made before listing them
IRREP_BYTES = 600
ELEMENT_BYTES = 300


def _det(mats):
    return np.sign(np.linalg.det(mats))


#: largest ``maximum_frequency`` accepted: irreps of degree 64 are 129-dimensional, far beyond
#: what any k×k×k grid resolves (the basis settings cap the harmonic degree at 64 too)
MAX_FREQUENCY = 64


def _mf(x):
    mf = _checks.integer(x, "maximum_frequency")
    if not 0 <= mf <= MAX_FREQUENCY:
        raise ValueError(f"maximum_frequency must be between 0 and {MAX_FREQUENCY}, got {mf}; "
                         f"it only decides which irreps irreps() lists (pass a smaller value)")
    return mf


def _wigner(l, R):
    if l == 0:
        return np.ones((len(R), 1, 1))
    return wigner_D(l, R)


def _random_inversions(n, rng) -> np.ndarray:
    """(n, 1, 1) signs ±1 drawn uniformly with ``rng``: multiply a sample of H by them to sample
    C2 × H."""
    return np.where(rng.integers(0, 2, n) == 1, -1.0, 1.0)[:, None, None]
