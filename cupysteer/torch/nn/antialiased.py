r"""Antialiased pooling on plain tensors (e2cnn 0.2.3 / escnn 1.0.11 names, parameters, defaults).

Both blur every channel with the same normalised Gaussian before subsampling ("Making
Convolutional Networks Shift-Invariant Again", Zhang 2019), as e2cnn does:

.. math::
    G[i] = \exp\!\Big(-\frac{\lVert i - m\rVert^2}{2\sigma^2}\Big) \Big/ \sum_j
           \exp\!\Big(-\frac{\lVert j - m\rVert^2}{2\sigma^2}\Big),
    \qquad i \in \{0, …, s-1\}^d,\ m = \frac{s-1}{2},

with s = 2·round(3σ) + 1 for the average pool and s = 2·round(4σ) + 1 for the max pool
(Python's ``round``, as e2cnn). G is invariant under the symmetries of the square / cube, so
a blur commutes with every grid-preserving element; with stride > 1 the pool is exactly
equivariant when the sampled positions are symmetric too ((H + 2p − s) divisible by the
stride, e.g. e2cnn's 29 → 25 → 13 → 7 sizes).

* :class:`PointwiseAvgPoolAntialiased2d`/``3d``: ``conv(x, G)`` with ``stride`` and
  ``padding`` (default (s − 1)/2) on every channel — linear and the same for every channel,
  so every field type is accepted;
* :class:`PointwiseMaxPoolAntialiased2d`/``3d``: a stride-1 ``max_pool`` over ``kernel_size``
  windows, then the blur with ``stride`` (padding ``padding`` + (s − 1)/2) — pointwise fields
  only (a maximum commutes with permutations of the channels only).

The blur filter is a non-persistent buffer ``filter`` of shape (1, 1, s, …, s) (rebuilt
from float64 on ``.double()``/``.to()``, not cast); e2cnn/escnn checkpoints store it,
repeated per channel, under the same name: loading one checks that it equals this module's
(the same σ) and drops it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._common import FieldwiseModule
from .pooling import _pair

__all__ = ["gaussian_filter", "PointwiseAvgPoolAntialiased2d", "PointwiseAvgPoolAntialiased3d",
           "PointwiseMaxPoolAntialiased2d", "PointwiseMaxPoolAntialiased3d",
           "PointwiseAvgPoolAntialiased", "PointwiseMaxPoolAntialiased"]


def _sigma(sigma) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"sigma must be a positive number (the standard deviation of the "
                         f"Gaussian blur, in pixels; e2cnn's example uses 0.66), got {sigma!r}")
    return float(sigma)


def gaussian_filter(sigma: float, size: int, ndim: int) -> np.ndarray:
    """The normalised (size,)*ndim Gaussian of the module docstring, float64."""
    m = (size - 1) / 2.0
    axis = (np.arange(size) - m) ** 2
    r2 = sum(np.meshgrid(*[axis] * ndim, indexing="ij"))
    g = np.exp(-r2 / (2.0 * sigma ** 2))
    return g / g.sum()


class _Blur(FieldwiseModule):
    """The Gaussian filter buffer and its rebuild / checkpoint check."""

    _ndim = 2
    _radius = 3.0  # s = 2·round(radius·σ) + 1

    def _setup_blur(self, sigma):
        n, name = self._ndim, type(self).__name__
        if self.spatial_dims != n:
            other = name.replace(f"{n}d", f"{self.spatial_dims}d")
            raise ValueError(f"in_type: {self.in_type.group.name} acts on R^"
                             f"{self.spatial_dims}, but {name} pools {n}-dimensional maps; use "
                             f"{other}")
        self.sigma = _sigma(sigma)
        self.filter_size = 2 * int(round(self._radius * self.sigma)) + 1
        self._gaussian = gaussian_filter(self.sigma, self.filter_size, n)
        self.register_buffer("filter", self._filter_tensor(torch.get_default_dtype(), None),
                             persistent=False)

    def _filter_tensor(self, dtype, device):
        shape = (1, 1) + (self.filter_size,) * self._ndim
        return torch.tensor(self._gaussian.reshape(shape), dtype=dtype, device=device)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        f = self.filter  # exact in the new dtype (float64 → float32 → float64 would not be)
        self.filter = self._filter_tensor(f.dtype, f.device)
        return out

    def _blur(self, x, stride, padding):
        # the same filter for every channel: one single-channel convolution over N·C maps
        # (a depthwise convolution with C groups is far slower on CPU, in float64 above all)
        conv = F.conv2d if self._ndim == 2 else F.conv3d
        N, C = x.shape[:2]
        y = conv(x.reshape(N * C, 1, *x.shape[2:]), self.filter.to(x.dtype), None, stride,
                 padding)
        return y.reshape(N, C, *y.shape[2:])

    @torch.no_grad()
    def _plain_blur(self, stride, padding) -> nn.Module:
        """The blur as a plain depthwise ``Conv2d``/``Conv3d`` (C groups, no bias)."""
        C, f = self._channels, self.filter
        conv = (nn.Conv2d if self._ndim == 2 else nn.Conv3d)(
            C, C, self.filter_size, stride, padding, groups=C, bias=False, device=f.device,
            dtype=f.dtype)
        conv.weight.copy_(f.expand(C, *f.shape[1:]))
        return conv.requires_grad_(False).eval()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """An e2cnn/escnn ``filter`` entry (the blur, repeated per channel) is checked against
        this module's and dropped."""
        key = prefix + "filter"
        if key in state_dict:
            theirs = torch.as_tensor(state_dict.pop(key)).detach().cpu().double()
            ours = torch.as_tensor(self._gaussian)
            if theirs.shape[2:] != ours.shape or not torch.allclose(
                    theirs, ours.expand_as(theirs), rtol=1e-5, atol=1e-7):
                error_msgs.append(
                    f"{key}: the checkpoint's blur filter {tuple(theirs.shape)} differs from "
                    f"this module's Gaussian (sigma={self.sigma}, size {self.filter_size}); "
                    f"build {type(self).__name__} with the checkpoint's sigma")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, sigma={self.sigma}, stride={self.stride}, "
                f"padding={self.padding}")


