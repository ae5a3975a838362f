"""Steerable convolution layers on plain torch tensors.

:class:`SteerableConv2d` / :class:`SteerableConvTranspose2d`: e2cnn ``R2Conv``-style layers on
``[N, C, H, W]`` tensors (native or :mod:`cupysteer.compat.e2cnn` field types);
:class:`SteerableConv3d`: escnn ``R3Conv``-style on ``[N, C, D1, D2, D3]`` for the groups of
:mod:`cupysteer.r3`. The filter is expanded at every training forward and cached in eval mode:
eagerly by :mod:`cupysteer.torch.ops` (NumPy on CPU, CuPy on CUDA), and by the layer's own
:class:`~cupysteer.torch.native.Expansion` (the schedule as buffers) on other devices and
inside ``torch.compile``/``torch.export`` graphs. Everything a layer needs travels with it:
copies, pickles, EMA models and exported programs need no registration.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..basis import LayerBasis
from ..field_type import FieldType
from . import native, ops
from ._porting import GUIDE, group_type, no_positional, porting_keywords
from .ops import CachedExpand

__all__ = ["SteerableConv2d", "SteerableConv3d", "SteerableConvTranspose2d"]


# ---- layers --------------------------------------------------------------------------------

def _check_kernel_size(kernel_size, n: int) -> None:
    """An int >= 1 or n of them (one per filter axis; a non-cubic filter's basis is sampled
    at its physical points, see :class:`~cupysteer.LayerBasis`)."""
    ks = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,)
    if (len(ks) not in (1, n) or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                                     or k < 1 for k in ks)):
        raise ValueError(f"kernel_size must be a positive int or {n} positive ints (one per "
                         f"spatial axis), got {kernel_size!r}")
    if isinstance(kernel_size, (tuple, list)) and len(ks) != n:
        raise ValueError(f"kernel_size must be a positive int or {n} positive ints (one per "
                         f"spatial axis), got {len(ks)} entries: {kernel_size!r}")


def _tuple(x, n: int, name: str):
    if isinstance(x, str):
        return x
    t = tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else (x,) * n))
    if len(t) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {x!r}")
    return t


# e2cnn R2Conv state_dict entries that are derived data (dropped when loading a checkpoint)
_E2CNN_DERIVED = ("filter", "expanded_bias", "bias_expansion", "_basisexpansion.")


class _SteerableConvNd(nn.Module):
    _transposed = False
    _ndim = 2  # spatial dimensions: 2 (groups of the plane) or 3 (groups acting on R³)

    #: per-axis physical steps of the filter grid (None: unit steps; also for older pickles)
    spacing = None

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size, stride,
                 padding, dilation, bias: bool, padding_mode: str, initialize: bool,
                 basis_settings: dict, groups: int = 1, spacing=None):
        super().__init__()
        n = self._ndim
        guide = GUIDE[n]
        for name, t in (("in_type", in_type), ("out_type", out_type)):
            if not isinstance(t, FieldType):
                raise TypeError(f"{name} must be a cupysteer FieldType (native or "
                                f"cupysteer.compat.e2cnn), got {type(t).__name__}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        _check_kernel_size(kernel_size, n)
        basis_settings = porting_keywords(type(self).__name__, n, basis_settings)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"groups must be a positive int, got {groups!r}")
        if in_type.group.space.dimension != n:
            hint = ("SteerableConv3d" if in_type.group.space.dimension == 3 else
                    "SteerableConv2d")
            raise ValueError(f"in_type: {in_type.group.name} acts on R^"
                             f"{in_type.group.space.dimension}, but {type(self).__name__} "
                             f"convolves {n}-dimensional inputs; use {hint}")
        self.in_type, self.out_type = in_type, out_type
        self.kernel_size = (int(kernel_size) if not isinstance(kernel_size, (tuple, list))
                            else tuple(int(k) for k in kernel_size))
        self.stride = _tuple(stride, n, "stride")
        self.dilation = _tuple(dilation, n, "dilation")
        if len(set(self.dilation)) != 1:
            raise ValueError(f"steerable filters need one dilation, got {dilation!r}; for "
                             f"a grid with other physical steps per axis pass spacing=(…)")
        self.padding = _tuple(padding, n, "padding")
        if isinstance(self.padding, str) and padding_mode != "zeros":
            raise ValueError("padding as a string needs padding_mode='zeros'")
        self.padding_mode = padding_mode
        self.groups = int(groups)
        basis_in = (in_type if self.groups == 1 else
                    group_type(in_type, self.groups, "in_type", guide))
        if self.groups > 1:
            group_type(out_type, self.groups, "out_type", guide)
        self.basis = LayerBasis(basis_in, out_type, self.kernel_size, self.dilation[0],
                                spacing=spacing, **basis_settings)
        self.spacing = self.basis.spacing
        dtype = torch.get_default_dtype()
        self._expansion = native.Expansion(self.basis, dtype)
        self.weights = nn.Parameter(torch.zeros(self.basis.dim, dtype=dtype))
        T = self.basis.num_bias
        if bias and T > 0:
            self.bias = nn.Parameter(torch.zeros(T, dtype=dtype))
            M = torch.tensor(self.basis.bias_expansion(), dtype=dtype)
            self.register_buffer("bias_expansion", M, persistent=False)
        else:
            self.register_parameter("bias", None)
            self.register_buffer("bias_expansion", None, persistent=False)
        self._cache = None
        if initialize:
            self.reset_parameters()

    # ---- parameters -------------------------------------------------------------------------
    @torch.no_grad()
    def reset_parameters(self):
        """Generalised He init (e2cnn's ``generalized_he_init``): ``std · N(0, 1)`` in weight
        order from torch's global RNG; bias zero."""
        std = torch.tensor(self.basis.he_std(), dtype=self.weights.dtype)
        self.weights.copy_(std.to(self.weights.device) * torch.randn(
            self.basis.dim, dtype=self.weights.dtype).to(self.weights.device))
        if self.bias is not None:
            self.bias.zero_()
        self._cache = None

    @property
    def _key(self) -> int:
        """The ``cupysteer::expand`` operator key of this layer's basis (registering it)."""
        return ops.register_basis(self.basis)

    def _fresh(self) -> Tensor:
        """Expand the current weights: the layer's own torch-native schedule inside compiled
        or exported graphs, under torch.func transforms and on devices without a cupysteer
        kernel; the NumPy (CPU) / CuPy (CUDA) operator otherwise."""
        w = self.weights
        if native.preferred(w):
            return self._expansion(w)
        return ops.expand(self.basis, w)

    def _cache_valid(self, w: Tensor) -> bool:
        c = self._cache
        return (c is not None and c[0].dtype == w.dtype and c[0].device == w.device
                and c[0].shape == w.shape
                # made under inference_mode: unusable by autograd outside it (issue 16)
                and not (c[1].is_inference() and not torch.is_inference_mode_enabled())
                and torch.equal(c[0], w.detach()))

    def _expanded_filter(self) -> Tensor:
        """Train mode (or under torch.compile / torch.func): expand now. Eval mode: reuse the
        filter cached for the current weights (value, dtype and device checked at every call).
        The returned tensor may be the cache itself: internal use only (see
        :meth:`expand_parameters`)."""
        # whole-model launch (cupysteer.torch.grouped.expand_together): during the model's
        # forward, this layer's filter already expanded with the others' in one launch
        grouped = getattr(self, "_grouped_filter", None)
        if grouped is not None:
            return grouped
        w = self.weights
        if self.training or torch.compiler.is_compiling() or native.transformed(w):
            self._cache = None
            return self._fresh()
        if not self._cache_valid(w):
            with torch.no_grad():
                self._cache = (w.detach().clone(), self._fresh())
        c = self._cache
        if torch.is_grad_enabled() and w.requires_grad:
            return CachedExpand.apply(w, c[1], self.basis)
        return c[1]

    def _expanded_bias(self):
        if self.bias is None:
            return None
        return self.bias_expansion.to(self.bias.dtype) @ self.bias

    def expand_parameters(self) -> tuple:
        """(filter, bias) as the layer uses them now (e2cnn's ``expand_parameters``); the
        filter is (C_out, C_in, k, k) for both layer kinds (C_in / groups with ``groups``),
        the bias (C_out,) or None. Always new tensors: writing to them (pruning, normalising)
        never reaches the eval-mode cache."""
        filt = self._expanded_filter()
        if self._cache is not None and filt is self._cache[1]:
            filt = filt.clone()
        return filt, self._expanded_bias()

    def invalidate_cache(self):
        """Drop the eval-mode filter (done automatically on train(), .to() and loading)."""
        self._cache = None

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self._cache = None
        out = super()._apply(fn, *args, **kwargs)
        self._expansion.retable(self.basis)  # exact tables in the new dtype, not a cast
        if self.bias is not None:  # rebuilt from float64, not cast: .double() stays exact
            self.bias_expansion = torch.tensor(self.basis.bias_expansion(),
                                               dtype=self.bias.dtype, device=self.bias.device)
        return out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Accepts e2cnn R2Conv checkpoints: their derived entries (``filter``,
        ``expanded_bias``, ``bias_expansion``, ``_basisexpansion.*``) are dropped."""
        for k in [k for k in state_dict if k.startswith(prefix)]:
            rest = k[len(prefix):]
            if any(rest == d or (d.endswith(".") and rest.startswith(d))
                   for d in _E2CNN_DERIVED):
                del state_dict[k]
        self._cache = None
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    # ---- pickling: the eval-mode cache is not part of the state ------------------------------
    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        state["_cache"] = None
        state.pop("_key", None)  # pickles of older versions carried the operator key
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_key", None)
        state.setdefault("groups", 1)
        super().__setstate__(state)
        if "_expansion" not in self._modules:  # pickled before the native schedule existed
            w = self.weights
            self._expansion = native.Expansion(self.basis, w.dtype, w.device)

    def _check_input(self, x):
        c = -(self._ndim + 1)
        if not torch.compiler.is_compiling() and (x.dim() < self._ndim + 1 or
                                                  x.shape[c] != self.in_type.size):
            raise ValueError(f"input of shape {tuple(x.shape)} must be [N, C, *spatial] with "
                             f"{self._ndim} spatial axes and C = {self.in_type.size} channels "
                             f"(in_type {self.in_type})")

    def _padded(self, x):
        if self.padding_mode == "zeros":
            return x, self.padding
        pads = [p for p in reversed(self.padding) for _ in range(2)]
        return F.pad(x, pads, mode=self.padding_mode), 0

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        filt, bias = self._expanded_filter(), self._expanded_bias()
        x, padding = self._padded(x)
        conv = F.conv2d if self._ndim == 2 else F.conv3d
        return conv(x, filt, bias, self.stride, padding, self.dilation, self.groups)

    @torch.no_grad()
    def _export(self, conv_cls):
        filt, bias = self._fresh(), self._expanded_bias()
        conv = conv_cls(self.in_type.size, self.out_type.size, self.kernel_size, self.stride,
                        self.padding, self.dilation, groups=self.groups, bias=bias is not None,
                        padding_mode=self.padding_mode, device=filt.device, dtype=filt.dtype)
        conv.weight.copy_(filt)
        if bias is not None:
            conv.bias.copy_(bias)
        return conv.train(self.training)

    def extra_repr(self):
        s = (f"{self.in_type} -> {self.out_type}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
             f"dim={self.basis.dim}, bias={self.bias is not None}")
        if self.spacing is not None:
            s += f", spacing={self.spacing}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s


class SteerableConv2d(_SteerableConvNd):
    """G-steerable convolution ``in_type → out_type`` on plain ``[N, C_in, H, W]`` tensors.

    Learnable ``weights`` (dim,) and ``bias`` (one per trivial irrep of the output fields, or
    None), named and ordered like e2cnn ``R2Conv``'s when built from compat field types: a
    checkpoint's ``weights``/``bias`` load as they are (``load_state_dict`` ignores e2cnn's
    derived entries). ``basis_settings``: ``rings``, ``sigma``, ``frequencies_cutoff``,
    ``maximum_offset``, ``cache`` (see :class:`~cupysteer.LayerBasis`); e2cnn's
    ``basisexpansion='blocks'`` and ``recompute`` are accepted.

    Anisotropic grids: ``kernel_size`` an int or one size per spatial axis (``(k_H, k_W)``;
    ``padding`` per axis too, e.g. ``(k_H // 2, k_W // 2)``) and ``spacing`` the physical
    pixel size per axis (``(s_H, s_W)``): the basis is sampled at the physical offsets, and
    the layer is exactly equivariant to the group elements that map that grid onto itself
    (:func:`cupysteer.equivariance_errors` lists them; a rectangle keeps the 180° rotation and
    the axis flips).

    Everything after ``kernel_size`` is keyword-only: e2cnn's ``R2Conv`` takes ``padding``
    before ``stride`` positionally and torch's ``Conv2d`` the other way round, so a positional
    value is refused (with that reason) rather than silently read as one or the other.
    ``groups``: e2cnn's grouped convolution (``in_type``/``out_type`` made of ``groups`` equal
    runs of fields; the filter maps one input run to all outputs, weights as e2cnn's).

    Train mode expands the filter at every forward; eval mode reuses the filter of the current
    weights (recomputed when they change; gradients still flow to ``weights``). The state dict
    holds ``weights`` and ``bias`` only, in both modes.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size: int, *args,
                 stride=1, padding=0, dilation=1, bias: bool = True,
                 padding_mode: str = "zeros", groups: int = 1, initialize: bool = True,
                 spacing=None, **basis_settings):
        no_positional(type(self).__name__, 2, args)
        super().__init__(in_type, out_type, kernel_size, stride, padding, dilation, bias,
                         padding_mode, initialize, basis_settings, groups, spacing)

    def export(self) -> nn.Conv2d:
        """A plain ``torch.nn.Conv2d`` with the expanded filter and bias (same outputs)."""
        return self._export(nn.Conv2d)


class SteerableConv3d(_SteerableConvNd):
    """G-steerable convolution for groups acting on R³ (:mod:`cupysteer.r3`) on plain
    ``[N, C_in, D1, D2, D3]`` tensors, escnn ``R3Conv``-style: the spatial axes are
    (−z, −y, x) (``filter[co, ci, a, b, c]`` is the value at x = c − h, y = h − b,
    z = h − a), a cross-correlation with ``torch.nn.functional.conv3d`` semantics; weights
    ordered like escnn's when built from :mod:`cupysteer.compat.escnn` field types. Otherwise
    as :class:`SteerableConv2d` (eval-mode filter cache, ``expand_parameters``, ``export``,
    ``groups``, keyword-only arguments after ``kernel_size``: escnn's ``R3Conv`` takes
    ``padding`` before ``stride`` positionally and torch's ``Conv3d`` the other way round).

    Anisotropic volumes: ``kernel_size=(k_1, k_2, k_3)`` and ``spacing=(s_1, s_2, s_3)`` in
    the tensor's axis order (−z, −y, x); MRI voxels of 1×1×3 mm (x, y, z) sliced along D1 are
    ``spacing=(3, 1, 1)``, e.g. with ``kernel_size=(3, 5, 5)``, ``padding=(1, 2, 2)``. Exact
    equivariance then holds for the elements that keep the z axis (rotations by 90° about
    it, and the flips/reflections that keep it as an axis)."""

    _ndim = 3

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size: int, *args,
                 stride=1, padding=0, dilation=1, bias: bool = True,
                 padding_mode: str = "zeros", groups: int = 1, initialize: bool = True,
                 spacing=None, **basis_settings):
        no_positional(type(self).__name__, 3, args)
        super().__init__(in_type, out_type, kernel_size, stride, padding, dilation, bias,
                         padding_mode, initialize, basis_settings, groups, spacing)

    def export(self) -> nn.Conv3d:
        """A plain ``torch.nn.Conv3d`` with the expanded filter and bias (same outputs)."""
        return self._export(nn.Conv3d)


