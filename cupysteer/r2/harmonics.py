r"""Angular harmonic solutions of the steerability constraint for one pair of irreps.

For input irrep ψ_in (frequency n, flip frequency j_in) and output irrep ψ_out (m, j_out),
every solution is built from :math:`c = \cos(\mu\theta' + \gamma)`,
:math:`s = \sin(\mu\theta' + \gamma)` with :math:`\theta' = \theta - \beta` for groups with
reflections (axis β) and :math:`\theta' = \theta` otherwise:

==========  ==========================================================================
block       matrix
==========  ==========================================================================
2×2         :math:`\mathrm{rot}(\mu\theta' + \gamma)\,\mathrm{diag}(1, \sigma)`, σ = (−1)^s
1×2         [[c, s]]
2×1         [[c], [s]]
1×1         [[c]]
==========  ==========================================================================

Frequencies alias with the rotation order N: μ = k₀ + tN over the admissible offsets t
(:func:`alias_offsets`). Element order (e2cnn's, per group family):

* rotations C_N (and SO(2) with t = 0): γ ∈ (0, π/2) outermost, then s (2×2), then t;
  k₀ = m − n(−1)^s (2×2), n + m (1×2, 2×1), m − n with μ ≥ 0 (1×1, keeping μ > 0 or γ = 0);
* reflections D_N, O(2) (t = 0): s then t with γ = 0 (2×2); γ = j_out·π/2 (1×2),
  j_in·π/2 (2×1), ((j_in + j_out) mod 2)·π/2 (1×1, μ ≥ 0, keep μ > 0 or γ = 0);
* the flip group: 1×1, μ = t ≥ 0, γ = ((j_in + j_out) mod 2)·π/2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .irreps import Irrep, _is_flip_group

__all__ = ["PairHarmonics", "pair_harmonics", "harmonic_rows", "harmonic_axis", "group_family",
           "family_rows", "alias_offsets", "evaluate_angular"]

HALF_PI = math.pi / 2
_UNBOUNDED = 10000


def alias_offsets(k0: int, N: int, maximum_frequency: int | None, maximum_offset: int | None,
                  non_negative: bool = False) -> list[int]:
    """Integers t with L ≤ k₀ + tN ≤ F and |t| ≤ T (L = −F, or 0 if ``non_negative``).

    ``None`` removes a bound (e2cnn uses ±10000 for a missing F); one must be set.
    """
    if maximum_frequency is None and maximum_offset is None:
        raise ValueError("set maximum_frequency or maximum_offset to bound the aliases")
    F = _UNBOUNDED if maximum_frequency is None else int(maximum_frequency)
    L = 0 if non_negative else -F
    lo, hi = math.ceil((L - k0) / N), math.floor((F - k0) / N)
    if maximum_offset is not None:
        lo, hi = max(lo, -int(maximum_offset)), min(hi, int(maximum_offset))
    return list(range(lo, hi + 1))


@dataclass(frozen=True)
class PairHarmonics:
    """The angular elements of one irreps pair, as parallel integer/float arrays."""

    in_irrep: Irrep
    out_irrep: Irrep
    frequency: np.ndarray  # μ
    gamma: np.ndarray  # γ ∈ {0, π/2}
    s: np.ndarray  # 2×2 variant, −1 if not applicable
    offset: np.ndarray  # alias offset t
    axis: float  # β subtracted from θ (0 for rotation-only groups)

    def __len__(self):
        return len(self.frequency)

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_irrep.dim, self.in_irrep.dim


def pair_harmonics(in_irrep: Irrep, out_irrep: Irrep, maximum_frequency: int | None = None,
                   maximum_offset: int | None = None) -> PairHarmonics:
    """All angular solutions for (ψ_in → ψ_out) in e2cnn's order.

    ``maximum_frequency`` (F) and ``maximum_offset`` (T) bound the aliases of finite groups;
    SO(2) and O(2) use t = 0 only and ignore both.
    """
    rows = harmonic_rows(in_irrep, out_irrep, maximum_frequency, maximum_offset)
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return PairHarmonics(in_irrep, out_irrep, arr[:, 0].astype(np.int64), arr[:, 1],
                         arr[:, 2].astype(np.int64), arr[:, 3].astype(np.int64),
                         harmonic_axis(in_irrep.group))


def harmonic_axis(group) -> float:
    """β, the angle subtracted from θ: the reflection axis, or 0 without reflections."""
    return group.reflection_axis if group.has_reflections else 0.0


def harmonic_rows(in_irrep: Irrep, out_irrep: Irrep, maximum_frequency: int | None = None,
                  maximum_offset: int | None = None) -> list[tuple[int, float, int, int]]:
    """:func:`pair_harmonics` as a list of rows (μ, γ, s, t) (s = −1 if not applicable):
    what the layer sampler stacks for all irreps pairs at once."""
    G = in_irrep.group
    if out_irrep.group is not G and out_irrep.group != G:
        raise ValueError(f"out_irrep belongs to {out_irrep.group!r}, in_irrep to {G!r}")
    return family_rows(group_family(G), in_irrep, out_irrep, maximum_frequency,
                       maximum_offset)


def group_family(group) -> tuple[str, int]:
    """(family, N) of a planar group: family ``"flip"`` (the flip group), ``"reflections"``
    (D_N, O(2)) or ``"rotations"`` (C_N, SO(2)); N the rotation order (≤ 0: continuous)."""
    if _is_flip_group(group):
        return "flip", group.rotation_order
    return ("reflections" if group.has_reflections else "rotations"), group.rotation_order


def family_rows(family: tuple[str, int], in_irrep: Irrep, out_irrep: Irrep,
                maximum_frequency: int | None, maximum_offset: int | None,
                dims: tuple[int, int] | None = None) -> list:
    """:func:`harmonic_rows` of a pair whose group's :func:`group_family` is ``family``
    (``dims``: (d_out, d_in) if known)."""
    kind, N = family
    n, m = in_irrep.frequency, out_irrep.frequency
    ji, jo = in_irrep.flip_frequency, out_irrep.flip_frequency
    do, di = dims or (out_irrep.dim, in_irrep.dim)
    rows: list[tuple[int, float, int, int]] = []

    def add(k0, gamma, s=-1, nonneg=False):
        """Rows (μ, γ, s, t) for μ = k₀ + t·N over the admissible t; in the non-negative
        (1×1) case an element at μ = 0 exists only for γ = 0."""
        if N <= 0:
            ts = [0] if (not nonneg or k0 >= 0) else []
        else:
            ts = alias_offsets(k0, N, maximum_frequency, maximum_offset, nonneg)
        for t in ts:
            mu = k0 + t * max(N, 1)
            if not nonneg or mu > 0 or gamma == 0:
                rows.append((mu, gamma, s, t))

    if kind == "flip":
        add(0, ((ji + jo) % 2) * HALF_PI, nonneg=True)
    elif kind == "rotations":
        for g in (0.0, HALF_PI):
            if do == 2 and di == 2:
                for s in (0, 1):
                    add(m - n * (-1) ** s, g, s)
            elif do == 1 and di == 1:
                add(m - n, g, nonneg=True)
            else:
                add(n + m, g)
    elif do == 2 and di == 2:
        for s in (0, 1):
            add(m - n * (-1) ** s, 0.0, s)
    elif do == 1 and di == 1:
        add(m - n, ((ji + jo) % 2) * HALF_PI, nonneg=True)
    else:
        add(n + m, (jo if do == 1 else ji) * HALF_PI)
    return rows


def evaluate_angular(h: PairHarmonics, theta: np.ndarray, at_origin: np.ndarray) -> np.ndarray:
    """Angular matrices of every element at angles ``theta``: shape (n_elem, d_out, d_in, P).

    At the origin (``at_origin``) the angle is taken as 0 and elements with μ ≠ 0 vanish.
    """
    theta = np.where(at_origin, 0.0, np.asarray(theta, np.float64))
    if h.axis:
        theta = np.where(at_origin, theta, theta - h.axis)
    arg = h.frequency[:, None] * theta[None, :] + h.gamma[:, None]
    c, s = np.cos(arg), np.sin(arg)
    keep = ~(at_origin[None, :] & (h.frequency[:, None] != 0))
    c, s = c * keep, s * keep
    do, di = h.shape
    if do == 2 and di == 2:
        sigma = np.where(h.s == 1, -1.0, 1.0)[:, None]
        out = np.stack([np.stack([c, -sigma * s], 1), np.stack([s, sigma * c], 1)], 1)
    elif do == 1 and di == 2:
        out = np.stack([c, s], 1)[:, None]
    elif do == 2 and di == 1:
        out = np.stack([c, s], 1)[:, :, None]
    else:
        out = c[:, None, None]
    return out
