r"""Upsampling of feature maps (e2cnn's ``R2Upsampling``, escnn's ``R3Upsampling``):
``torch.nn.functional.interpolate`` on every channel.

**Equivariance.** Every mode is linear and acts on each channel alike, so it commutes with any
ρ(g) acting on the channels: every field type is accepted (unlike a pointwise non-linearity,
no mode depends on the representation). The spatial part is exact for the grid-preserving
elements (rotations by 90°, the square's/cube's reflections) whenever the sampling is
symmetric under reversing an axis and the axes are scaled alike:

* ``'bilinear'``/``'trilinear'``, ``align_corners=True``: any output size equal on every
  axis (output corners sit on input corners);
* ``'bilinear'``/``'trilinear'``, ``align_corners=False``: any ``size`` equal on every axis,
  and an integer ``scale_factor`` (source coordinate (i + ½)·n_in/n_out − ½, clamped at the
  border, is symmetric); a non-integer ``scale_factor`` whose n_in·s is not an integer
  samples with 1/s instead and is not exact;
* ``'nearest'``: an integer ``scale_factor``, or a ``size`` that is a multiple of the input
  size (source index ⌊i·n_in/n_out⌋ is symmetric); any other size samples asymmetrically
  and breaks equivariance for every field, even a trivial one (e2cnn warns of it);
* a ``size`` with unequal entries scales the axes differently and breaks the rotations.

These cases are accepted (as e2cnn/escnn do, with their warnings in the docstring) and the
exact ones are tested (tests/frontends/test_torch_nn_upsampling.py).
"""
from __future__ import annotations

import numbers

from torch import nn
from torch.nn import functional as F

from ._common import FieldwiseModule

__all__ = ["R2Upsampling", "R3Upsampling"]


def _size(size, n: int):
    if size is None:
        return None
    t = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
    if len(t) != n or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                          for v in t):
        raise ValueError(f"size must be an int >= 1 or a tuple of {n} of them, got {size!r}")
    return tuple(int(v) for v in t)


class _Upsampling(FieldwiseModule):
    _ndim = 2
    _linear = "bilinear"

    def __init__(self, in_type, scale_factor=None, size=None, mode=None,
                 align_corners: bool = False):
        super().__init__(in_type)
        n, name = self._ndim, type(self).__name__
        if self.spatial_dims != n:
            other = "R3Upsampling" if self.spatial_dims == 3 else "R2Upsampling"
            raise ValueError(f"in_type: {in_type.group.name} acts on R^{self.spatial_dims}, "
                             f"but {name} upsamples {n}-dimensional maps; use {other}")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{name}: pass exactly one of scale_factor and size, got "
                             f"scale_factor={scale_factor!r} and size={size!r}")
        if scale_factor is not None and (isinstance(scale_factor, bool) or not isinstance(
                scale_factor, numbers.Real) or not scale_factor > 0):
            raise ValueError(f"scale_factor must be a number > 0 (an integer keeps the grid's "
                             f"symmetry), got {scale_factor!r}")
        mode = self._linear if mode is None else mode
        modes = ("nearest", self._linear)
        if mode not in modes:
            raise ValueError(f"mode must be one of {', '.join(map(repr, modes))} for {name} "
                             f"(as e2cnn/escnn), got {mode!r}")
        if not isinstance(align_corners, bool):
            raise ValueError(f"align_corners must be a bool, got {align_corners!r}")
        self.size = _size(size, n)
        self.scale_factor = scale_factor
        self.mode = mode
        # as e2cnn: align_corners is meaningless (None) for 'nearest'
        self.align_corners = None if mode == "nearest" else align_corners

    def forward(self, x):
        self._check(x)
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                             align_corners=self.align_corners)

    def export(self) -> nn.Upsample:
        """A plain ``torch.nn.Upsample`` with the same outputs (escnn's ``export``)."""
        return nn.Upsample(size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                           align_corners=self.align_corners).eval()

    def extra_repr(self) -> str:
        how = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return (f"{super().extra_repr()}, {how}, mode={self.mode!r}, "
                f"align_corners={self.align_corners}")


class R2Upsampling(_Upsampling):
    """e2cnn's ``R2Upsampling(in_type, scale_factor=None, size=None, mode='bilinear',
    align_corners=False)``: modes ``'bilinear'`` and ``'nearest'``; any field (module
    docstring for where it is exactly equivariant)."""


class R3Upsampling(_Upsampling):
    """escnn's ``R3Upsampling(in_type, scale_factor=None, size=None, mode='trilinear',
    align_corners=False)``: modes ``'trilinear'`` and ``'nearest'``; any field."""
    _ndim = 3
    _linear = "trilinear"
