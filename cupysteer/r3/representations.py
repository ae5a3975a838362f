r"""Regular, quotient and standard representations of the groups acting on R³.

All are :class:`cupysteer.Representation` objects, ρ(g) = Q (⊕ψ_i)(g) Qᵀ, built without any
randomness:

* **regular** (finite G): ρ(e)[j, i] = 1 iff g_j = e·g_i (escnn's element order); each irrep ψ
  appears d_ψ / sos_ψ times and Q[g, (ψ, c, i)] = √(d_ψ/|G|) ψ(g)[i, c] (closed form, escnn's).
* **quotient** (finite G, subgroup H given by escnn's subgroup id): the permutation action on the
  left cosets gH, ρ(g)[j, i] = 1 iff g·r_i ∈ r_j H, with r_i the first element (in element order)
  of each coset not yet covered, as escnn. The change of basis comes from :func:`decompose`.
* **standard**: the 3×3 action. SO(3) / O(3): [D¹] / [(1, 1)] with Q = P = [[0,0,1],[1,0,0],
  [0,1,0]] (so ρ(g) = M, escnn's 'standard'); the other continuous groups: closed forms
  (xy rotation block ⊕ z); finite groups: :func:`decompose`.

:func:`decompose` splits a representation of a finite group given on all elements, with the
transfer operators P_{i1} = (d_ψ/|G|) Σ_g ψ(g)[i, 0] ρ(g): for each irrep ψ (in the group's
order) with multiplicity m = ⟨χ_ρ, χ_ψ⟩ / sos_ψ, copies are found one at a time: take the first
column of P_{11}, after removing the copies found so far, whose residual norm is at least half the
largest one, normalise it to w and use the columns P_{11}w, …, P_{d1}w (ρ(g) P_{i1}w =
Σ_k ψ(g)[k, i] P_{k1}w). Deterministic: no random start, no SVD sign choices.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .._memory import REPRESENTATION_BYTES_PER_ENTRY, check_host, check_representation
from ..group import GroupBase
from ..representation import Representation
from . import _finite
from .so3 import P_STANDARD  # noqa: F401  (re-exported: its home in 0.1)
from .space import SPACE

__all__ = ["regular_representation", "quotient_representation", "standard_representation",
           "decompose"]

def _is_r3_group(group) -> bool:
    return isinstance(group, GroupBase) and group.space is SPACE


def _need_finite(group, what):
    if not _is_r3_group(group):
        raise ValueError(f"group must be a group of cupysteer.r3, got {group!r}")
    if not group.is_finite:
        raise ValueError(f"{group.name} is continuous and has no {what}; use irreps or a finite "
                         f"subgroup (e.g. Octahedral(), RotationsZ(N))")


def _irrep_tables(group):
    E = group.elements()
    return [(psi, psi.evaluate_split(E)) for psi in group.irreps()]


@lru_cache(maxsize=64)
def regular_representation(group) -> Representation:
    """Regular representation of a finite group (escnn's irreps order and closed-form Q)."""
    _need_finite(group, "regular representation")
    n = group.order
    check_representation(n, lambda: f"the regular representation of {group.name} (size {n})",
                         "use a smaller group, or irreps / quotient fields")
    irreps, cols = [], []
    for psi, T in _irrep_tables(group):
        for c in range(psi.dim // psi.sum_of_squares_constituents):
            irreps.append(psi)
            cols.append(math.sqrt(psi.dim / n) * T[:, :, c])
    return Representation(group, irreps, np.concatenate(cols, axis=1), name="regular")


def decompose(group, rho) -> tuple:
    """(irreps, Q) with rho[g] = Q (⊕ irreps)(g) Qᵀ for the orthogonal representation given on
    every element, ``rho`` of shape (|G|, n, n) in element order (see the module docstring)."""
    _need_finite(group, "decomposition on elements")
    rho = np.asarray(rho, dtype=np.float64)
    G, n = group.order, rho.shape[1]
    chi = np.trace(rho, axis1=1, axis2=2)
    irreps, blocks = [], []
    for psi, T in _irrep_tables(group):
        d, sos = psi.dim, psi.sum_of_squares_constituents
        m_real = float(chi @ np.trace(T, axis1=1, axis2=2)) / (G * sos)
        m = int(round(m_real))
        if abs(m - m_real) > 1e-6:
            raise ValueError(f"rho is not a representation of {group.name} (multiplicity of "
                             f"{psi.name} is {m_real:.4g})")
        if m == 0:
            continue
        P = (d / G) * np.einsum("gi,gab->iab", T[:, :, 0], rho)  # P[i] = P_{i1}
        V = np.zeros((n, 0))
        for _ in range(m):
            R = P[0] - V @ (V.T @ P[0])
            norms = np.linalg.norm(R, axis=0)
            j = int(np.argmax(norms >= 0.5 * norms.max()))
            w = P[0] @ (R[:, j] / norms[j])
            w /= np.linalg.norm(w)
            B = np.stack([P[i] @ w for i in range(d)], axis=1)
            irreps.append(psi)
            blocks.append(B)
            V = np.concatenate([V, B], axis=1)
    Q = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
    if Q.shape != (n, n) or np.abs(Q.T @ Q - np.eye(n)).max() > 1e-9:
        raise ValueError(f"rho could not be decomposed into the irreps of {group.name}: is it "
                         f"an orthogonal representation of shape (|G|, n, n) in element order?")
    return irreps, Q


def _check_decomposition(group, irreps, Q, rho):
    R = Representation(group, irreps, Q, name="check")
    err = np.abs(R.evaluate_split(group.elements(), None) - rho).max()
    if err > 1e-9:
        raise RuntimeError(f"internal error: decomposition of {group.name} off by {err:.3g}")


def _freeze(sid):
    return tuple(_freeze(x) for x in sid) if isinstance(sid, (list, tuple)) else sid


def quotient_representation(group, subgroup_id) -> Representation:
    """Permutation action of a finite group on the cosets G/H, H given by escnn's subgroup id
    (O / I: (False, N), (True, 1); planar-type groups: e2cnn's ids, e.g. M for C_M ⊂ C_N;
    C2 × H: (1 or 2, id_H)). Named ``quotient[<id>]`` as escnn."""
    _need_finite(group, "quotient representation")
    try:
        hash(_freeze(subgroup_id))
    except TypeError:
        raise ValueError(f"subgroup_id must be an escnn subgroup id (int or tuple), got "
                         f"{subgroup_id!r}") from None
    return _quotient(group, _freeze(subgroup_id))


@lru_cache(maxsize=64)
def _quotient(group, sid):
    H = group._subgroup_elements(sid)
    k = group.order // max(len(H), 1)
    # rho holds |G| k×k matrices: for a small subgroup of a large group, |G|³ numbers
    check_host(8 * group.order * k * k + REPRESENTATION_BYTES_PER_ENTRY * k * k,
               lambda: f"the quotient representation of {group.name} by {sid!r} (size {k}, "
                       f"built from its {group.order} permutation matrices)",
               "use a smaller group or a larger subgroup")
    E = group.elements()
    label = np.full(len(E), -1)
    reps = []
    for i in range(len(E)):
        if label[i] < 0:
            label[_finite.element_indices(E, E[i] @ H)] = len(reps)
            reps.append(i)
    if len(E) % len(H) or len(reps) != len(E) // len(H) or (label < 0).any():
        raise RuntimeError(f"internal error: bad cosets of {sid!r} in {group.name}")
    k = len(reps)
    rho = np.zeros((len(E), k, k))
    for i, r in enumerate(reps):
        rho[np.arange(len(E)), label[_finite.element_indices(E, E @ E[r])], i] = 1.0
    irreps, Q = decompose(group, rho)
    _check_decomposition(group, irreps, Q, rho)
    return Representation(group, irreps, Q, name=f"quotient[{sid}]")


@lru_cache(maxsize=64)
def standard_representation(group) -> Representation:
    """The 3×3 action ρ(g) = g as a :class:`~cupysteer.Representation` named 'standard'
    (finite groups: decomposed on the elements; continuous ones: their closed form)."""
    if not _is_r3_group(group):
        raise ValueError(f"group must be a group of cupysteer.r3, got {group!r}")
    if group.is_finite:
        irreps, Q = decompose(group, group.elements())
        _check_decomposition(group, irreps, Q, group.elements())
    else:
        irreps, Q = group._standard_basis()
    return Representation(group, irreps, Q, name="standard")
