"""e2cnn 0.2.3 vocabulary over cupysteer's native objects (a public contract).

>>> from cupysteer.compat import e2cnn as e
>>> gs = e.Rot2dOnR2(8)
>>> t = e.FieldType(gs, [gs.regular_repr] * 2)
>>> e.R2ConvBasis(t, t, kernel_size=5).dim      # same count as e2cnn's R2Conv
352

Representations are cupysteer :class:`~cupysteer.Representation` objects, callable on group
elements in e2cnn's encoding (C_N and flips: int; D_N: (flip, rotation); SO(2): angle;
O(2): (flip, angle)). :class:`R2ConvBasis` uses e2cnn R2Conv's weight order (which is also
cupysteer's native order), so a checkpoint's ``weights`` and ``bias`` expand to the same
filter and bias.
"""
from __future__ import annotations

import math

from ..basis import LayerBasis
from ..field_type import FieldType as _FieldType
from ..r2 import groups as _g
from ._gspace import GSpaceBase

__all__ = ["GSpace", "TrivialOnR2", "Rot2dOnR2", "FlipRot2dOnR2", "Flip2dOnR2", "FieldType",
           "R2ConvBasis"]


class GSpace(GSpaceBase):
    """A group acting on R² (e2cnn's ``GSpace``); ``fibergroup`` is the cupysteer group."""

    def restrict(self, subgroup_id):
        """(subgroup gspace, subgroup) like e2cnn's ``restrict`` (without the maps)."""
        sub = self.fibergroup.subgroup(subgroup_id)
        return GSpace(sub.group, f"{self.name}|{sub.id}"), sub


def TrivialOnR2() -> GSpace:
    return GSpace(_g.trivial_group(), "Trivial")


def Rot2dOnR2(N: int = -1, maximum_frequency: int | None = None) -> GSpace:
    """C_N (N ≥ 1) or SO(2) (N = −1, irreps up to ``maximum_frequency``, default 6)."""
    if N == -1:
        return GSpace(_g.SO2(6 if maximum_frequency is None else maximum_frequency),
                      "Rot2dOnR2[SO(2)]")
    return GSpace(_g.CyclicGroup(N), f"{N}-Rotations")


def FlipRot2dOnR2(N: int = -1, axis: float = math.pi / 2,
                  maximum_frequency: int | None = None) -> GSpace:
    """D_N (N ≥ 1) or O(2) (N = −1) with reflection axis ``axis``."""
    if N == -1:
        return GSpace(_g.O2(6 if maximum_frequency is None else maximum_frequency, axis),
                      "FlipRot2dOnR2[O(2)]")
    return GSpace(_g.DihedralGroup(N, axis), f"{N}-Rotations+Flips")


def Flip2dOnR2(axis: float = math.pi / 2) -> GSpace:
    return GSpace(_g.FlipGroup(axis), f"Flips[{axis}]")


class FieldType(_FieldType):
    """e2cnn's ``FieldType(gspace, representations)``: a cupysteer FieldType with ``gspace``."""

    def __init__(self, gspace: GSpace, representations):
        if not isinstance(gspace, GSpace):
            raise ValueError(f"gspace must be a compat GSpace (e.g. Rot2dOnR2(8)), got {gspace!r}")
        super().__init__(gspace.fibergroup, representations)
        object.__setattr__(self, "gspace", gspace)

    def __reduce__(self):
        return (FieldType, (self.gspace, self.representations))


class R2ConvBasis(LayerBasis):
    """The basis of e2cnn's ``R2Conv(in_type, out_type, kernel_size, …)`` with its weight order.

    ``.dim`` is e2cnn's parameter count; ``.expand(weights)``, ``.expand_bias(bias)``,
    ``.adjoint(filter_grad)`` and ``.he_std()`` behave as in :class:`~cupysteer.LayerBasis`.
    """

    def __init__(self, in_type, out_type, kernel_size: int, dilation: int = 1, rings=None,
                 sigma=None, frequencies_cutoff=None, maximum_offset=None):
        super().__init__(in_type, out_type, kernel_size, dilation, rings, sigma,
                         frequencies_cutoff, maximum_offset)
