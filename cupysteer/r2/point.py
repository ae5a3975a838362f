r"""Point-convolution bases on the plane (escnn ``R2PointConv``'s conventions).

Element (ring i, harmonic h) of the irreps pair ψ_in → ψ_out at a relative position
δ = (r cos θ, r sin θ) is

.. math::  E(\delta) = d_\text{out}\,\exp\!\Big(-\frac{(r - R_i)^2}{2\sigma_i^2}\Big)\,
           A_h(\theta),

A_h the angular matrix of :func:`cupysteer.r2.harmonics.evaluate_angular` (μ, γ, s of e2cnn's
harmonics, aliases bounded by the maximum frequency), kept when |μ| ≤ F(R_i); at δ = 0 the
elements with μ ≠ 0 vanish. Elements run ring-major (e2cnn's order, as the grid layers);
escnn builds the same span per (ring, |μ|) with its own elements and order. The factor
d_out is escnn's point-sampler scaling (no normalisation on sample points).
"""
from __future__ import annotations

import numpy as np

from ..pair_basis import PairBasis
from ..pointconv import point_settings
from ..settings import BasisSettings
from .harmonics import PairHarmonics, evaluate_angular, harmonic_axis, pair_harmonics
from .settings import polar

__all__ = ["point_settings", "point_pair_basis", "evaluate_point_basis"]


def point_pair_basis(in_irrep, out_irrep, settings: BasisSettings) -> PairBasis:
    """The element descriptors (values of shape (n, d_out, d_in, 0): nothing sampled)."""
    h = pair_harmonics(in_irrep, out_irrep, settings.maximum_frequency, None)
    mu = np.abs(h.frequency)
    sel = [(i, np.flatnonzero(mu <= cut)) for i, cut in enumerate(settings.cutoff_per_ring)]
    ring = np.concatenate([np.full(len(k), i) for i, k in sel]).astype(np.int64)
    idx = np.concatenate([k for _, k in sel]).astype(np.int64)
    n = len(idx)
    return PairBasis(in_irrep, out_irrep, np.zeros((n, out_irrep.dim, in_irrep.dim, 0)),
                     ring, h.frequency[idx], h.gamma[idx], h.s[idx], h.offset[idx],
                     np.ones(n))


def evaluate_point_basis(pb: PairBasis, settings: BasisSettings, delta: np.ndarray):
    """(E, n, d_out, d_in): the elements of ``pb`` at the relative positions ``delta`` (E, 2)."""
    r, theta, origin = polar(delta)
    h = PairHarmonics(pb.in_irrep, pb.out_irrep, pb.frequency, pb.gamma, pb.s, pb.offset,
                      harmonic_axis(pb.in_irrep.group))
    ang = evaluate_angular(h, theta, origin)  # (n, do, di, E)
    R = np.asarray(settings.rings)[pb.ring][:, None]
    sig = np.asarray(settings.sigma)[pb.ring][:, None]
    radial = pb.out_irrep.dim * np.exp(-((r[None, :] - R) ** 2) / (2.0 * sig ** 2))
    return np.moveaxis(ang * radial[:, None, None, :], -1, 0)
