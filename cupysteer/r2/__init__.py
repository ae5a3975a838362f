r"""The planar groups (subgroups of O(2)) and their steerable filter bases (e2cnn 0.2.3's).

The same layers as :mod:`cupysteer.r3`, module for module:

* :mod:`~cupysteer.r2.groups`: C_N, D_N (with a reflection axis), SO(2), O(2), the flip group
  and the trivial group; elements ``(f, r)``, e2cnn's encoding and order; subgroups by
  e2cnn's ids;
* :mod:`~cupysteer.r2.irreps`: the real irreps in e2cnn's forms;
  :mod:`~cupysteer.r2.subgroups`: closed-form restriction of irreps to subgroups;
* :mod:`~cupysteer.r2.representations`: regular and quotient representations with e2cnn's
  closed-form change of basis;
* :mod:`~cupysteer.r2.harmonics`, :mod:`~cupysteer.r2.settings`,
  :mod:`~cupysteer.r2.pair_basis`: the angular solutions per irreps pair, e2cnn R2Conv's
  rings / sigma / band-limits and k×k grid, the sampled pair bases;
* :mod:`~cupysteer.r2.space`: the plane as a :class:`~cupysteer.space.Space` (what
  :class:`cupysteer.LayerBasis` asks of it); :mod:`~cupysteer.r2.spelling`: ``C8``, ``D4``, …

The groups are re-exported at the top level (``cupysteer.CyclicGroup`` …).

>>> import cupysteer as cs
>>> G = cs.CyclicGroup(8)
>>> t = cs.FieldType(G, [G.regular_representation])
>>> G.space.name, cs.LayerBasis(t, t, kernel_size=5).dim
('r2', 192)
"""
from .groups import (
                     DEFAULT_MAXIMUM_FREQUENCY,
                     O2,
                     SO2,
                     CyclicGroup,
                     DihedralGroup,
                     FlipGroup,
                     PlanarGroup,
                     trivial_group,
)
from .irreps import DEFAULT_AXIS, Irrep, rotation_matrix
from .representations import quotient_representation, regular_representation
from .settings import grid_points, polar, resolve_settings
from .space import SPACE
from .subgroups import Subgroup, restrict_irrep

__all__ = ["PlanarGroup", "CyclicGroup", "DihedralGroup", "SO2", "O2", "FlipGroup",
           "trivial_group", "Subgroup", "Irrep", "rotation_matrix", "restrict_irrep",
           "regular_representation", "quotient_representation", "grid_points", "polar",
           "resolve_settings", "SPACE", "DEFAULT_AXIS", "DEFAULT_MAXIMUM_FREQUENCY"]
