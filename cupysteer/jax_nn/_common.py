"""The checks and helpers shared by :mod:`cupysteer.jax_nn`'s modules: the field type's
verified structure, the feature-map shape, per-field vectors and pooling windows."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..field_type import FieldType
from ..fieldwise import FieldStructure


def structure(field_type, name: str = "field_type") -> FieldStructure:
    """The :class:`~cupysteer.fieldwise.FieldStructure` of ``field_type`` (clear error if it is
    not a FieldType)."""
    if not isinstance(field_type, FieldType):
        raise TypeError(f"{name} must be a cupysteer FieldType, got {type(field_type).__name__}")
    return FieldStructure(field_type)


def check_map(x, field_type: FieldType, what: str, name: str = "x") -> None:
    """Refuse anything but an array [N, field_type.size, *spatial] of the group's space."""
    d = int(field_type.group.space.dimension)
    shape = getattr(x, "shape", None)
    if shape is None or not hasattr(x, "dtype"):
        raise TypeError(f"{what}: {name} must be a JAX array [N, C, *spatial], got "
                        f"{type(x).__name__}")
    if len(shape) != d + 2 or shape[1] != field_type.size:
        raise ValueError(f"{what}: {name} must have shape [N, {field_type.size}, "
                         f"{', '.join(['…'] * d)}] ({field_type.size} channels of "
                         f"{field_type!r}, {d} spatial dimensions), got {tuple(shape)}")


def _prepare(x, field_type, what: str) -> FieldStructure:
    fs = structure(field_type)
    check_map(x, field_type, what)
    return fs


def _per_channel(v, channel_field, ndim: int):
    """A per-field vector (n_fields,) spread over the channels, shaped (C, 1, …, 1)."""
    return jnp.asarray(v)[channel_field].reshape((-1,) + (1,) * ndim)


def _field_vector(v, n: int, name: str, dtype):
    a = jnp.asarray(v, dtype).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries, got shape {jnp.shape(v)}")
    return a


def _window(v, n: int, name: str, allow_none: bool = False):
    if v is None and allow_none:
        return None
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(t) != n or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0
                          for a in t):
        raise ValueError(f"{name} must be an int >= 0 or a tuple of {n} of them, got {v!r}")
    return tuple(int(a) for a in t)


def _pool_args(x, kernel_size, stride, padding):
    n = x.ndim - 2
    k = _window(kernel_size, n, "kernel_size")
    if min(k) < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}")
    s = _window(stride, n, "stride", allow_none=True) or k
    p = _window(padding, n, "padding")
    return (1, 1) + k, (1, 1) + s, ((0, 0), (0, 0)) + tuple((a, a) for a in p)
