"""The protocol every cupysteer group and irrep provides, whatever space it acts on.

A :class:`~cupysteer.representation.Representation` or a :class:`~cupysteer.field_type.FieldType`
accepts any group and irrep deriving from these; the generic core (representations, field types,
layer bases, plans, caches, equivariance checks) only talks to groups through this protocol:

* ``space``: the :class:`~cupysteer.space.Space` the group acts on (grid, settings, pair bases);
* ``split_batch(elements)`` turns a list of elements into the group's batch encoding ``(f, r)``
  and every irrep's ``evaluate_split(f, r)`` returns the stacked (n, d, d) matrices for it;
* ``action_matrices(elements)``: the (n, d, d) matrices by which the elements act on the space;
* ``trivial_irrep``, ``irreps()``, ``regular_representation``, ``quotient_representation(id)``;
* ``subgroup(id)`` and ``restrict_irrep(irrep, subgroup)`` where restriction is implemented;
* ``cache_id``: a string that names the group exactly (part of the cache's content keys).
"""
from __future__ import annotations

__all__ = ["GroupBase", "IrrepBase"]


class GroupBase:
    """Every symmetry group of cupysteer (planar: :mod:`cupysteer.r2`; on R³:
    :mod:`cupysteer.r3`)."""

    __slots__ = ()

    #: the :class:`~cupysteer.space.Space` this group acts on (set by each space's base class)
    space = None
    #: the module that builds this kind of group's regular and quotient representations
    #: (``cupysteer.r2.representations`` / ``cupysteer.r3.representations``)
    _representations = None

    @property
    def space_dimension(self) -> int:
        """d of the space R^d the group acts on (``space.dimension``; kept from 0.1)."""
        return self.space.dimension

    @property
    def trivial_representation(self):
        return self.trivial_irrep.representation

    @property
    def regular_representation(self):
        """The regular representation of a finite group."""
        return self._representations.regular_representation(self)

    def quotient_representation(self, subgroup_id):
        """The permutation representation on the cosets of the subgroup ``subgroup_id``."""
        return self._representations.quotient_representation(self, subgroup_id)

    def subgroup(self, subgroup_id):
        raise NotImplementedError(
            f"subgroups (and so restrict) are not available for {self!r}: restriction is "
            f"implemented for the planar groups of cupysteer.r2; for a group on R³ build the "
            f"field type of the subgroup directly")

    def check_single_element(self, g) -> None:
        """Raise a clear error when ``g`` is a batch where one element was expected."""


class IrrepBase:
    """Every real irreducible representation of a cupysteer group."""

    __slots__ = ()
