"""The whole model's filters in one launch: :func:`expand_together`.

A torch model with ten steerable layers expands ten filters per forward and ten weight
gradients per backward, one kernel launch each. ``expand_together(model)`` makes every
steerable layer of ``model`` (its :class:`~cupysteer.torch.SteerableConv2d`,
:class:`~cupysteer.torch.SteerableConv3d` and :class:`~cupysteer.torch.SteerableConvTranspose2d`
submodules) expand together: at the start of ``model``'s forward one
``cupysteer::expand_many`` operator expands all their weights (concatenated) in one launch of
the CuPy backend over the packed plans of all layers, and in the backward its autograd formula,
``cupysteer::adjoint_many``, computes every weight gradient in one adjoint launch. Each layer
then takes its filter from that result instead of expanding its own.

>>> import torch, cupysteer as cs
>>> from cupysteer.torch import SteerableConv2d
>>> from cupysteer.torch.grouped import expand_together
>>> G = cs.CyclicGroup(4)
>>> t = cs.FieldType(G, [G.regular_representation] * 2)
>>> model = torch.nn.Sequential(SteerableConv2d(t, t, 3, padding=1),
...                             SteerableConv2d(t, t, 3, padding=1))
>>> grouped = expand_together(model)
>>> model(torch.randn(1, 8, 9, 9)).shape
torch.Size([1, 8, 9, 9])

What stays as it was: the layers themselves (called alone they expand their own filter), the
state dict (no new entries), ``copy.deepcopy`` and pickling (the hooks travel with the model),
``DistributedDataParallel`` (it calls the model's forward) and ``torch.compile`` (inside
compiled graphs, and under ``torch.func`` transforms, nothing is grouped: every layer runs its
own torch-native expansion there). Layers in eval mode keep their own filter cache and are
left out, as are devices without a cupysteer kernel.
Layers are grouped per (dtype, device): one launch per group. On CPU the operator runs the
per-layer NumPy expansion into one buffer (the fallback); ``expander_factory`` replaces the
CuPy backend (the tests run the CPU emulation of the CUDA kernels through it).
"""
from __future__ import annotations

import hashlib
import threading
import weakref

import numpy as np
import torch
from torch import Tensor, nn

from .. import dlpack as _dl
from ..backends.cupy_backend import CupyExpander
from ..backends.numpy_backend import blas_threads
from . import native
from .layers import SteerableConv2d, SteerableConv3d, SteerableConvTranspose2d
from .ops import LiveRegistry, register_basis

__all__ = ["expand_together", "GroupedExpansion"]

_STEERABLE = (SteerableConv2d, SteerableConv3d, SteerableConvTranspose2d)
_COMPUTE = (torch.float32, torch.float64)


def _functorch_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active and active())


class _Group:
    """Several layer bases laid end to end (weights, then filters), with their expanders."""

    def __init__(self, bases, expander_factory):
        self.bases = tuple(bases)
        self.factory = expander_factory
        self.dims = [b.dim for b in self.bases]
        self.sizes = [int(np.prod(b.shape)) for b in self.bases]
        self.dim, self.filter_size = sum(self.dims), sum(self.sizes)
        self._expanders: dict = {}
        self._lock = threading.Lock()
        h = hashlib.blake2b(digest_size=8)
        h.update(repr([register_basis(b) for b in self.bases]).encode())
        h.update(repr(getattr(expander_factory, "__qualname__", expander_factory)).encode())
        self.key = int.from_bytes(h.digest(), "little") & (2 ** 63 - 1)

    def expander(self, dtype):
        """The packed expander of all bases for the NumPy ``dtype`` (built on first use)."""
        dtype = np.dtype(dtype)
        with self._lock:
            if dtype not in self._expanders:
                factory = self.factory or CupyExpander
                self._expanders[dtype] = factory([b.plan for b in self.bases], dtype)
            return self._expanders[dtype]

    def numpy_expand(self, w: np.ndarray) -> np.ndarray:
        """The CPU fallback: every layer's NumPy expansion, written into one flat buffer."""
        out = np.empty(self.filter_size, w.dtype)
        wo = fo = 0
        for b, d, n in zip(self.bases, self.dims, self.sizes):
            b.expand(w[wo:wo + d], out=out[fo:fo + n].reshape(b.shape))
            wo, fo = wo + d, fo + n
        return out

    def numpy_adjoint(self, g: np.ndarray) -> np.ndarray:
        out = np.empty(self.dim, g.dtype)
        wo = fo = 0
        for b, d, n in zip(self.bases, self.dims, self.sizes):
            b.adjoint(g[fo:fo + n].reshape(b.shape), out=out[wo:wo + d])
            wo, fo = wo + d, fo + n
        return out


# groups by operator key (the GroupedExpansion of a model keeps its own groups alive, and an
# equal model's groups may die first — EMA copies, twins, rebuild loops); a model re-registers
# its groups at every forward
_GROUPS = LiveRegistry("layer group", "call cupysteer.torch.grouped.expand_together(model) in "
                                      "this process")


def _register(group: _Group) -> int:
    return _GROUPS.add(group.key, group)


def _group(key: int) -> _Group:
    return _GROUPS.get(key)


