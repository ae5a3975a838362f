"""Marker base classes shared by the planar (:mod:`cupysteer.groups`) and the
three-dimensional (:mod:`cupysteer.r3`) groups and irreps.

A :class:`~cupysteer.representation.Representation` or a
:class:`~cupysteer.field_type.FieldType` accepts any group and irrep deriving from these.
The protocol a group provides for representations: ``split_batch(elements)`` turns a list of
elements into the group's batch encoding ``(f, r)`` and every irrep's
``evaluate_split(f, r)`` returns the stacked (n, d, d) matrices for that encoding.
"""
from __future__ import annotations

__all__ = ["GroupBase", "IrrepBase"]


class GroupBase:
    """Every symmetry group of cupysteer (planar or acting on R³)."""

    __slots__ = ()

    #: dimension of the base space the group acts on (2: the plane, 3: R³)
    space_dimension = 2

    def _representations(self):
        """The module with this kind of group's ``regular_representation(group)`` and
        ``quotient_representation(group, subgroup_id)``."""
        raise NotImplementedError

    @property
    def trivial_representation(self):
        return self.trivial_irrep.representation

    @property
    def regular_representation(self):
        return self._representations().regular_representation(self)

    def quotient_representation(self, subgroup_id):
        return self._representations().quotient_representation(self, subgroup_id)


class IrrepBase:
    """Every real irreducible representation of a cupysteer group."""

    __slots__ = ()
