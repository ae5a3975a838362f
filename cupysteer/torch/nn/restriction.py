r"""Restriction to a subgroup and disentangling of fields (e2cnn's ``RestrictionModule`` and
``DisentangleModule``), over :mod:`cupysteer.restriction`.

* :class:`RestrictionModule` ``(in_type, id)``: the identity on the tensor; its ``out_type``
  is ``in_type`` restricted to the subgroup ``id`` (e2cnn's ids), so later layers may be
  equivariant to the subgroup only. For every h of the subgroup,
  ``transform(y, out_type, h) == transform(x, in_type, ι(h))`` (ι the embedding).
* :class:`DisentangleModule` ``(in_type, to_irreps=False)``: every field x_f → M_f x_f with
  e2cnn's disentangling permutation (default: ``e2cnn.group.disentangle``, the fields split
  into the blocks their change of basis allows), or with ``to_irreps=True`` the change of
  basis Q_fᵀ to the irreps coordinates (each irrep its own field). Orthogonal, so exactly
  equivariant: M ρ_in(g) = ρ_out(g) M.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...restriction import FieldDisentangling, FieldRestriction
from ._common import FieldwiseModule, as_index
from .plain import ChannelGather, conv1x1

__all__ = ["RestrictionModule", "DisentangleModule"]


def _like(in_type, out_type, gspace=None):
    """``out_type`` as ``in_type``'s class (a compat type keeps a gspace)."""
    if gspace is None or not hasattr(in_type, "gspace"):
        return out_type
    return type(in_type)(gspace, out_type.representations)


class RestrictionModule(FieldwiseModule):
    """e2cnn's ``RestrictionModule(in_type, id)`` (module docstring). Groups on R³ have no
    subgroups in cupysteer yet: NotImplementedError."""

    def __init__(self, in_type, id):
        super().__init__(in_type)
        self.restriction = FieldRestriction(in_type, id)
        self.id = id
        gspace = getattr(in_type, "gspace", None)
        sub_gspace = gspace.restrict(id)[0] if hasattr(gspace, "restrict") else None
        self.out_type = _like(in_type, self.restriction.out_type, sub_gspace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return x

    def export(self) -> nn.Identity:
        """``torch.nn.Identity`` (as e2cnn)."""
        return nn.Identity()

    def extra_repr(self) -> str:
        return f"in_type={self.in_type!r}, id={self.id!r}, out_type={self.out_type!r}"


class DisentangleModule(FieldwiseModule):
    """e2cnn's ``DisentangleModule(in_type)``; ``to_irreps=True`` splits every field into
    its irreps (module docstring). e2cnn's derived ``change_of_basis_*``/``fiber_indices_*``
    state-dict entries are accepted and dropped (rebuilt from the field type)."""

    def __init__(self, in_type, to_irreps: bool = False):
        super().__init__(in_type)
        self.disentangling = d = FieldDisentangling(in_type, to_irreps)
        self.to_irreps = to_irreps
        gspace = getattr(in_type, "gspace", None)
        self.out_type = _like(in_type, d.out_type, gspace)
        if d.permutation is not None:
            self.register_buffer("permutation", as_index(d.permutation), persistent=False)
            return
        # to_irreps: Q_fᵀ on every field, the fields grouped by representation (n_k, s_k)
        dtype = torch.get_default_dtype()
        self.register_buffer("matrix", torch.tensor(d.matrix, dtype=dtype), persistent=False)
        self._n_groups = len(self.fields.by_representation)
        for k, g in enumerate(self.fields.by_representation):
            self.register_buffer(f"_channels_{k}", as_index(g.channels.ravel()),
                                 persistent=False)
            self.register_buffer(f"_basis_{k}", torch.tensor(
                g.key.change_of_basis.T, dtype=dtype), persistent=False)
        order = np.concatenate([g.channels.ravel() for g in self.fields.by_representation])
        self.register_buffer("_inverse", as_index(np.argsort(order)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.disentangling.permutation is not None:
            return x.index_select(1, self.permutation)
        N, spatial, outs = x.shape[0], x.shape[2:], []
        for k in range(self._n_groups):
            Qt = getattr(self, f"_basis_{k}").to(x.dtype)
            part = x.index_select(1, getattr(self, f"_channels_{k}"))
            part = part.reshape(N, -1, Qt.shape[1], *spatial)
            outs.append(torch.einsum("ab,nfb...->nfa...", Qt, part).reshape(N, -1, *spatial))
        return torch.cat(outs, 1).index_select(1, self._inverse)

    def export(self) -> nn.Module:
        """A :class:`~cupysteer.torch.nn.plain.ChannelGather` (the permutation) or a 1×1
        ``Conv2d``/``Conv3d`` without bias (``to_irreps``)."""
        if self.disentangling.permutation is not None:
            return ChannelGather(self.permutation)
        return conv1x1(self.matrix, self.spatial_dims)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for k in [k for k in state_dict if k.startswith(prefix)]:
            rest = k[len(prefix):]
            if rest.startswith(("change_of_basis_", "fiber_indices_")):
                del state_dict[k]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
