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
* Fourier non-linearities (:mod:`.fourier`): :class:`FourierPointwise`, :class:`FourierELU`;
  :class:`GatedNonLinearity2` (:mod:`.nonlinearities`); escnn's batch norms
  (:mod:`.normalization`): :class:`GNormBatchNorm`, :class:`IIDBatchNorm1d`/``2d``/``3d``;
  :class:`NormMaxPool` (:mod:`.normmaxpool`);
* antialiased pooling (:mod:`.antialiased`): :class:`PointwiseAvgPoolAntialiased2d`/``3d``,
  :class:`PointwiseMaxPoolAntialiased2d`/``3d``; :class:`MaskModule` (:mod:`.mask`);
* :class:`R2Upsampling`/:class:`R3Upsampling` (:mod:`.upsampling`);
  :class:`RestrictionModule`, :class:`DisentangleModule` (:mod:`.restriction`);
  :func:`export` (:mod:`.exporting`: a model's steerable modules → plain torch, the plain
  modules in :mod:`.plain`);
* :func:`transform` (g · x for grid-preserving g) and :func:`check_equivariance`
  (:mod:`.equivariance`).
"""
from .antialiased import (
    PointwiseAvgPoolAntialiased,
    PointwiseAvgPoolAntialiased2d,
    PointwiseAvgPoolAntialiased3d,
    PointwiseMaxPoolAntialiased,
    PointwiseMaxPoolAntialiased2d,
    PointwiseMaxPoolAntialiased3d,
)
from .batchnorm import InnerBatchNorm, NormBatchNorm
from .equivariance import check_equivariance, feature_points, grid_elements, transform
from .exporting import export
from .fourier import FourierELU, FourierPointwise
from .mask import MaskModule
from .nonlinearities import (
    ELU,
    GatedNonLinearity1,
    GatedNonLinearity2,
    NormNonLinearity,
    PointwiseNonLinearity,
    ReLU,
)
from .normalization import GNormBatchNorm, IIDBatchNorm1d, IIDBatchNorm2d, IIDBatchNorm3d
from .normmaxpool import NormMaxPool
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
from .restriction import DisentangleModule, RestrictionModule
from .upsampling import R2Upsampling, R3Upsampling

__all__ = ["PointwiseNonLinearity", "ReLU", "ELU", "NormNonLinearity", "GatedNonLinearity1",
           "InnerBatchNorm", "NormBatchNorm", "GroupPooling", "NormPool", "PointwiseMaxPool2d",
           "PointwiseMaxPool3d", "PointwiseAvgPool2d", "PointwiseAvgPool3d", "PointwiseMaxPool",
           "PointwiseAvgPool", "FieldDropout", "transform", "check_equivariance",
           "grid_elements", "feature_points"]
__all__ += ["PointwiseAvgPoolAntialiased2d", "PointwiseAvgPoolAntialiased3d",  # antialiased.py
            "PointwiseMaxPoolAntialiased2d", "PointwiseMaxPoolAntialiased3d",
            "PointwiseAvgPoolAntialiased", "PointwiseMaxPoolAntialiased", "MaskModule"]
__all__ += ["R2Upsampling", "R3Upsampling", "RestrictionModule", "DisentangleModule",  # issue 17
            "export"]
__all__ += ["FourierPointwise", "FourierELU", "GatedNonLinearity2", "GNormBatchNorm",  # fourier,
            "IIDBatchNorm1d", "IIDBatchNorm2d", "IIDBatchNorm3d", "NormMaxPool"]  # norms
