r"""Sampled, normalised kernel basis of one irreps pair on R³: shells × harmonic tensors.

Element (l, t, i) — harmonic degree l, coefficient tensor t, shell i — at point x is

.. math::  E(x) = \exp\!\Big(-\frac{(|x| - R_i)^2}{2\sigma_i^2}\Big)
                  \sum_{M=-l}^{l} c_t[:, :, M]\, Y^l_M(x/|x|) \,/\, n,
           \qquad n^2 = \frac{1}{d_\text{out}} \sum_x \lVert\cdot\rVert_F^2,

kept when l ≤ F(R_i) (the band-limit), ordered (l, t, i): degree ascending, shell fastest.
The coefficient tensors c_t (d_out, d_in, 2l+1) span every solution of the constraint

.. math::  \sum_M c[:, :, M]\, H^l(g)[M, M'] = \psi_\text{out}(g)\, c[:, :, M']\,
           \psi_\text{in}(g)^T \quad \forall g,

H^l the action on degree-l harmonics (Wigner D times the O(3) parity (det g)^l):

* SO(3), O(3): one tensor per admissible l, the real Clebsch–Gordan tensor of
  (l_out, l_in, l) (O(3): only l ≡ j_out + j_in mod 2) — escnn's elements exactly;
* every other group: a DETERMINISTIC orthonormal basis of the solution space (the null space
  of the constraint stacked over ``group.constraint_elements()``, turned into its unique
  orthogonal projector, then Gram–Schmidt of the projector's columns in index order). It
  spans what escnn spans (Hom_G(ψ_l, ψ_out ⊗ ψ_in)); escnn's own elements there come from an
  unseeded optimisation, so only spans are comparable.

Normalisation and dropping follow escnn (n² < 1e-15 → 1; elements with normalised squared
norm ≤ 1e-2 are numerically zero on the points and dropped).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._checks import freeze, frozen
from .._memory import check_host
from ..pair_basis import PairBasis
from ..settings import BasisSettings
from .so3 import clebsch_gordan, harmonic_matrix, spherical_harmonics_all

__all__ = ["harmonic_coefficients", "sample_pair_basis", "sample_pair_bases"]

_NULL_TOL = 1e-7


def _canonical_basis(P: np.ndarray, rank: int) -> np.ndarray:
    """Orthonormal basis (rank, n) of the range of the orthogonal projector P: Gram–Schmidt
    of P's columns in index order, skipping dependent ones (unique given P; no random
    start)."""
    B = np.zeros((rank, P.shape[0]))
    m = 0
    for col in P.T:
        v = col - B[:m].T @ (B[:m] @ col)
        v -= B[:m].T @ (B[:m] @ v)  # re-orthogonalise once (classical GS twice is stable)
        nrm = np.linalg.norm(v)
        if nrm > 1e-6:
            B[m] = v / nrm
            m += 1
            if m == rank:
                return B
    raise RuntimeError(f"could not extract a rank-{rank} basis from the projector")


@lru_cache(maxsize=256)
def _constraint_irrep(irrep) -> np.ndarray:
    return frozen(irrep.evaluate(_constraint_elements(irrep.group)))


@lru_cache(maxsize=64)
def _constraint_elements(group) -> np.ndarray:
    return frozen(group.constraint_elements())


@lru_cache(maxsize=256)
def _constraint_harmonics(group, l: int) -> np.ndarray:
    return frozen(harmonic_matrix(l, _constraint_elements(group)))


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(a.shape[0] * b.shape[0], -1)


def _solve_constraints(in_irrep, out_irrep, l: int) -> np.ndarray:
    G = in_irrep.group
    psi_o, psi_i = _constraint_irrep(out_irrep), _constraint_irrep(in_irrep)
    H = _constraint_harmonics(G, l)
    do, di, m = out_irrep.dim, in_irrep.dim, 2 * l + 1
    n = do * di * m
    eye_ab, eye_m = np.eye(do * di), np.eye(m)
    A = np.concatenate([_kron(eye_ab, h.T) - _kron(_kron(po, pi), eye_m)
                        for po, pi, h in zip(psi_o, psi_i, H)])
    _, sv, vt = np.linalg.svd(A, full_matrices=True)
    sv = np.concatenate([sv, np.zeros(n - len(sv))])
    rank = int((sv < _NULL_TOL * max(1.0, sv[0])).sum())
    if rank == 0:
        return np.zeros((0, do, di, m))
    N = vt[n - rank:]
    P = N.T @ N
    return _canonical_basis(P, rank).reshape(rank, do, di, m)


@lru_cache(maxsize=4096)
def _coefficients(in_irrep, out_irrep, l: int) -> np.ndarray:
    G = in_irrep.group
    kind = getattr(G, "kind", None)
    if kind in ("SO3", "O3"):
        (*ji, li), (*jo, lo) = in_irrep.id, out_irrep.id
        ok = abs(li - lo) <= l <= li + lo
        if kind == "O3":
            ok = ok and (ji[0] + jo[0]) % 2 == l % 2
        c = (clebsch_gordan(lo, li, l)[None] if ok
             else np.zeros((0, out_irrep.dim, in_irrep.dim, 2 * l + 1)))
    else:
        c = _solve_constraints(in_irrep, out_irrep, l)
    c = np.ascontiguousarray(c, np.float64)
    c.setflags(write=False)
    return c


def harmonic_coefficients(in_irrep, out_irrep, l: int) -> np.ndarray:
    """The coefficient tensors (m, d_out, d_in, 2l+1) of degree ``l`` (see the module
    docstring); read-only, memoised per (in_irrep, out_irrep, l)."""
    if in_irrep.group != out_irrep.group:
        raise ValueError(f"in_irrep and out_irrep must belong to one group, got "
                         f"{in_irrep.group!r} and {out_irrep.group!r}")
    if int(l) < 0:
        raise ValueError(f"l must be a harmonic degree >= 0, got {l!r}")
    return _coefficients(in_irrep, out_irrep, int(l))


@lru_cache(maxsize=8)
def _sampled_harmonics_cached(settings: BasisSettings, shape, data: bytes):
    points = np.frombuffer(data).reshape(shape)
    Y = [np.ascontiguousarray(y) for y in spherical_harmonics_all(settings.maximum_frequency,
                                                                 points)]
    r = np.linalg.norm(points, axis=1)
    radial = np.array([np.exp(-((r - R) ** 2) / (2.0 * s ** 2))
                       for R, s in zip(settings.rings, settings.sigma)]).reshape(-1, len(r))
    for a in Y + [radial]:
        a.setflags(write=False)
    return Y, radial


def _sampled_harmonics(settings: BasisSettings, points: np.ndarray):
    """Y^l on the points for l ≤ L and the shells' Gaussian profiles (S, P); memoised for
    the last few point sets (a layer's pairs share them)."""
    return _sampled_harmonics_cached(settings, points.shape, points.tobytes())


def _layout(in_irrep, out_irrep, settings: BasisSettings, points: np.ndarray) -> tuple:
    """Everything but the sampled values: (parts, n, radial) with parts = [(l, angular
    (m, do, di, P), shells, scale (m, s), kept (m, s))], n kept elements and the shells'
    profiles (S, P). Norms come from Σ_ab ang² and the radial profiles squared, without
    forming the elements."""
    do, di, P = out_irrep.dim, in_irrep.dim, len(points)
    L = settings.maximum_frequency
    coeffs = [harmonic_coefficients(in_irrep, out_irrep, l) for l in range(L + 1)]
    n_total = sum(len(c) * sum(l <= cut for cut in settings.cutoff_per_ring)
                  for l, c in enumerate(coeffs))
    check_host(3 * n_total * do * di * P * 8,
               lambda: f"sampling the basis of {in_irrep.name} → {out_irrep.name} "
                       f"({n_total} shell × harmonic elements on {P} points)",
               "use fewer rings, a lower frequencies_cutoff or a smaller kernel_size")
    Y, radial = _sampled_harmonics(settings, np.ascontiguousarray(points, np.float64))
    parts = []
    for l, c in enumerate(coeffs):
        shells = [i for i, cut in enumerate(settings.cutoff_per_ring) if l <= cut]
        if len(c) == 0 or not shells:
            continue
        ang = (c.reshape(-1, 2 * l + 1) @ Y[l].T).reshape(len(c), do, di, P)
        flat = ang.reshape(len(c), do * di, P)
        norm2 = np.einsum("tkp,tkp->tp", flat, flat) @ (radial[shells] ** 2).T / do
        norm2[norm2 < 1e-15] = 0.0
        scale = np.sqrt(norm2)
        scale[(scale < 1e-6) | ~np.isfinite(scale)] = 1.0
        parts.append((l, ang, np.asarray(shells), scale, norm2 / scale ** 2 > 1e-2))
    return parts, sum(int(k.sum()) for *_, k in parts), radial


def _fill(in_irrep, out_irrep, layout, vals: np.ndarray) -> PairBasis:
    """Write the kept, normalised elements of ``layout`` into ``vals`` (n, do, di, P)."""
    parts, n, radial = layout
    ring, degree, index, scales = (np.empty(n, np.int64), np.empty(n, np.int64),
                                   np.empty(n, np.int64), np.empty(n))
    e = 0
    for l, ang, shells, scale, kept in parts:
        for t, i in zip(*np.nonzero(kept)):
            np.multiply(ang[t], radial[shells[i]] / scale[t, i], out=vals[e])
            ring[e], degree[e], index[e], scales[e] = shells[i], l, t, scale[t, i]
            e += 1
    zeros = np.zeros(n, np.int64)
    out = PairBasis(in_irrep, out_irrep, vals, ring, degree, zeros, index, zeros.copy(),
                    scales)
    freeze(out.values, out.ring, out.frequency, out.gamma, out.s, out.offset, out.scale)
    return out


def sample_pair_basis(in_irrep, out_irrep, settings: BasisSettings,
                       points: np.ndarray) -> PairBasis:
    """Sample, normalise and filter the basis of one irreps pair on ``points`` (P, 3).

    Returned as a :class:`~cupysteer.pair_basis.PairBasis` whose ``frequency`` is the harmonic
    degree l, ``s`` the coefficient-tensor index t, ``ring`` the shell; ``gamma`` and
    ``offset`` are 0 (planar notions)."""
    return sample_pair_bases([(in_irrep, out_irrep)], settings, points)[0]


def sample_pair_bases(pairs, settings: BasisSettings, points: np.ndarray) -> list:
    """:func:`sample_pair_basis` for several (in_irrep, out_irrep) pairs at once: their values
    are consecutive read-only views of ONE buffer, in the order given, so a layer's plan can
    use that buffer as its ``basis`` without a copy."""
    layouts = [_layout(a, b, settings, points) for a, b in pairs]
    sizes = [lay[1] * a.dim * b.dim * len(points) for (a, b), lay in zip(pairs, layouts)]
    arena = np.empty(sum(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    out = []
    for (a, b), lay, o, size in zip(pairs, layouts, offsets, sizes):
        vals = arena[o:o + size].reshape(lay[1], b.dim, a.dim, len(points))
        out.append(_fill(a, b, lay, vals))
    return out


#: the names of 0.1 (before both spaces shared their module and function names)
sample_pair_basis3, sample_pair_bases3 = sample_pair_basis, sample_pair_bases
