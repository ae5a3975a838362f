r"""Fourier non-linearities (escnn's ``FourierPointwise`` / ``FourierELU``) on plain tensors.

Each of ``channels`` fields holds the Fourier coefficients x̂ of a band-limited function on the
group (the spectral regular representation of ``irreps``); the module samples it on a grid of
group elements, applies a pointwise function and transforms back:
:math:`\hat y = A^+\,\sigma(A\,\hat x)` with the sampling matrices of
:class:`cupysteer.fourier.FourierSampling` (buffers ``A`` and ``Ainv``, escnn's names and
values). Exactly equivariant under the elements whose left multiplication permutes the grid
(all of them for a finite group sampled on all its elements; the rotations by 2π/N·k of an
N-element SO(2) grid; the cube's rotations for SO(3)'s ``'cube'`` grid), approximately under
the others (aliasing beyond the band limit; see the tests for measured bounds).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ...field_type import FieldType
from ...fourier import FourierSampling, spectral_regular_representation
from ...group import GroupBase
from ._common import FieldwiseModule

__all__ = ["FourierPointwise", "FourierELU"]

_FUNCTIONS = {"p_relu": (F.relu, F.relu_), "p_elu": (F.elu, F.elu_),
              "p_sigmoid": (torch.sigmoid, torch.sigmoid_), "p_tanh": (torch.tanh, torch.tanh_)}


def _group_of(gspace):
    """A cupysteer group from a group, a compat gspace (``.fibergroup``) or a FieldType."""
    if isinstance(gspace, GroupBase):
        return gspace, None
    if isinstance(gspace, FieldType):
        return gspace.group, getattr(gspace, "gspace", None)
    G = getattr(gspace, "fibergroup", None)
    if isinstance(G, GroupBase):
        return G, gspace
    raise TypeError(f"gspace must be a cupysteer group, a cupysteer.compat gspace or a "
                    f"FieldType, got {type(gspace).__name__}")


def irreps_of_field_type(in_type: FieldType) -> tuple[int, list]:
    """(channels, irreps ids) of a field type whose fields are all one spectral regular
    representation (escnn's ``FourierPointwise`` input); a clear error otherwise."""
    reps = set(in_type.representations)
    rep = in_type.representations[0]
    ids, seen = [], []
    for p in rep.irreps:
        if p not in seen:
            seen.append(p)
            ids.append(tuple(p.id))
    try:
        expected = spectral_regular_representation(in_type.group, ids)
    except ValueError:
        expected = None
    ok = (len(reps) == 1 and expected is not None and rep.irreps == expected.irreps
          and rep.is_identity_basis)
    if not ok:
        raise ValueError(f"in_type {in_type!r} is not band-limited Fourier coefficients: "
                         f"every field must be the same spectral regular representation "
                         f"(cupysteer.fourier.spectral_regular_representation(group, irreps): "
                         f"each irrep ψ repeated dim ψ / sum_of_squares_constituents times, "
                         f"identity change of basis)")
    return len(in_type), ids


class FourierPointwise(FieldwiseModule):
    """escnn's ``FourierPointwise(gspace, channels, irreps, *grid_args, function='p_relu',
    inplace=True, out_irreps=None, normalize=True, **grid_kwargs)``.

    ``gspace``: a cupysteer group or a :mod:`cupysteer.compat` gspace; ``function``: one of
    ``'p_relu'``, ``'p_elu'``, ``'p_sigmoid'``, ``'p_tanh'``; the grid arguments are escnn's
    ``group.grid(...)`` ones (:mod:`cupysteer.r2.grids`, :mod:`cupysteer.r3.grids`), or
    ``elements=`` a list of group elements. :meth:`from_type` builds it from a FieldType.
    ``in_type``/``out_type``: ``channels`` fields of the spectral regular representation.
    """

    def __init__(self, gspace, channels: int, irreps, *grid_args, function: str = "p_relu",
                 inplace: bool = True, out_irreps=None, normalize: bool = True, elements=None,
                 **grid_kwargs):
        group, gs = _group_of(gspace)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int (the number of fields), got "
                             f"{channels!r}")
        if function not in _FUNCTIONS:
            raise ValueError(f"function must be one of {', '.join(map(repr, _FUNCTIONS))}, got "
                             f"{function!r}")
        sampling = FourierSampling(group, irreps, *grid_args, out_irreps=out_irreps,
                                   normalize=normalize, elements=elements, **grid_kwargs)
        in_type = self._type(group, gs, sampling.representation, channels)
        super().__init__(in_type)
        self.out_type = self._type(group, gs, sampling.out_representation, channels)
        self.sampling = sampling
        self.channels = channels
        self.function, self.inplace = function, bool(inplace)
        dtype = torch.get_default_dtype()
        self.register_buffer("A", torch.tensor(sampling.A, dtype=dtype))
        self.register_buffer("Ainv", torch.tensor(sampling.A_inv, dtype=dtype))

    @staticmethod
    def _type(group, gspace, rep, channels):
        if gspace is None or not hasattr(gspace, "type"):
            return FieldType(group, [rep] * channels)
        return gspace.type(*([rep] * channels))

    @classmethod
    def from_type(cls, in_type: FieldType, *grid_args, **kwargs):
        """The module whose ``in_type`` is ``in_type`` (fields: one spectral regular
        representation; a clear error otherwise)."""
        if not isinstance(in_type, FieldType):
            raise TypeError(f"in_type must be a cupysteer FieldType, got "
                            f"{type(in_type).__name__}")
        channels, ids = irreps_of_field_type(in_type)
        gspace = getattr(in_type, "gspace", None) or in_type.group
        return cls(gspace, channels, ids, *grid_args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        N, spatial = x.shape[0], x.shape[2:]
        A, Ainv = self.A.to(x.dtype), self.Ainv.to(x.dtype)
        x_hat = x.reshape(N, self.channels, A.shape[1], -1)
        samples = torch.einsum("bcfp,gf->bcgp", x_hat, A)
        plain, in_place = _FUNCTIONS[self.function]
        y = in_place(samples) if self.inplace else plain(samples)
        y_hat = torch.einsum("bcgp,fg->bcfp", y, Ainv)
        return y_hat.reshape(N, self.out_type.size, *spatial)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, function={self.function!r}, "
                f"sampling={self.sampling!r}")


class FourierELU(FourierPointwise):
    """escnn's ``FourierELU(gspace, channels, irreps, *grid_args, inplace=True,
    out_irreps=None, normalize=True, **grid_kwargs)``: :class:`FourierPointwise` with ELU."""

    def __init__(self, gspace, channels: int, irreps, *grid_args, inplace: bool = True,
                 out_irreps=None, normalize: bool = True, elements=None, **grid_kwargs):
        super().__init__(gspace, channels, irreps, *grid_args, function="p_elu",
                         inplace=inplace, out_irreps=out_irreps, normalize=normalize,
                         elements=elements, **grid_kwargs)
