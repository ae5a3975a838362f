"""The ``cupysteer::expand`` / ``cupysteer::adjoint`` torch operators and the basis registry.

Operators take plain ints, so a :class:`~cupysteer.LayerBasis` is registered under a key
derived from its content; each operator's autograd formula is the other operator, so every
derivative order works and ``torch.compile(fullgraph=True)`` traces them. CPU tensors run the
NumPy backend zero-copy; CUDA tensors go through :mod:`cupysteer.dlpack` to the CuPy backend.
"""
from __future__ import annotations

import hashlib
import threading
import weakref

import numpy as np
import torch
from torch import Tensor

from .. import dlpack as _dl
from ..basis import LayerBasis

__all__ = ["register_basis", "expand", "adjoint", "CachedExpand"]

# ---- basis registry ----------------------------------------------------------------------
# Operators take plain ints, so bases are registered under a key derived from their content
# (a 63-bit BLAKE2b digest): equal layers share one key in every process, so a key baked into
# an exported graph names the same basis wherever the basis is registered again. The registry
# holds bases weakly: a layer keeps its own basis alive.

_lock = threading.Lock()
_BASES: "weakref.WeakValueDictionary[int, LayerBasis]" = weakref.WeakValueDictionary()


def _digest(basis: LayerBasis) -> int:
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(basis.in_type.group).encode())
    for ftype in (basis.in_type, basis.out_type):
        h.update(b"|fields")
        for r in ftype.representations:
            h.update(r.name.encode() + repr([p.id for p in r.irreps]).encode())
            h.update((np.asarray(r.change_of_basis) + 0.0).tobytes())
    h.update(repr((basis.settings, basis.filter_shape)).encode())
    h.update(np.ascontiguousarray(basis.points, np.float64).tobytes())
    return int.from_bytes(h.digest(), "little") & (2 ** 63 - 1)


def register_basis(basis: LayerBasis) -> int:
    """The operator key of ``basis`` (registering it on first use)."""
    if not isinstance(basis, LayerBasis):
        raise TypeError(f"expected a LayerBasis, got {type(basis).__name__}")
    key = basis.__dict__.get("_torch_key")
    if key is None:
        key = _digest(basis)
        basis.__dict__["_torch_key"] = key
    with _lock:
        if _BASES.get(key) is None:
            _BASES[key] = basis
    return key


def _basis(key: int) -> LayerBasis:
    try:
        return _BASES[key]
    except KeyError:
        raise KeyError(f"no LayerBasis registered under key {key}; call "
                       f"cupysteer.torch.register_basis(basis) in this process") from None


_COMPUTE = (torch.float32, torch.float64)


def _run(method: str, x: Tensor, key: int) -> Tensor:
    basis = _basis(key)
    if x.dtype not in _COMPUTE and not x.dtype.is_floating_point:
        raise TypeError(f"cupysteer.{method}: expected a floating tensor, got {x.dtype}")
    xc = x if x.dtype in _COMPUTE else x.float()
    if xc.device.type == "cpu":
        out = torch.from_numpy(getattr(basis, method)(_dl.to_numpy(xc.contiguous())))
    else:  # the result is allocated by torch (its caching allocator and streams)
        xc = xc.contiguous()
        lead = xc.shape[:-1] if method == "expand" else xc.shape[:xc.ndim - len(basis.shape)]
        tail = tuple(basis.shape) if method == "expand" else (basis.dim,)
        res = torch.empty(tuple(lead) + tail, dtype=xc.dtype, device=xc.device)
        out = _dl._on_gpu(lambda a, out: getattr(basis, method)(a, out=out), xc, out=res)
    return out if out.dtype == x.dtype else out.to(x.dtype)


def _filter_shape(key: int) -> tuple:
    return tuple(_basis(key).shape)


# ---- operators -----------------------------------------------------------------------------

@torch.library.custom_op("cupysteer::expand", mutates_args=())
def _expand_op(weights: Tensor, key: int) -> Tensor:
    """weights (dim,) or (batch, dim) → filter (C_out, C_in, k, k) or (batch, …)."""
    dim = _basis(key).dim
    if weights.ndim not in (1, 2) or weights.shape[-1] != dim:
        raise ValueError(f"weights must have shape ({dim},) or (batch, {dim}), got "
                         f"{tuple(weights.shape)}")
    return _run("expand", weights, key)


@_expand_op.register_fake
def _(weights, key):
    return weights.new_empty(tuple(weights.shape[:-1]) + _filter_shape(key))


@torch.library.custom_op("cupysteer::adjoint", mutates_args=())
def _adjoint_op(filter_grad: Tensor, key: int) -> Tensor:
    """filter gradient (C_out, C_in, k, k) or (batch, …) → weight gradient (the transpose)."""
    return _run("adjoint", filter_grad, key)


@_adjoint_op.register_fake
def _(filter_grad, key):
    fshape = _filter_shape(key)
    return filter_grad.new_empty(tuple(filter_grad.shape[:filter_grad.ndim - len(fshape)])
                                 + (_basis(key).dim,))


def _setup_context(ctx, inputs, output):
    ctx.key = inputs[1]


def _expand_backward(ctx, grad):
    return torch.ops.cupysteer.adjoint(grad, ctx.key), None


def _adjoint_backward(ctx, grad):
    return torch.ops.cupysteer.expand(grad, ctx.key), None


_expand_op.register_autograd(_expand_backward, setup_context=_setup_context)
_adjoint_op.register_autograd(_adjoint_backward, setup_context=_setup_context)


def expand(basis: LayerBasis, weights: Tensor) -> Tensor:
    """Differentiable ``basis.expand`` on torch tensors (the ``cupysteer::expand`` op)."""
    return torch.ops.cupysteer.expand(weights, register_basis(basis))


def adjoint(basis: LayerBasis, filter_grad: Tensor) -> Tensor:
    """Differentiable ``basis.adjoint`` on torch tensors (the ``cupysteer::adjoint`` op)."""
    return torch.ops.cupysteer.adjoint(filter_grad, register_basis(basis))


class CachedExpand(torch.autograd.Function):
    """Returns an already expanded filter, with the adjoint as backward (eval mode with
    gradients enabled: the forward reuses the cache, gradients still reach ``weights``)."""

    @staticmethod
    def forward(ctx, weights, filt, key):
        ctx.key = key
        return filt.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.ops.cupysteer.adjoint(grad.contiguous(), ctx.key), None, None
