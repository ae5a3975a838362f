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
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .irreps import TWO_PI, rotation_matrix

__all__ = ["Subgroup", "restrict_irrep"]


@dataclass(frozen=True)
class Subgroup:
    """A subgroup H of ``parent`` with its embedding.

    H's rotations map to the parent's rotation by the same angle and H's reflection
    (1, 0) maps to the parent's element whose rotation angle is ``reflection_angle``:
    ``(f, θ) ↦ (f, f·reflection_angle + θ)``.
    """

    parent: Any
    id: Any
    group: Any
    reflection_angle: float = 0.0

    def embed(self, h):
        """The parent element equal to the H element ``h``."""
        f, r = self.group._split(h)
        ang = float(self.group.rotation_angle(r)) + f * self.reflection_angle
        P = self.parent
        if P.is_finite:
            rp = ang * P.rotation_order / TWO_PI
            ri = int(round(rp))
            assert abs(rp - ri) < 1e-6, "subgroup element is not in the parent"
            return P._join(f, ri % P.rotation_order)
        return P._join(f, ang % TWO_PI)

    def elements(self) -> list:
        """The subgroup's elements as parent elements (finite H only)."""
        return [self.embed(h) for h in self.group.elements()]

    def __iter__(self) -> Iterator:
        return iter(self.elements())

    def restrict(self, irrep):
        """``irrep`` (of the parent) restricted to this subgroup: (H-irreps, orthogonal C)."""
        return restrict_irrep(irrep, self)


def _fold(k: int, H) -> tuple[int, bool]:
    """H-frequency of parent frequency k, and whether it was folded (k' → M − k')."""
    M = H.rotation_order
    if M < 0:
        return k, False
    kp = k % M
    if 2 * kp > M:
        return M - kp, True
    return kp, False


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
        return [H.irrep(*H.irrep_id(jp, kp))], np.eye(1)
    C = rotation_matrix(k * sub.reflection_angle / 2) if H.has_reflections else np.eye(2)
    if folded:
        C = C @ np.diag([1.0, -1.0])
    two_dim = kp != 0 and (H.rotation_order < 0 or 2 * kp != H.rotation_order)
    if two_dim:
        return [H.irrep(*H.irrep_id(1, kp))], C
    if H.has_reflections:
        return [H.irrep(*H.irrep_id(0, kp)), H.irrep(*H.irrep_id(1, kp))], C
    return [H.irrep(*H.irrep_id(0, kp))] * 2, C
