r"""Radial settings shared by every base space: the resolved rings, widths and band-limits.

* rings: ⌈k/2⌉ radii ``linspace(0, (k−1)//2, ⌈k/2⌉)`` (float32) × dilation; user rings must
  lie within the largest sampled radius;
* sigma: 0.6 per ring, 0.4 on the last, 0.005 on a ring at radius 0; a float is broadcast;
* cut-offs: fco(R) per ring from a policy or a callable (each space resolves its own
  defaults: :mod:`cupysteer.r2.settings` as e2cnn, :mod:`cupysteer.r3.settings` as escnn).

Anisotropic and non-cubic grids (:class:`GridGeometry`): ``kernel_size`` may give one size
per filter axis (k_0, …, k_{d−1}) and ``spacing`` one positive physical step s_i per filter
axis, in the filter's (tensor's) axis order. The sample points are the index offsets times
the steps, ``(j_i − (k_i − 1)/2)·dilation·s_i``, in physical units. The radial defaults of
such a grid are those of the cubic grid of the *effective size*

.. math:: k_\text{eff} = \lfloor 2R/s \rfloor + 1, \qquad
          R = \min_i s_i (k_i - 1)/2, \qquad s = \min_i s_i,

scaled by s: R is the radius of the largest ball inside the sampled box (undilated), s the
finest step. Default rings ``s·d·(0, 1, …, (k_eff − 1)//2)`` therefore never leave that ball
(no ring extrapolates beyond the box along its shortest side), default widths are e2cnn's /
escnn's (0.6, 0.4, 0.005) times s, and the frequency cut-offs (policies, floats and callables)
are evaluated on the ring radius in units of s, with k_eff in the policies' M = k_eff // 2.
A cubic grid with unit spacing is exactly today's (k_eff = k, s = 1): same points, settings,
cache keys and bits.

Why these choices: a ring of radius r is a steerable function only if it is sampled in every
direction; beyond R the box cuts it along its shortest side (a 5×5×3 unit box samples a
sphere of radius 2 only near the equator), so its harmonics would be fitted on a partial
shell, i.e. extrapolated — the corner radius (e2cnn's bound for *user* rings, kept) is not a
safe default. Rings one finest step apart keep the radial resolution the grid offers, and
widths in units of that step keep the rings' overlap: a uniform spacing s is then a pure
change of units (points, rings and widths × s: the same filters; tested). As in e2cnn the
widths are not scaled by the dilation. An axis of size 1 next to larger ones leaves R = 0:
its default would be the origin only, so explicit ``rings`` are required (an error says so).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._checks import integer, real_array
from ._memory import GRID_BYTES_PER_POINT, check_host

__all__ = ["BasisSettings", "resolve_rings_sigma", "evaluate_cutoffs", "cutoff_policy",
           "GridGeometry", "grid_geometry", "physical_grid"]


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




# ---- anisotropic / non-cubic grids -----------------------------------------------------------

@dataclass(frozen=True)
class GridGeometry:
    """A sampling grid: ``sizes`` (k_i per filter axis), ``dilation`` and ``spacing`` (s_i per
    filter axis, or None for unit steps). See the module docstring for the derived radii."""

    sizes: tuple[int, ...]
    dilation: int
    spacing: tuple[float, ...] | None

    @property
    def cubic(self) -> bool:
        """A k×…×k grid with unit steps: the e2cnn / escnn grid (today's code path)."""
        return self.spacing is None and len(set(self.sizes)) == 1

    @property
    def steps(self) -> np.ndarray:
        return np.ones(len(self.sizes)) if self.spacing is None else np.array(self.spacing)

    @property
    def step(self) -> float:
        """s, the finest step (the unit of the default rings, widths and cut-offs)."""
        return float(self.steps.min())

    @property
    def inscribed_radius(self) -> float:
        """R = min_i s_i (k_i − 1)/2 (undilated): the largest ball inside the sampled box."""
        return float(min(s * (k - 1) / 2 for s, k in zip(self.steps, self.sizes)))

    @property
    def effective_size(self) -> int:
        """k_eff = ⌊2R/s⌋ + 1, the cubic grid whose radial defaults this grid takes."""
        return int(math.floor(2 * self.inscribed_radius / self.step + 1e-9)) + 1

    @property
    def corner_radius(self) -> float:
        """The largest sampled radius (dilated): the box's half diagonal."""
        return float(self.dilation * math.hypot(*((s * (k - 1) / 2)
                                                    for s, k in zip(self.steps, self.sizes))))


def grid_geometry(kernel_size, dilation, spacing, dimension: int) -> GridGeometry:
    """Validated sizes, dilation and spacing of a d-dimensional grid. ``kernel_size``: an int
    or d ints >= 1; ``spacing``: None, a positive float or d positive floats (all 1 → None)."""
    if isinstance(kernel_size, (tuple, list)) or np.ndim(kernel_size) == 1:
        ks = list(kernel_size)
        if len(ks) != dimension:
            raise ValueError(f"kernel_size must be an int or {dimension} ints (one per filter "
                             f"axis), got {len(ks)} entries: {tuple(ks)!r}")
        sizes = tuple(integer(k, "kernel_size", 1, " (per axis)") for k in ks)
    else:
        sizes = (integer(kernel_size, "kernel_size", 1),) * dimension
    d = integer(dilation, "dilation", 1)
    return GridGeometry(sizes, d, _check_spacing(spacing, dimension))


def _check_spacing(spacing, dimension: int):
    if spacing is None:
        return None
    hint = (f"spacing must be a positive float or {dimension} positive floats (the physical "
            f"step of each filter axis, e.g. {(1.0,) * (dimension - 1) + (3.0,)})")
    if isinstance(spacing, (str, bytes, bool, np.bool_)):
        raise ValueError(f"{hint}, got {spacing!r}")
    try:
        s = np.array(spacing, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{hint}, got {spacing!r}") from None
    if s.ndim == 0:
        s = np.full(dimension, float(s))
    if s.shape != (dimension,):
        raise ValueError(f"{hint}, got {s.size} entries: {spacing!r}")
    if not np.all(np.isfinite(s)) or s.min() <= 0:
        raise ValueError(f"{hint}; every step must be finite and > 0, got {spacing!r}")
    return None if np.all(s == 1.0) else tuple(float(v) for v in s)


def physical_grid(geom: GridGeometry) -> np.ndarray:
    """The (∏k_i, d) sample points of ``geom`` in the filter's flat (row-major) order. Filter
    axis i is coordinate d−1−i, with offset (j − (k_i − 1)/2)·dilation·s_i, negated for every
    axis but the last: 2D (H, W) = (−y, x) as e2cnn, 3D (D1, D2, D3) = (−z, −y, x) as escnn."""
    n = len(geom.sizes)
    P = int(np.prod(geom.sizes))
    shape = "×".join(map(str, geom.sizes))
    check_host(P * GRID_BYTES_PER_POINT,
               lambda: f"the {shape} sample grid ({P} points, with its sampling temporaries)",
               "use a smaller kernel_size")
    idx = np.indices(geom.sizes).reshape(n, -1).T.astype(np.float64)
    offsets = (idx - (np.array(geom.sizes) - 1) / 2) * (geom.dilation * geom.steps)
    offsets[:, :-1] *= -1
    return np.ascontiguousarray(offsets[:, ::-1])


def anisotropic_defaults(geom: GridGeometry, rings, sigma, cutoff_fn, max_radius: float):
    """Rings, widths and the cut-off function of a non-cubic / anisotropic grid: the defaults
    of the cubic k_eff grid scaled by s (module docstring); user rings and sigma are physical
    and used as given; ``cutoff_fn`` (of the radius in units of s) is wrapped to physical radii.
    Returns (rings, sigma, fco)."""
    s, d = geom.step, geom.dilation
    if rings is None and geom.inscribed_radius == 0 and max(geom.sizes) > 1:
        raise ValueError(f"kernel_size {geom.sizes}: an axis of size 1 leaves no ball inside "
                         f"the sampled box, so the default rings would be the origin only; "
                         f"give rings explicitly (radii up to {max_radius:g}), e.g. "
                         f"rings=[0, 1, 2]")
    if rings is None:
        n = (geom.effective_size - 1) // 2 + 1
        rings = np.arange(n, dtype=np.float64) * (d * s)
    r, sig = resolve_rings_sigma(geom.effective_size, d, rings, sigma, max_radius)
    if sigma is None:
        sig = sig * s
    return r, sig, (lambda R: cutoff_fn(R / s))
