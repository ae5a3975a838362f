r"""Equivariance checks shipped with the library.

A filter K sampled at points p is steerable iff
:math:`K(g\cdot p) = \rho_\text{out}(g)\, K(p)\, \rho_\text{in}(g)^{T}` for all g.
On a point set, the check is exact for the elements that map the set onto itself
(on the square grid: rotations by multiples of 90° and reflections whose axis is a
multiple of π/4).
"""
from __future__ import annotations

import numpy as np

__all__ = ["point_symmetries", "equivariance_errors"]


def point_symmetries(group, points: np.ndarray, atol: float = 1e-6):
    """Elements of ``group`` (all, or the testing elements of SO(2)/O(2)) that permute
    ``points``: list of (element, perm) with ``points[perm[i]] == g · points[i]``."""
    pts = np.asarray(points, np.float64)
    out = []
    for g in group.testing_elements():
        moved = pts @ group.action_matrix(g).T
        d = np.abs(moved[:, None, :] - pts[None, :, :]).max(-1)
        perm = d.argmin(1)
        if np.all(d[np.arange(len(pts)), perm] < atol) and len(set(perm.tolist())) == len(pts):
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
        errors[g] = float(np.abs(lhs - K).max() / scale)
    return errors
