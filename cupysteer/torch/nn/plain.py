r"""Plain torch modules: what :func:`cupysteer.torch.nn.export` turns the field-wise modules
into when ``torch.nn`` has no equivalent. They hold index and matrix buffers only (no field
type, no basis, no checks), use ONNX-exportable ops (Gather, Conv, MatMul/Einsum, MaxPool,
Sigmoid, …) and compute what the module they replace computes in eval mode.

* :class:`ChannelGather`: y = x[:, index] (a permutation: DisentangleModule);
* :class:`Elementwise`: a user's elementwise function;
* :class:`FieldReduce`: max or norm over each field's channels (GroupPooling, NormPool);
* :class:`NormScale`: x_f · f(‖x_f‖ − b_f)/‖x_f‖ (NormNonLinearity);
* :class:`Gate`, :class:`Gate2`: gated fields times sigmoid(gate − bias);
* :class:`NormMaxPool`: every field's value where its norm is largest in the window;
* :class:`FourierSampled`: Â⁺ σ(A x̂) per field (Fourier non-linearities);
* :class:`Blur`: an optional stride-1 max pool, then a per-channel Gaussian blur (the
  antialiased pools);
* :func:`conv1x1`: a channel-mixing matrix (and bias) as a 1×1 ``Conv2d``/``Conv3d``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ChannelGather", "Elementwise", "FieldReduce", "NormScale", "Gate", "Gate2",
           "NormMaxPool", "FourierSampled", "Blur", "conv1x1", "membership"]


def _buffer(module: nn.Module, name: str, value) -> None:
    module.register_buffer(name, None if value is None else torch.as_tensor(value).detach()
                           .clone())


class ChannelGather(nn.Module):
    """y = x[:, index] (ONNX ``Gather``)."""

    def __init__(self, index):
        super().__init__()
        _buffer(self, "index", torch.as_tensor(index, dtype=torch.long))

    def forward(self, x):
        return x.index_select(1, self.index)


class Elementwise(nn.Module):
    """``function`` applied elementwise (a user's pointwise non-linearity)."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def conv1x1(matrix, spatial_dims: int, bias=None) -> nn.Module:
    """A 1×1 ``Conv2d``/``Conv3d``: y[:, a] = Σ_b matrix[a, b] x[:, b] (+ bias[a])."""
    cls = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    m = torch.as_tensor(matrix).detach()
    conv = cls(m.shape[1], m.shape[0], 1, bias=bias is not None, dtype=m.dtype, device=m.device)
    with torch.no_grad():
        conv.weight.copy_(m.reshape(m.shape + (1,) * spatial_dims))
        if bias is not None:
            conv.bias.copy_(torch.as_tensor(bias))
    return conv.eval()


def membership(channel_field: torch.Tensor, n_fields: int, dtype) -> torch.Tensor:
    """The (n_fields, C) 0/1 matrix of which channel belongs to which field."""
    S = torch.zeros(n_fields, channel_field.numel(), dtype=dtype, device=channel_field.device)
    S[channel_field, torch.arange(channel_field.numel(), device=channel_field.device)] = 1.0
    return S


def _field_sum(x: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Σ over each field's channels: [N, C, …] → [N, n_fields, …] (a 1×1 convolution)."""
    w = S.to(x).reshape(S.shape + (1,) * (x.dim() - 2))
    return F.conv2d(x, w) if x.dim() == 4 else F.conv3d(x, w)


class FieldReduce(nn.Module):
    """[N, C, …] → [N, n_fields, …]: the maximum (``'max'``) or the norm (``'norm'``) of the
    channels of each field, fields grouped by size (``groups``: (size, channel indices))."""

    def __init__(self, kind: str, groups, inverse):
        super().__init__()
        self.kind, self.sizes = kind, [int(s) for s, _ in groups]
        for s, channels in groups:
            _buffer(self, f"channels_{s}", channels)
        _buffer(self, "inverse", inverse)

    def forward(self, x):
        N, spatial, outs = x.shape[0], x.shape[2:], []
        for s in self.sizes:
            part = x.index_select(1, getattr(self, f"channels_{s}")).reshape(N, -1, s, *spatial)
            outs.append(part.amax(2) if self.kind == "max" else part.square().sum(2).sqrt())
        return torch.cat(outs, 1).index_select(1, self.inverse)


_NORM_FUNCTIONS = {"n_relu": torch.relu, "n_sigmoid": torch.sigmoid,
                   "squash": lambda t: t / (1.0 + t)}


class NormScale(nn.Module):
    """x_f · f(‖x_f‖ − b_f)/‖x_f‖ (0 where ‖x_f‖ < eps): NormNonLinearity's forward; ``S`` the
    field membership matrix, ``bias`` (1, n_fields, 1, …) or None."""

    def __init__(self, function: str, S, channel_field, bias, eps):
        super().__init__()
        self.function = function
        for name, v in (("S", S), ("channel_field", channel_field), ("bias", bias),
                        ("eps", eps)):
            _buffer(self, name, v)

    def forward(self, x):
        norms2 = _field_sum(x * x, self.S)
        eps = self.eps.to(x.dtype)
        norms = torch.sqrt(torch.clamp(norms2, min=eps * eps))
        shifted = norms if self.bias is None else norms - self.bias.to(x.dtype)
        scale = _NORM_FUNCTIONS[self.function](shifted) / norms
        scale = torch.where(norms2 < eps * eps, torch.zeros_like(scale), scale)
        return x * scale.index_select(1, self.channel_field)


class Gate(nn.Module):
    """σ = sigmoid(x[gates] − bias); y = x[gated] · σ[gate_of_channel]; with ``source`` (the
    gates kept) y = cat(x, σ, gated)[:, source]."""

    def __init__(self, gate_channels, gated_channels, gate_of_channel, bias=None, source=None):
        super().__init__()
        for name, v in (("gate_channels", gate_channels), ("gated_channels", gated_channels),
                        ("gate_of_channel", gate_of_channel), ("bias", bias),
                        ("source", source)):
            _buffer(self, name, v)

    def forward(self, x):
        g = x.index_select(1, self.gate_channels)
        sig = torch.sigmoid(g if self.bias is None else g - self.bias.to(x.dtype))
        gated = x.index_select(1, self.gated_channels) * sig.index_select(1, self.gate_of_channel)
        if self.source is None:
            return gated
        return torch.cat([x, sig, gated], 1).index_select(1, self.source)


class Gate2(nn.Module):
    """``forward(gates, x)``: x · sigmoid(gates − bias)[:, gate_of_channel]
    (GatedNonLinearity2)."""

    def __init__(self, bias, gate_of_channel):
        super().__init__()
        _buffer(self, "bias", bias)
        _buffer(self, "gate_of_channel", gate_of_channel)

    def forward(self, gates, x):
        return x * torch.sigmoid(gates - self.bias.to(x.dtype)).index_select(
            1, self.gate_of_channel)


class NormMaxPool(nn.Module):
    """In every window, each field's value at the pixel of its largest norm."""

    def __init__(self, S, channel_field, kernel_size, stride, padding, dilation, ceil_mode):
        super().__init__()
        _buffer(self, "S", S)
        _buffer(self, "channel_field", channel_field)
        self.pool = (tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation),
                     bool(ceil_mode))

    def forward(self, x):
        N, C = x.shape[:2]
        norms = torch.sqrt(_field_sum(x * x, self.S))
        pool = F.max_pool2d if x.dim() == 4 else F.max_pool3d
        _, idx = pool(norms, *self.pool, return_indices=True)
        spatial = idx.shape[2:]
        idx = idx.index_select(1, self.channel_field).reshape(N, C, -1)
        return x.reshape(N, C, -1).gather(2, idx).reshape(N, C, *spatial)


_POINTWISE = {"p_relu": F.relu, "p_elu": F.elu, "p_sigmoid": torch.sigmoid,
              "p_tanh": torch.tanh}


class FourierSampled(nn.Module):
    """Per field: x̂ → Ainv · f(A · x̂) (``channels`` fields of A.shape[1] coefficients)."""

    def __init__(self, A, Ainv, function: str, channels: int):
        super().__init__()
        _buffer(self, "A", A)
        _buffer(self, "Ainv", Ainv)
        self.function, self.channels = function, int(channels)

    def forward(self, x):
        N, spatial = x.shape[0], x.shape[2:]
        A, Ainv = self.A.to(x.dtype), self.Ainv.to(x.dtype)
        x_hat = x.reshape(N, self.channels, A.shape[1], -1)
        y = _POINTWISE[self.function](torch.einsum("bcfp,gf->bcgp", x_hat, A))
        y_hat = torch.einsum("bcgp,fg->bcfp", y, Ainv)
        return y_hat.reshape(N, self.channels * Ainv.shape[0], *spatial)


class Blur(nn.Module):
    """``max_pool`` (kernel, padding, ceil_mode; stride 1) when given, then the same filter
    (1, 1, s, …) on every channel with ``stride`` and ``padding``."""

    def __init__(self, filt, stride, padding, max_pool=None):
        super().__init__()
        _buffer(self, "filter", filt)
        self.stride, self.padding = tuple(stride), tuple(padding)
        self.max_pool = max_pool

    def forward(self, x):
        three = x.dim() == 5
        if self.max_pool is not None:
            kernel, padding, ceil_mode = self.max_pool
            pool = F.max_pool3d if three else F.max_pool2d
            x = pool(x, kernel, 1, padding, 1, ceil_mode=ceil_mode)
        N, C = x.shape[:2]
        conv = F.conv3d if three else F.conv2d
        y = conv(x.reshape(N * C, 1, *x.shape[2:]), self.filter.to(x.dtype), None, self.stride,
                 self.padding)
        return y.reshape(N, C, *y.shape[2:])
