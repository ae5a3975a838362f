r"""Equivariance checks shipped with the library.

A filter K sampled at points p is steerable iff
:math:`K(g\cdot p) = \rho_\text{out}(g)\, K(p)\, \rho_\text{in}(g)^{T}` for all g.
On a point set, the check is exact for the elements that map the set onto itself
(on the square grid: rotations by multiples of 90° and reflections whose axis is a
multiple of π/4; on the cubic grid: the symmetries of the cube, 3×3 matrices).

Anisotropic and non-cubic grids (``LayerBasis(..., kernel_size=(…), spacing=(…))``) are
sampled at their physical points, and the check runs on exactly the candidates that permute
those points: a rectangle (k_H·s_H ≠ k_W·s_W or s_H ≠ s_W) keeps the rotation by 180° and the
reflections across the axes; a box with one distinguished axis (voxels 1×1×3, or 5×5×3 unit
voxels) the 16 symmetries of the square prism about it (rotations by 90° about that axis, the
half-turns and reflections that keep it an axis); three different extents the 8 sign changes.
Elements outside that set are never reported as exact (``cupysteer check`` rebuilds the basis
at the moved points for them instead).

The points are matched in O(P log P) by rounding the coordinates to multiples of ``atol`` and
looking the moved points up in the sorted rounded points (no P × P distance table). The
default ``atol`` is relative, ``1e-9 · max|p|``: g·p carries a
float64 rounding error of a few ``1e-16 · max|p|`` (a margin of 10⁶), while two points count
as one only if they agree to 1e-9 of the set's extent. So a grid of 2e-7 mm steps keeps its
8 D4 symmetries (an absolute 1e-6 matched nothing, not even the identity), and steps (1,
1.0000001) are a rectangle (an absolute 1e-6 called them a square). A point set that the
identity does not permute (duplicate points, or points closer than ``atol``) is refused, so
no check passes vacuously on an empty list of symmetries.
"""
from __future__ import annotations

import itertools

import numpy as np

from ._memory import check_host

__all__ = ["grid_candidates", "point_permutation", "point_symmetries", "equivariance_errors",
           "filter_matrix"]


def grid_candidates(group) -> list:
    """Elements that may map a square (cubic) grid onto itself: every element of a finite
    group; for SO(2)/O(2) the rotations by multiples of 90° and the reflections whose axis is a
    multiple of π/4; for continuous groups acting on R³ the symmetries of the cube they
    contain (3×3 matrices). Asked of the group's space."""
    return group.space.grid_candidates(group)


def _rows(keys: np.ndarray) -> np.ndarray:
    """(n, d) int64 → n opaque scalars that compare equal iff the rows are equal."""
    keys = np.ascontiguousarray(keys, np.int64)
    return keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).ravel()


def _lookup(sorted_keys, order, keys) -> np.ndarray:
    """Index (into the unsorted points) of each row of ``keys``, -1 where it is absent."""
    q = _rows(keys)
    pos = np.minimum(np.searchsorted(sorted_keys, q), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == q, order[pos], -1)


#: the default matching tolerance, relative to the largest coordinate of the points
_RELATIVE_ATOL = 1e-9


def _point_tolerance(points: np.ndarray) -> float:
    """The default matching tolerance ``1e-9 · max|p|`` (1e-9 when every point is the origin):
    far above the float64 error of g·p (a few 1e-16 · max|p|), far below the step of any
    grid whose steps differ by more than 1e-9 of its extent."""
    scale = float(np.abs(points).max())
    return _RELATIVE_ATOL * (scale if scale > 0 else 1.0)


def point_permutation(group, g, points: np.ndarray, atol: float | None = None):
    """``perm`` with ``points[perm[i]] == g · points[i]`` (to ``atol``; None:
    ``1e-9 · max|p|``, relative to the points' scale), or None if g does not permute
    them. A ValueError if g acts as the identity and still does not (duplicate points or
    points closer than ``atol``). O(P log P) time and O(P) memory."""
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or not len(pts):
        raise ValueError(f"points must be a non-empty (n, d) array, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite")
    atol = _point_tolerance(pts) if atol is None else float(atol)
    if not atol > 0:
        raise ValueError(f"atol must be a positive tolerance (or None: relative), got {atol}")
    A = group.action_matrices([g])[0]
    perm = _match(pts, pts @ A.T, atol)
    if perm is None and np.array_equal(A, np.eye(len(A))):
        raise ValueError(f"points: the identity does not permute them at atol={atol:.3g} "
                         f"(duplicate points, or points closer than atol); give distinct "
                         f"points or a smaller atol")
    return perm


