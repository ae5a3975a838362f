"""Spatial operations on JAX arrays: the feature-map transformation (torch:
cupysteer.torch.nn.transform), upsampling, restriction and disentangling (torch:
cupysteer.torch.nn ``R2``/``R3Upsampling``, ``RestrictionModule``, ``DisentangleModule``)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..equivariance import grid_candidates, point_permutation
from ..field_type import FieldType
from ..restriction import FieldDisentangling, FieldRestriction
from ._common import check_map, structure


def feature_points(shape) -> np.ndarray:
    """The (P, d) points of a feature-map grid of spatial ``shape`` in row-major order (last
    axis x increasing, the others y/z decreasing, centred; as the torch front end)."""
    shape = tuple(int(s) for s in shape)
    d = len(shape)
    index = np.indices(shape).reshape(d, -1).T
    pts = np.empty(index.shape, dtype=np.float64)
    for j in range(d):
        axis = d - 1 - j
        centred = index[:, axis] - (shape[axis] - 1) / 2
        pts[:, j] = centred if j == 0 else -centred
    return pts


def transform(x, field_type: FieldType, g):
    """``g · x``: out(p) = ρ(g) x(g⁻¹ p) for a grid-preserving element ``g`` (rotations by
    multiples of 90°, the square's/cube's reflections in the group, on a square/cubic grid);
    a clear error for any other element."""
    structure(field_type)
    check_map(x, field_type, "transform")
    group = field_type.group
    try:
        A = group.action_matrices([g])[0]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"g must be an element of {group!r}: {exc}") from None
    pts = feature_points(x.shape[2:])
    for h in grid_candidates(group):
        if np.abs(group.action_matrices([h])[0] - A).max() >= 1e-9:
            continue
        perm = point_permutation(group, h, pts)
        if perm is None:
            break
        rho = jnp.asarray(field_type.representation.evaluate([h])[0], x.dtype)
        y = jnp.einsum("ab,nbp->nap", rho, x.reshape(x.shape[0], x.shape[1], -1))
        return y[:, :, np.argsort(perm)].reshape(x.shape)
    raise ValueError(f"g = {g!r} does not map the {'×'.join(map(str, x.shape[2:]))} grid onto "
                     f"itself (or is not an element of {group!r}); transform is exact only for "
                     f"grid-preserving elements")


def _source(n_in: int, n_out: int, scale, mode: str, align_corners: bool):
    """(i0, i1, λ) per output index along one axis, as torch's interpolate samples: ``scale``
    is 1/scale_factor when given, else n_in/n_out."""
    i = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        i0 = np.minimum(np.floor(i * scale).astype(np.int64), n_in - 1)
        return i0, i0, np.zeros(n_out)
    if align_corners:
        src = i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = np.maximum((i + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0


def upsample(x, field_type: FieldType, scale_factor=None, size=None, mode=None,
             align_corners: bool = False):
    """torch's ``interpolate`` (R2Upsampling/R3Upsampling: ``'bilinear'``/``'trilinear'``
    (default) or ``'nearest'``), separable along each spatial axis; any field. See
    :mod:`cupysteer.torch.nn.upsampling` for where it is exactly equivariant."""
    structure(field_type)
    check_map(x, field_type, "upsample")
    d = x.ndim - 2
    linear = "bilinear" if d == 2 else "trilinear"
    mode = linear if mode is None else mode
    if mode not in ("nearest", linear):
        raise ValueError(f"mode must be 'nearest' or {linear!r} for {d}D maps, got {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("pass exactly one of scale_factor and size")
    if scale_factor is not None and not (isinstance(scale_factor, (int, float))
                                         and not isinstance(scale_factor, bool)
                                         and scale_factor > 0):
        raise ValueError(f"scale_factor must be a number > 0, got {scale_factor!r}")
    size = (size,) * d if isinstance(size, int) else size
    for axis in range(d):
        n_in = x.shape[2 + axis]
        if size is None:
            n_out, scale = int(np.floor(n_in * scale_factor)), 1.0 / scale_factor
        else:
            n_out, scale = int(size[axis]), n_in / int(size[axis])
        i0, i1, lam = _source(n_in, n_out, scale, mode, bool(align_corners))
        shape = (1,) * (2 + axis) + (n_out,) + (1,) * (d - 1 - axis)
        lam = jnp.asarray(lam, x.dtype).reshape(shape)
        a, b = jnp.take(x, i0, axis=2 + axis), jnp.take(x, i1, axis=2 + axis)
        x = a if mode == "nearest" else a + (b - a) * lam
    return x


def restrict(x, field_type: FieldType, subgroup_id):
    """(x, out_type): the same array, its field type restricted to the subgroup
    ``subgroup_id`` (:class:`cupysteer.restriction.FieldRestriction`; planar groups only)."""
    r = FieldRestriction(field_type, subgroup_id)
    check_map(x, field_type, "restrict")
    return x, r.out_type


def disentangle(x, field_type: FieldType, to_irreps: bool = False):
    """y = M x (:class:`cupysteer.restriction.FieldDisentangling`: e2cnn's permutation, or
    each field to its irreps coordinates with ``to_irreps=True``); returns (y, out_type)."""
    structure(field_type)
    check_map(x, field_type, "disentangle")
    d = FieldDisentangling(field_type, to_irreps)
    if d.permutation is not None:
        return x[:, d.permutation], d.out_type
    return jnp.einsum("ab,nb...->na...", jnp.asarray(d.matrix, x.dtype), x), d.out_type
