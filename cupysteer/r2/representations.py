r"""Regular and quotient representations of the planar groups, with e2cnn's closed-form
change of basis (nothing is found by numerical optimisation).

* regular: ρ(e)[j, i] = 1 iff g_j = e·g_i; column (ψ, c, i) of Q is
  :math:`\sqrt{d_\psi/|G|}\, \psi(g)[i, c]` over the elements g (e2cnn's element order);
* quotient G/H: the permutation action on the cosets, Q from the induced invariant vectors.
"""
from __future__ import annotations

import math

import numpy as np

from .._memory import check_host, check_representation
from ..representation import Representation

__all__ = ["regular_representation", "quotient_representation"]

#: bytes per element while the cosets are listed (the element list and the coset labels)
COSET_BYTES_PER_ELEMENT = 300


def regular_representation(group) -> Representation:
    r"""Regular representation of a finite group: ρ(e)[j, i] = 1 iff g_j = e·g_i.

    Each irrep ψ appears d_ψ / sos_ψ times; column (ψ, c, i) of Q is
    :math:`\sqrt{d_\psi/|G|}\, \psi(g)[i, c]` over the elements g (e2cnn's element order).
    """
    if not group.is_finite:
        raise ValueError(f"{group.name} is continuous and has no regular representation; "
                         f"use irreps or a finite subgroup")
    check_representation(group.order, lambda: f"the regular representation of {group.name} "
                                              f"(size {group.order})",
                         "use a smaller N, or irreps / quotient fields")
    elements = group.elements()
    f, r = group.split_batch(elements)
    order = len(elements)
    irreps, cols = [], []
    for psi in group.irreps():
        M = psi.evaluate_split(f, r)  # (|G|, d, d)
        scale = math.sqrt(psi.dim / order)
        for c in range(psi.dim // psi.sum_of_squares_constituents):
            irreps.append(psi)
            cols.append(scale * M[:, :, c])
    return Representation(group, irreps, np.concatenate(cols, axis=1), name="regular")


def _cosets(group, sub):
    """Coset representatives r_i (first uncovered element, in element order) and the map
    element → coset index."""
    H = sub.elements()
    reps, label = [], {}
    for g in group.elements():
        if g in label:
            continue
        label.update({group.compose(g, h): len(reps) for h in H})
        reps.append(g)
    return reps, label


def quotient_representation(group, subgroup_id) -> Representation:
    """Permutation action of G on the cosets G/H (e2cnn's ``quotient_repr(subgroup_id)``),
    with e2cnn's closed-form change of basis (induced invariant vectors)."""
    sub = group.subgroup(subgroup_id)
    if group.is_finite:
        size = group.order // sub.group.order
        check_representation(size, lambda: f"the quotient representation {group.name}/"
                                           f"{sub.group.name} (size {size})",
                             "use a smaller N or a larger subgroup")
        check_host(group.order * COSET_BYTES_PER_ELEMENT,
                   lambda: f"the cosets of {group.name}/{sub.group.name} ({group.order} "
                           f"elements)", "use a smaller N")
        reps, _ = _cosets(group, sub)
    elif group.has_reflections and sub.id == (None, -1):  # O(2) / SO(2)
        reps = [(0, 0.0), (1, 0.0)]
    else:
        raise ValueError(f"subgroup_id {subgroup_id!r}: the only quotient of a continuous group "
                         f"supported is O(2)/SO(2), i.e. (None, -1)")
    irreps, vs = [], []
    for psi in group.irreps():
        hs, C = sub.restrict(psi)
        offs = np.cumsum([0] + [h.dim for h in hs])
        J = [int(o) for h, o in zip(hs, offs) if h.is_trivial]
        if not J:
            continue
        m = len(J) // psi.sum_of_squares_constituents
        for c in range(m):
            e = np.zeros(psi.dim)
            if m == len(J):
                e[J[c]] = 1.0
            else:
                e[J[2 * c]] = e[J[2 * c + 1]] = 1.0
            irreps.append(psi)
            vs.append(math.sqrt(psi.dim / psi.sum_of_squares_constituents) * (C @ e))
    v = np.concatenate(vs)
    v /= np.linalg.norm(v)
    rep = Representation(group, irreps, name="tmp")
    f, r = group.split_batch(reps)
    Qinv = np.einsum("nab,b->an", rep.irreps_block_diagonal(f, r), v)
    return Representation(group, irreps, Qinv.T, name=f"quotient[{sub.id}]")
