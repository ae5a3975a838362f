r"""The sampled, normalised kernel basis of one irreps pair (the unit a layer basis stores).

``values`` (n, d_out, d_in, P) holds n basis elements sampled on P points; the other arrays
describe each element (its ring, frequency or harmonic degree, …). The samplers live with
their space: :mod:`cupysteer.r2.pair_basis` (rings × angular harmonics) and
:mod:`cupysteer.r3.pair_basis` (shells × spherical-harmonic tensors); both normalise and drop
elements as e2cnn / escnn do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .group import IrrepBase

__all__ = ["PairBasis", "sample_pair_basis", "sample_pair_bases"]


@dataclass(frozen=True, eq=False)
class PairBasis:
    """Sampled basis of (in_irrep → out_irrep): ``values`` has shape (n, d_out, d_in, P)."""

    in_irrep: IrrepBase
    out_irrep: IrrepBase
    values: np.ndarray
    ring: np.ndarray
    frequency: np.ndarray
    gamma: np.ndarray
    s: np.ndarray
    offset: np.ndarray
    scale: np.ndarray  # n_b
    # ring is the ring/shell of each element, frequency its angular frequency (planar) or
    # harmonic degree (R³); gamma, s and offset are the planar harmonic's phase, sign and alias

    def __len__(self):
        return self.values.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_irrep.dim, self.in_irrep.dim


def sample_pair_bases(pairs, settings, points) -> list:
    """The sampled bases of several (in_irrep, out_irrep) pairs of one group, by the group's
    space (:meth:`cupysteer.space.Space.sample_pair_bases`; in R³ consecutive views of one
    buffer, in the order given)."""
    pairs = list(pairs)
    return pairs[0][0].group.space.sample_pair_bases(pairs, settings, points) if pairs else []


def sample_pair_basis(in_irrep, out_irrep, settings, points) -> PairBasis:
    """The sampled, normalised basis of one irreps pair on ``points`` (n, d)."""
    return sample_pair_bases([(in_irrep, out_irrep)], settings, points)[0]
