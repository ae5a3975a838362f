r"""A point-convolution basis given by a formula instead of samples: Gaussian rings times
angular harmonics, evaluated inside the kernels of ``kernels/point_conv.cu`` (the
``*_2d`` kernels) so that the per-edge basis (E, n_entries) is never stored.

Column q of the basis (the layout of :mod:`cupysteer.backends.point_numpy`: block slice
``basis_offset``, element k, entry (r, c)) at the relative position δ_e = (r_e cos θ_e,
r_e sin θ_e) is

.. math::  B[e, q] = s_j \exp\!\Big(-\frac{(r_e - R_j)^2}{2\sigma_j^2}\Big)
           \big(\alpha_q \cos\varphi_{je} + \beta_q \sin\varphi_{je}\big),\quad
           \varphi_{je} = \mu_j\theta_e + \gamma_j,\quad j = \text{entry\_element}[q],

with ``elements[j] = (R, σ, μ, γ, s)`` and ``entry_coef[q] = (α, β)``; at the origin
(r_e < ``origin``) θ_e = 0 and elements with μ ≠ 0 vanish. Every entry of one (block slice,
basis element k) must name the same element. This is the planar point basis of escnn's
``R2PointConv`` (rings × harmonics; a reflection axis β folds into γ − μβ); building the
descriptor from a group's pair bases is the layer's business: this module knows no space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["RadialHarmonics", "HarmonicSample", "ORIGIN_RADIUS"]

#: radius below which a relative position is the origin (as cupysteer.r2.settings.polar)
ORIGIN_RADIUS = 1e-9


class HarmonicSample(NamedTuple):
    """The basis at E relative positions: ``harmonics`` (static) and ``delta`` (E, 2), a
    NumPy or CuPy array. Pass it where a sampled basis (E, n_entries) goes."""
    harmonics: "RadialHarmonics"
    delta: object

    @property
    def shape(self) -> tuple:
        return (int(self.delta.shape[0]), self.harmonics.n_entries)

    @property
    def dtype(self):
        return self.delta.dtype

    def evaluate(self) -> np.ndarray:
        """The sampled basis (E, n_entries), float64 (NumPy reference)."""
        return self.harmonics.evaluate(self.delta)


@dataclass(frozen=True, eq=False)
class RadialHarmonics:
    """The static part of the formula (host NumPy arrays, checked once): ``elements``
    (n_elements, 5) float (R, σ, μ, γ, scale), ``entry_element`` (n_entries,) int64,
    ``entry_coef`` (n_entries, 2) float (α, β), ``origin`` the origin radius."""

    elements: np.ndarray
    entry_element: np.ndarray
    entry_coef: np.ndarray
    origin: float = ORIGIN_RADIUS

    def __post_init__(self):
        el = np.ascontiguousarray(self.elements, np.float64)
        ee, ec = np.asarray(self.entry_element), np.asarray(self.entry_coef, np.float64)
        if el.ndim != 2 or el.shape[1] != 5:
            raise ValueError(f"elements must have shape (n_elements, 5) = (R, sigma, mu, gamma, "
                             f"scale) per element, got {el.shape}")
        if ee.ndim != 1 or ee.dtype.kind not in "iu":
            raise ValueError(f"entry_element must be an integer array (n_entries,), got "
                             f"{ee.dtype} {ee.shape}")
        if len(ee) and (ee.min() < 0 or ee.max() >= len(el)):
            raise ValueError(f"entry_element must index elements in [0, {len(el)})")
        if ec.shape != (len(ee), 2):
            raise ValueError(f"entry_coef must have shape ({len(ee)}, 2) = (alpha, beta) per "
                             f"entry, got {ec.shape}")
        if not (el[:, 1] > 0).all() or not np.isfinite(el).all():
            raise ValueError("elements must be finite, every sigma (column 1) > 0")
        object.__setattr__(self, "elements", el)
        object.__setattr__(self, "entry_element", np.ascontiguousarray(ee, np.int64))
        object.__setattr__(self, "entry_coef", np.ascontiguousarray(ec))

    @property
    def n_entries(self) -> int:
        return len(self.entry_element)

    def at(self, delta) -> HarmonicSample:
        """The basis at the relative positions ``delta`` (E, 2)."""
        shape = getattr(delta, "shape", None)
        if shape is None or len(shape) != 2 or shape[1] != 2:
            raise ValueError(f"delta must have shape (E, 2) (relative positions x, y), got "
                             f"{shape}")
        return HarmonicSample(self, delta)

    def evaluate(self, delta) -> np.ndarray:
        """The sampled basis (E, n_entries) in float64 (NumPy reference)."""
        d = np.asarray(delta, np.float64)
        r = np.hypot(d[:, 0], d[:, 1])
        origin = r < self.origin
        theta = np.where(origin, 0.0, np.arctan2(d[:, 1], d[:, 0]))
        R, sig, mu, gam, scale = self.elements[self.entry_element].T[:, None, :]
        rad = scale * np.exp(-((r[:, None] - R) ** 2) / (2 * sig ** 2))
        phi = mu * theta[:, None] + gam
        a, b = self.entry_coef.T
        out = rad * (a * np.cos(phi) + b * np.sin(phi))
        return np.where(origin[:, None] & (mu != 0), 0.0, out)
