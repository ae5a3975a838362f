r"""Point-convolution bases in R³ (escnn ``R3PointConv``'s conventions).

Element (degree l, coefficient tensor t, shell i) of ψ_in → ψ_out at δ = r·u is

.. math::  E(\delta) = d_\text{out}\,\exp\!\Big(-\frac{(r - R_i)^2}{2\sigma_i^2}\Big)
           \sum_{M} c_t[:, :, M]\, Y^l_M(u),

c_t from :func:`cupysteer.r3.pair_basis.harmonic_coefficients`, kept when l ≤ F(R_i);
ordered (l, t, i) — degree ascending, shell fastest — as escnn. For SO(3)/O(3) these are
escnn's elements exactly (real Clebsch–Gordan tensors; escnn's point sampler multiplies by
d_out); for subgroups the same span per (l, shell). At δ = 0, Y^l = 0 for l > 0.
"""
from __future__ import annotations

import numpy as np

from ..pair_basis import PairBasis
from ..pointconv import point_settings
from ..settings import BasisSettings
from .pair_basis import harmonic_coefficients
from .so3 import spherical_harmonics_all

__all__ = ["point_settings", "point_pair_basis", "evaluate_point_basis"]


def point_pair_basis(in_irrep, out_irrep, settings: BasisSettings) -> PairBasis:
    """The element descriptors (values of shape (n, d_out, d_in, 0): nothing sampled)."""
    ring, degree, index = [], [], []
    for l in range(settings.maximum_frequency + 1):
        c = harmonic_coefficients(in_irrep, out_irrep, l)
        shells = [i for i, cut in enumerate(settings.cutoff_per_ring) if l <= cut]
        for t in range(len(c)):
            ring += shells
            degree += [l] * len(shells)
            index += [t] * len(shells)
    n = len(ring)
    zeros = np.zeros(n, np.int64)
    return PairBasis(in_irrep, out_irrep, np.zeros((n, out_irrep.dim, in_irrep.dim, 0)),
                     np.array(ring, np.int64), np.array(degree, np.int64), zeros.copy(),
                     np.array(index, np.int64), zeros, np.ones(n))


def evaluate_point_basis(pb: PairBasis, settings: BasisSettings, delta: np.ndarray):
    """(E, n, d_out, d_in): the elements of ``pb`` at the relative positions ``delta`` (E, 3)."""
    E, (do, di) = len(delta), pb.shape
    out = np.empty((E, len(pb), do, di))
    if not len(pb):
        return out
    Y = spherical_harmonics_all(int(pb.frequency.max()), delta)
    r = np.linalg.norm(delta, axis=1)
    R = np.asarray(settings.rings)[pb.ring]
    sig = np.asarray(settings.sigma)[pb.ring]
    radial = do * np.exp(-((r[:, None] - R[None, :]) ** 2) / (2.0 * sig ** 2))  # (E, n)
    for l in np.unique(pb.frequency).tolist():
        c = harmonic_coefficients(pb.in_irrep, pb.out_irrep, l)
        ang = np.einsum("toim,em->etoi", c, Y[l])  # (E, m, do, di)
        k = np.flatnonzero(pb.frequency == l)
        out[:, k] = ang[:, pb.s[k]] * radial[:, k, None, None]
    return out
