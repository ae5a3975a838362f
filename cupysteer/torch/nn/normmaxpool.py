"""e2cnn's ``NormMaxPool``: spatial max pooling of whole fields, chosen by their norm."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ._common import FieldwiseModule, as_index

__all__ = ["NormMaxPool"]


def _tuple(x, n: int, name: str, minimum: int):
    t = tuple(x) if isinstance(x, (tuple, list)) else (x,) * n
    if len(t) != n or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                          for v in t):
        raise ValueError(f"{name} must be an int >= {minimum} or a tuple of {n} of them, got "
                         f"{x!r}")
    return t


class NormMaxPool(FieldwiseModule):
    """e2cnn's ``NormMaxPool(in_type, kernel_size, stride=None, padding=0, dilation=1,
    ceil_mode=False)``: in every pooling window, each field takes its value at the pixel
    where its norm ‖x_f‖ is largest (the whole field vector, so any field type is accepted:
    the norm is invariant). 2D or 3D after the group's space. Equivariant for the elements
    mapping the windows onto windows, where the maximum is unique (ties pick the first
    pixel, as torch's max pooling)."""

    def __init__(self, in_type, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False):
        super().__init__(in_type)
        d = self.spatial_dims
        self.kernel_size = _tuple(kernel_size, d, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _tuple(stride, d, "stride", 1)
        self.padding = _tuple(padding, d, "padding", 0)
        self.dilation = _tuple(dilation, d, "dilation", 1)
        self.ceil_mode = bool(ceil_mode)
        self.n_fields = self.fields.n_fields
        self.register_buffer("channel_field", as_index(self.fields.channel_field),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return _norm_max_pool(x, self.channel_field, self.n_fields, self.spatial_dims,
                              self._pool_args())

    def _pool_args(self) -> tuple:
        return (self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


def _norm_max_pool(x, channel_field, n_fields: int, spatial_dims: int, pool_args):
    N, C = x.shape[:2]
    norms2 = x.new_zeros((N, n_fields) + tuple(x.shape[2:]))
    norms2 = norms2.index_add(1, channel_field, x * x)
    pool = F.max_pool2d if spatial_dims == 2 else F.max_pool3d
    _, idx = pool(torch.sqrt(norms2), *pool_args, return_indices=True)
    out_spatial = idx.shape[2:]
    idx = idx.index_select(1, channel_field).reshape(N, C, -1)
    return x.reshape(N, C, -1).gather(2, idx).reshape(N, C, *out_spatial)

