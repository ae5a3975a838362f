"""Equivariant pooling and dropout on plain tensors (e2cnn's names, parameters, defaults).

* over the channels of each field: :class:`GroupPooling` (maximum; pointwise fields) and
  :class:`NormPool` (the norm; any field), each field becoming one trivial field;
* over space: :class:`PointwiseMaxPool2d`/``3d`` (pointwise fields: a maximum commutes with
  permutations of the channels only) and :class:`PointwiseAvgPool2d`/``3d`` (any field: an
  average is linear). They are equivariant for the elements that map the pooling windows onto
  windows (e.g. a 2×2 stride-2 pool on an even grid, a 3×3 stride-1 pool with padding 1);
* :class:`FieldDropout`: whole fields zeroed together.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ._common import FieldwiseModule, as_index, trivial_type

__all__ = ["GroupPooling", "NormPool", "PointwiseMaxPool2d", "PointwiseMaxPool3d",
           "PointwiseAvgPool2d", "PointwiseAvgPool3d", "PointwiseMaxPool", "PointwiseAvgPool",
           "FieldDropout"]


class _PerField(FieldwiseModule):
    """A reduction over the channels of every field: [N, C, …] → [N, n_fields, …]."""

    def __init__(self, in_type):
        super().__init__(in_type)
        self.out_type = trivial_type(in_type, self.fields.n_fields)
        self.sizes, fields = [], []
        for g in self.fields.by_size:
            self.sizes.append(g.size)
            self.register_buffer(f"_channels_{g.size}", as_index(g.channels.ravel()),
                                 persistent=False)
            fields.append(g.fields)
        order = torch.cat([as_index(f) for f in fields])
        self.register_buffer("_inverse", torch.argsort(order), persistent=False)

    def _reduce(self, fields: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        N, spatial = x.shape[0], x.shape[2:]
        outs = []
        for s in self.sizes:
            part = x.index_select(1, getattr(self, f"_channels_{s}"))
            outs.append(self._reduce(part.reshape(N, -1, s, *spatial)))
        return torch.cat(outs, 1).index_select(1, self._inverse)


class GroupPooling(_PerField):
    """e2cnn's ``GroupPooling(in_type)``: the maximum over each field's channels, one trivial
    field per field. Every field must be pointwise (a permutation of the channels leaves the
    maximum unchanged)."""

    def __init__(self, in_type):
        super().__init__(in_type)
        self.fields.require_pointwise("GroupPooling", "use NormPool (the norm of each field)")

    def _reduce(self, fields):
        return fields.amax(2)


class NormPool(_PerField):
    """e2cnn's ``NormPool(in_type)``: the norm of each field's channels (invariant for every
    field), one trivial field per field."""

    def _reduce(self, fields):
        return torch.linalg.vector_norm(fields, dim=2)


def _pair(x, n: int, name: str, allow_none: bool = False):
    if x is None and allow_none:
        return None
    t = tuple(x) if isinstance(x, (tuple, list)) else (x,) * n
    if len(t) != n or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in t):
        raise ValueError(f"{name} must be an int >= 0 or a tuple of {n} of them, got {x!r}")
    return t


class _SpatialPool(FieldwiseModule):
    _ndim = 2
    _pointwise = False

    def __init__(self, in_type, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__(in_type)
        n, name = self._ndim, type(self).__name__
        if self.spatial_dims != n:
            other = name.replace(f"{n}d", f"{self.spatial_dims}d")
            raise ValueError(f"in_type: {in_type.group.name} acts on R^{self.spatial_dims}, "
                             f"but {name} pools {n}-dimensional maps; use {other}")
        if self._pointwise:
            self.fields.require_pointwise(
                name, "pool it with PointwiseAvgPool (linear: any field), or reduce each "
                "field first (GroupPooling / NormPool)")
        self.kernel_size = _pair(kernel_size, n, "kernel_size")
        if min(self.kernel_size) < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}")
        self.stride = _pair(stride, n, "stride", allow_none=True) or self.kernel_size
        self.padding = _pair(padding, n, "padding")
        self.ceil_mode = bool(ceil_mode)


class _MaxPool(_SpatialPool):
    _pointwise = True

    def __init__(self, in_type, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False):
        super().__init__(in_type, kernel_size, stride, padding, ceil_mode)
        self.dilation = _pair(dilation, self._ndim, "dilation")

    def forward(self, x):
        self._check(x)
        pool = F.max_pool2d if self._ndim == 2 else F.max_pool3d
        return pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                    ceil_mode=self.ceil_mode)


class _AvgPool(_SpatialPool):
    def __init__(self, in_type, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(in_type, kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        self._check(x)
        pool = F.avg_pool2d if self._ndim == 2 else F.avg_pool3d
        return pool(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)


class PointwiseMaxPool2d(_MaxPool):
    """e2cnn's ``PointwiseMaxPool(in_type, kernel_size, stride=None, padding=0, dilation=1,
    ceil_mode=False)``: ``max_pool2d`` on every channel; pointwise fields only."""


class PointwiseMaxPool3d(_MaxPool):
    """escnn's ``PointwiseMaxPool3D``: ``max_pool3d`` on every channel; pointwise fields."""
    _ndim = 3


class PointwiseAvgPool2d(_AvgPool):
    """e2cnn's ``PointwiseAvgPool(in_type, kernel_size, stride=None, padding=0,
    ceil_mode=False)``: ``avg_pool2d`` on every channel (any field: it is linear)."""


class PointwiseAvgPool3d(_AvgPool):
    """escnn's ``PointwiseAvgPool3D``: ``avg_pool3d`` on every channel (any field)."""
    _ndim = 3


PointwiseMaxPool = PointwiseMaxPool2d  # e2cnn's names
PointwiseAvgPool = PointwiseAvgPool2d


class FieldDropout(FieldwiseModule):
    """e2cnn's ``FieldDropout(in_type, p=0.5, inplace=False)``: in training mode every field
    at every pixel of every sample is zeroed with probability ``p`` (all its channels
    together) and the kept ones are scaled by 1/(1 − p); the identity in eval mode. Any field
    (a field-wide scalar commutes with ρ(g)); equivariant in distribution."""

    def __init__(self, in_type, p: float = 0.5, inplace: bool = False):
        super().__init__(in_type)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p, self.inplace = float(p), bool(inplace)
        self.n_fields = self.fields.n_fields
        self.register_buffer("channel_field", as_index(self.fields.channel_field),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x.mul_(0.0) if self.inplace else x * 0.0
        shape = (x.shape[0], self.n_fields) + tuple(x.shape[2:])
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        mask = (keep / (1.0 - self.p)).index_select(1, self.channel_field)
        return x.mul_(mask) if self.inplace else x * mask
