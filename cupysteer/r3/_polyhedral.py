r"""The rotations of the cube and the icosahedron, O and I (escnn ``octaOnR3`` / ``icoOnR3``,
element tables and irreps in :mod:`._finite`), and O_h = C2 × O, I_h = C2 × I; re-exported by
:mod:`cupysteer.r3.groups`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import _finite
from ._base import ATOL, Group3, _rz, _wigner, axis_angle_matrix
from ._product import _Product

# kind: (elements(), escnn's generator indices, the ids l whose irrep is Wigner D^l, table(l))
_TABLES = {
    "O": (_finite.octahedral_elements, _finite.OCTAHEDRAL_GENERATORS, (0, 1),
          _finite.octahedral_irrep_table),
    "I": (_finite.icosahedral_elements, _finite.ICOSAHEDRAL_GENERATORS, (0, 1, 2),
          _finite.icosahedral_irrep_table),
}


@lru_cache(maxsize=None)
def _platonic_table(kind: str, l: int) -> np.ndarray:
    elements, _, wigner_ids, irrep_table = _TABLES[kind]
    if l in wigner_ids:
        t = _wigner(l, elements())
        t.setflags(write=False)
        return t
    return irrep_table(l)


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
        return _TABLES[self.kind][0]()

    def _elements(self):
        return self._table()

    def _generators(self):
        return self._table()[list(_TABLES[self.kind][1])]

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
