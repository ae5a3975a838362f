r"""Representations as irreps plus an orthogonal change of basis.

.. math::  \rho(g) = Q \,\Big(\bigoplus_i \psi_i(g)\Big)\, Q^T, \qquad Q^T Q = I.

Constructors: irreps (``group.irrep(...).representation``), :func:`directsum`,
:meth:`Representation.restrict`, and the group's own ``regular_representation`` and
``quotient_representation(id)`` (built in :mod:`cupysteer.r2.representations` and
:mod:`cupysteer.r3.representations`; :func:`regular_representation` and
:func:`quotient_representation` here are their group-independent spellings).
"""
from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Sequence

import numpy as np

from ._checks import frozen, sequence
from ._memory import check_representation
from .group import GroupBase, IrrepBase

__all__ = ["Representation", "directsum", "regular_representation", "quotient_representation",
           "ORTHOGONALITY_TOLERANCE"]

ORTHOGONALITY_TOLERANCE = 1e-8


def block_diag(*arrs) -> np.ndarray:
    """The block-diagonal matrix of ``arrs`` (each made 2-D): ``scipy.linalg.block_diag``'s
    result (same values, shape and dtype) in NumPy, so that importing cupysteer does not
    import SciPy's linear algebra (~0.3 s)."""
    mats = [np.atleast_2d(np.asarray(a)) for a in arrs]
    if not mats:
        return np.empty((1, 0))
    out = np.zeros((sum(m.shape[0] for m in mats), sum(m.shape[1] for m in mats)),
                   np.result_type(*[m.dtype for m in mats]))
    r = c = 0
    for m in mats:
        out[r:r + m.shape[0], c:c + m.shape[1]] = m
        r, c = r + m.shape[0], c + m.shape[1]
    return out


def _real_matrix(Q) -> np.ndarray:
    """``change_of_basis`` as float64; complex input is an error, not a silent ``.real``."""
    a = np.asarray(Q)
    if a.dtype.kind == "c":
        raise ValueError(f"change_of_basis must be a real orthogonal matrix, got dtype "
                         f"{a.dtype}; pass change_of_basis.real if its imaginary part is 0")
    try:
        return np.asarray(a, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"change_of_basis must be a real orthogonal matrix, got "
                         f"{type(Q).__name__} of dtype {a.dtype}") from None


