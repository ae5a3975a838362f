r"""Whole-model export: :func:`export` replaces every cupysteer module of a torch model by its
plain torch equivalent (same outputs in eval mode; ONNX-exportable; no field types, no basis).

**The protocol.** A cupysteer module ``m`` is replaced by ``m.export()`` when it defines that
method (the steerable convolutions → ``Conv2d``/``Conv3d``/``ConvTranspose2d``; upsampling →
``Upsample``; restriction → ``Identity``; disentangling; every new module should define one),
else by the exporter registered for its class (or a base class) in :data:`EXPORTERS` (the
field-wise modules that define no ``export()``). A steerable module (a ``FieldwiseModule``, or
a cupysteer module with an ``in_type``) with neither is an error naming it and its place in
the model (e.g. ``SteerablePointConv``, which has no plain equivalent); any other module is
kept and its children are visited. :func:`export` works on a deep copy in eval mode.

What each field-wise module becomes (eval mode: batch norms use their running statistics, as
e2cnn's/escnn's ``export``; ``FieldDropout`` is the identity):

* ``ReLU``/``ELU``/``PointwiseNonLinearity`` → ``torch.nn.ReLU``/``ELU``/``Sigmoid``/``Tanh``
  (:class:`~.plain.Elementwise` for a user's function);
* ``InnerBatchNorm`` → ``BatchNorm2d``/``3d`` over the channels, every field's statistics and
  affine parameters repeated on its channels (escnn's export); ``NormBatchNorm`` →
  ``BatchNorm2d``/``3d`` with running mean B·μ (B the invariant basis), running variance
  σ²_f, weight w_f and bias B·b on the channels of field f: the same affine map
  (x − Bμ)·w_f/√(σ²_f + eps) + Bb;
* ``IIDBatchNorm1d``/``2d``/``3d`` → ``BatchNorm1d``/``2d``/``3d`` likewise (per channel: the
  field's running mean entry, its variance and weight, the bias through the invariant basis);
  ``GNormBatchNorm`` → a 1×1 convolution with bias (y_f = Q_f diag(scale) Q_fᵀ x_f + Q_f shift:
  per field an affine map in its irreps coordinates);
* ``GroupPooling``/``NormPool`` → :class:`~.plain.FieldReduce`; ``NormNonLinearity`` →
  :class:`~.plain.NormScale`; ``GatedNonLinearity1``/``2`` → :class:`~.plain.Gate`/``Gate2``;
  ``NormMaxPool`` → :class:`~.plain.NormMaxPool`; ``FourierPointwise``/``FourierELU`` →
  :class:`~.plain.FourierSampled`; the antialiased pools → :class:`~.plain.Blur`;
* ``PointwiseMaxPool2d``/``AvgPool`` → ``torch.nn.MaxPool2d``/``AvgPool2d`` (3d likewise).

The plain modules are in :mod:`cupysteer.torch.nn.plain` (kept as they are by a second
:func:`export`).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from . import plain as P
from ._common import FieldwiseModule, as_index
from .antialiased import (
    PointwiseAvgPoolAntialiased2d,
    PointwiseAvgPoolAntialiased3d,
    PointwiseMaxPoolAntialiased2d,
    PointwiseMaxPoolAntialiased3d,
)
from .batchnorm import InnerBatchNorm, NormBatchNorm
from .fourier import FourierPointwise
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
    PointwiseAvgPool2d,
    PointwiseAvgPool3d,
    PointwiseMaxPool2d,
    PointwiseMaxPool3d,
)

__all__ = ["export", "EXPORTERS"]

_ELEMENTWISE = {F.relu: nn.ReLU, F.elu: nn.ELU, torch.sigmoid: nn.Sigmoid, torch.tanh: nn.Tanh}


def _pointwise(m):
    cls = _ELEMENTWISE.get(m.function)
    return cls() if cls is not None else P.Elementwise(m.function)


def _norm_nonlinearity(m):
    bias = None
    if m.log_bias is not None:
        bias = torch.exp(m.log_bias.detach().index_select(1, m.bias_index))
    dtype = m.eps.dtype if m.log_bias is None else m.log_bias.dtype
    return P.NormScale(m.function, P.membership(m.channel_field, m.n_fields, dtype),
                       m.channel_field, bias, m.eps)


def _gated(m):
    bias = getattr(m, "bias", None)
    bias = None if bias is None else bias.detach().reshape(1, -1, *[1] * m.spatial_dims)
    if m.drop_gates:
        return P.Gate(m.gate_channels, m.gated_channels, m.gate_of_channel, bias)
    C, n = m.in_type.size, m.gate_channels.numel()
    at = {"device": m.gate_channels.device}
    source = torch.arange(C, **at)                      # ungated channels: x itself
    source[m.gate_channels] = C + torch.arange(n, **at)  # gates: their sigmoid
    source[m.gated_channels] = C + n + torch.arange(m.gated_channels.numel(), **at)
    return P.Gate(m.gate_channels, m.gated_channels, m.gate_of_channel, bias, source)


def _per_field(kind):
    def make(m):
        groups = [(s, getattr(m, f"_channels_{s}")) for s in m.sizes]
        return P.FieldReduce(kind, groups, m._inverse)
    return make


def _batch_norm(m, dims, ref):
    cls = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
    return cls(m.in_type.size, m.eps, m.momentum, affine=m.affine, dtype=ref.dtype,
               device=ref.device)


def _inner_batch_norm(m):
    bns = {s: getattr(m, f"batch_norm_[{s}]") for s in m.sizes}
    if not all(bn.track_running_stats for bn in bns.values()):
        raise ValueError("InnerBatchNorm with track_running_stats=False normalises every "
                         "batch by its own statistics: it has no fixed plain equivalent "
                         "(as escnn); build it with track_running_stats=True")
    first = next(iter(bns.values()))
    out = _batch_norm(m, m.spatial_dims, first.running_mean)
    for g in m.fields.by_size:
        bn, ch = bns[g.size], as_index(g.channels)           # (n_s, s)
        out.running_mean[ch] = bn.running_mean[:, None].expand(ch.shape)
        out.running_var[ch] = bn.running_var[:, None].expand(ch.shape)
        if m.affine:
            out.weight[ch] = bn.weight.detach()[:, None].expand(ch.shape)
            out.bias[ch] = bn.bias.detach()[:, None].expand(ch.shape)
    out.num_batches_tracked.copy_(first.num_batches_tracked)
    return out.eval()


def _norm_batch_norm(m):
    B, C, cf = m._invariant_basis.to(m.running_var.dtype), m.in_type.size, m.channel_field
    out = _batch_norm(m, m.spatial_dims, m.running_var)
    zero = torch.zeros(C, dtype=out.running_var.dtype, device=out.running_var.device)
    out.running_mean.copy_(B @ m.running_mean if m.n_trivial else zero)
    out.running_var.copy_(m.running_var.index_select(0, cf))
    if m.affine:
        out.weight.copy_(m.weight.index_select(0, cf))
        out.bias.copy_(B @ m.bias if m.bias is not None else zero)
    out.num_batches_tracked.copy_(m.num_batches_tracked)
    return out.eval()


def _iid_batch_norm(m):
    if not m.track_running_stats:
        raise ValueError(f"{type(m).__name__} with track_running_stats=False normalises every "
                         f"batch by its own statistics: it has no fixed plain equivalent")
    ref = getattr(m, f"{m._groups[0][0]}_running_var")
    out = _batch_norm(m, max(m._dims), ref)
    for k, (name, rep, n, s) in enumerate(m._groups):
        ch = getattr(m, f"_channels_{k}").reshape(n, s)
        if m._has_trivial[k]:
            out.running_mean[ch] = getattr(m, f"{name}_running_mean")
        else:
            out.running_mean[ch] = 0.0
        out.running_var[ch] = getattr(m, f"{name}_running_var").expand(n, s)
        if m.affine:
            out.weight[ch] = getattr(m, f"{name}_weight").detach().expand(n, s)
            out.bias[ch] = (getattr(m, f"{name}_bias").detach()
                            @ getattr(m, f"_invariant_{k}").to(ref.dtype).T
                            if m._has_trivial[k] else 0.0)
    out.num_batches_tracked.copy_(m.num_batches_tracked)
    return out.eval()


def _gnorm_batch_norm(m):
    """y_f = Q diag(scale) Qᵀ x_f + Q shift (eval mode): one 1×1 convolution with bias."""
    dtype = m._basis_0.dtype
    C = m.in_type.size
    device = m._basis_0.device
    W = torch.zeros(C, C, dtype=dtype, device=device)
    b = torch.zeros(C, dtype=dtype, device=device)
    for k, (name, rep, n, s) in enumerate(m._groups):
        Q, triv = getattr(m, f"_basis_{k}").to(dtype), getattr(m, f"_trivial_{k}")
        scale = torch.rsqrt(getattr(m, f"{name}_running_var").to(dtype) + m.eps)
        if m.affine:
            scale = scale * getattr(m, f"{name}_weight").detach()
        scale = scale @ getattr(m, f"_propagator_{k}").to(dtype).T           # (n, s)
        shift = torch.zeros(n, s, dtype=dtype, device=device)
        shift[:, triv] = -getattr(m, f"{name}_running_mean").to(dtype) * scale[:, triv]
        if m.affine:
            shift[:, triv] += getattr(m, f"{name}_bias").detach()
        ch = getattr(m, f"_channels_{k}").reshape(n, s)
        for i in range(n):
            W[ch[i][:, None], ch[i][None, :]] = Q @ torch.diag(scale[i]) @ Q.T
            b[ch[i]] = Q @ shift[i]
    return P.conv1x1(W, m.spatial_dims, b)


def _norm_max_pool(m):
    S = P.membership(m.channel_field, m.n_fields, torch.get_default_dtype())  # its device
    return P.NormMaxPool(S, m.channel_field, m.kernel_size, m.stride, m.padding, m.dilation,
                         m.ceil_mode)


def _fourier(m):
    return P.FourierSampled(m.A, m.Ainv, m.function, m.channels)


def _blur(m):
    return P.Blur(m.filter, m.stride, m.padding)


def _max_blur(m):
    return P.Blur(m.filter, m.stride, m._blur_padding, (m.kernel_size, m.padding, m.ceil_mode))


def _max_pool(m):
    cls = nn.MaxPool2d if m._ndim == 2 else nn.MaxPool3d
    return cls(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)


def _avg_pool(m):
    cls = nn.AvgPool2d if m._ndim == 2 else nn.AvgPool3d
    return cls(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode,
               count_include_pad=m.count_include_pad)


#: class → function(module) → plain module, for cupysteer modules without an ``export()``
EXPORTERS = {
    ReLU: lambda m: nn.ReLU(m.inplace), ELU: lambda m: nn.ELU(m.alpha, m.inplace),
    PointwiseNonLinearity: _pointwise, NormNonLinearity: _norm_nonlinearity,
    GatedNonLinearity1: _gated,
    GatedNonLinearity2: lambda m: P.Gate2(m.bias.detach(), m.gate_of_channel),
    GroupPooling: _per_field("max"), NormPool: _per_field("norm"),
    InnerBatchNorm: _inner_batch_norm, NormBatchNorm: _norm_batch_norm,
    IIDBatchNorm1d: _iid_batch_norm, IIDBatchNorm2d: _iid_batch_norm,
    IIDBatchNorm3d: _iid_batch_norm, GNormBatchNorm: _gnorm_batch_norm,
    PointwiseMaxPool2d: _max_pool, PointwiseMaxPool3d: _max_pool,
    PointwiseAvgPool2d: _avg_pool, PointwiseAvgPool3d: _avg_pool,
    NormMaxPool: _norm_max_pool, FourierPointwise: _fourier,
    PointwiseAvgPoolAntialiased2d: _blur, PointwiseAvgPoolAntialiased3d: _blur,
    PointwiseMaxPoolAntialiased2d: _max_blur, PointwiseMaxPoolAntialiased3d: _max_blur,
    FieldDropout: lambda m: nn.Identity(),
}


# ---- the model walk ---------------------------------------------------------------------------
def _is_cupysteer(m: nn.Module) -> bool:
    """A steerable module (a field-wise one, or a cupysteer module with an ``in_type``: the
    convolutions) that needs replacing; plain modules (:mod:`.plain`) are kept."""
    if isinstance(m, FieldwiseModule):
        return True
    return type(m).__module__.split(".")[0] == "cupysteer" and hasattr(m, "in_type")


@torch.no_grad()
def _plain(m: nn.Module, path: str):
    """The plain equivalent of ``m`` (None: not a cupysteer module; visit its children)."""
    if not _is_cupysteer(m):
        return None
    if callable(getattr(m, "export", None)):
        return m.export()
    for cls in type(m).__mro__:
        if cls in EXPORTERS:
            return EXPORTERS[cls](m)
    raise NotImplementedError(f"export: {type(m).__name__} at {path or 'the top level'} has no "
                              f"plain equivalent (no export() method and no entry in "
                              f"cupysteer.torch.nn.exporting.EXPORTERS); define "
                              f"{type(m).__name__}.export()")


def _replace(module: nn.Module, path: str) -> None:
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        where = f"{path}.{name}" if path else name
        plain = _plain(child, where)
        if plain is None:
            _replace(child, where)
        else:
            module._modules[name] = plain


@torch.no_grad()
def export(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every cupysteer module replaced by its plain torch
    equivalent (module docstring); the original is left as it is. Outputs equal the model's
    in eval mode (float64 to ~1e-12, float32 to ~1e-5)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    out = copy.deepcopy(model).eval()  # eval-mode filters and statistics
    plain = _plain(out, "")
    if plain is not None:
        return plain.eval()
    _replace(out, "")
    return out.eval()