def _run(method: str, x: Tensor, key: int) -> Tensor:
    group = _group(key)
    n = group.dim if method == "expand" else group.filter_size
    if x.ndim != 1 or x.shape[0] != n or x.dtype not in _COMPUTE:
        what = "weights" if method == "expand" else "filter_grad"
        raise ValueError(f"cupysteer::{method}_many: {what} must be a float32/float64 tensor "
                         f"of shape ({n},), got {x.dtype} {tuple(x.shape)}")
    x = x.contiguous()
    if x.device.type == "cpu":
        a = x.detach().numpy()
        with blas_threads(1):  # torch's pool holds the cores (as in cupysteer.torch.ops)
            if group.factory is None:
                got = group.numpy_expand(a) if method == "expand" else group.numpy_adjoint(a)
            else:
                got = getattr(group.expander(a.dtype), method)(a)
        return torch.from_numpy(np.asarray(got))
    size = group.filter_size if method == "expand" else group.dim
    res = torch.empty(size, dtype=x.dtype, device=x.device)  # torch's allocator and stream
    ex = group.expander(np.float32 if x.dtype == torch.float32 else np.float64)
    return _dl._on_gpu(lambda a, out: getattr(ex, method)(a, out=out), x, out=res)


@torch.library.custom_op("cupysteer::expand_many", mutates_args=())
def _expand_many(weights: Tensor, key: int) -> Tensor:
    """The concatenated weights of a layer group (dim,) → its concatenated flat filters."""
    return _run("expand", weights, key)


@_expand_many.register_fake
def _(weights, key):
    return weights.new_empty((_group(key).filter_size,))


@torch.library.custom_op("cupysteer::adjoint_many", mutates_args=())
def _adjoint_many(filter_grad: Tensor, key: int) -> Tensor:
    """The transpose of ``expand_many``: flat filter gradients → concatenated weight gradient."""
    return _run("adjoint", filter_grad, key)


@_adjoint_many.register_fake
def _(filter_grad, key):
    return filter_grad.new_empty((_group(key).dim,))


def _setup_context(ctx, inputs, output):
    ctx.key = inputs[1]


_expand_many.register_autograd(
    lambda ctx, g: (torch.ops.cupysteer.adjoint_many(g.contiguous(), ctx.key), None),
    setup_context=_setup_context)
_adjoint_many.register_autograd(
    lambda ctx, g: (torch.ops.cupysteer.expand_many(g.contiguous(), ctx.key), None),
    setup_context=_setup_context)


class GroupedExpansion:
    """The forward hooks :func:`expand_together` installs on a model (picklable, copied with
    the model by ``copy.deepcopy``). ``layers``: the steerable layers, in module order, as
    they were when :func:`expand_together` was called — after adding or removing layers,
    call ``remove()`` and :func:`expand_together` again."""

    def __init__(self, model: nn.Module, expander_factory=None):
        self.layers = [m for m in model.modules() if isinstance(m, _STEERABLE)]
        self.expander_factory = expander_factory
        self._groups: dict = {}
        self._model = weakref.ref(model)
        self._handles = (model.register_forward_pre_hook(self._before),
                         model.register_forward_hook(self._after, always_call=True))

    def _group_of(self, layers) -> _Group:
        ids = tuple(id(m.basis) for m in layers)  # the group holds the bases: ids stay valid
        g = self._groups.get(ids)
        if g is None:
            g = self._groups[ids] = _Group([m.basis for m in layers], self.expander_factory)
        _register(g)  # every forward: the key resolves to this model's group while it lives
        return g

    def _active(self) -> dict:
        """The layers expanding now with a cupysteer kernel, per (dtype, device): those in
        train mode on CPU or CUDA, in eager mode. Under torch.compile and torch.func
        transforms the layers run their own torch-native expansion (nothing is grouped)."""
        if torch.compiler.is_compiling() or _functorch_active():
            return {}
        sets: dict = {}
        for m in self.layers:
            w = m.weights
            if m.training and w.dtype in _COMPUTE and native.has_kernel(w.device):
                sets.setdefault((w.dtype, w.device), []).append(m)
        return sets

    def _before(self, model, args):
        self._model = weakref.ref(model)
        for layers in self._active().values():
            group = self._group_of(layers)
            w = torch.cat([m.weights for m in layers]) if len(layers) > 1 else layers[0].weights
            flat = torch.ops.cupysteer.expand_many(w, group.key)
            for m, part in zip(layers, torch.split(flat, group.sizes)):
                m._grouped_filter = part.view(m.basis.shape)

    def _after(self, model, args, output):
        for m in self.layers:
            m._grouped_filter = None

    def remove(self, model: nn.Module | None = None) -> None:
        """Uninstall the hooks: every layer expands on its own again. On a copy (deepcopy,
        pickle) the hooks are found in ``model``'s hook dicts (the model this object last ran
        on, or the one given)."""
        for h in self._handles or ():
            h.remove()
        model = model if model is not None else (self._model() if self._model else None)
        if model is not None:
            for hooks in (model._forward_pre_hooks, model._forward_hooks):
                for k in [k for k, f in hooks.items() if getattr(f, "__self__", None) is self]:
                    del hooks[k]
        self._handles = None
        self._after(None, None, None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_groups"] = {}  # rebuilt (and registered) in the new process on first use
        state["_handles"] = None  # the hooks travel inside the model's hook dicts
        state["_model"] = None
        return state


def expand_together(model: nn.Module, expander_factory=None) -> GroupedExpansion:
    """Make every steerable layer of ``model`` expand its filter in one launch per forward
    (and its weight gradient in one adjoint launch per backward), grouped per dtype and
    device; returns the installed :class:`GroupedExpansion` (``.remove()`` undoes it).

    ``expander_factory(plans, dtype)``: the expander of the grouped plans (default: the CuPy
    backend's :class:`~cupysteer.backends.cupy_backend.CupyExpander` on CUDA tensors, the
    per-layer NumPy expansion on CPU tensors)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    grouped = GroupedExpansion(model, expander_factory)
    if not grouped.layers:
        grouped.remove()
        raise ValueError(f"{type(model).__name__} has no steerable layer (SteerableConv2d, "
                         f"SteerableConv3d, SteerableConvTranspose2d) to expand together")
    return grouped
