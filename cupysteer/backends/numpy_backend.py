"""NumPy reference backend: executes an :class:`~cupysteer.plan.ExpansionPlan` on the CPU.

Forward (see :mod:`cupysteer.plan`): for each irreps pair τ one gather of its weights, one
GEMM against the pair's (n_τ, d_o·d_i·P) basis and one scatter into the irreps-coordinate
filter K̃; then the change of basis, one batched matmul per run of consecutive fields
sharing a non-identity Q (right: Q_inᵀ, then left: Q_out), written with ``matmul(out=)``. The adjoint runs the same steps
transposed in reverse order. Python loops run over pair types and field runs only, never
over field pairs or basis elements.
"""
from __future__ import annotations

import numpy as np

from ..plan import ExpansionPlan

__all__ = ["NumpyExpander"]

_DTYPES = (np.float32, np.float64)


def _progressions(offsets, sizes, reps):
    """Split the fields into groups of one representation whose channel offsets form an
    arithmetic progression (a periodic field type such as [ψ0, ψ1, ψ2] × 8 gives one group
    per representation): (fields, first channel, count, channel stride, size, rep id)."""
    groups = []
    for r in dict.fromkeys(int(x) for x in reps):
        fields = [f for f in range(len(reps)) if reps[f] == r]
        i = 0
        while i < len(fields):
            j = i + 1
            stride = int(offsets[fields[j]] - offsets[fields[i]]) if j < len(fields) else 0
            while j < len(fields) and offsets[fields[j]] - offsets[fields[j - 1]] == stride:
                j += 1
            n, s = j - i, int(sizes[fields[i]])
            groups.append((fields[i:j], int(offsets[fields[i]]), n, stride if n > 1 else s, s, r))
            i = j
    return groups


def _group_of(groups, n_fields):
    table = np.empty(n_fields, np.int64)
    for k, g in enumerate(groups):
        table[g[0]] = k
    return table


def _in_view(K, off, n, stride, s):
    """Input-side group as (b, C_out, n, s, P) matrices s×P of a C-contiguous K."""
    sb, so, si, sp = K.strides
    return np.lib.stride_tricks.as_strided(K[:, :, off:], (K.shape[0], K.shape[1], n, s, K.shape[3]),
                                           (sb, so, stride * si, si, sp))


def _out_view(K, off, n, stride, s):
    """Output-side group as (b, n, s, C_in·P) matrices of a C-contiguous K."""
    sb, so, si, sp = K.strides
    return np.lib.stride_tricks.as_strided(K[:, off:], (K.shape[0], n, s, K.shape[2] * K.shape[3]),
                                           (sb, stride * so, so, sp))


def _view(K, axis_groups):
    """Strided view of K (b, C_out, C_in, P) selecting, per channel axis, ``n`` periods of
    ``stride`` channels starting at ``off`` and ``width`` channels in each period:
    shape (b, n_o, w_o, n_i, w_i, P)."""
    (off_o, n_o, st_o, w_o), (off_i, n_i, st_i, w_i) = axis_groups
    sb, so, si, sp = K.strides
    base = K[:, off_o:, off_i:]
    return np.lib.stride_tricks.as_strided(
        base, (K.shape[0], n_o, w_o, n_i, w_i, K.shape[3]),
        (sb, st_o * so, so, st_i * si, si, sp))


