"""Equivariant batch normalisation on plain tensors (e2cnn's names, parameters, defaults).

* :class:`InnerBatchNorm`: pointwise fields; one mean and variance per field, shared by its
  channels (e2cnn: a ``BatchNorm3d`` per field size, ``batch_norm_[<size>]``, on the view
  [N, n_fields, size, …]).
* :class:`NormBatchNorm`: any fields; each field divided by the root mean square of its
  (centred) entries, the mean subtracted only in the invariant (trivial) directions.

Both are exactly equivariant in eval mode (fixed statistics) and in training mode (the batch
statistics are invariant: a permutation of a field's channels, or an orthogonal ρ(g) for
squared norms, and the spatial permutation of the grid leave them unchanged).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._common import FieldwiseModule, as_index

__all__ = ["InnerBatchNorm", "NormBatchNorm"]


class InnerBatchNorm(FieldwiseModule):
    """e2cnn's ``InnerBatchNorm(in_type, eps=1e-05, momentum=0.1, affine=True)``.

    Fields are grouped by size as e2cnn does; the fields of size s are normalised by a
    ``torch.nn.BatchNorm3d(n_s, eps, momentum, affine)`` named ``batch_norm_[s]`` (e2cnn's
    state-dict keys: ``batch_norm_[s].weight/bias/running_mean/running_var/
    num_batches_tracked``) on the view [N, n_s, s, pixels, 1], so every field has one mean,
    variance, weight and bias shared by its channels. Every field must be pointwise.
    """

    def __init__(self, in_type, eps: float = 1e-05, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(in_type)
        self.fields.require_pointwise(
            "InnerBatchNorm", "use NormBatchNorm (norms of the fields) for it")
        self.eps, self.momentum, self.affine = eps, momentum, bool(affine)
        self.sizes = [g.size for g in self.fields.by_size]
        order = []
        for g in self.fields.by_size:
            self.add_module(f"batch_norm_[{g.size}]", nn.BatchNorm3d(
                len(g.fields), eps, momentum, affine=affine,
                track_running_stats=track_running_stats))
            self.register_buffer(f"_channels_{g.size}", as_index(g.channels.ravel()),
                                 persistent=False)
            order.append(g.channels.ravel())
        # the channels in group order -> the input's order
        self.register_buffer("_inverse", as_index(np.argsort(np.concatenate(order))),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        N, spatial = x.shape[0], x.shape[2:]
        outs = []
        for s in self.sizes:
            part = x.index_select(1, getattr(self, f"_channels_{s}"))
            n = part.shape[1] // s
            y = getattr(self, f"batch_norm_[{s}]")(part.reshape(N, n, s, -1, 1))
            outs.append(y.reshape(N, n * s, *spatial))
        return torch.cat(outs, 1).index_select(1, self._inverse)


class NormBatchNorm(FieldwiseModule):
    r"""Batch norm for any fields (e2cnn's ``NormBatchNorm(in_type, eps=1e-05, momentum=0.1,
    affine=True)``; see the report on what could not be checked against e2cnn).

    Training mode, per field f of size s_f, over the batch and every pixel:

    * μ = P E[x], P the orthogonal projector on the invariant subspace (the trivial irreps
      coordinates, :attr:`~cupysteer.fieldwise.FieldStructure.invariant_basis` B: P = B Bᵀ);
      the mean is subtracted only there (zero for fields without trivial irreps);
    * σ²_f = E[‖x_f − μ_f‖²] / s_f (a field's mean squared centred entry: a trivial field of
      size 1 gets torch's BatchNorm statistics);
    * y_f = (x_f − μ_f) · weight_f / √(σ²_f + eps) + (B · bias)_f.

    Parameters ``weight`` (n_fields, ones) and ``bias`` (one per trivial irreps coordinate,
    zeros; absent when there is none); buffers ``running_mean`` (per trivial coordinate),
    ``running_var`` (per field, with the unbiased correction n s_f / (n s_f − t_f), t_f > 0
    the field's trivial coordinates, n the samples; e2cnn's n / (n − 1) for a field without
    trivial irreps) and ``num_batches_tracked``; ``momentum=None`` averages cumulatively, as
    torch.

    e2cnn (fields without trivial irreps, its only case): the same eval-mode output and
    running statistics (tests/data/fieldwise); its state-dict entries ``<size>_weight`` and
    ``<size>_running_var`` (one per field of that size) load into ``weight``/``running_var``.
    In training mode e2cnn normalises by the *updated running* variance, not the batch's:
    ``train_with_running_var=True`` does the same (default False: the batch variance, as
    torch's batch norms and :func:`cupysteer.jax_nn.norm_batch_norm`).
    """

    def __init__(self, in_type, eps: float = 1e-05, momentum: float | None = 0.1,
                 affine: bool = True, train_with_running_var: bool = False):
        super().__init__(in_type)
        fs = self.fields
        self.eps, self.momentum, self.affine = float(eps), momentum, bool(affine)
        self.train_with_running_var = bool(train_with_running_var)
        self.n_fields, n_trivial = fs.n_fields, len(fs.trivial_coordinates)
        self.n_trivial = n_trivial
        dtype = torch.get_default_dtype()
        if affine:
            self.weight = nn.Parameter(torch.ones(self.n_fields))
            if n_trivial:
                self.bias = nn.Parameter(torch.zeros(n_trivial))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_var", torch.ones(self.n_fields))
        self.register_buffer("running_mean", torch.zeros(n_trivial) if n_trivial else None)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        sizes = in_type.field_sizes.astype(np.float64)
        t_f = np.bincount(fs.irrep_blocks["field"][fs.irrep_blocks["trivial"]],
                          minlength=self.n_fields).astype(np.float64)
        self.register_buffer("_field_sizes", torch.tensor(sizes, dtype=dtype), persistent=False)
        self.register_buffer("_field_trivial", torch.tensor(t_f, dtype=dtype), persistent=False)
        self.register_buffer("_invariant_basis", torch.tensor(fs.invariant_basis, dtype=dtype),
                             persistent=False)
        self.register_buffer("channel_field", as_index(fs.channel_field), persistent=False)

    def _factor(self):
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        N, C = x.shape[:2]
        flat = x.reshape(N, C, -1)
        B = self._invariant_basis.to(x.dtype)
        if self.training:
            mean_t = B.T @ flat.mean((0, 2)) if self.n_trivial else None
            centred = flat - (B @ mean_t)[:, None] if self.n_trivial else flat
            sq = (centred * centred).mean((0, 2))
            var = x.new_zeros(self.n_fields).index_add(0, self.channel_field, sq)
            var = var / self._field_sizes.to(x.dtype)
            self._update(var, mean_t, flat.shape[0] * flat.shape[2])
            if self.train_with_running_var:
                var = self.running_var.to(x.dtype)
        else:
            mean_t = self.running_mean.to(x.dtype) if self.n_trivial else None
            centred = flat - (B @ mean_t)[:, None] if self.n_trivial else flat
            var = self.running_var.to(x.dtype)
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        out = centred * scale.index_select(0, self.channel_field)[:, None]
        if self.bias is not None:
            out = out + (B @ self.bias)[:, None]
        return out.reshape(x.shape)

    @torch.no_grad()
    def _update(self, var, mean_t, n: int) -> None:
        self.num_batches_tracked.add_(1)
        m = self._factor()
        size = self._field_sizes.to(var.dtype)
        t = self._field_trivial.to(var.dtype)
        unbiased = torch.where(t > 0, var * (n * size) / torch.clamp(n * size - t, min=1.0),
                               var * (n / (n - 1) if n > 1 else 1.0))
        self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
        if mean_t is not None:
            self.running_mean.mul_(1 - m).add_(m * mean_t.to(self.running_mean.dtype))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Accepts e2cnn's NormBatchNorm entries ``<s>_weight``/``<s>_running_var`` (shape
        (1, n_s, 1, 1, 1): the fields of size s in field order) and drops ``<s>_indices``."""
        sizes = {str(g.size): g for g in self.fields.by_size}
        found = {}
        for k in [k for k in state_dict if k.startswith(prefix)]:
            head, _, tail = k[len(prefix):].partition("_")
            if head in sizes and tail in ("weight", "running_var", "indices"):
                found.setdefault(tail, {})[head] = state_dict.pop(k)
        for tail, per_size in found.items():
            if tail == "indices":
                continue
            lacking = [f"{prefix}{s}_{tail}" for s in sizes if s not in per_size]
            if lacking:
                raise ValueError(f"NormBatchNorm: the state dict holds e2cnn's per-size "
                                 f"'{tail}' entries but not {lacking}; every field size of "
                                 f"in_type ({sorted(sizes, key=int)}) needs one (save the "
                                 f"state dict of a module with the same in_type)")
            out = torch.zeros(self.n_fields)
            for s, v in per_size.items():
                index = torch.tensor(np.array(sizes[s].fields))
                if v.numel() != index.numel():
                    raise ValueError(f"{prefix}{s}_{tail}: {v.numel()} values for the "
                                     f"{index.numel()} fields of size {s} of in_type; build "
                                     f"the module with the checkpoint's field types")
                out[index] = v.reshape(-1).to(out.dtype)
            state_dict[prefix + tail] = out
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
