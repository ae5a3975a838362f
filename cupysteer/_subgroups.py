r"""Subgroups (with e2cnn's subgroup ids) and the closed-form restriction of irreps.

Every planar subgroup H is described by its own group object and one angle, the rotation
part of the parent element that H's reflection (1, 0) maps to (see :class:`Subgroup`).

Restriction of a parent irrep ψ with flip frequency j and frequency k to H. Write
:math:`\delta` for that angle. For 2-dim ψ,

.. math::  \psi(f, f\delta + \theta) = C\, \mathrm{rot}(k\theta)\,\mathrm{diag}(1, (-1)^f)\, C^T,
           \qquad C = \mathrm{rot}(k\delta / 2),

and :math:`\mathrm{rot}(k\theta)` is an H-irrep of frequency :math:`k' = k \bmod M` folded to
:math:`M - k'` when :math:`k' > M/2` (conjugation by diag(1, −1)); at :math:`k' \in \{0, M/2\}`
it splits into two 1-dim H-irreps. A 1-dim ψ with :math:`k \neq 0` gains
:math:`(-1)^{f\, k\delta/\pi}`, i.e. its flip frequency becomes :math:`j + k\delta/\pi \bmod 2`.
"""
from __future__ import annotations

import math

import numpy as np

from .groups import (CyclicGroup, DihedralGroup, FlipGroup, O2, PlanarGroup, SO2, Subgroup,
                     TWO_PI, rotation_matrix)

__all__ = ["make_subgroup", "restrict_irrep"]


def _err(group, sid, expected):
    return ValueError(f"subgroup_id {sid!r} is not a subgroup of {group.name}; expected {expected}")


def make_subgroup(group: PlanarGroup, sid) -> Subgroup:
    beta = group.reflection_axis
    if isinstance(group, CyclicGroup):
        if not isinstance(sid, (int, np.integer)) or isinstance(sid, bool) or sid < 1 or group.N % sid:
            raise _err(group, sid, f"an integer M >= 1 dividing N={group.N} (the subgroup C_M)")
        return Subgroup(group, int(sid), CyclicGroup(int(sid)))
    if isinstance(group, FlipGroup):
        if sid == 1:
            return Subgroup(group, 1, CyclicGroup(1))
        if sid == 2:
            return Subgroup(group, 2, group)
        raise _err(group, sid, "1 (trivial) or 2 (the whole group)")
    if isinstance(group, SO2):
        if sid == -1:
            return Subgroup(group, -1, group)
        if isinstance(sid, (int, np.integer)) and not isinstance(sid, bool) and sid >= 1:
            return Subgroup(group, int(sid), CyclicGroup(int(sid)))
        raise _err(group, sid, "an integer M >= 1 (C_M) or -1 (SO(2) itself)")
    if isinstance(group, DihedralGroup):
        N = group.N
        ok = isinstance(sid, tuple) and len(sid) == 2
        if ok:
            a, M = sid
            ok = isinstance(M, (int, np.integer)) and M >= 1 and N % M == 0
        if not ok:
            raise _err(group, sid, f"(None, M) for C_M or (a, M) for a dihedral/flip subgroup, "
                                   f"M dividing N={N}")
        M = int(M)
        if a is None:
            return Subgroup(group, (None, M), CyclicGroup(M))
        if not isinstance(a, (int, np.integer)) or not (0 <= a < N // M):
            raise _err(group, sid, f"a reflection index a with 0 <= a < N/M = {N // M}")
        delta = TWO_PI * int(a) / N
        axis = beta + delta / 2
        H = FlipGroup(axis) if M == 1 else DihedralGroup(M, axis)
        return Subgroup(group, (int(a), M), H, delta)
    if isinstance(group, O2):
        ok = isinstance(sid, tuple) and len(sid) == 2
        if ok:
            a, M = sid
            ok = isinstance(M, (int, np.integer)) and (M >= 1 or M == -1)
        if not ok:
            raise _err(group, sid, "(None, M) for C_M / (None, -1) for SO(2), or (angle, M) for "
                                   "D_M / (angle, 1) for a flip / (angle, -1) for O(2)")
        M = int(M)
        if a is None:
            H = SO2(group.maximum_frequency) if M == -1 else CyclicGroup(M)
            return Subgroup(group, (None, M), H)
        delta = float(a) % TWO_PI
        axis = beta + delta / 2
        H = O2(group.maximum_frequency, axis) if M == -1 else FlipGroup(axis) if M == 1 \
            else DihedralGroup(M, axis)
        return Subgroup(group, (float(a), M), H, delta)
    raise TypeError(f"unsupported group {group!r}")


def _fold(k: int, H: PlanarGroup) -> tuple[int, bool]:
    """H-frequency of parent frequency k, and whether it was folded (k' → M − k')."""
    M = H.rotation_order
    if M < 0:
        return k, False
    kp = k % M
    if 2 * kp > M:
        return M - kp, True
    return kp, False


def _h_irrep_id(H: PlanarGroup, j: int, k: int) -> tuple:
    if isinstance(H, FlipGroup):
        return (j,)
    if H.has_reflections:
        return (j, k)
    return (k,)


def restrict_irrep(irrep, sub: Subgroup):
    """Restriction of a parent irrep to ``sub``: (list of H-irreps, orthogonal C).

    ``irrep(embed(h)) = C · (⊕ H-irreps)(h) · Cᵀ`` for every h in H.
    """
    H = sub.group
    j, k = irrep.flip_frequency, irrep.frequency
    kp, folded = _fold(k, H)
    if irrep.dim == 1:
        jp = j
        if H.has_reflections and k != 0:
            jp = (j + int(round(k * sub.reflection_angle / math.pi))) % 2
        return [H.irrep(*_h_irrep_id(H, jp, kp))], np.eye(1)
    C = rotation_matrix(k * sub.reflection_angle / 2) if H.has_reflections else np.eye(2)
    if folded:
        C = C @ np.diag([1.0, -1.0])
    two_dim = kp != 0 and (H.rotation_order < 0 or 2 * kp != H.rotation_order)
    if two_dim:
        return [H.irrep(*_h_irrep_id(H, 1, kp))], C
    if H.has_reflections:
        return [H.irrep(*_h_irrep_id(H, 0, kp)), H.irrep(*_h_irrep_id(H, 1, kp))], C
    return [H.irrep(*_h_irrep_id(H, 0, kp))] * 2, C
