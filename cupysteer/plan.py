r"""The expansion plan: the contract between the Python basis builder and every backend.

An :class:`ExpansionPlan` holds flat NumPy arrays only. With irreps coordinates
:math:`\tilde K` (each field's channels rotated by its change of basis Q), expansion is

.. math::
    \tilde K[\text{row}_\beta + a,\ \text{col}_\beta + c,\ p]
        &= \sum_{e < n_\tau} w[\text{weight\_index}[\text{block\_weight}_\beta + e]]\;
           B_\tau[e, a, c, p] \qquad (\tau = \text{block\_pair}_\beta) \\
    K[\text{field } P, \text{field } Q, p] &= Q_P \, \tilde K[P, Q, p] \, Q_Q^T

Layout (all integer arrays int64, all float arrays float64, C order):

=====================  ================  ===================================================
array                  shape             meaning
=====================  ================  ===================================================
``basis``              (Σ n_τ d_o d_i P,) irreps-pair bases, pair τ at ``pair_offset[τ]``
                                          laid out (n_τ, d_out, d_in, P)
``pair_shape``         (T, 2)            (d_out, d_in) of pair τ, each ≥ 1 (1 or 2 for
                                          planar groups, up to 2l + 1 in 3D)
``pair_count``         (T,)              n_τ, elements of pair τ
``pair_offset``        (T,)              start of pair τ in ``basis``
``block_pair``         (B,)              pair τ of irreps block β
``block_row``          (B,)              first output channel of β (irreps coordinates)
``block_col``          (B,)              first input channel of β
``block_out_field``    (B,)              output field of β
``block_in_field``     (B,)              input field of β
``block_weight``       (B,)              start of β's n_τ entries in ``weight_index``
``weight_index``       (dim,)            weight of each (block, element): a permutation
``fieldpair_ptr``      (F_out·F_in + 1,) blocks of field pair (P, Q) are
                                          ``fieldpair_ptr[P·F_in + Q] : …[P·F_in + Q + 1]``
``out_field_offset``   (F_out,)          first channel of each output field (and size,
``out_field_size``                       representation id); same for input fields
``out_field_rep``
``rep_size``           (R,)              size s of representation r
``rep_offset``         (R,)              start of its s×s Q (C order) in ``change_of_basis``
``rep_identity``       (R,) bool         Q == I (the backend may skip the product)
``change_of_basis``    (Σ s²,)
``bias_field``         (T_b,)            output field of each trivial output irrep
``bias_row``           (T_b,)            its channel in irreps coordinates
=====================  ================  ===================================================

Blocks are ordered by field pair (P, Q), so each field pair's blocks are contiguous.
Every weight is used by exactly one (block, element): ``weight_index`` is a permutation of
``range(dim)``. Output filter shape: (out_size, in_size, P), reshaped to ``filter_shape``:
any tuple of positive integers whose product is P — (k, k) on the plane, (k, k, k) in 3D,
(P,) for an arbitrary point set.

Nothing in the contract bounds the irreps dimensions, the field sizes or P: the NumPy
backend takes any plan, and the CUDA kernels tile the change of basis and the points
(:func:`cupysteer.backends.launch.launch_config` raises a ValueError, before any launch, for the
rare layouts whose smallest tile still exceeds the shared memory of one CUDA block).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = ["ExpansionPlan"]

_INT_ARRAYS = ("pair_shape", "pair_count", "pair_offset", "block_pair", "block_row",
               "block_col", "block_out_field", "block_in_field", "block_weight",
               "weight_index", "fieldpair_ptr", "out_field_offset", "out_field_size",
               "out_field_rep", "in_field_offset", "in_field_size", "in_field_rep", "rep_size",
               "rep_offset", "bias_field", "bias_row")


@dataclass(frozen=True, eq=False)
class ExpansionPlan:
    """Immutable, picklable description of expand(w) (see the module docstring)."""

    out_size: int
    in_size: int
    num_points: int
    dim: int
    filter_shape: tuple
    basis: np.ndarray
    pair_shape: np.ndarray
    pair_count: np.ndarray
    pair_offset: np.ndarray
    block_pair: np.ndarray
    block_row: np.ndarray
    block_col: np.ndarray
    block_out_field: np.ndarray
    block_in_field: np.ndarray
    block_weight: np.ndarray
    weight_index: np.ndarray
    fieldpair_ptr: np.ndarray
    out_field_offset: np.ndarray
    out_field_size: np.ndarray
    out_field_rep: np.ndarray
    in_field_offset: np.ndarray
    in_field_size: np.ndarray
    in_field_rep: np.ndarray
    rep_size: np.ndarray
    rep_offset: np.ndarray
    rep_identity: np.ndarray
    change_of_basis: np.ndarray
    bias_field: np.ndarray
    bias_row: np.ndarray

    def __post_init__(self):
        fs = self.filter_shape  # any sequence of integers → a tuple of Python ints
        if isinstance(fs, (int, np.integer)) and not isinstance(fs, bool):
            fs = (fs,)
        if isinstance(fs, (list, tuple, np.ndarray)):
            fs = tuple(int(k) if isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                       else k for k in np.asarray(fs, dtype=object).ravel())
        object.__setattr__(self, "filter_shape", fs)
        for name in _FIELD_NAMES:
            v = getattr(self, name)
            dt = _DTYPES.get(name)
            if dt is np.int64 or isinstance(v, np.ndarray):
                a = np.ascontiguousarray(v, dtype=dt or np.float64)
                a.setflags(write=False)
                object.__setattr__(self, name, a)
        self.validate()

    # ---- derived --------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.block_pair)

    @property
    def num_bias(self) -> int:
        return len(self.bias_field)

    @property
    def nbytes(self) -> int:
        """Bytes held by the plan's arrays (what a backend uploads)."""
        return sum(getattr(self, f.name).nbytes for f in fields(self)
                   if isinstance(getattr(self, f.name), np.ndarray))

    def pair_values(self, tau: int) -> np.ndarray:
        """The (n_τ, d_out, d_in, P) basis of irreps pair τ (a read-only view)."""
        n, (do, di) = int(self.pair_count[tau]), self.pair_shape[tau]
        o = int(self.pair_offset[tau])
        return self.basis[o:o + n * do * di * self.num_points].reshape(n, do, di,
                                                                      self.num_points)

    def rep_matrix(self, r: int) -> np.ndarray:
        s, o = int(self.rep_size[r]), int(self.rep_offset[r])
        return self.change_of_basis[o:o + s * s].reshape(s, s)

    # ---- consistency ----------------------------------------------------------------
    def validate(self) -> None:
        """Check every index against the arrays it points into (raises ValueError)."""
        def need(cond, what):
            if not cond:
                raise ValueError(f"inconsistent ExpansionPlan: {what}")
        T, B = len(self.pair_count), len(self.block_pair)
        need(self.pair_shape.shape == (T, 2) and (T == 0 or self.pair_shape.min() >= 1),
             "pair_shape must be (T, 2) with entries >= 1")
        need((self.pair_count >= 0).all(), "pair_count must be >= 0")
        ends = self.pair_offset + self.pair_count * self.pair_shape.prod(1) * self.num_points
        need(T == 0 or (self.pair_offset.min() >= 0 and ends.max() <= len(self.basis)),
             "pair ranges exceed basis")
        for name in ("block_row", "block_col", "block_out_field", "block_in_field",
                     "block_weight"):
            need(len(getattr(self, name)) == B, f"{name} has {len(getattr(self, name))} "
                                                f"entries, expected {B}")
        need(B == 0 or (self.block_pair.min() >= 0 and self.block_pair.max() < T),
             "block_pair out of range")
        if B:  # (min / max reductions: no boolean temporaries)
            do, di = (self.pair_shape[:, k].take(self.block_pair) for k in (0, 1))
            need(self.block_row.min() >= 0 and (self.block_row + do).max() <= self.out_size,
                 "block rows exceed out_size")
            need(self.block_col.min() >= 0 and (self.block_col + di).max() <= self.in_size,
                 "block columns exceed in_size")
            n = self.pair_count.take(self.block_pair)
            need((self.block_weight + n).max() <= len(self.weight_index),
                 "block weights exceed weight_index")
        wi = self.weight_index
        need(len(wi) == self.dim and (self.dim == 0 or (wi.min() >= 0 and wi.max() < self.dim
             and _covers(wi, self.dim))), "weight_index must be a permutation of range(dim)")
        nf = len(self.out_field_offset) * len(self.in_field_offset)
        need(len(self.fieldpair_ptr) == nf + 1 and self.fieldpair_ptr[-1] == B
             and (self.fieldpair_ptr[1:] >= self.fieldpair_ptr[:-1]).all(),
             "fieldpair_ptr is not a CSR of blocks")
        need(self.out_field_size.sum() == self.out_size and self.in_field_size.sum() ==
             self.in_size, "field sizes do not add up to out_size / in_size")
        for side in ("out", "in"):
            reps = getattr(self, f"{side}_field_rep")
            need(np.array_equal(self.rep_size[reps], getattr(self, f"{side}_field_size")),
                 f"{side}_field_size disagrees with rep_size")
        need((self.rep_offset + self.rep_size ** 2 <= len(self.change_of_basis)).all(),
             "rep_offset exceeds change_of_basis")
        fs = self.filter_shape
        need(isinstance(fs, tuple) and len(fs) >= 1
             and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1
                     for k in fs), f"filter_shape must be a non-empty tuple of positive "
                                   f"integers, got {fs!r}")
        need(int(np.prod(fs, dtype=np.int64)) == self.num_points,
             f"filter_shape {fs} does not match num_points {self.num_points}")


_FIELD_NAMES = tuple(f.name for f in fields(ExpansionPlan))
#: the dtype of each field: the integer arrays (always converted), ``rep_identity`` (bool, if
#: given as an array); any other array is float64
_DTYPES = {**dict.fromkeys(_INT_ARRAYS, np.int64), "rep_identity": bool}


def _covers(index: np.ndarray, n: int) -> bool:
    """Whether ``index`` (values in [0, n)) takes every value of range(n): for n entries, that
    they are a permutation (a scatter, ~10× cheaper than ``bincount`` at 50 000 entries)."""
    seen = np.zeros(n, bool)
    seen[index] = True
    return bool(seen.all())
