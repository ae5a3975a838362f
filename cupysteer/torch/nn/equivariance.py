r"""Feature maps acted on by group elements, and a module-level equivariance check.

A feature map x of field type t on a grid transforms under g as
:math:`(g\cdot x)(p) = \rho_t(g)\, x(g^{-1} p)`: the channels by the fibre representation,
the grid by g. Exact on a grid only for the elements that map it onto itself (those of
:func:`cupysteer.equivariance.grid_candidates` that permute the grid's points: rotations by
90° and the reflections of the square for planar groups, the cube's symmetries in the group
for groups on R³; a non-square grid keeps fewer). The grid's points use the filters'
convention (:meth:`~cupysteer.space.Space.grid_points`): the last axis is x (increasing),
the axis before it y and, in 3D, the one before that z (both decreasing), centred.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ...equivariance import grid_candidates, point_permutation
from ...field_type import FieldType

__all__ = ["transform", "check_equivariance", "grid_elements", "feature_points"]


def _spacing(spacing, d: int) -> tuple:
    if spacing is None:
        return (1.0,) * d
    try:
        values = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, float), (d,)))
    except (TypeError, ValueError):
        raise ValueError(f"spacing must be a positive number or one per spatial axis ({d}, in "
                         f"the tensor's axis order, as the layer's spacing=), got "
                         f"{spacing!r:.60}") from None
    if not all(np.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be finite and > 0 on every axis, got {spacing!r:.60}")
    return values


def feature_points(shape, spacing=None) -> np.ndarray:
    """The (P, d) points of a feature-map grid of spatial ``shape`` (d = len(shape)), in the
    tensor's flat (row-major) order; a k×…×k grid gives ``space.grid_points(k)``. ``spacing``
    (one physical step per tensor axis, as the layers' ``spacing=``; default 1) places the
    points of an anisotropic grid at their physical positions."""
    shape = tuple(int(s) for s in shape)
    d = len(shape)
    step = _spacing(spacing, d)
    index = np.indices(shape).reshape(d, -1).T
    pts = np.empty(index.shape, dtype=np.float64)
    for j in range(d):
        axis = d - 1 - j
        centred = (index[:, axis] - (shape[axis] - 1) / 2) * step[axis]
        pts[:, j] = centred if j == 0 else -centred
    return pts


def _check_type(field_type, name: str) -> FieldType:
    if not isinstance(field_type, FieldType):
        raise TypeError(f"{name} must be a cupysteer FieldType, got {type(field_type).__name__}")
    return field_type


def _check_map(x, field_type: FieldType, name: str = "x") -> None:
    d = field_type.group.space.dimension
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, C, *spatial], got "
                        f"{type(x).__name__}")
    if x.dim() != d + 2 or x.shape[1] != field_type.size:
        raise ValueError(f"{name} must have shape [N, {field_type.size}, "
                         f"{', '.join(['…'] * d)}] for {field_type!r} ({d} spatial "
                         f"dimensions), got {tuple(x.shape)}")


def grid_elements(group, shape, spacing=None) -> list:
    """(element, perm) for every grid candidate of ``group`` that maps the grid of spatial
    ``shape`` (and ``spacing``) onto itself: ``points[perm[i]] = g · points[i]``."""
    pts = feature_points(shape, spacing)
    out = []
    for g in grid_candidates(group):
        perm = point_permutation(group, g, pts)
        if perm is not None:
            out.append((g, perm))
    return out


def _match(group, g, shape, spacing=None):
    """The grid element equal to ``g`` (same action) with its permutation; a clear error for
    any other element."""
    try:
        A = group.action_matrices([g])[0]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"g must be an element of {group!r}: {exc}") from None
    for h, perm in grid_elements(group, shape, spacing):
        if np.abs(group.action_matrices([h])[0] - A).max() < 1e-9:
            return h, perm
    raise ValueError(f"g = {g!r} does not map the {'×'.join(map(str, shape))} grid onto itself "
                     f"(or is not an element of {group!r}); transform is exact only for the "
                     f"grid-preserving elements: rotations by multiples of 90° and the "
                     f"square's/cube's reflections in the group, on a square/cubic grid "
                     f"(grid_elements(group, shape) lists them)")


def _act(x: torch.Tensor, rho: np.ndarray, perm: np.ndarray) -> torch.Tensor:
    N, C = x.shape[:2]
    R = torch.as_tensor(rho, dtype=x.dtype, device=x.device)
    y = torch.einsum("ab,nbp->nap", R, x.reshape(N, C, -1))
    inverse = torch.as_tensor(np.argsort(perm), device=x.device)
    return y.index_select(2, inverse).reshape(x.shape)


def transform(x: torch.Tensor, field_type: FieldType, g, spacing=None) -> torch.Tensor:
    """``g · x``: out(p) = ρ(g) x(g⁻¹ p) for a feature map ``x`` [N, C, *spatial] of
    ``field_type``; ``g`` must map the grid (of physical ``spacing`` per tensor axis, default
    1) onto itself (see the module docstring)."""
    _check_type(field_type, "field_type")
    _check_map(x, field_type)
    h, perm = _match(field_type.group, g, tuple(x.shape[2:]), spacing)
    return _act(x, field_type.representation.evaluate([h])[0], perm)


def _input(module, in_type: FieldType, size: int) -> torch.Tensor:
    dtype = next((t.dtype for t in list(module.parameters()) + list(module.buffers())
                  if t.is_floating_point()), torch.get_default_dtype())
    d = in_type.group.space.dimension
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, in_type.size, *[size] * d, generator=gen, dtype=dtype)


def check_equivariance(module, in_type: FieldType, out_type: FieldType, x=None,
                       atol: float | None = 1e-7, rtol: float = 1e-5, size: int | None = None,
                       spacing=None):
    """Run ``module`` on ``x`` (default: a seeded random [2, C, size, …] map, size 7 in 2D and 5
    in 3D, in the module's dtype) and on ``g · x`` for every grid-preserving element g of the
    group; return ``[(g, max |module(g·x) − g·module(x)|)]``. With ``atol`` (not None), raise
    an AssertionError naming the first element whose error exceeds atol + rtol · max|module(x)|
    (as e2cnn's ``check_equivariance``). The module runs on a deep copy, without gradients, in
    its current mode (its running statistics are not touched). ``spacing``: the physical step
    per tensor axis of an anisotropic grid (the layers' ``spacing=``), the same for the input
    and output maps."""
    _check_type(in_type, "in_type")
    _check_type(out_type, "out_type")
    if in_type.group != out_type.group:
        raise ValueError(f"in_type and out_type must share one group; got {in_type.group!r} "
                         f"and {out_type.group!r}")
    if x is None:
        x = _input(module, in_type, size or (7 if in_type.group.space.dimension == 2 else 5))
    _check_map(x, in_type)
    m = copy.deepcopy(module)
    errors = []
    with torch.no_grad():
        y = m(x)
        _check_map(y, out_type, "the module's output")
        scale = float(y.abs().max()) if y.numel() else 0.0
        group = in_type.group
        p_in, p_out = feature_points(x.shape[2:], spacing), feature_points(y.shape[2:], spacing)
        for g in grid_candidates(group):
            perm_in = point_permutation(group, g, p_in)
            if perm_in is None:
                continue
            perm_out = point_permutation(group, g, p_out)
            if perm_out is None:
                raise ValueError(f"g = {g!r} maps the input grid {tuple(x.shape[2:])} onto "
                                 f"itself but not the output grid {tuple(y.shape[2:])}; "
                                 f"choose an input size for which both grids are symmetric")
            lhs = m(_act(x, in_type.representation.evaluate([g])[0], perm_in))
            rhs = _act(y, out_type.representation.evaluate([g])[0], perm_out)
            errors.append((g, float((lhs - rhs).abs().max()) if lhs.numel() else 0.0))
    if atol is not None:
        for g, err in errors:
            if not err <= atol + rtol * scale:  # NaN fails too
                raise AssertionError(f"{type(module).__name__} is not equivariant under g = "
                                     f"{g!r}: max error {err:.3g} > atol {atol:g} + rtol "
                                     f"{rtol:g} · {scale:.3g}")
    return errors