def _match(pts: np.ndarray, moved: np.ndarray, atol: float):
    """``perm`` with ``pts[perm] ≈ moved`` (to atol) and one-to-one, or None."""
    key = np.rint(pts / atol).astype(np.int64)
    order = np.argsort(_rows(key), kind="stable")
    sorted_keys = _rows(key)[order]
    mkey = np.rint(moved / atol).astype(np.int64)
    perm = _lookup(sorted_keys, order, mkey)
    # a point that rounds across a cell boundary: look in the neighbouring cells
    for step in itertools.product((-1, 0, 1), repeat=pts.shape[1]):
        miss = perm < 0
        if not miss.any():
            break
        perm[miss] = _lookup(sorted_keys, order, mkey[miss] + np.array(step, np.int64))
    if (perm < 0).any():
        return None
    if np.abs(pts[perm] - moved).max() >= atol or len(np.unique(perm)) != len(pts):
        return None
    return perm


def point_symmetries(group, points: np.ndarray, atol: float | None = None):
    """The :func:`grid_candidates` of ``group`` that permute ``points``: list of
    (element, perm) with ``points[perm[i]] == g · points[i]`` (``atol`` as in
    :func:`point_permutation`; never empty: the identity always matches, or a ValueError)."""
    out = []
    for g in grid_candidates(group):
        perm = point_permutation(group, g, points, atol)
        if perm is not None:
            out.append((g, perm))
    return out


def filter_matrix(basis, filt, name: str = "filt") -> np.ndarray:
    """``filt`` (the basis' filter shape) as a float64 (C_out, C_in, P) array; a clear error
    naming ``name`` on any other shape, a complex or non-numeric array or non-finite values."""
    K = np.asarray(filt)
    if K.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real array of the basis' filter shape "
                         f"{basis.shape}, got dtype {K.dtype}")
    if K.shape != tuple(basis.shape):
        raise ValueError(f"{name} must have the basis' filter shape {tuple(basis.shape)} "
                         f"(C_out, C_in, *filter_shape), got {K.shape}; for a batch, check "
                         f"one filter at a time")
    K = K.astype(np.float64).reshape(basis.out_type.size, basis.in_type.size, -1)
    if not np.isfinite(K).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return K


def check_fibres(basis) -> None:
    """Refuse a check whose fibre representations (C × C matrices per element, and the
    einsum's (C_out, C_in, P) results) do not fit in memory."""
    co, ci = basis.out_type.size, basis.in_type.size
    P = int(np.prod(basis.filter_shape))
    check_host(8 * (3 * (co * co + ci * ci) + 4 * co * ci * P),
               lambda: f"the equivariance check of a {co}×{ci} filter on {P} points",
               "check a narrower layer (fewer fields)")


def equivariance_errors(basis, filt: np.ndarray) -> dict:
    """Relative error max|K(g·p) − ρ_out(g) K(p) ρ_in(g)ᵀ| / max|K| for every symmetry g of
    the basis' points. ``filt`` has the basis' filter shape (C_out, C_in, *filter_shape)."""
    K = filter_matrix(basis, filt)
    check_fibres(basis)
    scale = max(np.abs(K).max(), np.finfo(np.float64).tiny)
    errors = {}
    for g, perm in point_symmetries(basis.in_type.group, basis.points):
        ro = basis.out_type.representation(g)
        ri = basis.in_type.representation(g)
        lhs = np.empty_like(K)
        lhs[:, :, perm] = np.einsum("ab,bcp,dc->adp", ro, K, ri, optimize=True)
        key = tuple(np.round(g, 12).ravel().tolist()) if isinstance(g, np.ndarray) else g
        errors[key] = float(np.abs(lhs - K).max() / scale)
    return errors
