"""NumPy reference backend: executes an :class:`~cupysteer.plan.ExpansionPlan` on the CPU.

Forward (see :mod:`cupysteer.plan`): for each irreps pair τ one gather of its weights, one
GEMM against the pair's (n_τ, d_o·d_i·P) basis and one scatter into the irreps-coordinate
filter K̃; then the change of basis, one batched matmul per run of consecutive fields
sharing a non-identity Q (left: Q_out, right: Q_inᵀ). The adjoint runs the same steps
transposed in reverse order. Python loops run over pair types and field runs only, never
over field pairs or basis elements.
"""
from __future__ import annotations

import numpy as np

from ..plan import ExpansionPlan

__all__ = ["NumpyExpander"]

_DTYPES = (np.float32, np.float64)


def _field_runs(offsets, sizes, reps, identity):
    """Maximal runs of consecutive fields with the same non-identity representation:
    (first channel, number of fields, rep id)."""
    runs = []
    i, n = 0, len(reps)
    while i < n:
        j = i
        while j + 1 < n and reps[j + 1] == reps[i] and offsets[j + 1] == offsets[j] + sizes[j]:
            j += 1
        if not identity[reps[i]]:
            runs.append((int(offsets[i]), j - i + 1, int(reps[i])))
        i = j + 1
    return runs


class NumpyExpander:
    """Precomputed schedule of one plan for one dtype (float32 or float64)."""

    def __init__(self, plan: ExpansionPlan, dtype=np.float64):
        dtype = np.dtype(dtype)
        if dtype.type not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.plan, self.dtype = plan, dtype
        P = plan.num_points
        self.pairs = []  # (basis (n, d_o*d_i*P), rows (nb, d_o, 1), cols (nb, 1, d_i), widx)
        for tau in range(len(plan.pair_count)):
            blocks = np.flatnonzero(plan.block_pair == tau)
            if blocks.size == 0:
                continue
            n = int(plan.pair_count[tau])
            do, di = (int(x) for x in plan.pair_shape[tau])
            B = plan.pair_values(tau).reshape(n, do * di * P).astype(dtype)
            rows = plan.block_row[blocks][:, None, None] + np.arange(do)[None, :, None]
            cols = plan.block_col[blocks][:, None, None] + np.arange(di)[None, None, :]
            widx = plan.weight_index[plan.block_weight[blocks][:, None] + np.arange(n)]
            self.pairs.append((B, rows, cols, widx, do, di))
        self.out_runs = _field_runs(plan.out_field_offset, plan.out_field_size,
                                    plan.out_field_rep, plan.rep_identity)
        self.in_runs = _field_runs(plan.in_field_offset, plan.in_field_size,
                                   plan.in_field_rep, plan.rep_identity)
        self.Q = {r: plan.rep_matrix(r).astype(dtype) for (_, _, r) in self.out_runs + self.in_runs}

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
        """K ← Q_out K Q_inᵀ (or Q_outᵀ K Q_in) in place; K is (b, C_out, C_in, P)."""
        b, Co, Ci, P = K.shape
        for off, n, r in self.out_runs:
            Q = self.Q[r].T if transpose else self.Q[r]
            s = Q.shape[0]
            view = K[:, off:off + n * s].reshape(b, n, s, Ci * P)
            K[:, off:off + n * s] = np.matmul(Q, view).reshape(b, n * s, Ci, P)
        for off, n, r in self.in_runs:
            Q = self.Q[r].T if transpose else self.Q[r]
            s = Q.shape[0]
            view = K[:, :, off:off + n * s].reshape(b, Co, n, s, P)
            K[:, :, off:off + n * s] = np.matmul(Q, view).reshape(b, Co, n * s, P)

    # ---- forward / adjoint -------------------------------------------------------------------
    def expand(self, w) -> np.ndarray:
        """Weights (dim,) or (b, dim) → filter (C_out, C_in, *filter_shape) or (b, …)."""
        w = self._check_weights(w)
        plan = self.plan
        W = w.reshape(-1, plan.dim)
        b, P = W.shape[0], plan.num_points
        K = np.zeros((b, plan.out_size, plan.in_size, P), self.dtype)
        for B, rows, cols, widx, do, di in self.pairs:
            vals = (W[:, widx] @ B).reshape(b, -1, do, di, P)
            K[:, rows, cols] = vals
        self._change_of_basis(K, transpose=False)
        return K.reshape(w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape)

    def adjoint(self, G) -> np.ndarray:
        """Filter gradient (C_out, C_in, *filter_shape) or (b, …) → weight gradient."""
        plan = self.plan
        G = np.asarray(G)
        fshape = (plan.out_size, plan.in_size) + tuple(plan.filter_shape)
        if G.dtype != self.dtype:
            raise ValueError(f"filter gradient has dtype {G.dtype}, expected {self.dtype}")
        if G.shape[-len(fshape):] != fshape or G.ndim not in (len(fshape), len(fshape) + 1):
            raise ValueError(f"filter gradient must have shape {fshape} or (batch, *{fshape}), "
                             f"got {G.shape}")
        batched = G.ndim == len(fshape) + 1
        K = np.array(G.reshape(-1, plan.out_size, plan.in_size, plan.num_points), copy=True)
        self._change_of_basis(K, transpose=True)
        b = K.shape[0]
        out = np.empty((b, plan.dim), self.dtype)
        for B, rows, cols, widx, do, di in self.pairs:
            vals = K[:, rows, cols].reshape(b, rows.shape[0], -1)
            out[:, widx] = vals @ B.T
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
