r"""Radial settings shared by every base space: the resolved rings, widths and band-limits.

* rings: ⌈k/2⌉ radii ``linspace(0, (k−1)//2, ⌈k/2⌉)`` (float32) × dilation; user rings must
  lie within the largest sampled radius;
* sigma: 0.6 per ring, 0.4 on the last, 0.005 on a ring at radius 0; a float is broadcast;
* cut-offs: fco(R) per ring from a policy or a callable (each space resolves its own
  defaults: :mod:`cupysteer.r2.settings` as e2cnn, :mod:`cupysteer.r3.settings` as escnn).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._checks import real_array

__all__ = ["BasisSettings", "resolve_rings_sigma", "evaluate_cutoffs", "cutoff_policy"]


def cutoff_policy(policy: int, M: int) -> Callable[[float], float]:
    """e2cnn's band-limit policies "fco1/2/3" (frequencies_cutoff −1/−2/−3), M = k // 2."""
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


def _check_sigma(sigma, n_rings: int) -> np.ndarray:
    """sigma as one positive width per ring; a width whose square underflows (the Gaussian's
    exponent 1/(2σ²) would be infinite) is refused."""
    sig = real_array(sigma, "sigma", "a positive float or one positive width per ring")
    if sig.ndim == 0:
        sig = np.full(n_rings, float(sig))
    elif sig.shape != (n_rings,):
        raise ValueError(f"sigma must be a float or one value per ring ({n_rings} rings), "
                         f"got {sig.size} values of shape {sig.shape}")
    if not np.all(np.isfinite(sig)) or sig.min() <= 0:
        raise ValueError(f"sigma must be positive, got {sig!r}")
    with np.errstate(over="ignore", divide="ignore"):
        tiny = ~np.isfinite(1.0 / (2.0 * sig ** 2))
    if tiny.any():
        raise ValueError(f"sigma: {sig[tiny][0]!r} is so small that sigma² underflows (the "
                         f"Gaussian's exponent 1/(2σ²) is infinite); use sigma >= "
                         f"{_SMALLEST_SIGMA:g} (0.005 is the default width at radius 0)")
    return sig


#: smallest sigma whose 1/(2σ²) is a finite float64
_SMALLEST_SIGMA = 1e-150


def resolve_rings_sigma(k: int, d: int, rings, sigma, max_radius: float):
    """Default / validated ring radii and Gaussian widths (shared by 2D and 3D)."""
    if rings is None:
        n = math.ceil(k / 2)
        rings = (np.linspace(0, (k - 1) // 2, n, dtype=np.float32) * d).astype(np.float64)
    rings = np.atleast_1d(real_array(rings, "rings", "a list of ring radii >= 0"))
    if rings.ndim != 1 or len(rings) == 0 or not np.all(np.isfinite(rings)) or rings.min() < 0:
        raise ValueError(f"rings must be a non-empty list of finite radii >= 0, got {rings!r}")
    if rings.max() > max_radius + 1e-9:
        raise ValueError(f"rings: radius {rings.max():g} lies beyond the largest sampled radius "
                         f"{max_radius:g}; use smaller rings or a larger kernel_size")
    if sigma is None:
        sig = np.full(len(rings), 0.6)
        sig[-1] = 0.4
        sig[rings == 0] = 0.005
    else:
        sig = _check_sigma(sigma, len(rings))
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