class NumpyExpander:
    """Precomputed schedule of one plan for one dtype (float32 or float64).

    Blocks are grouped into *slabs*: all blocks of one irreps pair at the same position
    inside the fields of one run of output fields × one run of input fields. A slab is a
    strided view of K̃ of shape (n_out, d_o, n_in, d_i, P), filled by one GEMM.
    """

    def __init__(self, plan: ExpansionPlan, dtype=np.float64):
        dtype = np.dtype(dtype)
        if dtype.type not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.plan, self.dtype = plan, dtype
        P = plan.num_points
        self.out_runs = _progressions(plan.out_field_offset, plan.out_field_size,
                                      plan.out_field_rep)
        self.in_runs = _progressions(plan.in_field_offset, plan.in_field_size, plan.in_field_rep)
        ro = _group_of(self.out_runs, len(plan.out_field_offset))[plan.block_out_field]
        ri = _group_of(self.in_runs, len(plan.in_field_offset))[plan.block_in_field]
        lrow = plan.block_row - plan.out_field_offset[plan.block_out_field]
        lcol = plan.block_col - plan.in_field_offset[plan.block_in_field]
        key = np.stack([ro, ri, lrow, lcol, plan.block_pair], 1)
        uniq, slab_of = np.unique(key, axis=0, return_inverse=True)
        slab_of = slab_of.reshape(-1)
        order = np.lexsort((plan.block_in_field, plan.block_out_field, slab_of))
        bounds = np.searchsorted(slab_of[order], np.arange(len(uniq) + 1))
        bases = {}
        self.slabs = []
        for k, (r_o, r_i, row, col, tau) in enumerate(uniq):
            blocks = order[bounds[k]:bounds[k + 1]]
            _, off_o, n_o, st_o, _, _ = self.out_runs[r_o]
            _, off_i, n_i, st_i, _, _ = self.in_runs[r_i]
            assert len(blocks) == n_o * n_i, "fields of one run must share their blocks"
            n = int(plan.pair_count[tau])
            do, di = (int(x) for x in plan.pair_shape[tau])
            if tau not in bases:
                bases[tau] = plan.pair_values(tau).reshape(n, do * di * P).astype(dtype)
            widx = plan.weight_index[plan.block_weight[blocks][:, None] + np.arange(n)]
            self.slabs.append((bases[tau], widx, n_o, n_i,
                               ((off_o + row, n_o, st_o, do), (off_i + col, n_i, st_i, di))))
        covered = sum(widx.size // B.shape[0] * B.shape[1] // P for B, widx, *_ in self.slabs)
        self.full_cover = covered == plan.out_size * plan.in_size
        self.Q = {r: plan.rep_matrix(r).astype(dtype) for r in range(len(plan.rep_size))}
        ident = plan.rep_identity
        self.right = [g for g in self.in_runs if not ident[g[5]]]
        self.left = [g for g in self.out_runs if not ident[g[5]]]

    # ---- helpers -------------------------------------------------------------------------
    def _check_weights(self, w):
        w = np.asarray(w)
        if w.dtype != self.dtype:
            raise ValueError(f"weights have dtype {w.dtype}, this expander runs {self.dtype}")
        if w.ndim not in (1, 2) or w.shape[-1] != self.plan.dim:
            raise ValueError(f"weights must have shape ({self.plan.dim},) or (batch, "
                             f"{self.plan.dim}), got {w.shape}")
        return w

    def _change_of_basis(self, K, transpose: bool):
        """K ← Q_out K Q_inᵀ (or Q_outᵀ K Q_in); K is (b, C_out, C_in, P). Returns K or a new
        array; K may be overwritten."""
        b, Co, Ci, P = K.shape
        Qs = {r: (Q.T if transpose else Q) for r, Q in self.Q.items()}
        for groups, side in ((self.right, 1), (self.left, 0)):
            if not groups:
                continue
            T = K.copy() if len(groups) < len(self.in_runs if side else self.out_runs) \
                else np.empty_like(K)
            for _, off, n, stride, s, r in groups:
                view = _in_view if side else _out_view
                np.matmul(Qs[r], view(K, off, n, stride, s), out=view(T, off, n, stride, s))
            K = T
        return K

    # ---- forward / adjoint -------------------------------------------------------------------
    def expand(self, w) -> np.ndarray:
        """Weights (dim,) or (b, dim) → filter (C_out, C_in, *filter_shape) or (b, …)."""
        w = self._check_weights(w)
        plan = self.plan
        W = w.reshape(-1, plan.dim)
        b, P = W.shape[0], plan.num_points
        alloc = np.empty if self.full_cover else np.zeros
        K = alloc((b, plan.out_size, plan.in_size, P), self.dtype)
        for B, widx, n_o, n_i, axes in self.slabs:
            vals = (W[:, widx] @ B).reshape(b, n_o, n_i, axes[0][3], axes[1][3], P)
            _view(K, axes)[...] = vals.transpose(0, 1, 3, 2, 4, 5)
        K = self._change_of_basis(K, transpose=False)
        return K.reshape(w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape)

    def adjoint(self, G) -> np.ndarray:
        """Filter gradient (C_out, C_in, *filter_shape) or (b, …) → weight gradient."""
        plan = self.plan
        G = np.asarray(G)
        fshape = (plan.out_size, plan.in_size) + tuple(plan.filter_shape)
        if G.dtype != self.dtype:
            raise ValueError(f"filter_grad has dtype {G.dtype}, expected {self.dtype}")
        if G.shape[-len(fshape):] != fshape or G.ndim not in (len(fshape), len(fshape) + 1):
            raise ValueError(f"filter_grad must have shape {fshape} or (batch, *{fshape}), "
                             f"got {G.shape}")
        batched = G.ndim == len(fshape) + 1
        K = G.reshape(-1, plan.out_size, plan.in_size, plan.num_points)
        if self.left or self.right:
            K = self._change_of_basis(np.ascontiguousarray(K), transpose=True)
        b = K.shape[0]
        out = np.empty((b, plan.dim), self.dtype)
        for B, widx, n_o, n_i, axes in self.slabs:
            vals = _view(K, axes).transpose(0, 1, 3, 2, 4, 5)
            out[:, widx] = (vals.reshape(b * n_o * n_i, -1) @ B.T).reshape(b, n_o * n_i, -1)
        return out if batched else out[0]

    def expand_bias(self, bias) -> np.ndarray:
        """Bias per trivial output irrep (T,) or (b, T) → per output channel (C_out,)."""
        plan = self.plan
        bias = np.asarray(bias)
        if bias.shape[-1:] != (plan.num_bias,) or bias.ndim > 2:
            raise ValueError(f"bias must have shape ({plan.num_bias},) (one entry per trivial "
                             f"output irrep) or (batch, {plan.num_bias}), got {bias.shape}")
        return bias @ bias_expansion(plan).T.astype(bias.dtype)


def bias_expansion(plan: ExpansionPlan) -> np.ndarray:
    """(C_out, T) matrix: column t is the column of the field's Q for trivial irrep t."""
    M = np.zeros((plan.out_size, plan.num_bias))
    for t, (f, row) in enumerate(zip(plan.bias_field, plan.bias_row)):
        off = int(plan.out_field_offset[f])
        Q = plan.rep_matrix(int(plan.out_field_rep[f]))
        M[off:off + Q.shape[0], t] = Q[:, int(row) - off]
    return M
