"""Field-wise modules on plain torch tensors, built from a FieldType (e2cnn's names,
parameters and defaults), and feature-map transformations for equivariance checks.

Every module has ``in_type``/``out_type`` and checks what it accepts against the numerically
verified structure of its field type (:class:`cupysteer.fieldwise.FieldStructure`): pointwise
operations refuse fields whose ρ(g) is not a permutation of their channels, naming the field
and the alternative.

* non-linearities (:mod:`.nonlinearities`): :class:`PointwiseNonLinearity`, :class:`ReLU`,
  :class:`ELU`, :class:`NormNonLinearity`, :class:`GatedNonLinearity1`;
* batch norms (:mod:`.batchnorm`): :class:`InnerBatchNorm`, :class:`NormBatchNorm`;
* pooling and dropout (:mod:`.pooling`): :class:`GroupPooling`, :class:`NormPool`,
  :class:`PointwiseMaxPool2d`/``3d``, :class:`PointwiseAvgPool2d`/``3d``, :class:`FieldDropout`;
* :func:`transform` (g · x for grid-preserving g) and :func:`check_equivariance`
  (:mod:`.equivariance`).
"""
from .batchnorm import InnerBatchNorm, NormBatchNorm
from .equivariance import check_equivariance, feature_points, grid_elements, transform
from .nonlinearities import ELU, GatedNonLinearity1, NormNonLinearity, PointwiseNonLinearity, ReLU
from .pooling import (
    FieldDropout,
    GroupPooling,
    NormPool,
    PointwiseAvgPool,
    PointwiseAvgPool2d,
    PointwiseAvgPool3d,
    PointwiseMaxPool,
    PointwiseMaxPool2d,
    PointwiseMaxPool3d,
)

__all__ = ["PointwiseNonLinearity", "ReLU", "ELU", "NormNonLinearity", "GatedNonLinearity1",
           "InnerBatchNorm", "NormBatchNorm", "GroupPooling", "NormPool", "PointwiseMaxPool2d",
           "PointwiseMaxPool3d", "PointwiseAvgPool2d", "PointwiseAvgPool3d", "PointwiseMaxPool",
           "PointwiseAvgPool", "FieldDropout", "transform", "check_equivariance",
           "grid_elements", "feature_points"]
