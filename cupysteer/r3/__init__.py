r"""Groups acting on R³ and their steerable filter bases (escnn 1.0.11's kernel spaces).

Layers, as in the plane (:mod:`cupysteer.r2`, the same module names): groups →
representations → irreps-pair bases → the same expansion plan and backends. Every group
element is its 3×3 orthogonal matrix acting on (x, y, z).

* :mod:`~cupysteer.r3.so3`: real spherical harmonics (no Condon–Shortley phase), real Wigner D,
  real Clebsch–Gordan tensors (closed form, escnn's signs);
* :mod:`~cupysteer.r3.groups`: SO(3), O(3), octahedral O/O_h, icosahedral I/I_h, rotations,
  dihedral, conical and cylindrical groups about z, a mirror, the inversion, the trivial group;
* :mod:`~cupysteer.r3.representations`: regular, quotient and standard representations with
  deterministic orthogonal change of basis;
* :mod:`~cupysteer.r3.irreps`: the irreps (escnn's ids and forms);
* :mod:`~cupysteer.r3.settings` and :mod:`~cupysteer.r3.pair_basis`: escnn R3Conv's shells,
  band-limits and k×k×k grid; per-irreps-pair bases;
* :mod:`~cupysteer.r3.space`: R³ as a :class:`~cupysteer.space.Space`;
  :mod:`~cupysteer.r3.spelling`: ``O``, ``SO3:3``, ``D4z``, …

:class:`cupysteer.LayerBasis` and :class:`cupysteer.FieldType` take these groups directly:

>>> import cupysteer as cs
>>> from cupysteer import r3
>>> G = r3.Octahedral()
>>> t = cs.FieldType(G, [G.regular_representation])
>>> cs.LayerBasis(t, t, kernel_size=3).dim
240
"""
from .groups import (
                  O3,
                  SO3,
                  Conical,
                  Cylindrical,
                  DihedralZ,
                  FullCylindrical,
                  FullIcosahedral,
                  FullOctahedral,
                  Group3,
                  Icosahedral,
                  Inversion,
                  Irrep3,
                  Mirror,
                  Octahedral,
                  RotationsZ,
                  Trivial3,
                  axis_angle_matrix,
)
from .pair_basis import harmonic_coefficients
from .representations import (
                  quotient_representation,
                  regular_representation,
                  standard_representation,
)
from .settings import grid_points, grid_points3, resolve_settings, resolve_settings3
from .so3 import (
                  clebsch_gordan,
                  harmonic_matrix,
                  spherical_harmonics,
                  spherical_harmonics_all,
                  wigner_D,
)
from .space import SPACE

__all__ = [
    "clebsch_gordan", "harmonic_matrix", "spherical_harmonics", "spherical_harmonics_all",
    "wigner_D", "Group3", "Irrep3", "SO3", "O3", "Octahedral", "FullOctahedral",
    "Icosahedral", "FullIcosahedral", "RotationsZ", "DihedralZ", "Conical", "Cylindrical",
    "FullCylindrical", "Mirror", "Inversion", "Trivial3", "axis_angle_matrix",
    "regular_representation", "quotient_representation", "standard_representation",
    "grid_points", "resolve_settings", "grid_points3", "resolve_settings3",
    "harmonic_coefficients", "SPACE",
]
