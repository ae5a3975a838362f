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
``planar`` of :mod:`cupysteer.r2.groups` (axis β = axis for DihedralZ, −axis for Conical) so
that the xy block of the matrix is the planar action; their irreps are the planar (e2cnn =
escnn) ones.

Irreps: SO(3) ``(l,)`` = D^l (real Wigner, Y^l(Ru) = D^l(R) Y^l(u)); O(3) ``(j, l)`` =
det^j · D^l(det·M); O: ``(0,) (1,) (-1,) (2,) (3,)``; I: ``(0,)``..``(4,)`` (see :mod:`._finite`);
planar: ``(k,)`` / ``(j, k)``; C2 × H: ``((a,), id_H, 0)`` = det^a · ψ_H(det·M).

The groups are defined in :mod:`._base` (the base :class:`Group3`; irreps:
:class:`~cupysteer.r3.irreps.Irrep3`), :mod:`._rotation_groups` (SO3, O3), :mod:`._polyhedral`
(O, I, O_h, I_h), :mod:`._axial` (the groups about z, mirror, inversion, trivial) and
:mod:`._product` (C2 × H); import them from here.
"""

from ._axial import (
                     Conical,
                     Cylindrical,
                     DihedralZ,
                     FullCylindrical,
                     Inversion,
                     Mirror,
                     RotationsZ,
                     Trivial3,
)
from ._base import Group3, axis_angle_matrix
from ._polyhedral import FullIcosahedral, FullOctahedral, Icosahedral, Octahedral
from ._rotation_groups import O3, SO3
from .irreps import Irrep3

__all__ = ["Group3", "Irrep3", "SO3", "O3", "Octahedral", "FullOctahedral", "Icosahedral",
           "FullIcosahedral", "RotationsZ", "DihedralZ", "Conical", "Cylindrical",
           "FullCylindrical", "Mirror", "Inversion", "Trivial3", "axis_angle_matrix"]
