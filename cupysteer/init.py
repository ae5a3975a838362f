r"""Weight initialisation.

Generalised He initialisation (e2cnn's ``generalized_he_init``): for weight w let o(w) be
the position of its output irrep among all irreps of the output fibre and a(w) the name of
its input irrep. With A(o) the number of distinct input-irrep names among the weights that
feed o, and c(a, o) the number of weights with input irrep a that feed o,

.. math::  \sigma_w = \frac{1}{\sqrt{A(o(w))\; c(a(w), o(w))}}, \qquad w \sim \mathcal N(0, \sigma_w^2),

so every output irrep receives unit total variance (there is no factor 2).
"""
from __future__ import annotations

import numpy as np

__all__ = ["he_std", "he_init"]


def he_std(basis) -> np.ndarray:
    """Standard deviation of every weight of ``basis`` (a LayerBasis), shape (dim,)."""
    att = basis.element_attributes
    first_irrep = np.cumsum([0] + [len(r.irreps) for r in basis.out_type.representations])
    o = first_irrep[att["out_field"]] + att["out_irrep_idx"]
    _, a = np.unique(att["in_irrep_name"].astype(str), return_inverse=True)
    pair = o * (a.max() + 1) + a
    _, pair_id, c = np.unique(pair, return_inverse=True, return_counts=True)
    # A(o): number of distinct a per o
    uo, o_id = np.unique(o, return_inverse=True)
    distinct = np.unique(pair)
    A = np.bincount(np.searchsorted(uo, distinct // (a.max() + 1)), minlength=len(uo))
    return 1.0 / np.sqrt(A[o_id] * c[pair_id])


def he_init(basis, rng: np.random.Generator | None = None, dtype=np.float32) -> np.ndarray:
    """Weights drawn with :func:`he_std` from the NumPy Generator ``rng``."""
    rng = np.random.default_rng() if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return (he_std(basis) * rng.standard_normal(basis.dim)).astype(dtype)
