"""PyTorch adapter: the expansion as a ``torch.library`` operator, and steerable conv layers.

Modules: :mod:`cupysteer.torch.ops` (the operators and the basis registry),
:mod:`cupysteer.torch.native` (the same expansion in torch ops, its tables as buffers) and
:mod:`cupysteer.torch.layers` (the layers); their public names are re-exported here.

Needs PyTorch ≥ 2.4 (``torch.library.custom_op``): ``pip install -e ".[torch]"`` in the
cupysteer checkout (it is installed from its repository, not from an index).

* ``torch.ops.cupysteer.expand(weights, key)`` → filter and ``torch.ops.cupysteer.adjoint(
  filter_grad, key)`` → weight gradient are custom operators with fake (meta) kernels and
  autograd formulas (each is the other's backward, so every derivative order works), so
  ``torch.compile(fullgraph=True)`` traces them without graph breaks. ``key`` names a
  :class:`~cupysteer.LayerBasis` registered with :func:`register_basis`; :func:`expand` and
  :func:`adjoint` take the basis directly. CPU tensors run the NumPy backend, zero-copy in
  and out; CUDA tensors go through :mod:`cupysteer.dlpack` to the CuPy backend; other
  devices (``mps``, ``xpu``, …) the torch-native schedule.
* Layers carry everything they need (the basis, and the native schedule as non-persistent
  buffers): deepcopies/EMA models, pickles, ``torch.func`` transforms and exported programs
  (``torch.export``, ONNX, AOTInductor: the schedule is traced into the graph) work without
  any registration.
* :class:`SteerableConv2d` / :class:`SteerableConvTranspose2d`: e2cnn ``R2Conv``-style layers on
  plain ``[N, C, H, W]`` tensors, taking native or :mod:`cupysteer.compat.e2cnn` field types;
  :class:`SteerableConv3d`: escnn ``R3Conv``-style on ``[N, C, D1, D2, D3]`` for the groups of
  :mod:`cupysteer.r3` (native or :mod:`cupysteer.compat.escnn` field types).
* :class:`SteerablePointConv` (:mod:`cupysteer.torch.point`): escnn ``R2PointConv`` /
  ``R3PointConv``-style point convolutions, ``conv(features, positions, edge_index)``, with
  per-edge filters never materialised (irreps-level contraction in edge chunks).

>>> import torch, cupysteer as cs
>>> from cupysteer.torch import SteerableConv2d
>>> G = cs.CyclicGroup(4)
>>> t = cs.FieldType(G, [G.regular_representation] * 2)
>>> conv = SteerableConv2d(t, t, kernel_size=5, padding=2)
>>> conv(torch.randn(1, 8, 9, 9)).shape
torch.Size([1, 8, 9, 9])
"""
from __future__ import annotations

try:
    import torch
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError('cupysteer.torch needs PyTorch: pip install -e ".[torch]" in the '
                      'cupysteer checkout') from _e

if not hasattr(torch, "library") or not hasattr(torch.library, "custom_op"):  # pragma: no cover
    raise ImportError(f"cupysteer.torch needs torch>=2.4 (torch.library.custom_op); found "
                      f"torch {torch.__version__}: pip install -U \"torch>=2.4\"")

from . import nn  # noqa: E402, F401  (the field-wise modules: cupysteer.torch.nn)
from .layers import SteerableConv2d, SteerableConv3d, SteerableConvTranspose2d  # noqa: E402
from .ops import adjoint, expand, register_basis  # noqa: E402
from .point import SteerablePointConv  # noqa: E402

__all__ = ["register_basis", "expand", "adjoint", "SteerableConv2d", "SteerableConv3d",
           "SteerableConvTranspose2d", "SteerablePointConv"]
