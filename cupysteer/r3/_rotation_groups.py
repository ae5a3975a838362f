r"""SO(3) and O(3) (escnn ``rot3dOnR3`` / ``flipRot3dOnR3``); re-exported by
:mod:`cupysteer.r3.groups`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._base import Group3, _det, _mf, _random_inversions, _wigner, axis_angle_matrix
from .so3 import P_STANDARD

_GENERIC_ROTATIONS = (axis_angle_matrix([1.0, 2.0, 3.0], 1.0),
                      axis_angle_matrix([-2.0, 0.5, 1.0], math.sqrt(2.0)))


def _is_degree(l) -> bool:
    return isinstance(l, int) and not isinstance(l, bool) and l >= 0


@dataclass(frozen=True, repr=False)
class _Continuous3(Group3):
    """SO(3) / O(3): continuous, irreps listed up to ``maximum_frequency`` (not part of
    equality)."""

    maximum_frequency: int = field(default=2, compare=False)
    order = -1

    def __post_init__(self):
        object.__setattr__(self, "maximum_frequency", _mf(self.maximum_frequency))

    def __repr__(self):
        return f"{type(self).__name__}(maximum_frequency={self.maximum_frequency})"


@dataclass(frozen=True, repr=False)
class SO3(_Continuous3):
    """All rotations. Irreps ``(l,)`` = real Wigner D^l (name ``irrep_l``), l ≤ maximum_frequency
    in :meth:`irreps` (any l ≥ 0 via :meth:`irrep`); maximum_frequency does not enter equality."""

    kind = "SO3"
    name = "SO(3)"

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
        if len(id) != 1 or not _is_degree(id[0]):
            raise self._id_error(id, "(l,) with an integer l >= 0")
        return id

    def _info(self, id):
        return 2 * id[0] + 1, "R", f"irrep_{id[0]}"

    def _evaluate(self, id, mats):
        return _wigner(id[0], mats)

    def _standard_basis(self):
        return [self.irrep(1)], P_STANDARD


@dataclass(frozen=True, repr=False)
class O3(_Continuous3):
    """Rotations and rotations composed with the inversion. Irrep ``(j, l)`` (name ``irrep_j,l``):
    M ↦ det(M)^j · D^l(det(M)·M); the vector is (1, 1), the pseudo-scalar (1, 0)."""

    kind = "O3"
    name = "O(3)"

    def _member_mask(self, mats):
        return np.ones(len(mats), bool)

    def _constraint(self):
        return list(_GENERIC_ROTATIONS) + [-np.eye(3)]

    def _sample(self, n, rng):
        s = _random_inversions(n, rng)
        return SO3()._sample(n, rng) * s

    def _irrep_ids(self):
        return [(j, l) for j in (0, 1) for l in range(self.maximum_frequency + 1)]

    def _check_id(self, id):
        if len(id) != 2 or id[0] not in (0, 1) or not _is_degree(id[1]):
            raise self._id_error(id, "(j, l) with parity j in {0, 1} and degree l >= 0")
        return id

    def _info(self, id):
        return 2 * id[1] + 1, "R", f"irrep_{id[0]},{id[1]}"

    def _evaluate(self, id, mats):
        d = _det(mats)
        return _wigner(id[1], mats * d[:, None, None]) * (d ** id[0])[:, None, None]

    def _standard_basis(self):
        return [self.irrep(1, 1)], P_STANDARD
