r"""Restriction of a field type to a subgroup, and the disentangling of its fields (NumPy,
generic core: what :mod:`cupysteer.torch.nn`'s ``RestrictionModule`` and ``DisentangleModule``
need).

**Restriction** (:class:`FieldRestriction`). For a subgroup H ⊂ G (e2cnn's subgroup ids,
:meth:`~cupysteer.r2.groups.PlanarGroup.subgroup`) every field's representation restricts to
:math:`\rho|_H(h) = \rho(\iota(h))` (ι the embedding H → G), written as H-irreps with the
change of basis :math:`Q_H = Q \cdot \bigoplus_i C_{\psi_i}` (:meth:`Representation.restrict`).
The feature map itself is unchanged: only its field type is. Restriction is available for
the planar groups; groups on R³ have no subgroup machinery yet and raise NotImplementedError.

**Disentangling** (:func:`disentangle`, :class:`FieldDisentangling`), e2cnn's
``e2cnn.group.disentangle``: a representation ρ = Q (⊕ψ_i) Qᵀ whose Q is block-diagonal up to
a permutation of its rows splits into smaller representations. The blocks are the connected
components of the bipartite graph {irrep i — row r : |Q[r, i's columns]| > 1e-8} (numerical
zeros as e2cnn's ``np.isclose``), ordered by their first irrep; within a block the rows and
the irreps keep their order. With P the permutation matrix that lists every block's rows in
turn (:math:`y = P x`), :math:`P\rho(g)P^T = \bigoplus_b \rho_b(g)`,
:math:`\rho_b = Q_b (\oplus_{i \in b}\psi_i) Q_b^T`, :math:`Q_b = Q[\text{rows}_b,
\text{cols}_b]` (orthogonal, because Q is). A restricted regular representation, for
example, often stays one block; a restricted 2-dim irrep whose C is diagonal splits in two.
``to_irreps=True`` goes all the way: :math:`y_f = Q_f^T x_f`, each irrep its own field (an
orthogonal, generally dense change of basis instead of a permutation).

Everything is validated, immutable (read-only arrays) and picklable (rebuilt from its
arguments).
"""
from __future__ import annotations

import numpy as np

from ._checks import freeze
from .field_type import FieldType
from .representation import Representation, block_diag

__all__ = ["disentangle", "FieldDisentangling", "FieldRestriction", "ZERO_TOLERANCE"]

#: entries of a change of basis at most this large count as zeros (e2cnn: ``np.isclose``)
ZERO_TOLERANCE = 1e-8


def _check_field_type(field_type, name: str = "field_type") -> FieldType:
    if not isinstance(field_type, FieldType):
        raise TypeError(f"{name} must be a cupysteer FieldType (native or of "
                        f"cupysteer.compat), got {type(field_type).__name__}")
    return field_type


