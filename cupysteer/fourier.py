r"""Sampling matrices of a band-limited Fourier transform on a group, for Fourier
non-linearities (escnn's ``FourierPointwise``), computed once in NumPy for any group.

A field of the *spectral regular representation* ρ = ⊕_ψ ψ^{⊕c_ψ} of the irreps ψ in
``irreps`` (identity change of basis; c_ψ = dim ψ / ``sum_of_squares_constituents``: ψ's
multiplicity in the regular representation, each copy in turn) holds the Fourier coefficients
x̂ of a band-limited function on the group G,

.. math:: f(g) = A_g\,\hat x,\qquad A_g = (\rho(g)\,k)^T,\qquad
          k = \bigoplus_\psi \bigoplus_{j<c_\psi} \sqrt{\dim\psi}\; e_j \;/\; \|\cdot\|

(escnn's kernel, normalised when ``normalize``). Sampling on a grid g_1..g_n of elements
gives the (n, dim ρ) matrix A; the way back is escnn's regularised pseudo-inverse
:math:`A^+ = (A^TA + 10^{-8} I)^{-1} A^T`. Because :math:`A_g\,\rho(h) = A_{h^{-1}g}`,
an element h whose left multiplication permutes the grid satisfies :math:`A\rho(h) = P_h A`
(P_h a permutation) and :math:`A^+ P_h = \rho(h) A^+`: a pointwise function σ between them,
:math:`\hat x \mapsto A^+ \sigma(A \hat x)`, is then **exactly** equivariant under h
(:meth:`FourierSampling.permutation` finds P_h or says there is none). For other elements it
is equivariant up to the aliasing of σ(f) beyond the band limit (see the tests for measured
bounds).

Grids (:func:`group_grid`, escnn's ``group.grid(*args, **kwargs)``) are asked of the group
(``group._grids``: :mod:`cupysteer.r2.grids`, :mod:`cupysteer.r3.grids`), or given as
``elements``. Everything is validated, immutable (read-only arrays) and picklable.
"""
from __future__ import annotations

import numpy as np

from ._checks import freeze
from .group import GroupBase, IrrepBase
from .representation import Representation

__all__ = ["FourierSampling", "spectral_regular_representation", "group_grid",
           "irrep_ids", "REGULARISATION"]

#: escnn's ε of the regularised pseudo-inverse (AᵀA + ε I)⁻¹ Aᵀ
REGULARISATION = 1e-8
#: singular values of the normalised A below this make the grid too coarse for the irreps
RANK_TOLERANCE = 1e-6


def _check_group(group) -> GroupBase:
    if not isinstance(group, GroupBase):
        raise ValueError(f"group must be a cupysteer group (planar or of cupysteer.r3), got "
                         f"{group!r:.80}")
    return group


def irrep_ids(group, irreps, name: str = "irreps") -> tuple:
    """``irreps`` (ids such as ``(1,)`` / ``(1, 2)`` or Irrep objects of ``group``) as a tuple
    of the group's irreps, checked: non-empty, no repeats."""
    if isinstance(irreps, (str, bytes)) or not hasattr(irreps, "__iter__"):
        raise ValueError(f"{name} must be a list of irrep ids of {group.name}, e.g. "
                         f"[(0,), (1,), (2,)], got {irreps!r}")
    out = []
    for i in irreps:
        if isinstance(i, IrrepBase):
            if i.group != group:
                raise ValueError(f"{name}: {i!r} is not an irrep of {group!r}")
            psi = i
        else:
            try:
                psi = group.irrep(*(tuple(i) if isinstance(i, (tuple, list)) else (i,)))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {i!r} is not an irrep id of {group.name}: {exc}") \
                    from None
        if psi in out:
            raise ValueError(f"{name} lists {psi.name} twice; list every irrep once")
        out.append(psi)
    if not out:
        raise ValueError(f"{name} must list at least one irrep of {group.name}")
    return tuple(out)


