r"""The real irreps of the groups acting on R³ (escnn's), as one class: :class:`Irrep3`.

An irrep is its group and escnn id; the matrices come from the group (``group._evaluate``):
SO(3) ``(l,)`` = D^l (real Wigner, Y^l(Ru) = D^l(R) Y^l(u)); O(3) ``(j, l)`` =
det^j · D^l(det·M); O: ``(0,) (1,) (-1,) (2,) (3,)``; I: ``(0,)``..``(4,)``; planar-type groups:
the planar ``(k,)`` / ``(j, k)``; C2 × H: ``((a,), id_H, 0)`` = det^a · ψ_H(det·M).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from ..group import IrrepBase
from ..representation import Representation

__all__ = ["Irrep3"]


@dataclass(frozen=True, eq=False)
class Irrep3(IrrepBase):
    """An irrep of a group acting on R³; build it with ``group.irrep(*id)``."""

    group: object
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
        return Representation(self.group, [self], np.eye(self.dim), name=self.name)

    def __reduce__(self):
        return (Irrep3, (self.group, self.id))


@lru_cache(maxsize=4096)
def _irrep_info(group, id):
    return group._info(id)
