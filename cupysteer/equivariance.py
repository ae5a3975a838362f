r"""Equivariance checks shipped with the library.

A filter K sampled at points p is steerable iff
:math:`K(g\cdot p) = \rho_\text{out}(g)\, K(p)\, \rho_\text{in}(g)^{T}` for all g.
On a point set, the check is exact for the elements that map the set onto itself
(on the square grid: rotations by multiples of 90° and reflections whose axis is a
multiple of π/4; on the cubic grid: the symmetries of the cube, 3×3 matrices).
"""
from __future__ import annotations

import numpy as np

__all__ = ["grid_candidates", "point_permutation", "point_symmetries", "equivariance_errors"]


def grid_candidates(group) -> list:
    """Elements that may map a square (cubic) grid onto itself: every element of a finite
    group; for SO(2)/O(2) the rotations by multiples of 90° and the reflections whose axis is a
    multiple of π/4; for continuous groups acting on R³ the symmetries of the cube they
    contain (3×3 matrices). Asked of the group's space."""
    return group.space.grid_candidates(group)


def point_permutation(group, g, points: np.ndarray, atol: float = 1e-6):
    """``perm`` with ``points[perm[i]] == g · points[i]``, or None if g does not permute them."""
    pts = np.asarray(points, np.float64)
    A = group.action_matrices([g])[0]
    moved = pts @ A.T
    d = np.abs(moved[:, None, :] - pts[None, :, :]).max(-1)
    perm = d.argmin(1)
    ok = np.all(d[np.arange(len(pts)), perm] < atol) and len(set(perm.tolist())) == len(pts)
    return perm if ok else None


def point_symmetries(group, points: np.ndarray, atol: float = 1e-6):
    """The :func:`grid_candidates` of ``group`` that permute ``points``: list of
    (element, perm) with ``points[perm[i]] == g · points[i]``."""
    out = []
    for g in grid_candidates(group):
        perm = point_permutation(group, g, points, atol)
        if perm is not None:
            out.append((g, perm))
    return out


def equivariance_errors(basis, filt: np.ndarray) -> dict:
    """Relative error max|K(g·p) − ρ_out(g) K(p) ρ_in(g)ᵀ| / max|K| for every symmetry g of
    the basis' points. ``filt`` has the basis' filter shape (C_out, C_in, *filter_shape)."""
    K = np.asarray(filt, np.float64).reshape(basis.out_type.size, basis.in_type.size, -1)
    scale = max(np.abs(K).max(), np.finfo(np.float64).tiny)
    errors = {}
    for g, perm in point_symmetries(basis.in_type.group, basis.points):
        ro = basis.out_type.representation(g)
        ri = basis.in_type.representation(g)
        lhs = np.empty_like(K)
        lhs[:, :, perm] = np.einsum("ab,bcp,dc->adp", ro, K, ri)
        key = tuple(np.round(g, 12).ravel().tolist()) if isinstance(g, np.ndarray) else g
        errors[key] = float(np.abs(lhs - K).max() / scale)
    return errors
