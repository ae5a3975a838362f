"""FieldType: an ordered list of representations (fields) of one group.

The fibre representation is the direct sum of the fields; field ``i`` occupies channels
``[offset_i, offset_i + size_i)``.
"""
from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np

from ._checks import sequence
from .group import GroupBase, IrrepBase
from .representation import Representation, block_diag, directsum

__all__ = ["FieldType"]


class FieldType:
    """Fields of ``group`` with representations ``representations`` (Irrep accepted too).

    >>> from cupysteer import CyclicGroup, FieldType
    >>> G = CyclicGroup(4)
    >>> FieldType(G, [G.regular_representation, G.irrep(1)]).size
    6
    """

    __slots__ = ("group", "representations", "_hash", "__dict__")

    def __init__(self, group: GroupBase, representations: Sequence[Representation | IrrepBase]):
        if not isinstance(group, GroupBase):
            raise ValueError(f"group must be a cupysteer group (planar or of cupysteer.r3), "
                             f"got {group!r}")
        reps = []
        for r in sequence(representations, "representations",
                          "Representation or Irrep objects (one per field)"):
            r = r.representation if isinstance(r, IrrepBase) else r
            if not isinstance(r, Representation):
                raise ValueError(f"representations must contain Representation or Irrep objects, "
                                 f"got {r!r:.80}")
            if r.group != group:
                raise ValueError(f"representations: {r!r} belongs to {r.group!r}, but the field "
                                 f"type's group is {group!r}; all fields must share one group")
            reps.append(r)
        if not reps:
            raise ValueError("representations must contain at least one field")
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "representations", tuple(reps))
        object.__setattr__(self, "_hash", hash((group, self.representations)))

    def __setattr__(self, key, value):
        raise AttributeError("FieldType is immutable")

    def __reduce__(self):
        return (FieldType, (self.group, self.representations))

    def __eq__(self, other):
        if not isinstance(other, FieldType):
            return NotImplemented
        return self.group == other.group and self.representations == other.representations

    def __hash__(self):
        return self._hash

    def __len__(self):
        return len(self.representations)

    def __iter__(self):
        return iter(self.representations)

    def __repr__(self):
        return f"FieldType({self.group.name}: [{', '.join(r.name for r in self.representations)}])"

    def __add__(self, other: "FieldType") -> "FieldType":
        if not isinstance(other, FieldType) or other.group != self.group:
            raise ValueError("can only concatenate field types of the same group")
        return FieldType(self.group, self.representations + other.representations)

    # ---- layout ----------------------------------------------------------------------------
    @cached_property
    def field_sizes(self) -> np.ndarray:
        return np.array([r.size for r in self.representations], dtype=np.int64)

    @cached_property
    def field_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.field_sizes)[:-1]]).astype(np.int64)

    @property
    def size(self) -> int:
        return int(self.field_sizes.sum())

    def channels(self, field: int) -> slice:
        """The channels of field number ``field``."""
        o = int(self.field_offsets[field])
        return slice(o, o + int(self.field_sizes[field]))

    @property
    def irreps(self) -> tuple:
        """All irreps of the fibre, field by field."""
        return tuple(p for r in self.representations for p in r.irreps)

    @cached_property
    def representation(self) -> Representation:
        """The fibre representation ⊕ fields."""
        return directsum(self.representations, name="fibre")

    @cached_property
    def change_of_basis(self) -> np.ndarray:
        """Block-diagonal ⊕ Q_field (size × size)."""
        Q = block_diag(*[r.change_of_basis for r in self.representations])
        Q.setflags(write=False)
        return Q

    def restrict(self, subgroup_id) -> "FieldType":
        """Every field restricted to a subgroup (for symmetry-breaking layers)."""
        reps = [r.restrict(subgroup_id) for r in self.representations]
        return FieldType(reps[0].group, reps)