def _multiplicity(psi) -> int:
    return int(psi.dim // psi.sum_of_squares_constituents)


def spectral_regular_representation(group, irreps, name: str | None = None) -> Representation:
    """escnn's ``group.spectral_regular_representation(*irreps)``: ⊕_ψ ψ^{⊕c_ψ} with the
    identity change of basis (c_ψ copies of ψ in turn); named ``regular_[(0,)|(1,)]`` as
    escnn."""
    group = _check_group(group)
    psis = irrep_ids(group, irreps)
    if name is None:
        name = "regular_[" + "|".join(str(tuple(p.id)) for p in psis) + "]"
    return Representation(group, [p for p in psis for _ in range(_multiplicity(p))], name=name)


def group_grid(group, *args, **kwargs):
    """escnn's ``group.grid(*args, **kwargs)``: a list/array of elements of ``group`` (see
    :mod:`cupysteer.r2.grids` and :mod:`cupysteer.r3.grids` for the arguments)."""
    group = _check_group(group)
    grids = getattr(group, "_grids", None)
    if grids is None:
        raise ValueError(f"{group!r} has no grids; pass the grid's elements as elements=")
    return grids.grid(group, *args, **kwargs)


def _kernel_rows(psis, elements) -> np.ndarray:
    """(n, dim ρ): row g is (ρ(g) k)ᵀ before normalisation."""
    blocks = []
    for p in psis:
        c = _multiplicity(p)
        M = np.asarray(p.evaluate(elements), dtype=np.float64)[:, :, :c]  # (n, d, c)
        blocks.append(np.sqrt(p.dim) * M.transpose(0, 2, 1).reshape(len(M), -1))
    return np.concatenate(blocks, axis=1)


def _norm(psis) -> float:
    return float(np.sqrt(sum(_multiplicity(p) * p.dim for p in psis)))


class FourierSampling:
    """The sampling matrices of escnn's ``FourierPointwise(gspace, channels, irreps,
    *grid_args, out_irreps=None, normalize=True, **grid_kwargs)`` (module docstring).

    ``elements`` (a list/array of group elements) replaces the grid arguments. Attributes:
    ``representation`` / ``out_representation`` (spectral regular), ``elements`` (the grid),
    ``A`` (n, dim ρ) and ``A_inv`` (dim ρ_out, n), read-only.

    >>> import cupysteer as cs
    >>> s = FourierSampling(cs.SO2(), [(0,), (1,), (2,)], 8)
    >>> s.A.shape, s.A_inv.shape
    ((8, 5), (5, 8))
    """

    __slots__ = ("group", "irreps", "out_irreps", "grid_args", "grid_kwargs", "normalize",
                 "representation", "out_representation", "elements", "A", "A_inv")

    def __init__(self, group, irreps, *grid_args, out_irreps=None, normalize: bool = True,
                 elements=None, **grid_kwargs):
        group = _check_group(group)
        psis = irrep_ids(group, irreps)
        out_psis = psis if out_irreps is None else irrep_ids(group, out_irreps, "out_irreps")
        if elements is not None and (grid_args or grid_kwargs):
            raise ValueError("pass either elements= or grid arguments, not both")
        grid = group_grid(group, *grid_args, **grid_kwargs) if elements is None else elements
        try:
            group.split_batch(list(grid))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"elements must be elements of {group!r}: {exc}") from None
        if len(grid) == 0:
            raise ValueError("the grid must contain at least one element")
        set_ = object.__setattr__
        for k, v in (("group", group), ("irreps", psis), ("out_irreps", out_psis),
                     ("grid_args", tuple(grid_args)), ("grid_kwargs", dict(grid_kwargs)),
                     ("normalize", bool(normalize))):
            set_(self, k, v)
        set_(self, "elements", grid)
        set_(self, "representation", spectral_regular_representation(group, psis))
        set_(self, "out_representation", spectral_regular_representation(group, out_psis))
        A = _kernel_rows(psis, list(grid))
        if normalize:
            A = A / _norm(psis)
        # escnn: the output transform also covers the input irreps missing from out_irreps
        missing = [] if out_irreps is None else [
            p for p in self._missing(psis, out_psis)]
        ext = out_psis + tuple(missing)
        A_out = A if out_irreps is None else _kernel_rows(ext, list(grid))
        if normalize and out_irreps is not None:
            A_out = A_out / _norm(ext)
        self._check_rank(A_out, len(grid))
        dim = A_out.shape[1]
        A_inv = np.linalg.inv(A_out.T @ A_out + REGULARISATION * np.eye(dim)) @ A_out.T
        A_inv = A_inv[:self.out_representation.size]
        A, A_inv = np.ascontiguousarray(A), np.ascontiguousarray(A_inv)
        freeze(A, A_inv)
        set_(self, "A", A)
        set_(self, "A_inv", A_inv)

    @staticmethod
    def _missing(psis, out_psis):
        # escnn's order: list(set(irreps) - set(out_irreps)) on the id tuples
        ids = {tuple(p.id): p for p in psis}
        out_ids = {tuple(p.id) for p in out_psis}
        return [ids[i] for i in list(set(ids).difference(out_ids))]

    def _check_rank(self, A, n) -> None:
        s = np.linalg.svd(A, compute_uv=False)
        if A.shape[0] < A.shape[1] or s.min() < RANK_TOLERANCE * s.max():
            raise ValueError(f"the grid of {n} elements cannot resolve the band-limited "
                             f"functions of {A.shape[1]} coefficients (irreps "
                             f"{[p.name for p in self.irreps]}): the sampling matrix has rank "
                             f"< {A.shape[1]}; use a finer grid (more elements) or fewer irreps")

    # ---- structure ----------------------------------------------------------------------
    def permutation(self, h, atol: float = 1e-9):
        """The permutation P_h of the grid with A ρ(h) = P_h A (``perm[i]`` = the row of A
        equal to row i of A ρ(h), i.e. g_i ↦ h⁻¹g_i), or None when h's left multiplication
        does not map the grid onto itself (then the module is only approximately
        equivariant under h)."""
        R = self.representation.evaluate([h])[0]
        B = self.A @ R
        d = np.abs(B[:, None, :] - self.A[None, :, :]).max(-1)
        perm = d.argmin(1)
        if d[np.arange(len(perm)), perm].max() > atol or len(set(perm.tolist())) != len(perm):
            return None
        return perm

    @property
    def n_grid(self) -> int:
        return int(self.A.shape[0])

    # ---- immutability and pickling --------------------------------------------------------
    def __setattr__(self, key, value):
        raise AttributeError("FourierSampling is immutable")

    def __reduce__(self):
        # the grid's elements themselves (a 'rand' grid without a seed is not redrawn)
        return (_rebuild, (self.group, self.irreps, self.grid_args, self.grid_kwargs,
                           None if self.out_irreps == self.irreps else self.out_irreps,
                           self.normalize, self.elements))

    def __repr__(self):
        return (f"FourierSampling({self.group.name}, irreps={[p.name for p in self.irreps]}, "
                f"grid of {self.n_grid})")


def _rebuild(group, irreps, grid_args, grid_kwargs, out_irreps, normalize, elements):
    s = FourierSampling(group, irreps, out_irreps=out_irreps, normalize=normalize,
                        elements=elements)
    object.__setattr__(s, "grid_args", tuple(grid_args))
    object.__setattr__(s, "grid_kwargs", dict(grid_kwargs))
    return s
