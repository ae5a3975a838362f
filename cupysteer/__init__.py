"""cupysteer: G-steerable convolution filters for rotations and reflections of the plane.

Layers: groups → representations → kernel bases (NumPy) → expansion plan → backends →
adapters. Importing cupysteer imports NumPy and SciPy only.
"""
from ._version import __version__
from .groups import (CyclicGroup, DihedralGroup, FlipGroup, O2, PlanarGroup, SO2, Subgroup,
                     trivial_group)
from .irreps import Irrep
from .representation import (Representation, directsum, quotient_representation,
                             regular_representation)
from .field_type import FieldType

__all__ = [
    "__version__", "PlanarGroup", "CyclicGroup", "DihedralGroup", "FlipGroup", "SO2", "O2",
    "Subgroup", "trivial_group", "Irrep", "Representation", "directsum",
    "regular_representation", "quotient_representation", "FieldType",
]
from .settings import BasisSettings, grid_points, resolve_settings
from .basis import EmptyBasisError, LayerBasis
from .plan import ExpansionPlan
from .init import he_init, he_std

__all__ += ["BasisSettings", "grid_points", "resolve_settings", "EmptyBasisError",
            "LayerBasis", "ExpansionPlan", "he_init", "he_std"]
from .cache import BasisCache, default_cache

__all__ += ["BasisCache", "default_cache"]
from .equivariance import equivariance_errors, point_symmetries

__all__ += ["equivariance_errors", "point_symmetries"]
