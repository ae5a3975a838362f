r"""Planar rings, widths, band-limits and sampling grids with e2cnn R2Conv's defaults.

* rings: ⌈k/2⌉ radii ``linspace(0, (k−1)//2, ⌈k/2⌉)`` (float32) × dilation;
* sigma: 0.6 per ring, 0.4 on the last, 0.005 on a ring at radius 0; a float is broadcast;
* frequencies_cutoff → fco(r), the largest |μ| kept on the ring of radius r, with
  M = k // 2 (undilated half size):

  - ``None`` or −1.0 ("fco1"): fco(0) = 0, fco(M) = min(2M, 2), else min(2r, 2r − ((r+1) mod 2));
  - −2.0 ("fco2"): as fco1 but fco(M) = min(2M, 1);
  - −3.0 ("fco3"): 0 at r = 0, 1 at r = M, 2 elsewhere;
  - any other float c: c·r; a callable r ↦ fco(r) is used as is.

* maximum frequency F = int(max_r fco(r)) bounds the aliases of finite groups.
* grid: point ``row*k + col`` is (x, y) = (col·d − c, c − row·d), c = d(k−1)/2 (y up).
* anisotropic / non-rectangular grids: ``kernel_size=(k_H, k_W)`` and ``spacing=(s_H, s_W)``
  (filter axis order: rows = −y, columns = x); points (col − (k_W−1)/2)·d·s_W,
  ((k_H−1)/2 − row)·d·s_H and the defaults of the effective cubic grid
  (:mod:`cupysteer.settings`).
"""
from __future__ import annotations

import math
from typing import Callable

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

__all__ = ["resolve_settings", "grid_points", "polar"]

ORIGIN_RADIUS = 1e-9


def grid_points(kernel_size, dilation: int = 1, spacing=None) -> np.ndarray:
    """The (k², 2) array of sample points (x, y) of a k×k filter, row-major, y up; with a
    per-axis ``kernel_size`` (k_H, k_W) or ``spacing`` (s_H, s_W) the physical points of that
    grid (:func:`cupysteer.settings.physical_grid`)."""
    if spacing is not None or isinstance(kernel_size, (tuple, list)) or np.ndim(kernel_size) == 1:
        geom = grid_geometry(kernel_size, dilation, spacing, 2)
        if not geom.cubic:
            return physical_grid(geom)
        kernel_size = geom.sizes[0]
    k = integer(kernel_size, "kernel_size", 1)
    d = integer(dilation, "dilation", 1)
    check_grid(k, 2)
    c = d * (k - 1) / 2
    step = np.arange(k) * d  # col·d (x) and row·d (y) of the points of one row / column
    points = np.empty((k, k, 2))
    points[:, :, 0] = step - c
    points[:, :, 1] = (c - step)[:, None]
    return points.reshape(k * k, 2)


def polar(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radius, angle atan2(y, x) and the origin mask (r < 1e-9) of (n, 2) points."""
    p = np.asarray(points, np.float64)
    r = np.hypot(p[:, 0], p[:, 1])
    return r, np.arctan2(p[:, 1], p[:, 0]), r < ORIGIN_RADIUS


def resolve_settings(kernel_size: int, dilation: int = 1, rings=None, sigma=None,
                     frequencies_cutoff=None, maximum_offset=None,
                     points: np.ndarray | None = None, spacing=None) -> BasisSettings:
    """e2cnn R2Conv's ``compute_basis_params`` with every default, plus validation.

    ``points`` (the sample points) only serves the check that every ring lies within
    the largest sampled radius. A per-axis ``kernel_size`` or a ``spacing`` takes the
    defaults of the effective cubic grid (:mod:`cupysteer.settings`).
    """
    geom = grid_geometry(kernel_size, dilation, spacing, 2)
    k, d = geom.sizes[0], geom.dilation
    max_radius = d * (k - 1) / 2 * math.sqrt(2) if geom.cubic else geom.corner_radius
    if points is not None:
        max_radius = float(np.hypot(points[:, 0], points[:, 1]).max())
    if geom.cubic:
        rings, sig = resolve_rings_sigma(k, d, rings, sigma, max_radius)
        fco = _resolve_cutoff(frequencies_cutoff, k)
    else:
        rings, sig, fco = anisotropic_defaults(
            geom, rings, sigma, _resolve_cutoff(frequencies_cutoff, geom.effective_size),
            max_radius)
    cut = evaluate_cutoffs(fco, rings, "frequency")
    if maximum_offset is not None:
        maximum_offset = integer(maximum_offset, "maximum_offset", 0)
    return BasisSettings(tuple(float(r) for r in rings), tuple(float(s) for s in sig), cut,
                         int(max(cut)), maximum_offset)


def _resolve_cutoff(frequencies_cutoff, kernel_size: int) -> Callable[[float], float]:
    M = kernel_size // 2
    fc = frequencies_cutoff
    if fc is None:
        return cutoff_policy(1, M)
    if callable(fc):
        return fc
    if isinstance(fc, bool) or not isinstance(fc, (float, np.floating)):
        example = float(fc) if isinstance(fc, (int, np.integer)) else 3.0
        raise ValueError(f"frequencies_cutoff must be a float or a callable r -> max frequency "
                         f"(e2cnn rejects ints too), got {fc!r}; write e.g. {example!r}")
    fc = float(fc)
    if fc in (-1.0, -2.0, -3.0):
        return cutoff_policy(int(-fc), M)
    if not math.isfinite(fc) or fc <= 0:
        raise ValueError(f"frequencies_cutoff must be positive, one of the policies -1.0, -2.0, "
                         f"-3.0, or a callable; got {fc!r}")
    return lambda r: fc * r
