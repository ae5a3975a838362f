r"""The base space a group acts on: everything about R² or R³ that a layer basis needs.

A :class:`Space` is what escnn calls a gspace, reduced to what is independent of the group:
the sampling grid, the radial settings with their defaults, the sampler of the irreps-pair
bases, the order of a pair's elements in the weight vector, the candidates for exact grid
symmetries and the spellings of the command line. Every group names its space
(``group.space``); the generic core (:class:`~cupysteer.basis.LayerBasis`, the cache, the
equivariance checks) asks the space and never branches on the dimension.

The two spaces are :data:`cupysteer.r2.space.SPACE` (e2cnn's ``R2Conv`` defaults) and
:data:`cupysteer.r3.space.SPACE` (escnn's ``R3Conv`` defaults). Spaces are immutable
singletons; they pickle by reference.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Space"]


class Space:
    """R^d, the space the groups of one subpackage act on (see the module docstring)."""

    #: short name: the subpackage (``"r2"`` or ``"r3"``)
    name: str = ""
    #: d, the dimension of the points
    dimension: int = 0
    #: what the command line accepts as groups and fields of this space (for error messages)
    group_spellings: str = ""
    field_spellings: str = ""
    #: the space's modules: ``settings`` (``grid_points``, ``resolve_settings``) and
    #: ``pair_basis`` (``sample_pair_bases``)
    _settings = None
    _pair_basis = None

    # ---- sampling ------------------------------------------------------------------------
    def grid_points(self, kernel_size, dilation: int = 1, spacing=None) -> np.ndarray:
        """The (k^d, d) sample points of a k×…×k filter, in the filter's flat order; with one
        size per filter axis (k_0, …) or a per-axis ``spacing`` (s_0, …) the physical points
        ``(j_i − (k_i−1)/2)·dilation·s_i`` of that grid (:mod:`cupysteer.settings`)."""
        return self._settings.grid_points(kernel_size, dilation, spacing)

    def resolve_settings(self, kernel_size, dilation=1, rings=None, sigma=None,
                         frequencies_cutoff=None, maximum_offset=None, points=None,
                         spacing=None):
        """The :class:`~cupysteer.settings.BasisSettings` of a layer, with this space's
        defaults (``points`` only bounds the radii; a non-cubic ``kernel_size`` or a
        ``spacing`` takes the defaults of the effective cubic grid)."""
        raise NotImplementedError

    def sample_pair_bases(self, pairs, settings, points) -> list:
        """The sampled :class:`~cupysteer.pair_basis.PairBasis` of each (in, out) irreps pair."""
        return self._pair_basis.sample_pair_bases(pairs, settings, points)

    def element_order(self, pair_basis) -> np.ndarray:
        """Per element of a pair basis, the key whose ascending order is the slowest of the
        weight order (e2cnn: the ring; escnn: the harmonic degree)."""
        raise NotImplementedError

    # ---- point convolutions (``_point``: the space's ``point`` module) ----------------------
    _point = None

    def point_settings(self, width=None, n_rings=None, rings=None, sigma=None,
                       frequencies_cutoff=None):
        """The radial settings of a point convolution (escnn's point-conv defaults)."""
        return self._point.point_settings(width, n_rings, rings, sigma, frequencies_cutoff)

    def point_pair_basis(self, in_irrep, out_irrep, settings):
        """The element descriptors of one irreps pair of a point convolution."""
        return self._point.point_pair_basis(in_irrep, out_irrep, settings)

    def evaluate_point_basis(self, pair_basis, settings, delta):
        """(E, n, d_out, d_in): a pair's point-convolution elements at relative positions."""
        return self._point.evaluate_point_basis(pair_basis, settings, delta)

    # ---- symmetries of the grid ------------------------------------------------------------
    def grid_candidates(self, group) -> list:
        """Elements of ``group`` that may map the square (cubic) grid onto itself. They also
        cover every rectangular / anisotropic grid: its symmetries are among the square's
        (cube's), and :func:`cupysteer.equivariance.point_symmetries` keeps those that
        permute the actual (physical) points."""
        raise NotImplementedError

    # ---- identity ------------------------------------------------------------------------
    def __setattr__(self, key, value):
        raise AttributeError(f"{self!r} is immutable (every layer basis of its groups uses it)")

    def __reduce__(self):
        # by reference: the instance is the global SPACE of the module defining its class
        return "SPACE"

    def __repr__(self):
        return f"Space({self.name}: R^{self.dimension})"

