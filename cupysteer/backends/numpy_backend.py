"""NumPy reference backend: executes an :class:`~cupysteer.plan.ExpansionPlan` on the CPU.

Forward (see :mod:`cupysteer.plan`): fields are grouped by representation (:mod:`.tables`); for
each output-group × input-group × output irrep position ("row") one gather of the weights and
one GEMM against the row's pair bases contracted with Q_in fill a whole strided slab of the
filter; then Q_out is applied by one batched matmul per output group (``matmul(out=)``).
The adjoint runs the same steps transposed in reverse order. Python loops run over rows
and field groups only, never over field pairs or basis elements. Scratch space is kept per
thread, so repeated calls do not page-fault.

The row bases contracted with Q_in hold Σ n·d_out·s_in·P numbers: small for planar groups
(fields of at most a few dozen channels shared by many field pairs), prohibitive for 3D
fields with a dense Q of ~100 channels (icosahedral regular: 120). Such plans use the
``"blocks"`` schedule instead: one GEMM per irreps pair τ over all its blocks (weights ×
the raw pair basis, scattered into K̃), then Q_in and Q_out as two batched matmuls per field
group. Nothing in either schedule assumes a bound on the irreps dimensions.
"""
from __future__ import annotations

import threading

import numpy as np

from .._memory import check_host
from ..plan import ExpansionPlan
from .tables import bias_expansion, block_weights, group_of, pair_blocks, progressions

__all__ = ["NumpyExpander", "bias_expansion"]

_DTYPES = (np.float32, np.float64)


def _out_view(K, off, n, stride, s):
    """Output-side group as (b, n, s, C_in·P) matrices of a C-contiguous K."""
    sb, so, si, sp = K.strides
    return np.lib.stride_tricks.as_strided(
        K[:, off:], (K.shape[0], n, s, K.shape[2] * K.shape[3]), (sb, stride * so, so, sp))


def _in_view(K, off, n, stride, s):
    """Input-side group as (b, C_out, n, s, P) of a C-contiguous K: Q @ view acts on s."""
    sb, so, si, sp = K.strides
    return np.lib.stride_tricks.as_strided(
        K[:, :, off:], (K.shape[0], K.shape[1], n, s, K.shape[3]), (sb, so, stride * si, si, sp))


def _row_view(K, row, n_o, st_o, d_o, col, n_i, st_i, s_i):
    """(b, n_o, d_o, n_i, s_i, P) view of K: ``d_o`` rows at ``row`` of every output field of
    a group × all ``s_i`` columns of every input field of a group."""
    sb, so, si, sp = K.strides
    return np.lib.stride_tricks.as_strided(
        K[:, row:, col:], (K.shape[0], n_o, d_o, n_i, s_i, K.shape[3]),
        (sb, st_o * so, so, st_i * si, si, sp))


def _apply_fields(groups, identities, view, src, dst, transpose: bool):
    """dst ← Q·src (Qᵀ·src if ``transpose``) per field group of ``view``; identity fields are
    copied."""
    for off, n, st, s, Q in groups:
        np.matmul(Q.T if transpose else Q, view(src, off, n, st, s),
                  out=view(dst, off, n, st, s))
    for off, n, st, s in identities:
        view(dst, off, n, st, s)[...] = view(src, off, n, st, s)


