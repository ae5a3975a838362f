r"""Radial rings, widths, band-limits and sampling grids with e2cnn R2Conv's defaults.

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["BasisSettings", "resolve_settings", "grid_points", "polar"]

ORIGIN_RADIUS = 1e-9


def grid_points(kernel_size: int, dilation: int = 1) -> np.ndarray:
    """The (k², 2) array of sample points (x, y) of a k×k filter, row-major, y up."""
    k, d = int(kernel_size), int(dilation)
    c = d * (k - 1) / 2
    row, col = np.divmod(np.arange(k * k), k)
    return np.stack([col * d - c, c - row * d], axis=1).astype(np.float64)


def polar(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radius, angle atan2(y, x) and the origin mask (r < 1e-9) of (n, 2) points."""
    p = np.asarray(points, np.float64)
    r = np.hypot(p[:, 0], p[:, 1])
    return r, np.arctan2(p[:, 1], p[:, 0]), r < ORIGIN_RADIUS


def _fco_policy(policy: int, M: int) -> Callable[[float], float]:
    def fco(r):
        if r == 0:
            return 0.0
        if policy == 3:
            return 1.0 if r == M else 2.0
        if r == M:
            return float(min(2 * M, 2 if policy == 1 else 1))
        return float(min(2 * r, 2 * r - ((r + 1) % 2)))
    return fco


@dataclass(frozen=True)
class BasisSettings:
    """Resolved radial settings of a layer basis (hashable: part of cache keys)."""

    rings: tuple[float, ...]
    sigma: tuple[float, ...]
    cutoff_per_ring: tuple[float, ...]
    maximum_frequency: int
    maximum_offset: int | None

    @property
    def num_rings(self) -> int:
        return len(self.rings)


def _check_int(x, name, minimum):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x!r}")
    return int(x)


def resolve_rings_sigma(k: int, d: int, rings, sigma, max_radius: float):
    """Default / validated ring radii and Gaussian widths (shared by 2D and 3D)."""
    if rings is None:
        n = math.ceil(k / 2)
        rings = (np.linspace(0, (k - 1) // 2, n, dtype=np.float32) * d).astype(np.float64)
    rings = np.atleast_1d(np.asarray(rings, dtype=np.float64))
    if rings.ndim != 1 or len(rings) == 0 or not np.all(np.isfinite(rings)) or rings.min() < 0:
        raise ValueError(f"rings must be a non-empty list of finite radii >= 0, got {rings!r}")
    if rings.max() > max_radius + 1e-9:
        raise ValueError(f"rings: radius {rings.max():g} lies beyond the largest sampled radius "
                         f"{max_radius:g}; use smaller rings or a larger kernel_size")
    if sigma is None:
        sig = np.full(len(rings), 0.6)
        sig[-1] = 0.4
        sig[rings == 0] = 0.005
    elif np.ndim(sigma) == 0:
        sig = np.full(len(rings), float(sigma))
    else:
        sig = np.asarray(sigma, dtype=np.float64)
        if sig.shape != rings.shape:
            raise ValueError(f"sigma must be a float or one value per ring ({len(rings)} rings), "
                             f"got {len(sig)} values")
    if not np.all(np.isfinite(sig)) or sig.min() <= 0:
        raise ValueError(f"sigma must be positive, got {sig!r}")
    return rings, sig


def evaluate_cutoffs(fco, rings, what: str = "frequency") -> tuple:
    """fco(r) on every ring as finite floats (a clear error for a junk callable result)."""
    cut = []
    for r in rings:
        raw = fco(float(r))
        a = np.asarray(raw) if not isinstance(raw, (str, bytes)) else np.asarray(math.nan)
        c = float(a) if a.ndim == 0 and a.dtype.kind in "iuf" else math.nan
        if not math.isfinite(c):
            raise ValueError(f"frequencies_cutoff: the cut-off of the ring at radius {r:g} is "
                             f"{raw!r}; it must be a finite {what} (the callable must "
                             f"return a finite float for every ring)")
        cut.append(c)
    return tuple(cut)


def resolve_settings(kernel_size: int, dilation: int = 1, rings=None, sigma=None,
                     frequencies_cutoff=None, maximum_offset=None,
                     points: np.ndarray | None = None) -> BasisSettings:
    """e2cnn R2Conv's ``compute_basis_params`` with every default, plus validation.

    ``points`` (the sample points) only serves the check that every ring lies within
    the largest sampled radius.
    """
    k = _check_int(kernel_size, "kernel_size", 1)
    d = _check_int(dilation, "dilation", 1)
    max_radius = d * (k - 1) / 2 * math.sqrt(2)
    if points is not None:
        max_radius = float(np.hypot(points[:, 0], points[:, 1]).max())
    rings, sig = resolve_rings_sigma(k, d, rings, sigma, max_radius)
    cut = evaluate_cutoffs(_resolve_cutoff(frequencies_cutoff, k), rings, "frequency")
    if maximum_offset is not None:
        maximum_offset = _check_int(maximum_offset, "maximum_offset", 0)
    return BasisSettings(tuple(float(r) for r in rings), tuple(float(s) for s in sig), cut,
                         int(max(cut)), maximum_offset)


def _resolve_cutoff(frequencies_cutoff, kernel_size: int) -> Callable[[float], float]:
    M = kernel_size // 2
    fc = frequencies_cutoff
    if fc is None:
        return _fco_policy(1, M)
    if callable(fc):
        return fc
    if isinstance(fc, bool) or not isinstance(fc, (float, np.floating)):
        raise ValueError(f"frequencies_cutoff must be a float or a callable r -> max frequency "
                         f"(e2cnn rejects ints too), got {fc!r}; write e.g. {float(fc) if isinstance(fc, (int, np.integer)) else 3.0!r}")
    fc = float(fc)
    if fc in (-1.0, -2.0, -3.0):
        return _fco_policy(int(-fc), M)
    if not math.isfinite(fc) or fc <= 0:
        raise ValueError(f"frequencies_cutoff must be positive, one of the policies -1.0, -2.0, "
                         f"-3.0, or a callable; got {fc!r}")
    return lambda r: fc * r
