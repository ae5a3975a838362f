"""What e2cnn's and escnn's gspaces share: a named wrapper of a cupysteer group."""
from __future__ import annotations

__all__ = ["GSpaceBase"]


class GSpaceBase:
    """``fibergroup`` (the cupysteer group) and ``name``; equal iff the groups are equal."""

    def __init__(self, fibergroup, name: str):
        self.fibergroup = fibergroup
        self.name = name

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, GSpaceBase) and other.fibergroup == self.fibergroup

    def __hash__(self):
        return hash(self.fibergroup)

    @property
    def trivial_repr(self):
        return self.fibergroup.trivial_representation

    @property
    def regular_repr(self):
        return self.fibergroup.regular_representation

    def irrep(self, *id):
        """The irrep with the library's id as a representation, e.g. ``irrep(1)``; escnn ids
        such as ``irrep(1, 1)`` (O(3) vector), ``irrep(-1)`` (octahedral) or
        ``irrep((1,), (2,), 0)`` (O_h, I_h, cylinders)."""
        return self.fibergroup.irrep(*id).representation

    def quotient_repr(self, subgroup_id):
        """Quotient representation by the library's subgroup id (e.g. escnn's ``(False, 4)``:
        the 6 cube faces of the octahedral group)."""
        return self.fibergroup.quotient_representation(subgroup_id)
