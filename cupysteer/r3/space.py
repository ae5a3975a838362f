r"""R³ as the base space of the groups of :mod:`cupysteer.r3` (escnn ``R3Conv``'s conventions).

* grid: k×k×k points with the filter axes (−z, −y, x) (:func:`cupysteer.r3.settings.grid_points`);
* settings: escnn's shells, sigma and band-limits (:mod:`cupysteer.r3.settings`);
  ``maximum_offset`` is planar only;
* pair bases: shells × spherical-harmonic tensors (:mod:`cupysteer.r3.pair_basis`), sampled
  for all pairs of a layer into one buffer; weights are harmonic-degree-major, as in escnn;
* exact grid symmetries: every element of a finite group; for continuous groups the symmetries
  of the cube (signed permutation matrices) they contain. On a non-cubic or anisotropic grid
  only those that permute its physical points remain: with one distinguished axis (voxels
  1×1×3 mm, or 5×5×3 unit voxels; the other two equal) the 16 symmetries of the square prism
  about it (rotations by 90° about it, the flips and reflections keeping it as an axis, 8 of
  them rotations); with three different extents the 8 sign changes of the axes.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..space import Space
from . import pair_basis, point, settings

__all__ = ["Space3", "SPACE"]


def _signed_permutations() -> np.ndarray:
    """The 48 signed 3×3 permutation matrices: the symmetries of the cube (O_h)."""
    mats = []
    for p in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), p] = signs
            mats.append(m)
    return np.array(mats)


class Space3(Space):
    """R³, the space of :mod:`cupysteer.r3`'s groups; the instance is :data:`SPACE`."""

    name = "r3"
    dimension = 3
    group_spellings = ("SO3, SO3:<max degree>, O3, O3:<max degree>, O (octahedral), Oh, I "
                       "(icosahedral), Ih, C<N>z (e.g. C8z), SO2z[:<F>], D<N>z[:axis=<radians>], "
                       "O2z[:<F>][:axis=<radians>], conical<N>[:axis=<radians>], "
                       "conicalO2[:<F>][:axis=<radians>], cyl<N>, cylSO2[:<F>], "
                       "fullcyl<N>[:axis=<radians>], fullcylO2[:<F>][:axis=<radians>], inv, "
                       "mir[:axis=<radians>], trivial3")
    field_spellings = ("trivial, regular, std, irrep:<escnn id> (irrep:l for SO3, irrep:j,l for "
                       "O3, irrep:-1 for O, irrep:a,<id of H> for Oh/Ih/cyl/fullcyl, or the tuple "
                       "irrep:((1,),(-1,),0)), quotient:<escnn subgroup id> (e.g. "
                       "quotient:(False,4)); comma-separated, repeated with regular*4 or "
                       "4*regular")
    _settings, _pair_basis = settings, pair_basis
    _point = point

    def resolve_settings(self, kernel_size, dilation=1, rings=None, sigma=None,
                         frequencies_cutoff=None, maximum_offset=None, points=None,
                         spacing=None):
        if maximum_offset is not None:
            raise ValueError("maximum_offset is a planar (2D) setting; leave it None for "
                             "groups acting on R³")
        return settings.resolve_settings(kernel_size, dilation, rings, sigma,
                                         frequencies_cutoff, points, spacing)

    def element_order(self, pb):
        return pb.frequency

    def grid_candidates(self, group):
        if group.is_finite:
            return list(group.elements())
        return [m for m in _signed_permutations() if group.contains(m)]


#: R³
SPACE = Space3()
