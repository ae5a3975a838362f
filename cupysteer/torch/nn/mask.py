r"""e2cnn's / escnn's ``MaskModule``: a feature map multiplied by a radial mask.

On the S×…×S grid (d = 2 or 3 axes, the group's space), with c = (S − 1)/2 and
t = (c − c·margin/100)²:

.. math::
    \text{mask}[i] = \begin{cases} 1 & r \le t \\ \exp\big((t - r)/\sigma^2\big) & r > t
    \end{cases}, \qquad r = \sum_k (i_k - c)^2,

σ = 2 (e2cnn's fixed value, escnn's default). The mask is invariant under the symmetries of
the square / cube, so the module commutes with every grid-preserving element, for every field
type (it scales all channels of a pixel alike). It removes the corners a rotation would move
off the grid (e2cnn's C8 MNIST model masks its 29×29 input with margin 1).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._common import FieldwiseModule

__all__ = ["MaskModule", "Multiply", "radial_mask"]


def radial_mask(S: int, ndim: int, margin: float = 0.0, sigma: float = 2.0) -> np.ndarray:
    """The (S,)*ndim float64 mask of the module docstring."""
    c = (S - 1) / 2.0
    t = (c - margin / 100.0 * c) ** 2
    axis = (np.arange(S) - c) ** 2
    r = sum(np.meshgrid(*[axis] * ndim, indexing="ij"))
    return np.where(r > t, np.exp((t - r) / sigma ** 2), 1.0)


def _number(v, name, positive=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or (
            positive and not v > 0):
        kind = "a positive" if positive else "a finite"
        raise ValueError(f"{name} must be {kind} number, got {v!r}")
    return float(v)


class Multiply(nn.Module):
    """y = x · factor (a buffer broadcast against x): plain torch, what ``MaskModule.export()``
    gives."""

    def __init__(self, factor: torch.Tensor):
        super().__init__()
        self.register_buffer("factor", factor.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class MaskModule(FieldwiseModule):
    """e2cnn's ``MaskModule(in_type, S, margin=0.0)`` (escnn: also ``sigma=2.0``, and 3D):
    ``x · mask`` for inputs [N, C, S, …, S]; any field type.

    ``mask`` is a non-persistent buffer (1, 1, S, …, S) rebuilt from float64 on
    ``.double()``/``.to()``; e2cnn/escnn store it as a parameter without gradient under the
    same name: loading such a checkpoint checks it equals this module's and drops it.
    """

    def __init__(self, in_type, S: int, margin: float = 0.0, sigma: float = 2.0):
        super().__init__(in_type)
        if isinstance(S, bool) or not isinstance(S, (int, np.integer)) or S < 1:
            raise ValueError(f"S must be a positive int (the size of every spatial axis of the "
                             f"inputs, e.g. 29 for e2cnn's MNIST model), got {S!r}")
        self.S = int(S)
        self.margin = _number(margin, "margin")
        self.sigma = _number(sigma, "sigma", positive=True)
        self._mask = radial_mask(self.S, self.spatial_dims, self.margin, self.sigma)
        self.register_buffer("mask", self._mask_tensor(torch.get_default_dtype(), None),
                             persistent=False)

    def _mask_tensor(self, dtype, device):
        shape = (1, 1) + (self.S,) * self.spatial_dims
        return torch.tensor(self._mask.reshape(shape), dtype=dtype, device=device)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        self.mask = self._mask_tensor(self.mask.dtype, self.mask.device)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        want = (self.S,) * self.spatial_dims
        if not torch.compiler.is_compiling() and tuple(x.shape[2:]) != want:
            raise ValueError(f"MaskModule: input must be [N, {self._channels}, "
                             f"{', '.join([str(self.S)] * self.spatial_dims)}] (S={self.S}), got "
                             f"{tuple(x.shape)}; build the module with the input's size")
        return x * self.mask.to(x.dtype)

    def export(self) -> Multiply:
        """A plain module multiplying by the mask (same outputs)."""
        return Multiply(self.mask).eval()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """An e2cnn/escnn ``mask`` entry is checked against this module's mask and dropped."""
        key = prefix + "mask"
        if key in state_dict:
            theirs = torch.as_tensor(state_dict.pop(key)).detach().cpu().double()
            ours = torch.as_tensor(self._mask)
            if theirs.shape[2:] != ours.shape or not torch.allclose(
                    theirs.reshape(ours.shape), ours, rtol=1e-5, atol=1e-7):
                error_msgs.append(f"{key}: the checkpoint's mask {tuple(theirs.shape)} differs "
                                  f"from this module's (S={self.S}, margin={self.margin}, "
                                  f"sigma={self.sigma}); build MaskModule with the "
                                  f"checkpoint's S and margin")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, S={self.S}, margin={self.margin}, sigma={self.sigma}"
