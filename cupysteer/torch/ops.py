"""The ``cupysteer::expand`` / ``cupysteer::adjoint`` torch operators and the basis registry.

Operators take plain ints, so a :class:`~cupysteer.LayerBasis` is registered under a key
derived from its content; each operator's autograd formula is the other operator, so every
derivative order works, ``torch.func.vmap`` maps them over leading axes, and
``torch.compile(fullgraph=True)`` traces them. CPU tensors run the NumPy backend zero-copy;
CUDA tensors go through :mod:`cupysteer.dlpack` to the CuPy backend; other devices (``mps``,
``xpu``, …) run the torch-native schedule (:mod:`cupysteer.torch.native`).

The registry is a lookup, never an owner: it holds every registered basis weakly (all bases
of one key, so dropping one of two equal layers loses nothing), the layers and
:func:`expand`/:func:`adjoint` register their basis at every call (a deepcopy, an unpickled
model or an EMA copy re-supplies its own), and an autograd node keeps its basis alive until
its backward ran. Exported programs never see a key: layers trace the native schedule.
"""
from __future__ import annotations

import hashlib
import threading
import weakref

import numpy as np
import torch
from torch import Tensor

from .. import dlpack as _dl
from ..backends.numpy_backend import blas_threads
from ..basis import LayerBasis
from . import native

__all__ = ["register_basis", "expand", "adjoint", "CachedExpand", "LiveRegistry"]

# ---- basis registry ----------------------------------------------------------------------
# Operators take plain ints, so bases are registered under a key derived from their content
# (a 63-bit BLAKE2b digest): equal layers share one key in every process. Every basis
# registered under a key is held (weakly) in that key's set: the key resolves while any of
# them lives.

class LiveRegistry:
    """Objects by operator key, held weakly and by id (equal objects compare equal, yet each
    keeps its own entry): a key resolves while ANY object registered under it lives, so an
    EMA copy or an equal twin keeps working after the first registrant is gone."""

    def __init__(self, what: str, hint: str):
        self._what, self._hint = what, hint
        self._lock = threading.Lock()
        self._live: "dict[int, weakref.WeakValueDictionary]" = {}

    def add(self, key: int, obj) -> int:
        with self._lock:
            live = self._live.get(key)
            if live is None:
                live = self._live[key] = weakref.WeakValueDictionary()
            live[id(obj)] = obj
        return key

    def get(self, key: int):
        with self._lock:
            for obj in list(self._live.get(key, {}).values()):
                return obj
            self._live.pop(key, None)
        raise KeyError(f"no {self._what} registered under key {key}; {self._hint}")


_BASES = LiveRegistry("LayerBasis", "call cupysteer.torch.register_basis(basis) in this "
                                    "process (layers do this themselves at every call)")


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
    return _BASES.add(key, basis)


def _basis(key: int) -> LayerBasis:
    return _BASES.get(key)


_COMPUTE = (torch.float32, torch.float64)


def _run(method: str, x: Tensor, key: int) -> Tensor:
    basis = _basis(key)
    if x.dtype not in _COMPUTE and not x.dtype.is_floating_point:
        raise TypeError(f"cupysteer.{method}: expected a floating tensor, got {x.dtype}")
    xc = x if x.dtype in _COMPUTE else x.float()
    if not native.has_kernel(xc.device):  # mps, xpu, …: the schedule in torch ops
        fn = native.expand if method == "expand" else native.adjoint
        out = fn(basis, xc)
    elif xc.device.type == "cpu":
        with blas_threads(1):  # torch's pool holds the cores: no BLAS threads beside it
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
    ctx.basis = _basis(inputs[1])  # alive until backward, whoever registered it


def _expand_backward(ctx, grad):
    return torch.ops.cupysteer.adjoint(grad, ctx.key), None


def _adjoint_backward(ctx, grad):
    return torch.ops.cupysteer.expand(grad, ctx.key), None


_expand_op.register_autograd(_expand_backward, setup_context=_setup_context)
_adjoint_op.register_autograd(_adjoint_backward, setup_context=_setup_context)


def _vmap_rule(op, n_tail):
    """Batching rule: move the mapped axis to the front and flatten it with the leading
    axes the operator already maps over (``n_tail``: trailing axes of one item)."""
    def rule(info, in_dims, x, key):
        d = in_dims[0]
        if d is None:
            return op(x, key), None
        x = x.movedim(d, 0)
        tail = n_tail(key)
        lead = tuple(x.shape[:x.ndim - tail])
        y = op(x.reshape((-1,) + tuple(x.shape[x.ndim - tail:])), key)
        return y.reshape(lead + tuple(y.shape[1:])), 0
    return rule


torch.library.register_vmap("cupysteer::expand", _vmap_rule(
    lambda x, k: torch.ops.cupysteer.expand(x, k), lambda k: 1))
torch.library.register_vmap("cupysteer::adjoint", _vmap_rule(
    lambda x, k: torch.ops.cupysteer.adjoint(x, k), lambda k: len(_filter_shape(k))))


def expand(basis: LayerBasis, weights: Tensor) -> Tensor:
    """Differentiable ``basis.expand`` on torch tensors (the ``cupysteer::expand`` op; the
    torch-native schedule under ``torch.export`` and on devices without a kernel)."""
    if torch.compiler.is_exporting() or native.transformed(weights) or \
            not native.has_kernel(weights.device):
        return native.expand(basis, weights)
    return torch.ops.cupysteer.expand(weights, register_basis(basis))


def adjoint(basis: LayerBasis, filter_grad: Tensor) -> Tensor:
    """Differentiable ``basis.adjoint`` on torch tensors (the ``cupysteer::adjoint`` op)."""
    if torch.compiler.is_exporting() or native.transformed(filter_grad) or \
            not native.has_kernel(filter_grad.device):
        return native.adjoint(basis, filter_grad)
    return torch.ops.cupysteer.adjoint(filter_grad, register_basis(basis))


class CachedExpand(torch.autograd.Function):
    """Returns an already expanded filter, with the adjoint as backward (eval mode with
    gradients enabled: the forward reuses the cache, gradients still reach ``weights``)."""

    @staticmethod
    def forward(weights, filt, basis):
        return filt.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.basis = inputs[2]

    @staticmethod
    def backward(ctx, grad):
        return adjoint(ctx.basis, grad.contiguous()), None, None
