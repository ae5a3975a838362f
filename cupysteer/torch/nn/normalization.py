r"""escnn's batch norms for any fields: :class:`GNormBatchNorm` and :class:`IIDBatchNorm1d` /
``2d`` / ``3d``, on plain tensors (escnn 1.0.11's parameters, buffers and formulas).

Fields are grouped by representation (escnn: by name; a representation's name, with ``.``
written ``^``, prefixes its parameters and buffers). For the n fields of representation
ρ = Q(⊕ψ_i)Qᵀ of size s, over the batch and every pixel (N samples in all):

* :class:`IIDBatchNorm2d` (any spatial size in 1d): μ = P E[x] (P = Q S Qᵀ, S selecting the
  trivial irreps: the mean only in the invariant directions), σ² = mean over the field's
  channels of the unbiased variance of x − μ (the trace of the covariance / s: invariant);
  y = (x − μ)·w/√(σ² + eps) + Q_triv b. Buffers ``<name>_running_mean`` (n, s; only with
  trivial irreps), ``<name>_running_var`` (n, 1); parameters ``<name>_weight`` (n, 1),
  ``<name>_bias`` (n, t). ``track_running_stats=False`` always uses the batch statistics.
* :class:`GNormBatchNorm`: in the irreps coordinates z = Qᵀx, per irrep block i of size d_i:
  σ²_i = N/(N−1)·(E[‖z_i‖²] − E[z_i]²·[ψ_i trivial])/d_i, the trivial coordinates centred by
  their mean; z_i ↦ (z_i − μ_i)·w_i/√(σ²_i + eps) + b_i (b only on trivial coordinates);
  x = Q z. Buffers ``<name>_running_var`` (n, n_irreps), ``<name>_running_mean`` (n, t);
  parameters ``<name>_weight`` (n, n_irreps), ``<name>_bias`` (n, t).

Both: eps=1e-05, momentum=0.1 (None: cumulative average), affine=True; the running
statistics are updated with the batch ones (momentum) in training mode and used in eval mode;
``num_batches_tracked``. Every statistic is invariant (norms of irrep blocks, traces of
covariances, means in invariant directions), so both are exactly equivariant.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._common import FieldwiseModule, as_index

__all__ = ["GNormBatchNorm", "IIDBatchNorm1d", "IIDBatchNorm2d", "IIDBatchNorm3d"]

# escnn's derived buffers (rebuilt from the field type): dropped when loading its checkpoints
_DERIVED = ("_indices", "_avg", "_change_of_basis", "_change_of_basis_inv")


def _escape(name: str) -> str:
    return name.replace(".", "^")


class _PerRepresentation(FieldwiseModule):
    """Fields grouped by representation: ``self._groups`` = [(name, rep, n, size)] and the
    channel indices ``_channels_<k>`` of group k (in field order)."""

    def __init__(self, in_type, eps, momentum, affine):
        super().__init__(in_type)
        self.eps, self.momentum, self.affine = float(eps), momentum, bool(affine)
        self._groups, names = [], set()
        for k, g in enumerate(self.fields.by_representation):
            name = _escape(g.key.name)
            if name in names:
                name = f"{name}#{k}"
            names.add(name)
            self._groups.append((name, g.key, len(g.fields), g.size))
            self.register_buffer(f"_channels_{k}", as_index(g.channels.ravel()),
                                 persistent=False)
        order = np.concatenate([g.channels.ravel() for g in self.fields.by_representation])
        self.register_buffer("_inverse", as_index(np.argsort(order)), persistent=False)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _factor(self) -> float:
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return float(self.momentum)

    def _buffer(self, name, value) -> None:
        self.register_buffer(name, torch.tensor(np.array(value), dtype=torch.get_default_dtype()),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.training and self._tracking():
            self.num_batches_tracked.add_(1)
        N, spatial = x.shape[0], x.shape[2:]
        outs = []
        for k, (name, rep, n, s) in enumerate(self._groups):
            part = x.index_select(1, getattr(self, f"_channels_{k}")).reshape(N, n, s, -1)
            outs.append(self._normalise(k, name, part).reshape(N, n * s, *spatial))
        return torch.cat(outs, 1).index_select(1, self._inverse)

    def _tracking(self) -> bool:
        return True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix):]
            if "." not in rest and (rest.endswith(_DERIVED) or rest.startswith("vars_")):
                del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _trivial_coordinates(rep) -> list:
    out, p = [], 0
    for psi in rep.irreps:
        if psi.is_trivial:
            out.append(p)
        p += psi.dim
    return out


class GNormBatchNorm(_PerRepresentation):
    """escnn's ``GNormBatchNorm(in_type, eps=1e-05, momentum=0.1, affine=True)`` (see the
    module docstring)."""

    def __init__(self, in_type, eps: float = 1e-05, momentum: float | None = 0.1,
                 affine: bool = True):
        super().__init__(in_type, eps, momentum, affine)
        for k, (name, rep, n, s) in enumerate(self._groups):
            triv = _trivial_coordinates(rep)
            m = len(rep.irreps)
            agg = np.zeros((s, m))
            p = 0
            for i, psi in enumerate(rep.irreps):
                agg[p:p + psi.dim, i] = 1.0 / psi.dim
                p += psi.dim
            self._buffer(f"_aggregator_{k}", agg)
            self._buffer(f"_propagator_{k}", (agg > 0).astype(np.float64))
            self._buffer(f"_basis_{k}", rep.change_of_basis)
            self.register_buffer(f"_trivial_{k}", as_index(triv), persistent=False)
            self.register_buffer(f"{name}_running_var", torch.ones(n, m))
            self.register_buffer(f"{name}_running_mean", torch.zeros(n, len(triv)))
            if self.affine:
                setattr(self, f"{name}_weight", nn.Parameter(torch.ones(n, m)))
                setattr(self, f"{name}_bias", nn.Parameter(torch.zeros(n, len(triv))))

    def _normalise(self, k, name, part):
        dt = part.dtype
        Q = getattr(self, f"_basis_{k}").to(dt)
        triv = getattr(self, f"_trivial_{k}")
        z = torch.einsum("ds,bnsp->bndp", Q.T, part)
        if self.training:
            count = z.shape[0] * z.shape[3]
            zd = z.detach()  # statistics are constants for autograd, as escnn's
            means = zd.index_select(2, triv).mean((0, 3))
            sq = (zd * zd).mean((0, 3))
            sq = sq.index_add(1, triv, -means * means)
            var = sq @ getattr(self, f"_aggregator_{k}").to(dt)
            var = var * (count / (count - 1) if count > 1 else 1.0)
            with torch.no_grad():
                f = self._factor()
                for buf, new in (("running_var", var), ("running_mean", means)):
                    b = getattr(self, f"{name}_{buf}")
                    b.mul_(1 - f).add_(f * new.detach().to(b.dtype))
        else:
            var = getattr(self, f"{name}_running_var").to(dt)
            means = getattr(self, f"{name}_running_mean").to(dt)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * getattr(self, f"{name}_weight")
        scale = scale @ getattr(self, f"_propagator_{k}").to(dt).T  # (n, s)
        shift = -means
        if self.affine:
            shift = shift * scale.index_select(1, triv) + getattr(self, f"{name}_bias")
        else:
            shift = shift * scale.index_select(1, triv)
        z = z * scale[None, :, :, None]
        z = z.index_add(2, triv, shift[None, :, :, None].expand(z.shape[0], -1, -1, z.shape[3]))
        return torch.einsum("ds,bnsp->bndp", Q, z)


class _IIDBatchNorm(_PerRepresentation):
    """escnn's ``IIDBatchNorm{1,2,3}d(in_type, eps=1e-05, momentum=0.1, affine=True,
    track_running_stats=True)`` (see the module docstring)."""

    _dims: tuple = ()

    def __init__(self, in_type, eps: float = 1e-05, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__(in_type, eps, momentum, affine)
        self.track_running_stats = bool(track_running_stats)
        self._has_trivial = []
        for k, (name, rep, n, s) in enumerate(self._groups):
            triv = _trivial_coordinates(rep)
            self._has_trivial.append(bool(triv))
            Q = rep.change_of_basis
            if triv:
                S = np.zeros((s, s))
                S[triv, triv] = 1.0
                self._buffer(f"_avg_{k}", Q @ S @ Q.T)
                self._buffer(f"_invariant_{k}", Q[:, triv])
                self.register_buffer(f"{name}_running_mean", torch.zeros(n, s))
            self.register_buffer(f"{name}_running_var", torch.ones(n, 1))
            if self.affine:
                setattr(self, f"{name}_weight", nn.Parameter(torch.ones(n, 1)))
                if triv:
                    setattr(self, f"{name}_bias", nn.Parameter(torch.zeros(n, len(triv))))

    def _tracking(self) -> bool:
        return self.track_running_stats

    def _check(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes a torch.Tensor, got "
                            f"{type(x).__name__}")
        if x.dim() - 2 not in self._dims or x.shape[1] != self._channels:
            raise ValueError(f"{type(self).__name__}: input must have shape [N, "
                             f"{self._channels}] + {' or '.join(map(str, self._dims))} spatial "
                             f"dimensions ({self.in_type!r}), got {tuple(x.shape)}")

    def _normalise(self, k, name, part):
        dt, has_trivial = part.dtype, self._has_trivial[k]
        if self.training or not self.track_running_stats:
            means = None
            if has_trivial:
                # statistics are constants for autograd, as escnn's
                means = part.detach().mean((0, 3)) @ getattr(self, f"_avg_{k}").to(dt).T
            centred = part - means[None, :, :, None] if has_trivial else part
            var = centred.permute(1, 2, 0, 3).reshape(part.shape[1], part.shape[2], -1)
            var = var.var(2, unbiased=True).mean(1, keepdim=True).detach()
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    f = self._factor()
                    pairs = [("running_var", var)] + ([("running_mean", means)]
                                                      if has_trivial else [])
                    for buf, new in pairs:
                        b = getattr(self, f"{name}_{buf}")
                        b.mul_(1 - f).add_(f * new.detach().to(b.dtype))
        else:
            var = getattr(self, f"{name}_running_var").to(dt)
            if has_trivial:
                means = getattr(self, f"{name}_running_mean").to(dt)
                centred = part - means[None, :, :, None]
            else:
                centred = part
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * getattr(self, f"{name}_weight")
        out = centred * scale[None, :, :, None]
        if self.affine and has_trivial:
            bias = getattr(self, f"{name}_bias") @ getattr(self, f"_invariant_{k}").to(dt).T
            out = out + bias[None, :, :, None]
        return out


class IIDBatchNorm1d(_IIDBatchNorm):
    """escnn's ``IIDBatchNorm1d``: inputs [N, C] or [N, C, L]."""
    _dims = (0, 1)


class IIDBatchNorm2d(_IIDBatchNorm):
    """escnn's ``IIDBatchNorm2d``: inputs [N, C, H, W]."""
    _dims = (2,)


class IIDBatchNorm3d(_IIDBatchNorm):
    """escnn's ``IIDBatchNorm3d``: inputs [N, C, D, H, W]."""
    _dims = (3,)
