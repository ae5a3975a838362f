"""escnn 1.0.11 vocabulary (3D gspaces, ``R3Conv``'s basis) over cupysteer's native objects (a
public contract).

>>> from cupysteer.compat import escnn as e
>>> gs = e.octaOnR3()
>>> gs.name
'Octahedral_on_R3'
>>> t = e.FieldType(gs, [gs.regular_repr])
>>> e.R3ConvBasis(t, t, kernel_size=3).dim      # same count as escnn's R3Conv
240

Every group element is its 3×3 orthogonal matrix acting on (x, y, z) (escnn: ``g.to('MAT')``
for SO(3), the ``basespace_action`` matrix otherwise); representations are cupysteer
:class:`~cupysteer.Representation` objects, callable on that matrix. :class:`R3ConvBasis` uses
escnn ``R3Conv``'s weight order and filter layout ``(C_out, C_in, k, k, k)`` with the spatial axes
(−z, −y, x), so a checkpoint's ``weights`` and ``bias`` expand to the same filter and bias (for
SO(3)/O(3) exactly; for subgroups escnn's own basis depends on its random disk cache, see
``docs/migrate_from_escnn.md``). Not supported: the ``adjoint`` argument of the planar
factories, ``dihedralOnR3(1)`` and ``fullCylindricalOnR3(1)``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import r3 as _r3
from ..basis import LayerBasis
from ..field_type import FieldType as _FieldType
from ._gspace import GSpaceBase

__all__ = ["GSpace3D", "rot3dOnR3", "flipRot3dOnR3", "octaOnR3", "fullOctaOnR3", "icoOnR3",
           "fullIcoOnR3", "rot2dOnR3", "dihedralOnR3", "conicalOnR3", "cylindricalOnR3",
           "fullCylindricalOnR3", "invOnR3", "mirOnR3", "trivialOnR3", "FieldType",
           "R3ConvBasis"]

_AXIS = math.pi / 2


class GSpace3D(GSpaceBase):
    """A group acting on R³ (escnn's ``GSpace3D``); ``fibergroup`` is the cupysteer group
    (:mod:`cupysteer.r3`), ``name`` escnn 1.0.11's (``'<group name>_on_R3'``)."""

    dimensionality = 3

    def __init__(self, fibergroup: _r3.Group3, name: str | None = None):
        if not isinstance(fibergroup, _r3.Group3):
            raise ValueError(f"fibergroup must be a group of cupysteer.r3, got {fibergroup!r}")
        super().__init__(fibergroup, name or f"{fibergroup.name}_on_R3")

    @property
    def standard_repr(self):
        """The fibre group's standard representation (escnn ``standard_representation()``)."""
        return self.fibergroup.standard_representation

    def type(self, *representations) -> "FieldType":
        """``FieldType(self, representations)`` (escnn's ``gspace.type(*reps)``)."""
        return FieldType(self, list(representations))


def _no_adjoint(adjoint, factory):
    if adjoint is not None:
        raise ValueError(f"{factory}: the adjoint argument is not supported; build the group "
                         f"about z and rotate the data instead")


def _n(n, factory):
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{factory}: n must be an int (number of rotations, or -1 for all "
                         f"rotations about z), got {n!r}")
    return n


def rot3dOnR3(maximum_frequency: int = 2) -> GSpace3D:
    """SO(3): all rotations (irreps ``(l,)``, l ≤ ``maximum_frequency`` in ``irreps()``)."""
    return GSpace3D(_r3.SO3(maximum_frequency))


def flipRot3dOnR3(maximum_frequency: int = 2) -> GSpace3D:
    """O(3): rotations and rotations composed with the inversion (irreps ``(j, l)``)."""
    return GSpace3D(_r3.O3(maximum_frequency))


def octaOnR3() -> GSpace3D:
    """O: the 24 rotations of the cube."""
    return GSpace3D(_r3.Octahedral())


def fullOctaOnR3() -> GSpace3D:
    """O_h = C2 × O (48 elements)."""
    return GSpace3D(_r3.FullOctahedral())


def icoOnR3() -> GSpace3D:
    """I: the 60 rotations of the icosahedron."""
    return GSpace3D(_r3.Icosahedral())


def fullIcoOnR3() -> GSpace3D:
    """I_h = C2 × I (120 elements)."""
    return GSpace3D(_r3.FullIcosahedral())


def rot2dOnR3(n: int = -1, maximum_frequency: int = 2, *, adjoint=None) -> GSpace3D:
    """C_n (n ≥ 1) or SO(2) (n = −1) of rotations about z."""
    _no_adjoint(adjoint, "rot2dOnR3")
    return GSpace3D(_r3.RotationsZ(_n(n, "rot2dOnR3"), maximum_frequency))


def dihedralOnR3(n: int = -1, axis: float = _AXIS, maximum_frequency: int = 2, *,
                 adjoint=None) -> GSpace3D:
    """D_n / O(2): rotations about z and π-rotations about the axes at ``axis`` + πk/n in the
    xy plane (default: Ry(π) is in the group)."""
    _no_adjoint(adjoint, "dihedralOnR3")
    return GSpace3D(_r3.DihedralZ(_n(n, "dihedralOnR3"), axis, maximum_frequency))


def conicalOnR3(n: int = -1, axis: float = _AXIS, maximum_frequency: int = 2, *,
                adjoint=None) -> GSpace3D:
    """D_n / O(2): rotations about z and mirrors through planes containing z (default: the
    mirror x ↦ −x is in the group); ``conicalOnR3(1, axis)`` is ``mirOnR3(axis)``, as in
    escnn."""
    _no_adjoint(adjoint, "conicalOnR3")
    if _n(n, "conicalOnR3") == 1:
        return mirOnR3(axis)
    return GSpace3D(_r3.Conical(n, axis, maximum_frequency))


def cylindricalOnR3(n: int = -1, maximum_frequency: int = 2, *, adjoint=None) -> GSpace3D:
    """C2 × C_n / C2 × SO(2): rotations about z with and without the inversion;
    ``cylindricalOnR3(1)`` is ``invOnR3()``, as in escnn."""
    _no_adjoint(adjoint, "cylindricalOnR3")
    if _n(n, "cylindricalOnR3") == 1:
        return invOnR3()
    return GSpace3D(_r3.Cylindrical(n, maximum_frequency))


def fullCylindricalOnR3(n: int = -1, axis: float = _AXIS, maximum_frequency: int = 2, *,
                        adjoint=None) -> GSpace3D:
    """C2 × D_n / C2 × O(2): ``dihedralOnR3``'s elements with and without the inversion; as in
    escnn the π-rotation axes lie at ``axis``/2 + πk/n (escnn passes ``axis`` where
    ``dihedralOnR3`` passes 2·axis)."""
    _no_adjoint(adjoint, "fullCylindricalOnR3")
    return GSpace3D(_r3.FullCylindrical(_n(n, "fullCylindricalOnR3"), axis, maximum_frequency))


def mirOnR3(axis: float = _AXIS, *, adjoint=None) -> GSpace3D:
    """C2 = {e, mirror through the plane spanned by z and the direction at angle −``axis``}
    (default: x ↦ −x)."""
    _no_adjoint(adjoint, "mirOnR3")
    return GSpace3D(_r3.Mirror(axis))


def invOnR3() -> GSpace3D:
    """C2 = {e, p ↦ −p}."""
    return GSpace3D(_r3.Inversion())


def trivialOnR3() -> GSpace3D:
    """The trivial group: a plain 3D convolution."""
    return GSpace3D(_r3.Trivial3())


class FieldType(_FieldType):
    """escnn's ``FieldType(gspace, representations)``: a cupysteer FieldType with ``gspace``."""

    def __init__(self, gspace: GSpace3D, representations):
        if not isinstance(gspace, GSpace3D):
            hint = (" (a 2D gspace: use cupysteer.compat.e2cnn.FieldType)"
                    if getattr(gspace, "fibergroup", None) is not None else "")
            raise ValueError(f"gspace must be a compat GSpace3D (e.g. octaOnR3()), got "
                             f"{gspace!r}{hint}")
        if not isinstance(representations, (list, tuple)):
            raise ValueError(f"representations must be a list of representations of "
                             f"{gspace.name}, got {type(representations).__name__}")
        super().__init__(gspace.fibergroup, representations)
        object.__setattr__(self, "gspace", gspace)

    def __reduce__(self):
        return (FieldType, (self.gspace, self.representations))

    def __add__(self, other) -> "FieldType":
        """Concatenation keeps the gspace (as escnn's ``FieldType.__add__``)."""
        if not isinstance(other, _FieldType) or other.group != self.group:
            raise ValueError("can only concatenate field types of the same gspace")
        return FieldType(self.gspace, list(self.representations + other.representations))


class R3ConvBasis(LayerBasis):
    """The basis of escnn's ``R3Conv(in_type, out_type, kernel_size, dilation=…, rings=…,
    sigma=…, frequencies_cutoff=…)`` with its weight order and ``(C_out, C_in, k, k, k)``
    filter (spatial axes (−z, −y, x)).

    ``cache``: as :class:`~cupysteer.LayerBasis` (None: the process-wide memory + disk cache;
    False: build everything afresh, like escnn's ``recompute=True``).
    ``.dim`` is escnn's parameter count; ``.expand(weights)`` ((dim,) or (b, dim), dtype kept),
    ``.expand_bias(bias)``, ``.adjoint(filter_grad)`` and ``.he_std()`` behave as in
    :class:`~cupysteer.LayerBasis` (``.basis`` is that LayerBasis: this object).
    """

    def __init__(self, in_type, out_type, kernel_size: int, dilation: int = 1, rings=None,
                 sigma=None, frequencies_cutoff=None, cache=None):
        for name, t in (("in_type", in_type), ("out_type", out_type)):
            if not isinstance(t, _FieldType):
                raise ValueError(f"{name} must be a FieldType (cupysteer.compat.escnn."
                                 f"FieldType), got {type(t).__name__}")
            if t.group.space.dimension != 3:
                raise ValueError(f"{name}: {t.group.name} acts on the plane; R3ConvBasis needs "
                                 f"a gspace on R³ (e.g. octaOnR3()); for 2D use "
                                 f"cupysteer.compat.e2cnn.R2ConvBasis")
        if (isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer))
                or kernel_size < 1):
            raise ValueError(f"kernel_size must be a positive int, got {kernel_size!r}")
        super().__init__(in_type, out_type, kernel_size, dilation, rings, sigma,
                         frequencies_cutoff, cache=cache)

    @property
    def basis(self) -> LayerBasis:
        return self
