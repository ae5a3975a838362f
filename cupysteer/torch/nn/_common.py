"""What every field-wise module shares: the field type check, the input check, the index
buffers and the dropping of e2cnn's derived ``indices_*`` state-dict entries."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...field_type import FieldType
from ...fieldwise import FieldStructure

__all__ = ["FieldwiseModule", "field_structure", "as_index"]


def field_structure(field_type, name: str = "in_type") -> FieldStructure:
    """The :class:`~cupysteer.fieldwise.FieldStructure` of ``field_type``; a clear error when
    it is not a FieldType."""
    if not isinstance(field_type, FieldType):
        raise TypeError(f"{name} must be a cupysteer FieldType (native or of "
                        f"cupysteer.compat.e2cnn / .escnn), got {type(field_type).__name__}")
    return FieldStructure(field_type)


def as_index(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.int64).copy())


def trivial_type(field_type: FieldType, n: int) -> FieldType:
    """``n`` trivial fields of ``field_type``'s group, with its class (compat types keep
    their gspace)."""
    G = field_type.group
    gspace = getattr(field_type, "gspace", None)
    reps = [G.trivial_representation] * n
    return FieldType(G, reps) if gspace is None else type(field_type)(gspace, reps)


def sub_type(field_type: FieldType, fields) -> FieldType:
    """The fields ``fields`` of ``field_type`` as a field type of the same class."""
    reps = [field_type.representations[f] for f in fields]
    gspace = getattr(field_type, "gspace", None)
    return FieldType(field_type.group, reps) if gspace is None else type(field_type)(gspace, reps)


class FieldwiseModule(nn.Module):
    """Base of the field-wise modules: ``in_type``/``out_type``, the structure of the input
    field type (``self.fields``), the number of spatial dimensions (the group's space) and
    the input check."""

    def __init__(self, in_type: FieldType):
        super().__init__()
        self.fields = field_structure(in_type)
        self.in_type = in_type
        self.out_type = in_type
        self.spatial_dims = int(in_type.group.space.dimension)
        self._channels = int(in_type.size)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes a torch.Tensor [N, C, *spatial], "
                            f"got {type(x).__name__}")
        d = self.spatial_dims
        if x.dim() != d + 2 or x.shape[1] != self._channels:
            raise ValueError(f"{type(self).__name__}: input must have shape [N, "
                             f"{self._channels}, {', '.join(['…'] * d)}] ({self._channels} "
                             f"channels of {self.in_type!r}, {d} spatial dimensions), got "
                             f"{tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"in_type={self.in_type!r}, out_type={self.out_type!r}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Accepts e2cnn checkpoints: their derived ``indices_<size>`` buffers (channel indices
        this module rebuilds from the field type) are dropped."""
        for k in [k for k in state_dict if k.startswith(prefix)]:
            rest = k[len(prefix):]
            if rest.startswith("indices_") and "." not in rest:
                del state_dict[k]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