class Representation:
    """ρ(g) = Q (⊕ irreps)(g) Qᵀ on R^size. Immutable, hashable by content, picklable.

    Parameters
    ----------
    group : a group of :mod:`cupysteer.r2` or :mod:`cupysteer.r3`
    irreps : sequence of Irrep
        The irreps of the block-diagonal part, in order.
    change_of_basis : (size, size) array, optional
        The orthogonal matrix Q (identity if omitted).
    name : str, optional
        e2cnn-style name (``regular``, ``quotient[3]``, ``irrep_1`` …); fields are grouped by it.
    """

    __slots__ = ("group", "irreps", "change_of_basis", "name", "_hash", "__dict__")

    def __init__(self, group: GroupBase, irreps: Sequence[IrrepBase], change_of_basis=None,
                 name: str | None = None):
        if not isinstance(group, GroupBase):
            raise ValueError(f"group must be a cupysteer group (planar or of cupysteer.r3), "
                             f"got {group!r:.80}")
        irreps = sequence(irreps, "irreps", "Irrep objects")
        if not irreps:
            raise ValueError("irreps must list at least one irrep")
        for psi in irreps:
            if not isinstance(psi, IrrepBase):
                raise ValueError(f"irreps must contain Irrep objects, got {psi!r}")
            if psi.group != group:
                raise ValueError(f"irreps: {psi!r} belongs to {psi.group!r}, not to {group!r}")
        size = sum(psi.dim for psi in irreps)
        check_representation(size, lambda: f"a representation of {group!r} of size {size}",
                             "use fewer or smaller irreps (or fields)")
        Q = np.eye(size) if change_of_basis is None else _real_matrix(change_of_basis)
        if Q.shape != (size, size):
            raise ValueError(f"change_of_basis must have shape ({size}, {size}) (the total "
                             f"dimension of the irreps), got {Q.shape}")
        err = np.abs(Q.T @ Q - np.eye(size)).max() if size else 0.0
        if not np.isfinite(err) or err > ORTHOGONALITY_TOLERANCE:
            raise ValueError(f"change_of_basis must be orthogonal (QᵀQ = I); max |QᵀQ − I| = "
                             f"{err:.3g}. Orthonormalise it (e.g. with scipy.linalg.polar or a QR "
                             f"decomposition) before building the representation")
        if name is None:
            name = "[" + ",".join(p.name for p in irreps) + "]"
        set_ = object.__setattr__
        set_(self, "group", group)
        set_(self, "irreps", irreps)
        set_(self, "change_of_basis", frozen(Q))
        set_(self, "name", str(name))
        # "+ 0.0" maps -0.0 to 0.0, so that equal contents (array_equal) hash equal
        set_(self, "_hash", hash((group, irreps, self.name,
                                  (self.change_of_basis + 0.0).tobytes())))

    def __setattr__(self, key, value):
        raise AttributeError("Representation is immutable")

    def __reduce__(self):
        return (Representation, (self.group, self.irreps, np.array(self.change_of_basis),
                                 self.name))

    def __eq__(self, other):
        if not isinstance(other, Representation):
            return NotImplemented
        return (self._hash == other._hash and self.group == other.group
                and self.irreps == other.irreps and self.name == other.name
                and np.array_equal(self.change_of_basis, other.change_of_basis))

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"{self.group.name}|{self.name}:{self.size}"

    # ---- structure ---------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.change_of_basis.shape[0]

    @cached_property
    def irrep_offsets(self) -> np.ndarray:
        """Position of every irrep inside the block-diagonal (irreps) basis."""
        dims = [p.dim for p in self.irreps]
        return np.concatenate([[0], np.cumsum(dims)[:-1]]).astype(np.int64)

    @cached_property
    def change_of_basis_inv(self) -> np.ndarray:
        """Q⁻¹ = Qᵀ."""
        return frozen(self.change_of_basis.T)

    @property
    def is_identity_basis(self) -> bool:
        return bool(np.array_equal(self.change_of_basis, np.eye(self.size)))

    def multiplicities(self) -> Counter:
        """How often each irrep occurs."""
        return Counter(self.irreps)

    @property
    def is_trivial(self) -> bool:
        return all(p.is_trivial for p in self.irreps)

    def __add__(self, other: "Representation") -> "Representation":
        return directsum([self, other])

    # ---- evaluation ---------------------------------------------------------------------
    def __call__(self, g) -> np.ndarray:
        """The (size × size) matrix ρ(g) of one element (a batch: :meth:`evaluate`)."""
        self.group.check_single_element(g)
        return self.evaluate([g])[0]

    def evaluate(self, elements) -> np.ndarray:
        """ρ at a batch of elements, shape (n, size, size), vectorised over the batch."""
        f, r = self.group.split_batch(elements)
        return self.evaluate_split(f, r)

    def evaluate_split(self, f, r) -> np.ndarray:
        D = self.irreps_block_diagonal(f, r)
        Q = self.change_of_basis
        return Q @ D @ Q.T

    def irreps_block_diagonal(self, f, r) -> np.ndarray:
        """(⊕ψ_i)(g) for a batch of split elements, shape (n, size, size)."""
        n = len(f)
        D = np.zeros((n, self.size, self.size))
        cache = {}
        for psi, o in zip(self.irreps, self.irrep_offsets):
            if psi not in cache:
                cache[psi] = psi.evaluate_split(f, r)
            D[:, o:o + psi.dim, o:o + psi.dim] = cache[psi]
        return D

    def character(self, g) -> float:
        """tr ρ(g), computed from the irreps (the change of basis does not change it)."""
        f, r = self.group.split_batch([g])
        return float(sum(np.trace(p.evaluate_split(f, r)[0]) for p in self.irreps))

    def characters(self, elements) -> np.ndarray:
        f, r = self.group.split_batch(elements)
        return sum(np.trace(p.evaluate_split(f, r), axis1=1, axis2=2) for p in self.irreps)

    # ---- restriction -----------------------------------------------------------------------
    def restrict(self, subgroup_id) -> "Representation":
        """ρ restricted to the subgroup with e2cnn id ``subgroup_id``:
        irreps restricted one by one, Q_H = Q · ⊕ C_ψ."""
        sub = self.group.subgroup(subgroup_id)
        irreps, Cs = [], []
        for psi in self.irreps:
            hs, C = sub.restrict(psi)
            irreps += hs
            Cs.append(C)
        Q = self.change_of_basis @ block_diag(*Cs)
        return Representation(sub.group, irreps, Q, name=f"restrict[{self.name},{sub.id}]")


def directsum(reps: Sequence[Representation], change_of_basis=None,
              name: str | None = None) -> Representation:
    """ρ = P · (⊕ ρ_i) · Pᵀ with an optional extra orthogonal ``change_of_basis`` P.

    The result's Q is P · (⊕ Q_i) and its irreps the concatenated lists.
    """
    reps = [r.representation if isinstance(r, IrrepBase) else r
            for r in sequence(reps, "reps", "Representation objects")]
    if not reps:
        raise ValueError("reps must contain at least one representation")
    for r in reps:
        if not isinstance(r, Representation):
            raise ValueError(f"reps must contain Representation or Irrep objects, got "
                             f"{r!r:.80}")
    check_representation(sum(r.size for r in reps), "the direct sum of reps",
                         "use fewer or smaller representations")
    group = reps[0].group
    for r in reps:
        if r.group != group:
            raise ValueError(f"reps: all representations must belong to one group; got "
                             f"{group!r} and {r.group!r}")
    Q = block_diag(*[r.change_of_basis for r in reps])
    if change_of_basis is not None:
        P = _real_matrix(change_of_basis)
        if P.shape != Q.shape:
            raise ValueError(f"change_of_basis must have shape {Q.shape}, got {P.shape}")
        err = np.abs(P.T @ P - np.eye(len(P))).max()
        if not np.isfinite(err) or err > ORTHOGONALITY_TOLERANCE:
            raise ValueError(f"change_of_basis must be orthogonal (max |PᵀP − I| = {err:.3g})")
        Q = P @ Q
    if name is None:
        name = "directsum[" + ",".join(r.name for r in reps) + "]"
    irreps = [p for r in reps for p in r.irreps]
    return Representation(group, irreps, Q, name=name)


def regular_representation(group: GroupBase) -> Representation:
    """The regular representation of a finite group (``group.regular_representation``)."""
    return group.regular_representation


def quotient_representation(group: GroupBase, subgroup_id) -> Representation:
    """The permutation representation on the cosets G/H
    (``group.quotient_representation(subgroup_id)``)."""
    return group.quotient_representation(subgroup_id)
