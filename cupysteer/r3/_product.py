r"""Direct products C2 × H (H ⊂ SO(3)), c = 1 meaning "composed with the inversion": the common
base of FullOctahedral, FullIcosahedral (:mod:`._polyhedral`), Cylindrical and FullCylindrical
(:mod:`._axial`)."""
from __future__ import annotations

import numpy as np

from ..representation import block_diag
from ._base import Group3, _det, _random_inversions


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

    def _standard_basis(self):
        xy, z, C = self.factor._standard_parts()
        return ([self.irrep((1,), xy.id, 0), self.irrep((1,), z.id, 0)],
                block_diag(C, np.eye(1)))

    def _sample(self, n, rng):
        s = _random_inversions(n, rng)
        return self.factor.sample(n, rng) * s

    def _irrep_ids(self):
        return [((a,), i, 0) for a in (0, 1) for i in self.factor._irrep_ids()]

    @property
    def num_irreps(self) -> int:
        return 2 * self.factor.num_irreps

    def _trivial_id(self):
        return ((0,), self.factor._trivial_id(), 0)

    def _check_id(self, id):
        if len(id) == 2:
            id = id + (0,)
        if len(id) != 3 or id[0] not in ((0,), (1,)) or id[2] != 0 or not isinstance(id[1], tuple):
            raise self._id_error(id, "((a,), id_H, 0) with a in {0, 1} and id_H an irrep id of "
                                     f"{self.factor.name}, e.g. ((1,), "
                                     f"{self.factor._irrep_ids()[-1]}, 0)")
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