class SteerableConvTranspose2d(_SteerableConvNd):
    """Transposed G-steerable convolution ``in_type → out_type`` (e2cnn
    ``R2ConvTransposed``): the filter of the same basis, transposed to (C_in, C_out, k, k)
    for ``conv_transpose2d``. Equivariant because K(−p) is steerable whenever K(p) is.
    Keyword-only after ``kernel_size`` (e2cnn's positional order is padding, output_padding,
    stride); ``groups=1`` only."""

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size: int, *args,
                 stride=1, padding=0, output_padding=0, dilation=1, bias: bool = True,
                 padding_mode: str = "zeros", groups: int = 1, initialize: bool = True,
                 spacing=None, **basis_settings):
        no_positional(type(self).__name__, 2, args)
        if padding_mode != "zeros":
            raise ValueError("SteerableConvTranspose2d supports padding_mode='zeros' only "
                             "(as torch.nn.ConvTranspose2d)")
        if groups != 1:
            raise ValueError(f"SteerableConvTranspose2d supports groups=1 only, got "
                             f"groups={groups!r}: e2cnn's grouped R2ConvTransposed is not "
                             f"ported (use SteerableConv2d(..., groups=…) for the forward "
                             f"direction; see {GUIDE[2]})")
        super().__init__(in_type, out_type, kernel_size, stride, padding, dilation, bias,
                         padding_mode, initialize, basis_settings, spacing=spacing)
        if isinstance(self.padding, str):
            raise ValueError("SteerableConvTranspose2d needs numeric padding")
        self.output_padding = _tuple(output_padding, 2, "output_padding")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        filt, bias = self._expanded_filter(), self._expanded_bias()
        return F.conv_transpose2d(x, filt.transpose(0, 1), bias, self.stride, self.padding,
                                  self.output_padding, 1, self.dilation)

    @torch.no_grad()
    def export(self) -> nn.ConvTranspose2d:
        """A plain ``torch.nn.ConvTranspose2d`` with the same outputs."""
        filt, bias = self._fresh(), self._expanded_bias()
        conv = nn.ConvTranspose2d(self.in_type.size, self.out_type.size, self.kernel_size,
                                  self.stride, self.padding, self.output_padding,
                                  bias=bias is not None, dilation=self.dilation,
                                  device=filt.device, dtype=filt.dtype)
        conv.weight.copy_(filt.transpose(0, 1))
        if bias is not None:
            conv.bias.copy_(bias)
        return conv.train(self.training)

    def extra_repr(self):
        return super().extra_repr() + f", output_padding={self.output_padding}"
