r"""Sampled, normalised kernel basis of one irreps pair: rings × angular harmonics.

Element b on ring i at point p (polar r, θ) is

.. math::  E_b(p) = \exp\!\Big(-\frac{(r - R_i)^2}{2\sigma_i^2}\Big)\, A_b(\theta) / n_b,
           \qquad n_b^2 = \frac{1}{d_\text{out}} \sum_p \lVert \cdot \rVert_F^2,

ring-major, band-limited by |μ| ≤ fco(R_i). As in e2cnn: n_b² < 1e-15 counts as 0,
n_b < 1e-6 (or NaN) is replaced by 1, and elements whose normalised squared norm is
≤ 1e-2 (numerically zero on the points) are dropped. Because every change of basis is
orthogonal, these norms equal the ones e2cnn computes on the padded basis.
"""
from __future__ import annotations

import numpy as np

from .._checks import freeze
from .._memory import check_host
from ..pair_basis import PairBasis
from ..settings import BasisSettings
from .harmonics import evaluate_angular, pair_harmonics
from .irreps import Irrep
from .settings import polar

__all__ = ["sample_pair_basis", "sample_pair_bases"]


def sample_pair_basis(in_irrep: Irrep, out_irrep: Irrep, settings: BasisSettings,
                      points: np.ndarray) -> PairBasis:
    """Sample, normalise and filter the basis of one planar irreps pair on ``points`` (P, 2)."""
    do, di, P = out_irrep.dim, in_irrep.dim, len(points)
    N = in_irrep.group.rotation_order
    F, T = settings.maximum_frequency, settings.maximum_offset
    aliases = 1 if N <= 0 else 2 * F // N + 1  # alias offsets t (harmonics.alias_offsets)
    if T is not None:
        aliases = min(aliases, 2 * T + 1)
    # harmonics (at most 4 per alias) evaluated on every point: arguments, cos, sin, matrices
    check_host(4 * aliases * (4 * do * di * P * 8 + 200),
               lambda: f"sampling the basis of {in_irrep.name} → {out_irrep.name} (about "
                       f"{4 * aliases} angular harmonics up to frequency {F} on {P} points)",
               "lower frequencies_cutoff, set maximum_offset, or use a smaller kernel_size")
    h = pair_harmonics(in_irrep, out_irrep, F, T)
    mu = np.abs(h.frequency)
    n_sampled = sum(int((mu <= cut).sum()) for cut in settings.cutoff_per_ring)
    check_host(3 * n_sampled * do * di * P * 8,
               lambda: f"sampling the basis of {in_irrep.name} → {out_irrep.name} "
                       f"({n_sampled} ring × harmonic elements on {P} points)",
               "use fewer rings, a lower frequencies_cutoff or a smaller kernel_size")
    r, theta, origin = polar(points)
    ang = evaluate_angular(h, theta, origin)  # (A, o, i, P)
    blocks, rings, idx = [], [], []
    for i, (R, sig, cut) in enumerate(zip(settings.rings, settings.sigma,
                                          settings.cutoff_per_ring)):
        keep = np.flatnonzero(mu <= cut)
        if keep.size == 0:
            continue
        radial = np.exp(-((r - R) ** 2) / (2.0 * sig ** 2))
        blocks.append(ang[keep] * radial)
        rings.append(np.full(keep.size, i))
        idx.append(keep)
    if blocks:
        vals = np.concatenate(blocks)
        ring = np.concatenate(rings)
        sel = np.concatenate(idx)
    else:
        vals, ring, sel = np.zeros((0, do, di, P)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    norm2 = np.einsum("noip,noip->n", vals, vals) / do
    norm2[norm2 < 1e-15] = 0.0
    scale = np.sqrt(norm2)
    scale[(scale < 1e-6) | ~np.isfinite(scale)] = 1.0
    vals = vals / scale[:, None, None, None]
    kept = np.einsum("noip,noip->n", vals, vals) / do > 1e-2
    out = PairBasis(in_irrep, out_irrep, np.ascontiguousarray(vals[kept]), ring[kept],
                    h.frequency[sel][kept], h.gamma[sel][kept], h.s[sel][kept],
                    h.offset[sel][kept], scale[kept])
    freeze(out.values, out.ring, out.frequency, out.gamma, out.s, out.offset, out.scale)
    return out


def sample_pair_bases(pairs, settings: BasisSettings, points: np.ndarray) -> list:
    """:func:`sample_pair_basis` of several (in_irrep, out_irrep) pairs."""
    return [sample_pair_basis(a, b, settings, points) for a, b in pairs]
