"""cupysteer: G-steerable convolution filters for rotations and reflections of the plane and
of 3D space.

Layers: groups → representations → kernel bases (NumPy) → expansion plan → backends →
adapters. One subpackage per base space, with the same module names: :mod:`cupysteer.r2`
(planar groups, e2cnn's bases; re-exported here) and :mod:`cupysteer.r3` (groups on R³, escnn's
bases). The generic core (representation, field_type, basis, plan, init, equivariance, cache)
takes the groups of either. Importing cupysteer imports NumPy only (SciPy is imported
lazily by the few paths that use it).
"""
from . import _moved, r2, r3
from ._version import __version__
from .basis import EmptyBasisError, LayerBasis
from .cache import BasisCache, default_cache
from .equivariance import equivariance_errors, point_symmetries
from .field_type import FieldType
from .init import he_init, he_std
from .plan import ExpansionPlan
from .r2 import (
                 O2,
                 SO2,
                 CyclicGroup,
                 DihedralGroup,
                 FlipGroup,
                 Irrep,
                 PlanarGroup,
                 Subgroup,
                 trivial_group,
)
from .r2.settings import grid_points, resolve_settings
from .representation import (
                 Representation,
                 directsum,
                 quotient_representation,
                 regular_representation,
)
from .settings import BasisSettings
from .space import Space

__all__ = [
    "__version__", "PlanarGroup", "CyclicGroup", "DihedralGroup", "FlipGroup", "SO2", "O2",
    "Subgroup", "trivial_group", "Irrep", "Representation", "directsum",
    "regular_representation", "quotient_representation", "FieldType", "Space",
    "BasisSettings", "grid_points", "resolve_settings", "EmptyBasisError", "LayerBasis",
    "ExpansionPlan", "he_init", "he_std", "BasisCache", "default_cache",
    "equivariance_errors", "point_symmetries", "r2", "r3",
]

_moved.install()  # the module paths of 0.1 (cupysteer.groups, …): see cupysteer._moved
