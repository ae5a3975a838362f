r"""Weight initialisation.

Generalised He initialisation (e2cnn's ``generalized_he_init``): for weight w let o(w) be
the position of its output irrep among all irreps of the output fibre and a(w) the name of
its input irrep. With A(o) the number of distinct input-irrep names among the weights that
feed o, and c(a, o) the number of weights with input irrep a that feed o,

.. math::  \sigma_w = \frac{1}{\sqrt{A(o(w))\; c(a(w), o(w))}},
           \qquad w \sim \mathcal N(0, \sigma_w^2),

so every output irrep receives unit total variance (there is no factor 2).
"""
from __future__ import annotations

import numpy as np

__all__ = ["he_std", "he_init"]


def he_std(basis) -> np.ndarray:
    """Standard deviation of every weight of ``basis`` (a LayerBasis), shape (dim,).

    Computed per irreps block: all n_τ weights of a block share (o, a)."""
    plan, blk = basis.plan, basis.blocks
    first_irrep = np.cumsum([0] + [len(r.irreps) for r in basis.out_type.representations])
    o = first_irrep[blk.out_field] + blk.out_irrep
    names = [pin.name for pin, _ in basis.irreps_pairs]
    _, name_id = np.unique(names, return_inverse=True)
    a = name_id.reshape(-1)[plan.block_pair]
    n = plan.pair_count[plan.block_pair]
    key = o * (a.max() + 1) + a
    uk, kid = np.unique(key, return_inverse=True)
    c = np.bincount(kid, weights=n)  # c(a, o): weights per (o, a)
    uo, oid = np.unique(o, return_inverse=True)
    A = np.bincount(np.searchsorted(uo, uk // (a.max() + 1)), minlength=len(uo))
    std_block = 1.0 / np.sqrt(A[oid] * c[kid])
    std = np.empty(basis.dim)
    std[plan.weight_index] = np.repeat(std_block, n)
    return std


def he_init(basis, rng: np.random.Generator | None = None, dtype=np.float32) -> np.ndarray:
    """Weights drawn with :func:`he_std` from the NumPy Generator ``rng``."""
    rng = np.random.default_rng() if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return (he_std(basis) * rng.standard_normal(basis.dim)).astype(dtype)