def _components(mask: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """(irreps, rows) of every connected component of the bipartite graph ``mask`` (irreps ×
    rows), ordered by their first irrep (scipy's ``connected_components`` labelling)."""
    n_irreps, n_rows = mask.shape
    label = -np.ones(n_irreps + n_rows, dtype=np.int64)
    blocks = []
    for start in range(n_irreps):
        if label[start] >= 0:
            continue
        label[start], stack = len(blocks), [start]
        while stack:
            v = stack.pop()
            nbrs = (n_irreps + np.flatnonzero(mask[v]) if v < n_irreps
                    else np.flatnonzero(mask[:, v - n_irreps]))
            for u in nbrs[label[nbrs] < 0]:
                label[u] = len(blocks)
                stack.append(int(u))
        members = np.flatnonzero(label == len(blocks))
        blocks.append(([int(i) for i in members if i < n_irreps],
                       [int(i) - n_irreps for i in members if i >= n_irreps]))
    if (label[n_irreps:] < 0).any():
        raise ValueError("the change of basis has a zero row: it is not orthogonal")
    return blocks


def disentangle(rep: Representation) -> tuple[np.ndarray, tuple]:
    """``(order, reps)``: e2cnn's ``disentangle(rep)`` as a channel order — y = x[order]
    transforms by ⊕ ``reps`` (see the module docstring). A representation that does not
    split comes back as itself with the identity order."""
    if not isinstance(rep, Representation):
        raise TypeError(f"rep must be a cupysteer Representation, got {type(rep).__name__}")
    Q = np.asarray(rep.change_of_basis)
    offsets = np.asarray(rep.irrep_offsets)
    nonzero = np.abs(Q) > ZERO_TOLERANCE
    mask = np.stack([nonzero[:, o:o + p.dim].any(1) for p, o in zip(rep.irreps, offsets)])
    blocks = _components(mask)
    if len(blocks) == 1:
        order = np.arange(rep.size)
        freeze(order)
        return order, (rep,)
    reps, order = [], []
    for b, (irreps, rows) in enumerate(blocks):
        cols = np.concatenate([np.arange(offsets[i], offsets[i] + rep.irreps[i].dim)
                               for i in irreps])
        if len(cols) != len(rows):
            raise ValueError(f"{rep!r}: block {b} has {len(rows)} rows for {len(cols)} irrep "
                             f"coordinates; its change of basis is not orthogonal")
        reps.append(Representation(rep.group, [rep.irreps[i] for i in irreps],
                                   Q[np.ix_(rows, cols)], name=f"{rep.name}_{b}"))
        order += rows
    order = np.asarray(order, dtype=np.int64)
    freeze(order)
    return order, tuple(reps)


class FieldDisentangling:
    """The disentangling of every field of ``field_type`` (module docstring): ``matrix`` M
    (orthogonal, block-diagonal over the input fields) maps a feature vector x of
    ``field_type`` to y = M x of ``out_type``; ``permutation`` (y = x[permutation]) when M is
    a permutation (``to_irreps=False``, e2cnn's), else None.

    >>> import cupysteer as cs
    >>> G = cs.DihedralGroup(4)
    >>> d = FieldDisentangling(cs.FieldType(G, [G.irrep(1, 1).representation]).restrict((0, 1)))
    >>> [r.size for r in d.out_type.representations], d.permutation.tolist()
    ([1, 1], [0, 1])
    """

    __slots__ = ("field_type", "to_irreps", "out_type", "matrix", "permutation", "field_map")

    def __init__(self, field_type: FieldType, to_irreps: bool = False):
        _check_field_type(field_type)
        if not isinstance(to_irreps, bool):
            raise TypeError(f"to_irreps must be a bool, got {to_irreps!r}")
        set_ = object.__setattr__
        set_(self, "field_type", field_type)
        set_(self, "to_irreps", to_irreps)
        cache, blocks, orders, reps, field_map = {}, [], [], [], []
        offset = 0
        for f, rep in enumerate(field_type.representations):
            if rep not in cache:
                cache[rep] = self._split(rep)
            M, order, parts = cache[rep]
            blocks.append(M)
            if order is not None:
                orders.append(order + offset)
            reps += parts
            field_map += [f] * len(parts)
            offset += rep.size
        M = block_diag(*blocks)
        freeze(M)
        set_(self, "matrix", M)
        perm = None if to_irreps else np.concatenate(orders).astype(np.int64)
        if perm is not None:
            freeze(perm)
        set_(self, "permutation", perm)
        fm = np.asarray(field_map, dtype=np.int64)
        freeze(fm)
        set_(self, "field_map", fm)
        set_(self, "out_type", FieldType(field_type.group, reps))

    def _split(self, rep: Representation):
        """(M, order or None, output representations) of one field."""
        if self.to_irreps:
            return np.asarray(rep.change_of_basis).T, None, [p.representation
                                                             for p in rep.irreps]
        order, parts = disentangle(rep)
        return np.eye(rep.size)[order], np.asarray(order), list(parts)

    def __setattr__(self, key, value):
        raise AttributeError("FieldDisentangling is immutable")

    def __reduce__(self):
        return (FieldDisentangling, (self.field_type, self.to_irreps))

    def __eq__(self, other):
        if not isinstance(other, FieldDisentangling):
            return NotImplemented
        return (self.field_type, self.to_irreps) == (other.field_type, other.to_irreps)

    def __hash__(self):
        return hash(("FieldDisentangling", self.field_type, self.to_irreps))

    def __repr__(self):
        return f"FieldDisentangling({self.field_type!r}, to_irreps={self.to_irreps})"


class FieldRestriction:
    """``field_type`` restricted to the subgroup ``subgroup_id`` (e2cnn's ids): ``subgroup``
    (with its embedding), ``out_type`` (the same channels, each field's representation
    restricted) and :meth:`parent_elements`.

    >>> import cupysteer as cs
    >>> G = cs.CyclicGroup(8)
    >>> r = FieldRestriction(cs.FieldType(G, [G.regular_representation]), 4)
    >>> r.out_type.group == cs.CyclicGroup(4), r.parent_elements([1, 3])
    (True, [2, 6])
    """

    __slots__ = ("field_type", "subgroup_id", "subgroup", "out_type")

    def __init__(self, field_type: FieldType, subgroup_id):
        _check_field_type(field_type)
        G = field_type.group
        try:
            sub = G.subgroup(subgroup_id)
        except NotImplementedError as exc:
            raise NotImplementedError(f"cannot restrict {field_type!r}: {exc}") from None
        except TypeError as exc:  # the group's ValueError names the id and the expected form
            raise ValueError(f"subgroup_id {subgroup_id!r} does not name a subgroup of "
                             f"{G!r}: {exc}") from None
        set_ = object.__setattr__
        set_(self, "field_type", field_type)
        set_(self, "subgroup_id", subgroup_id)
        set_(self, "subgroup", sub)
        set_(self, "out_type", field_type.restrict(subgroup_id))

    def parent_elements(self, elements) -> list:
        """The elements of the parent group equal to the subgroup's ``elements``."""
        return [self.subgroup.embed(h) for h in elements]

    def __setattr__(self, key, value):
        raise AttributeError("FieldRestriction is immutable")

    def __reduce__(self):
        return (FieldRestriction, (self.field_type, self.subgroup_id))

    def __eq__(self, other):
        if not isinstance(other, FieldRestriction):
            return NotImplemented
        return self.field_type == other.field_type and self.subgroup == other.subgroup

    def __hash__(self):
        return hash(("FieldRestriction", self.field_type, self.subgroup))

    def __repr__(self):
        return f"FieldRestriction({self.field_type!r}, {self.subgroup_id!r})"