class _AvgAntialiased(_Blur):
    def __init__(self, in_type, sigma: float, stride, padding=None):
        super().__init__(in_type)
        self._setup_blur(sigma)
        n = self._ndim
        self.kernel_size = (self.filter_size,) * n
        self.stride = _pair(stride, n, "stride")
        if min(self.stride) < 1:
            raise ValueError(f"stride must be >= 1, got {stride!r}")
        self.padding = _pair((self.filter_size - 1) // 2 if padding is None else padding, n,
                             "padding")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._blur(x, self.stride, self.padding)

    def export(self) -> nn.Module:
        """A plain depthwise ``torch.nn.Conv2d``/``Conv3d`` with the same outputs (e2cnn's
        export)."""
        return self._plain_blur(self.stride, self.padding)


class PointwiseAvgPoolAntialiased2d(_AvgAntialiased):
    """e2cnn's ``PointwiseAvgPoolAntialiased(in_type, sigma, stride, padding=None)``: the
    Gaussian blur (s = 2·round(3σ) + 1) with ``stride`` and ``padding`` (None: (s − 1)/2, the
    size kept at stride 1) on every channel; any field."""


class PointwiseAvgPoolAntialiased3d(_AvgAntialiased):
    """escnn's ``PointwiseAvgPoolAntialiased3D(in_type, sigma, stride, padding=None)``."""
    _ndim = 3


class _MaxAntialiased(_Blur):
    _radius = 4.0

    def __init__(self, in_type, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False, sigma: float = 0.6):
        super().__init__(in_type)
        n, name = self._ndim, type(self).__name__
        self.fields.require_pointwise(
            name, "use PointwiseAvgPoolAntialiased (linear: any field), or reduce each field "
            "first (GroupPooling / NormPool)")
        if dilation not in (1, (1,) * n, [1] * n):
            raise ValueError(f"dilation must be 1 (as e2cnn/escnn: 'Dilation larger than 1 is "
                             f"not supported'), got {dilation!r}")
        self._setup_blur(sigma)
        self.kernel_size = _pair(kernel_size, n, "kernel_size")
        if min(self.kernel_size) < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}")
        self.stride = _pair(stride, n, "stride", allow_none=True) or self.kernel_size
        if min(self.stride) < 1:
            raise ValueError(f"stride must be >= 1, got {stride!r}")
        self.padding = _pair(padding, n, "padding")
        self.ceil_mode = bool(ceil_mode)
        self._blur_padding = tuple(p + (self.filter_size - 1) // 2 for p in self.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        pool = F.max_pool2d if self._ndim == 2 else F.max_pool3d
        y = pool(x, self.kernel_size, 1, self.padding, 1, ceil_mode=self.ceil_mode)
        return self._blur(y, self.stride, self._blur_padding)

    def export(self) -> nn.Module:
        """``Sequential(MaxPool (stride 1), depthwise Conv)``: e2cnn's export, plain torch."""
        pool = (nn.MaxPool2d if self._ndim == 2 else nn.MaxPool3d)(
            self.kernel_size, 1, self.padding, ceil_mode=self.ceil_mode)
        return nn.Sequential(pool, self._plain_blur(self.stride, self._blur_padding)).eval()


class PointwiseMaxPoolAntialiased2d(_MaxAntialiased):
    """e2cnn's ``PointwiseMaxPoolAntialiased(in_type, kernel_size, stride=None, padding=0,
    dilation=1, ceil_mode=False, sigma=0.6)``: ``max_pool2d`` at stride 1, then the Gaussian
    blur (s = 2·round(4σ) + 1) with ``stride`` (default ``kernel_size``); pointwise fields."""


class PointwiseMaxPoolAntialiased3d(_MaxAntialiased):
    """escnn's ``PointwiseMaxPoolAntialiased3D`` (same arguments, 3D)."""
    _ndim = 3


PointwiseAvgPoolAntialiased = PointwiseAvgPoolAntialiased2d  # e2cnn's names
PointwiseMaxPoolAntialiased = PointwiseMaxPoolAntialiased2d
