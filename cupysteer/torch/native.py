"""The torch-native expansion: the gather/einsum schedule of :mod:`cupysteer.backends.gather`
(the one the JAX path runs) written in torch ops, its tables held as module buffers.

Used where no cupysteer kernel serves the tensor's device (``mps``, ``xpu``, …, and CUDA
without CuPy) and whenever the expansion is traced into a graph (``torch.compile``,
``torch.export``, ONNX, AOTInductor): the graph then holds plain ``index_select``/matmul/
``einsum`` ops and the tables as buffers, so it fuses, runs and reloads with no cupysteer
state (no operator key, no registry). Autograd differentiates it like any torch code (every
``torch.func`` transform works). The NumPy backend stays the eager CPU default and CuPy the
eager CUDA one (:mod:`cupysteer.torch.ops`).

The buffers are non-persistent (not in ``state_dict``) and follow ``.to()``; the owning
layer rebuilds the floating tables exactly from the float64 schedule in the new dtype
(:meth:`Expansion.retable`; float32 for half types, so ``.half()`` and ``mps`` work); index
tables stay int32.
"""
from __future__ import annotations

import functools
import importlib.util
import threading
import weakref

import numpy as np
import torch
from torch import Tensor, nn

from ..backends import gather
from ..basis import LayerBasis

__all__ = ["Expansion", "expansion_for", "has_kernel", "transformed", "preferred", "expand",
           "adjoint"]

_COMPUTE = (torch.float32, torch.float64)


@functools.lru_cache(maxsize=None)
def _cupy_installed() -> bool:
    return importlib.util.find_spec("cupy") is not None


def has_kernel(device: torch.device) -> bool:
    """Whether eager tensors on ``device`` have a cupysteer kernel: NumPy for ``cpu``, CuPy
    for ``cuda`` (when CuPy is installed). Everything else runs :class:`Expansion`."""
    return device.type == "cpu" or (device.type == "cuda" and _cupy_installed())


def transformed(t: Tensor) -> bool:
    """Whether ``t`` is wrapped by a ``torch.func`` transform (grad, vmap, jvp, …): the
    operators' autograd formulas do not compose with those; the native schedule does."""
    is_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(is_wrapped is not None and is_wrapped(t))


def preferred(t: Tensor) -> bool:
    """Whether to expand ``t`` with the native schedule: inside ``torch.compile`` /
    ``torch.export`` graphs, under ``torch.func`` transforms, and on devices without a
    cupysteer kernel."""
    return torch.compiler.is_compiling() or transformed(t) or not has_kernel(t.device)


def _table_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in _COMPUTE else torch.float32


def _as(t: Tensor, dtype: torch.dtype) -> Tensor:
    return t if t.dtype == dtype else t.to(dtype)