class NumpyExpander:
    """Precomputed schedule of one plan for one dtype (float32 or float64).

    Fields are grouped by representation into arithmetic progressions of channels. For one
    output group × one input group, all blocks that share an output irrep position (a *row*)
    are filled by a single GEMM whose right factor is the row's pair bases already contracted
    with the input change of basis, B'[e, a, d, x] = Σ_c B_τ[e, a, c, x] Q_in[d, col + c]
    (contraction order W·(B·Q_inᵀ): one pass instead of fill + right product). The output
    change of basis Q_out is applied after, one batched matmul per output group.
    """

    #: the "auto" schedule keeps the row bases while they hold at most this many numbers or
    #: ROWS_FACTOR × the filter's size, whichever is larger
    ROWS_LIMIT = 1 << 22
    ROWS_FACTOR = 4

    def __init__(self, plan: ExpansionPlan, dtype=np.float64, method: str = "auto"):
        dtype = np.dtype(dtype)
        if dtype.type not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        if method not in ("auto", "rows", "blocks"):
            raise ValueError(f"method must be 'auto', 'rows' or 'blocks', got {method!r}")
        self.plan, self.dtype = plan, dtype
        P = plan.num_points
        self.out_groups = progressions(plan.out_field_offset, plan.out_field_size,
                                       plan.out_field_rep)
        self.in_groups = progressions(plan.in_field_offset, plan.in_field_size,
                                      plan.in_field_rep)
        go = group_of(self.out_groups, len(plan.out_field_offset))[plan.block_out_field]
        gi = group_of(self.in_groups, len(plan.in_field_offset))[plan.block_in_field]
        lrow = plan.block_row - plan.out_field_offset[plan.block_out_field]
        lcol = plan.block_col - plan.in_field_offset[plan.block_in_field]
        T = len(plan.pair_count)
        dims = (len(self.out_groups), len(self.in_groups), int(plan.out_size),
                int(plan.in_size), T)
        key = np.ravel_multi_index((go, gi, lrow, lcol, plan.block_pair), dims)
        order = np.lexsort((plan.block_in_field, plan.block_out_field, key))
        uniq, start = np.unique(key[order], return_index=True)
        bounds = np.append(start, len(order))
        entries = {}  # (g_o, g_i, row) -> list of (col, tau, blocks)
        row_numbers = 0  # size of the row bases
        for k, flat in enumerate(uniq):
            g_o, g_i, row, col, tau = (int(v) for v in np.unravel_index(flat, dims))
            entries.setdefault((g_o, g_i, row), []).append((col, tau,
                                                            order[bounds[k]:bounds[k + 1]]))
            row_numbers += (int(plan.pair_count[tau]) * int(plan.pair_shape[tau][0])
                            * self.in_groups[g_i][4] * P)
        if method == "auto":
            method = "rows" if row_numbers <= max(
                self.ROWS_LIMIT, self.ROWS_FACTOR * plan.out_size * plan.in_size * P) \
                else "blocks"
        self.method = method
        self.left = [(off, n, st, s, plan.rep_matrix(r).astype(dtype))
                     for _, off, n, st, s, r in self.out_groups if not plan.rep_identity[r]]
        self.identity_out = [(off, n, st, s) for _, off, n, st, s, r in self.out_groups
                             if plan.rep_identity[r]]
        self._scratch = threading.local()
        self.rows = []
        if method == "blocks":
            self._init_blocks()
            return
        rows_covered = {}
        for (g_o, g_i, row), cols in entries.items():
            _, off_o, n_o, st_o, s_o, r_o = self.out_groups[g_o]
            _, off_i, n_i, st_i, s_i, r_i = self.in_groups[g_i]
            Qi = plan.rep_matrix(r_i)
            d_o = int(plan.pair_shape[cols[0][1]][0])
            parts, widx = [], []
            for col, tau, blocks in cols:
                assert len(blocks) == n_o * n_i, "fields of one group share their blocks"
                n, di = int(plan.pair_count[tau]), int(plan.pair_shape[tau][1])
                B = plan.pair_values(tau)  # (n, d_o, d_i, P)
                parts.append(np.einsum("nacx,dc->nadx", B, Qi[:, col:col + di]))
                widx.append(block_weights(plan, blocks, n))
            Bf = np.concatenate(parts).reshape(-1, d_o * s_i * P).astype(dtype)
            self.rows.append((Bf, np.concatenate(widx, axis=1),
                              (off_o + row, n_o, st_o, d_o, off_i, n_i, st_i, s_i)))
            rows_covered[(g_o, g_i)] = rows_covered.get((g_o, g_i), 0) + d_o
        self.full_cover = all(rows_covered.get((a, b), 0) == self.out_groups[a][4]
                              for a in range(len(self.out_groups))
                              for b in range(len(self.in_groups)))

    def _init_blocks(self):
        """The "blocks" schedule: per irreps pair τ, the (rows, cols) index arrays of all its
        blocks, their weights, and the raw pair basis; Q_in per input group."""
        plan, dtype = self.plan, self.dtype
        self.taus = []
        for pb in pair_blocks(plan):
            Bt = plan.pair_values(pb.tau).reshape(pb.n, -1).astype(dtype)
            self.taus.append((pb.weights, pb.rows[:, :, None], pb.cols[:, None, :], Bt,
                              (pb.d_out, pb.d_in)))
        self.right = [(off, n, st, s, plan.rep_matrix(r).astype(dtype))
                      for _, off, n, st, s, r in self.in_groups if not plan.rep_identity[r]]
        self.identity_in = [(off, n, st, s) for _, off, n, st, s, r in self.in_groups
                            if plan.rep_identity[r]]

    # ---- helpers -------------------------------------------------------------------------
    def _check_weights(self, w):
        w = np.asarray(w)
        if w.dtype != self.dtype:
            raise ValueError(f"weights have dtype {w.dtype}, this expander runs {self.dtype}")
        if w.ndim not in (1, 2) or w.shape[-1] != self.plan.dim:
            raise ValueError(f"weights must have shape ({self.plan.dim},) or (batch, "
                             f"{self.plan.dim}), got {w.shape}")
        return w

    def _workspace(self, shape, slot: str = "buf"):
        """A per-thread scratch array (reused across calls: no page faults)."""
        buf = getattr(self._scratch, slot, None)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, self.dtype)
            setattr(self._scratch, slot, buf)
        return buf

    def _apply_right(self, src, dst, transpose: bool):
        """dst ← src (⊕ Q_in)ᵀ over the input channels (or src (⊕ Q_in) if ``transpose``)."""
        _apply_fields(self.right, self.identity_in, _in_view, src, dst, transpose)

    def _apply_left(self, src, dst, transpose: bool):
        """dst ← (⊕ Q_out) src (or its transpose) over the output channels."""
        _apply_fields(self.left, self.identity_out, _out_view, src, dst, transpose)

    # ---- forward / adjoint -------------------------------------------------------------------
    def expand(self, w) -> np.ndarray:
        """Weights (dim,) or (b, dim) → filter (C_out, C_in, *filter_shape) or (b, …)."""
        w = self._check_weights(w)
        plan = self.plan
        W = w.reshape(-1, plan.dim)
        b, P = W.shape[0], plan.num_points
        shape = (b, plan.out_size, plan.in_size, P)
        check_host(b * plan.out_size * plan.in_size * P * self.dtype.itemsize
                   * (2 if self.left or self.method == "blocks" else 1),
                   lambda: f"expand: a {self.dtype} filter of shape "
                           f"{w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape}"
                           + (" plus a workspace of the same size"
                              if self.left or self.method == "blocks" else ""),
                   "expand fewer batch items per call, or use float32")
        out = np.empty(shape, self.dtype)
        if self.method == "blocks":
            self._expand_blocks(W, out)
            return out.reshape(w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape)
        K = self._workspace(shape) if self.left else out
        if not self.full_cover:
            K[...] = 0
        for Bf, widx, (row, n_o, st_o, d_o, col, n_i, st_i, s_i) in self.rows:
            vals = (W[:, widx] @ Bf).reshape(b, n_o, n_i, d_o, s_i, P)
            _row_view(K, row, n_o, st_o, d_o, col, n_i, st_i, s_i)[...] = \
                vals.transpose(0, 1, 3, 2, 4, 5)
        if self.left:
            self._apply_left(K, out, transpose=False)
        return out.reshape(w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape)

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
        check_host(G.size * self.dtype.itemsize * (3 if self.method == "blocks" else
                                                   2 if self.left else 1),
                   lambda: f"adjoint: the workspace of a {self.dtype} filter_grad of shape "
                           f"{G.shape}", "pass fewer batch items per call")
        K = np.ascontiguousarray(G.reshape(-1, plan.out_size, plan.in_size, plan.num_points))
        b = K.shape[0]
        if self.method == "blocks":
            out = self._adjoint_blocks(K)
            return out if batched else out[0]
        if self.left:
            T = self._workspace(K.shape)
            self._apply_left(K, T, transpose=True)
            K = T
        out = np.empty((b, plan.dim), self.dtype)
        for Bf, widx, (row, n_o, st_o, d_o, col, n_i, st_i, s_i) in self.rows:
            vals = _row_view(K, row, n_o, st_o, d_o, col, n_i, st_i, s_i)
            vals = vals.transpose(0, 1, 3, 2, 4, 5).reshape(b, n_o * n_i, -1)
            out[:, widx] = vals @ Bf.T
        return out if batched else out[0]

    # ---- the "blocks" schedule -------------------------------------------------------------
    def _expand_blocks(self, W, out):
        """K̃ ← weights × pair bases (one GEMM per τ), then K = Q_out K̃ Q_inᵀ; ``out`` holds K̃
        first (the products go through one workspace)."""
        b = W.shape[0]
        out[...] = 0
        for widx, R, C, Bt, (do, di) in self.taus:
            vals = np.matmul(W[:, widx], Bt)  # (b, blocks, do·di·P)
            out[:, R, C] = vals.reshape(b, len(widx), do, di, -1)
        if self.right:
            ws = self._workspace(out.shape)
            self._apply_right(out, ws, transpose=False)
            if self.left:
                self._apply_left(ws, out, transpose=False)
            else:
                out[...] = ws
        elif self.left:
            ws = self._workspace(out.shape)
            self._apply_left(out, ws, transpose=False)
            out[...] = ws

    def _adjoint_blocks(self, G):
        """G̃ = Q_outᵀ G Q_in, then per τ the blocks of G̃ × pair basisᵀ."""
        b = G.shape[0]
        X = G
        if self.left:
            Y = self._workspace(G.shape)
            self._apply_left(X, Y, transpose=True)
            X = Y
        if self.right:
            Y = self._workspace(G.shape, "buf2")
            self._apply_right(X, Y, transpose=True)
            X = Y
        out = np.empty((b, self.plan.dim), self.dtype)
        for widx, R, C, Bt, _ in self.taus:
            vals = X[:, R, C].reshape(b, len(widx), -1)
            out[:, widx] = np.matmul(vals, Bt.T)
        return out

    def expand_bias(self, bias) -> np.ndarray:
        """Bias per trivial output irrep (T,) or (b, T) → per output channel (C_out,)."""
        plan = self.plan
        bias = np.asarray(bias)
        if bias.shape[-1:] != (plan.num_bias,) or bias.ndim > 2:
            raise ValueError(f"bias must have shape ({plan.num_bias},) (one entry per trivial "
                             f"output irrep) or (batch, {plan.num_bias}), got {bias.shape}")
        return bias @ bias_expansion(plan).T.astype(bias.dtype)

