r"""Spherical shells, widths, band-limits and k×k×k grids with escnn R3Conv's defaults.

* rings: ⌈k/2⌉ radii ``linspace(0, (k−1)//2, ⌈k/2⌉)`` × dilation (as in 2D); user rings must
  lie in [0, d(k−1)√3/2];
* sigma: 0.6 per ring, 0.4 on the last, 0.005 on a ring at radius 0; a float is broadcast;
* band-limit F(R), the largest harmonic degree l kept on the shell of radius R:

  - ``None`` / ``'default'`` / ``'default1'``: :math:`F(R) = \min(2R,\ k/\!/2 - R + 2)`
    (k//2 undilated);
  - ``'default2'`` / ``'default3'``: the planar "fco2" / "fco3" policies;
  - a float c ≥ 0: F(R) = c·R; a callable R ↦ F(R) is used as is.

* harmonic degree L = int(max_R F(R)).
* grid: point ``a·k² + b·k + c`` is (x, y, z) = ((c − h)d, (h − b)d, (h − a)d), h = (k−1)/2:
  the filter axes [a, b, c] are (−z, −y, x).
* anisotropic / non-cubic grids: ``kernel_size=(k_1, k_2, k_3)`` and ``spacing=(s_1, s_2,
  s_3)`` per filter axis (−z, −y, x); points x = (c − (k_3−1)/2)·d·s_3, y = ((k_2−1)/2 − b)·d·s_2,
  z = ((k_1−1)/2 − a)·d·s_1 and the defaults of the effective cubic grid
  (:mod:`cupysteer.settings`).
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import integer
from .._memory import check_grid
from ..settings import (
    BasisSettings,
    anisotropic_defaults,
    cutoff_policy,
    evaluate_cutoffs,
    grid_geometry,
    physical_grid,
    resolve_rings_sigma,
)

__all__ = ["grid_points", "resolve_settings"]

ORIGIN_RADIUS = 1e-9


def grid_points(kernel_size, dilation: int = 1, spacing=None) -> np.ndarray:
    """The (k³, 3) array of sample points (x, y, z) of a k×k×k filter in escnn's order; with a
    per-axis ``kernel_size`` or ``spacing`` the physical points of that grid
    (:func:`cupysteer.settings.physical_grid`)."""
    if spacing is not None or isinstance(kernel_size, (tuple, list)) or np.ndim(kernel_size) == 1:
        geom = grid_geometry(kernel_size, dilation, spacing, 3)
        if not geom.cubic:
            return physical_grid(geom)
        kernel_size = geom.sizes[0]
    k = integer(kernel_size, "kernel_size", 1)
    d = integer(dilation, "dilation", 1)
    check_grid(k, 3)
    h = (k - 1) / 2
    a, rest = np.divmod(np.arange(k ** 3), k * k)
    b, c = np.divmod(rest, k)
    return np.stack([(c - h) * d, (h - b) * d, (h - a) * d], axis=1).astype(np.float64)


def _default_cutoff(k: int):
    M = k // 2
    return lambda R: min(2.0 * R, M - R + 2.0)


def _resolve_cutoff3(frequencies_cutoff, k: int):
    fc = frequencies_cutoff
    if fc is None or (isinstance(fc, str) and fc in ("default", "default1")):
        return _default_cutoff(k)
    if isinstance(fc, str):
        if fc in ("default2", "default3"):
            return cutoff_policy(int(fc[-1]), k // 2)
        raise ValueError(f"frequencies_cutoff: unknown policy {fc!r}; use None/'default', "
                         f"'default1', 'default2', 'default3', a float c >= 0 (F(R) = c·R) "
                         f"or a callable")
    if callable(fc):
        return fc
    if isinstance(fc, bool) or not isinstance(fc, (int, float, np.integer, np.floating)):
        raise ValueError(f"frequencies_cutoff must be None, a policy name, a float or a "
                         f"callable R -> maximum degree, got {fc!r}")
    c = float(fc)
    if not math.isfinite(c) or c < 0:
        raise ValueError(f"frequencies_cutoff must be a float c >= 0 (F(R) = c·R), got "
                         f"{fc!r}")
    return lambda R: c * R


def resolve_settings(kernel_size: int, dilation: int = 1, rings=None, sigma=None,
                      frequencies_cutoff=None, points: np.ndarray | None = None,
                      spacing=None) -> BasisSettings:
    """escnn R3Conv's ``compute_basis_params`` with every default, plus validation.

    ``cutoff_per_ring`` holds F(R) per shell and ``maximum_frequency`` the harmonic degree L.
    A per-axis ``kernel_size`` or a ``spacing`` takes the defaults of the effective cubic grid
    (:mod:`cupysteer.settings`).
    """
    geom = grid_geometry(kernel_size, dilation, spacing, 3)
    k, d = geom.sizes[0], geom.dilation
    if points is None:
        max_radius = d * (k - 1) / 2 * math.sqrt(3) if geom.cubic else geom.corner_radius
    else:
        max_radius = float(np.linalg.norm(points, axis=1).max())
    if geom.cubic:
        rings, sig = resolve_rings_sigma(k, d, rings, sigma, max_radius)
        cut_fn = _resolve_cutoff3(frequencies_cutoff, k)
    else:
        rings, sig, cut_fn = anisotropic_defaults(
            geom, rings, sigma, _resolve_cutoff3(frequencies_cutoff, geom.effective_size),
            max_radius)
    cut = evaluate_cutoffs(cut_fn, rings, "degree")
    L = int(max(cut))
    if L > 64:
        raise ValueError(f"frequencies_cutoff: harmonic degree {L} is far beyond what a "
                         f"{'×'.join(map(str, geom.sizes))} grid resolves; lower "
                         f"frequencies_cutoff")
    return BasisSettings(tuple(float(r) for r in rings), tuple(float(x) for x in sig),
                         tuple(cut), max(L, 0), None)


#: the names of 0.1 (before both spaces shared their module and function names)
grid_points3, resolve_settings3 = grid_points, resolve_settings