class Expansion(nn.Module):
    """``weights (..., dim) → filter (..., C_out, C_in, *filter_shape)`` of ``basis`` in torch
    ops; :meth:`adjoint` is its exact transpose. ``dtype``: of the floating tables
    (default: torch's default dtype)."""

    def __init__(self, basis: LayerBasis, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        if not isinstance(basis, LayerBasis):
            raise TypeError(f"basis must be a LayerBasis, got {type(basis).__name__}")
        gp = gather.schedule(basis.plan)
        self.dim, self.shape, self._digest = gp.dim, gp.shape, gp.digest
        self._sizes = (gp.out_size, gp.in_size, gp.P)
        self._pairs = tuple((int(B.shape[0]), int(nb)) for B, nb in gp.pairs)
        self._segments = {side: tuple((s.start, s.n, s.size, s.Q is not None)
                                      for s in getattr(gp, f"{side}_segments"))
                          for side in ("out", "in")}
        for name in ("wslot", "wslot_inv", "gidx", "vidx", "out_perm", "out_inv", "in_perm",
                     "in_inv"):
            a = getattr(gp, name)
            t = None if a is None else torch.tensor(np.asarray(a, np.int32), device=device)
            self.register_buffer(name, t, persistent=False)
        ft = _table_dtype(dtype or torch.get_default_dtype())
        for name, a in self._float_tables(gp):
            self.register_buffer(name, torch.tensor(a, dtype=ft, device=device),
                                 persistent=False)

    @staticmethod
    def _float_tables(gp):
        for i, (B, _) in enumerate(gp.pairs):
            yield f"pair{i}", B
        for side in ("out", "in"):
            for j, s in enumerate(getattr(gp, f"{side}_segments")):
                if s.Q is not None:
                    yield f"{side}_q{j}", s.Q

    def retable(self, basis: LayerBasis) -> None:
        """Rebuild the floating tables exactly from ``basis``'s float64 schedule in their
        current dtype (float32 for half types) and device: what the owning layer does after
        ``.to()``/``.double()``/``.half()`` (a cast would leave ``.double()`` at float32
        precision). The module holds no reference to the basis (it may be cached per plan)."""
        gp = gather.schedule(basis.plan)
        if gp.digest != self._digest:
            raise ValueError("retable: basis differs from the one this Expansion was built for")
        for name, a in self._float_tables(gp):
            old = self._buffers[name]
            self._buffers[name] = torch.tensor(a, dtype=_table_dtype(old.dtype),
                                               device=old.device)

    # ---- execution ------------------------------------------------------------------------
    def _cob(self, K: Tensor, side: str, axis: int, transpose: bool) -> Tensor:
        """Q (or Qᵀ) of every segment along ``axis`` (-3: output channels, -2: input)."""
        parts = []
        for j, (start, n, size, has_q) in enumerate(self._segments[side]):
            part = K.narrow(axis, start, n * size)
            if has_q:
                Q = _as(self._buffers[f"{side}_q{j}"], K.dtype)
                Q = Q.t() if transpose else Q
                shape = part.shape
                if axis == -3:
                    part = part.reshape(shape[:-3] + (n, size) + shape[-2:])
                    part = torch.einsum("ab,...nbcp->...nacp", Q, part)
                else:
                    part = part.reshape(shape[:-2] + (n, size, shape[-1]))
                    part = torch.einsum("...onbp,ab->...onap", part, Q)
                part = part.reshape(shape)
            parts.append(part)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=axis)

    def forward(self, weights: Tensor) -> Tensor:
        if weights.ndim < 1 or weights.shape[-1] != self.dim:
            raise ValueError(f"weights must have shape (..., {self.dim}), got "
                             f"{tuple(weights.shape)}")
        ct = _table_dtype(weights.dtype)
        w = _as(weights, ct)
        lead = tuple(w.shape[:-1])
        Co, Ci, P = self._sizes
        W = w.index_select(-1, self.wslot)
        vals, lo = [], 0
        for i, (n, nb) in enumerate(self._pairs):
            B = _as(self._buffers[f"pair{i}"], ct)
            vals.append((W[..., lo:lo + nb * n].reshape(lead + (nb, n)) @ B)
                        .reshape(lead + (-1,)))
            lo += nb * n
        vals.append(w.new_zeros(lead + (1,)))
        K = torch.cat(vals, -1).index_select(-1, self.gidx).reshape(lead + (Co, Ci, P))
        K = self._cob(K, "out", -3, False)
        K = self._cob(K, "in", -2, False)
        if self.out_inv is not None:
            K = K.index_select(-3, self.out_inv)
        if self.in_inv is not None:
            K = K.index_select(-2, self.in_inv)
        return _as(K.reshape(lead + tuple(self.shape)), weights.dtype)

    def adjoint(self, filter_grad: Tensor) -> Tensor:
        """The exact transpose of :meth:`forward`: filter gradient → weight gradient."""
        n_f = len(self.shape)
        if filter_grad.ndim < n_f or tuple(filter_grad.shape[-n_f:]) != tuple(self.shape):
            raise ValueError(f"filter_grad must have shape (..., *{tuple(self.shape)}), got "
                             f"{tuple(filter_grad.shape)}")
        ct = _table_dtype(filter_grad.dtype)
        lead = tuple(filter_grad.shape[:filter_grad.ndim - n_f])
        Co, Ci, P = self._sizes
        G = _as(filter_grad, ct).reshape(lead + (Co, Ci, P))
        if self.out_perm is not None:
            G = G.index_select(-3, self.out_perm)
        if self.in_perm is not None:
            G = G.index_select(-2, self.in_perm)
        G = self._cob(G, "out", -3, True)
        G = self._cob(G, "in", -2, True)
        V = G.reshape(lead + (-1,)).index_select(-1, self.vidx)
        grads, lo = [], 0
        for i, (n, nb) in enumerate(self._pairs):
            B = _as(self._buffers[f"pair{i}"], ct)
            q = B.shape[1]
            grads.append((V[..., lo:lo + nb * q].reshape(lead + (nb, q)) @ B.t())
                         .reshape(lead + (-1,)))
            lo += nb * q
        g = torch.cat(grads, -1) if grads else V.new_zeros(lead + (0,))
        return _as(g.index_select(-1, self.wslot_inv), filter_grad.dtype)

    def extra_repr(self):
        return f"dim={self.dim}, shape={tuple(self.shape)}"


# ---- functional form: one Expansion per (plan, device, dtype), kept while the plan lives ----

_lock = threading.Lock()
_MODULES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def expansion_for(basis: LayerBasis, device, dtype) -> Expansion:
    """The :class:`Expansion` of ``basis`` on ``device`` with tables for ``dtype`` (a cache
    keyed by the basis's plan: it goes when the basis goes)."""
    key = (torch.device(device), _table_dtype(dtype))
    with _lock:
        per_plan = _MODULES.setdefault(basis.plan, {})
        mod = per_plan.get(key)
    if mod is None:
        mod = Expansion(basis, key[1], key[0])
        with _lock:
            mod = per_plan.setdefault(key, mod)
    return mod


def expand(basis: LayerBasis, weights: Tensor) -> Tensor:
    """``basis.expand`` in torch ops on ``weights``' device (differentiable by autograd)."""
    return expansion_for(basis, weights.device, weights.dtype)(weights)


def adjoint(basis: LayerBasis, filter_grad: Tensor) -> Tensor:
    """``basis.adjoint`` in torch ops on ``filter_grad``'s device."""
    return expansion_for(basis, filter_grad.device, filter_grad.dtype).adjoint(filter_grad)
