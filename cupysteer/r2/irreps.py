r"""Real irreducible representations of the planar groups, in e2cnn's exact real forms.

With :math:`\phi = k\,\theta_r` (exactly reduced modulo :math:`2\pi` for finite groups):

================  =====================  ===================================================
group             irrep (id)             matrix at (f, r)
================  =====================  ===================================================
C_N, SO(2)        ``(k,)``               1 (k = 0); rot(φ) (0 < k < N/2); cos φ = ±1 (k = N/2)
flip group        ``(j,)``               (−1)^{jf}
D_N, O(2)         ``(j, k)``             (−1)^{jf} cos φ (1-dim: k = 0 or N/2);
                                         rot(φ)·diag(1, (−1)^f) (2-dim, j = 1)
================  =====================  ===================================================

``sum_of_squares_constituents`` (the dimension of the endomorphism algebra) is 2 for the
2-dim irreps of C_N and SO(2), 1 otherwise.

>>> from cupysteer import CyclicGroup
>>> CyclicGroup(8).irrep(1).dim
2
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..group import IrrepBase
from ..representation import Representation

__all__ = ["Irrep", "rotation_matrix"]

TWO_PI = 2.0 * math.pi
#: the reflection axis of D_N, O(2) and the flip group unless given: (x, y) ↦ (−x, y)
DEFAULT_AXIS = math.pi / 2


def rotation_matrix(angle) -> np.ndarray:
    """rot(a) = [[cos a, -sin a], [sin a, cos a]]; vectorised over ``angle`` (shape (..., 2, 2))."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _is_flip_group(group) -> bool:
    """The flip group's irreps have ids (j,), D_N's and O(2)'s (j, k)."""
    return group.has_reflections and len(group.irrep_id(0, 0)) == 1


def _irrep_error(group, id, why):
    return ValueError(f"unknown irrep id {id!r} of {group.name}: {why}")


@dataclass(frozen=True)
class Irrep(IrrepBase):
    """An irrep of ``group`` with flip frequency ``flip_frequency`` (j) and rotation frequency
    ``frequency`` (k). Build it with ``group.irrep(*id)``."""

    group: object
    flip_frequency: int
    frequency: int

    @classmethod
    def from_id(cls, group, id) -> "Irrep":
        id = tuple(int(i) if isinstance(i, (int, np.integer)) and not isinstance(i, bool) else i
                   for i in id)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in id):
            raise _irrep_error(group, id, "ids are integers (not bools)")
        N = group.rotation_order
        if _is_flip_group(group):
            if len(id) != 1 or id[0] not in (0, 1):
                raise _irrep_error(group, id, "the flip group has irreps (0,) and (1,)")
            return cls(group, id[0], 0)
        if not group.has_reflections:
            if len(id) != 1 or id[0] < 0 or (N > 0 and 2 * id[0] > N):
                bound = f"0 <= k <= {N // 2}" if N > 0 else "k >= 0"
                raise _irrep_error(group, id, f"expected (k,) with {bound}")
            return cls(group, 0, id[0])
        if len(id) != 2:
            raise _irrep_error(group, id, "expected (j, k): flip frequency j, frequency k")
        j, k = id
        if j not in (0, 1) or k < 0 or (N > 0 and 2 * k > N):
            raise _irrep_error(group, id, "j must be 0 or 1 and 0 <= k <= N/2")
        one_dim = k == 0 or (N > 0 and 2 * k == N)
        if j == 0 and not one_dim:
            raise _irrep_error(group, id, f"the 2-dim irreps are (1, k); use (1, {k})")
        return cls(group, j, k)

    # ---- attributes -----------------------------------------------------------------
    @property
    def id(self) -> tuple:
        return self.group.irrep_id(self.flip_frequency, self.frequency)

    @property
    def name(self) -> str:
        return "irrep_" + ",".join(str(i) for i in self.id)

    @property
    def dim(self) -> int:
        N = self.group.rotation_order
        if self.frequency == 0 or (N > 0 and 2 * self.frequency == N):
            return 1
        return 2

    @property
    def sum_of_squares_constituents(self) -> int:
        return 2 if self.dim == 2 and not self.group.has_reflections else 1

    @property
    def is_trivial(self) -> bool:
        return self.flip_frequency == 0 and self.frequency == 0

    def __repr__(self) -> str:
        return f"{self.group.name}|{self.name}"

    # ---- evaluation -----------------------------------------------------------------
    def __call__(self, g) -> np.ndarray:
        """The (dim × dim) matrix of the irrep at the element ``g``."""
        return self.evaluate([g])[0]

    def evaluate(self, elements) -> np.ndarray:
        """Matrices at a batch of elements, shape (n, dim, dim)."""
        f, r = self.group.split_batch(elements)
        return self.evaluate_split(f, r)

    def evaluate_split(self, f: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Matrices at elements given as flip bits ``f`` and rotations ``r``."""
        phi = self.group.phase(self.frequency, r)
        sign = np.where((self.flip_frequency * f) % 2 == 1, -1.0, 1.0)
        if self.dim == 1:
            return (sign * np.cos(phi))[:, None, None]
        m = rotation_matrix(phi)
        m[..., :, 1] *= np.where(f == 1, -1.0, 1.0)[:, None]
        return m

    def character(self, g) -> float:
        return float(np.trace(self(g)))

    @cached_property
    def representation(self):
        """This irrep as a :class:`~cupysteer.Representation` (identity change of basis)."""
        return Representation(self.group, [self], np.eye(self.dim), name=self.name)

    def __reduce__(self):
        return (Irrep, (self.group, self.flip_frequency, self.frequency))
