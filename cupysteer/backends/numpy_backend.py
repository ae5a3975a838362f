"""NumPy reference backend: executes an :class:`~cupysteer.plan.ExpansionPlan` on the CPU.

Forward (see :mod:`cupysteer.plan`): fields are grouped by representation (:mod:`.tables`); for
each output-group × input-group × output irrep position ("row") the row's pair bases are
contracted once, at set-up, with Q_in: B'[e, a, d, x] = Σ_c B_τ[e, a, c, x] Q_in[d, col + c].
Per call, one gather puts all weights in schedule order (each row's weights become a
contiguous (n_o, n_i, n) slab); then, for every output channel ``a`` of a row, one batched
``matmul(slab, B'[:, a], out=...)`` writes K̃·Q_inᵀ for all field pairs of the two groups
straight into the filter (or its workspace): BLAS writes the strided rows itself, there is
no temporary and no strided copy. Q_out is applied last, one batched matmul per output
group (``matmul(out=)``). The adjoint runs the same steps transposed in reverse order and
puts the weights back in plan order with one gather. Python loops run over rows, output
channels and field groups only, never over field pairs or basis elements. Scratch space is
kept per thread, so repeated calls do not page-fault.

The row bases contracted with Q_in hold Σ n·d_out·s_in·P numbers: small for planar groups
(fields of at most a few dozen channels shared by many field pairs), prohibitive for 3D
fields with a dense Q of ~100 channels (icosahedral regular: 120). Such plans use the
``"blocks"`` schedule instead: one GEMM per irreps pair τ over all its blocks (weights ×
the raw pair basis, scattered into K̃), then Q_in and Q_out as two batched matmuls per field
group. Nothing in either schedule assumes a bound on the irreps dimensions.

Both schedules are deterministic: the same plan, weights and BLAS thread count give the same
bits on every call (no reduction depends on timing).
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import NamedTuple

import numpy as np

from .._memory import check_host
from ..plan import ExpansionPlan
from .tables import bias_expansion, block_weights, group_of, pair_blocks, progressions

__all__ = ["NumpyExpander", "bias_expansion", "blas_threads"]

_DTYPES = (np.float32, np.float64)


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the BLAS libraries loaded now (NumPy's is loaded before this
    module), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


_LIMIT_LOCK = threading.Lock()
_LIMIT = {"holders": 0, "limiter": None}  # the outermost holder sets and restores the limit


@contextlib.contextmanager
def blas_threads(n: int):
    """Context manager: NumPy's BLAS runs at most ``n`` threads inside it (threadpoolctl; a
    no-op without it). The torch operator runs the expansion under ``blas_threads(1)``: on a
    CPU, torch's own thread pool is already busy with the convolutions, and BLAS threads
    started beside it compete for the same cores (BENCHMARKS.md: a C8 training step 2–3×
    slower). The limit is process-wide while any thread holds it: holders are counted, the
    first sets it and the last restores the previous value (threads entering and leaving in
    any order never leave the process limited)."""
    ctl = _blas_controller()
    if ctl is None:
        yield
        return
    with _LIMIT_LOCK:
        if _LIMIT["holders"] == 0:
            _LIMIT["limiter"] = ctl.limit(limits=n)
        _LIMIT["holders"] += 1
    try:
        yield
    finally:
        with _LIMIT_LOCK:
            _LIMIT["holders"] -= 1
            if _LIMIT["holders"] == 0:
                _LIMIT["limiter"].restore_original_limits()
                _LIMIT["limiter"] = None


def _view(K, shape, offset, strides):
    """A strided view of the C-contiguous array K, ``offset`` elements in, ``strides`` in
    elements (``np.ndarray`` on K's buffer: ~0.5 µs, against ~3 µs for ``as_strided``)."""
    it = K.itemsize
    return np.ndarray(shape, K.dtype, K, offset * it, tuple(x * it for x in strides))


def _out_view(K, off, n, stride, s):
    """Output-side group as (b, n, s, C_in·P) matrices of a C-contiguous K."""
    b, co, ci, p = K.shape
    return _view(K, (b, n, s, ci * p), off * ci * p, (co * ci * p, stride * ci * p, ci * p, 1))


def _in_view(K, off, n, stride, s):
    """Input-side group as (b, C_out, n, s, P) of a C-contiguous K: Q @ view acts on s."""
    b, co, ci, p = K.shape
    return _view(K, (b, co, n, s, p), off * p, (co * ci * p, ci * p, stride * p, p, 1))


def _chan_view(K, row, n_o, st_o, col, n_i, st_i, s_i):
    """(b, n_o, n_i, s_i·P) view of a C-contiguous K: output channel ``row`` of every output
    field of a group (fields ``st_o`` channels apart) × all ``s_i`` columns of every input
    field of a group. Each (n_i, s_i·P) matrix has unit inner stride: BLAS reads and writes
    it in place."""
    b, co, ci, p = K.shape
    return _view(K, (b, n_o, n_i, s_i * p), (row * ci + col) * p,
                 (co * ci * p, st_o * ci * p, st_i * p, 1))


def _apply_fields(groups, identities, view, src, dst, transpose: bool):
    """dst ← Q·src (Qᵀ·src if ``transpose``) per field group of ``view``; identity fields are
    copied."""
    for off, n, st, s, Q in groups:
        np.matmul(Q.T if transpose else Q, view(src, off, n, st, s),
                  out=view(dst, off, n, st, s))
    for off, n, st, s in identities:
        view(dst, off, n, st, s)[...] = view(src, off, n, st, s)


class _OutGroup(NamedTuple):
    """One output field group of the "rows" schedule."""

    off: int              # first channel
    n: int                # fields
    st: int               # channels from one field to the next
    s: int                # field size
    Q: np.ndarray | None  # Q_out (None: the identity)
    full: bool            # its rows cover all s channels for every input group
    rows: list            # (B' (n_w, d_o, s_i·P), weight start, row, d_o, col, n_i, st_i, s_i)


def _fill_rows(g, Wg, K, base, st, f0, f1):
    """Output fields f0:f1 of group ``g``: K̃·Q_inᵀ rows into K (field f at channel
    base + (f − f0)·st), one batched GEMM per output channel of each row."""
    b = Wg.shape[0]
    for Bf, s0, row, d_o, col, n_i, st_i, s_i in g.rows:
        A = Wg[:, s0:s0 + g.n * n_i * len(Bf)].reshape(b, g.n, n_i, len(Bf))[:, f0:f1]
        for a in range(d_o):
            np.matmul(A, Bf[:, a], out=_chan_view(K, base + row + a, f1 - f0, st, col, n_i,
                                                  st_i, s_i))


def _drain_rows(g, T, base, st, f0, f1, R):
    """The transpose of :func:`_fill_rows`: weight gradients (schedule order, into R) of
    output fields f0:f1 of group ``g`` from T = Q_outᵀ G laid out as K there."""
    b = R.shape[0]
    for Bf, s0, row, d_o, col, n_i, st_i, s_i in g.rows:
        dst = R[:, s0:s0 + g.n * n_i * len(Bf)].reshape(b, g.n, n_i, len(Bf))[:, f0:f1]
        np.matmul(_chan_view(T, base + row, f1 - f0, st, col, n_i, st_i, s_i), Bf[:, 0].T,
                  out=dst)
        for a in range(1, d_o):
            dst += _chan_view(T, base + row + a, f1 - f0, st, col, n_i, st_i, s_i) @ Bf[:, a].T


class NumpyExpander:
    """Precomputed schedule of one plan for one dtype (float32 or float64).

    Fields are grouped by representation into arithmetic progressions of channels. For one
    output group × one input group, all blocks that share an output irrep position (a *row*)
    are filled by one batched GEMM per output channel of the row, whose right factor is the
    row's pair bases already contracted with the input change of basis,
    B'[e, a, d, x] = Σ_c B_τ[e, a, c, x] Q_in[d, col + c] (contraction order W·(B·Q_inᵀ): one
    pass instead of fill + right product) and whose output is the filter itself. The output
    change of basis Q_out is applied after, one batched matmul per output group.
    """

    #: the "auto" schedule keeps the row bases while they hold at most this many numbers or
    #: ROWS_FACTOR × the filter's size, whichever is larger
    ROWS_LIMIT = 1 << 22
    ROWS_FACTOR = 4
    #: the "rows" schedule applies Q_out to runs of output fields whose rows hold at most
    #: this many bytes, so that they are still in the CPU's cache (a filter that fits is
    #: done in one run). Measured (BENCHMARKS.md; 1 MiB L2 per core, 32 MiB L3): 1 MiB runs
    #: cost C8/C16/D4 20–30% in per-call overhead; 4 MiB gains ~10% on C8 regular ×64 7×7
    CHUNK_BYTES = 1 << 22

    def __init__(self, plan: ExpansionPlan, dtype=np.float64, method: str = "auto"):
        dtype = np.dtype(dtype)
        if dtype.type not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        if method not in ("auto", "rows", "blocks"):
            raise ValueError(f"method must be 'auto', 'rows' or 'blocks', got {method!r}")
        self.plan, self.dtype = plan, dtype
        self.out_groups = progressions(plan.out_field_offset, plan.out_field_size,
                                       plan.out_field_rep)
        self.in_groups = progressions(plan.in_field_offset, plan.in_field_size,
                                      plan.in_field_rep)
        entries, row_numbers = self._row_entries()
        if method == "auto":
            method = "rows" if row_numbers <= max(
                self.ROWS_LIMIT, self.ROWS_FACTOR * plan.out_size * plan.in_size
                * plan.num_points) else "blocks"
        self.method = method
        self.left = [(off, n, st, s, plan.rep_matrix(r).astype(dtype))
                     for _, off, n, st, s, r in self.out_groups if not plan.rep_identity[r]]
        self.identity_out = [(off, n, st, s) for _, off, n, st, s, r in self.out_groups
                             if plan.rep_identity[r]]
        self._scratch = threading.local()
        self.groups = []
        if method == "blocks":
            self._init_blocks()
        else:
            self._init_rows(entries)

    def _row_entries(self):
        """{(g_o, g_i, row): [(col, τ, blocks)]} (blocks ordered by output field, then input
        field) and the number of values the Q_in-contracted row bases would hold."""
        plan = self.plan
        go = group_of(self.out_groups, len(plan.out_field_offset))[plan.block_out_field]
        gi = group_of(self.in_groups, len(plan.in_field_offset))[plan.block_in_field]
        lrow = plan.block_row - plan.out_field_offset[plan.block_out_field]
        lcol = plan.block_col - plan.in_field_offset[plan.block_in_field]
        dims = (len(self.out_groups), len(self.in_groups), int(plan.out_size),
                int(plan.in_size), len(plan.pair_count))
        key = np.ravel_multi_index((go, gi, lrow, lcol, plan.block_pair), dims)
        order = np.lexsort((plan.block_in_field, plan.block_out_field, key))
        uniq, start = np.unique(key[order], return_index=True)
        bounds = np.append(start, len(order))
        entries, row_numbers = {}, 0
        for k, (g_o, g_i, row, col, tau) in enumerate(zip(*np.unravel_index(uniq, dims))):
            g_o, g_i, row, col, tau = int(g_o), int(g_i), int(row), int(col), int(tau)
            entries.setdefault((g_o, g_i, row), []).append((col, tau,
                                                            order[bounds[k]:bounds[k + 1]]))
            row_numbers += (int(plan.pair_count[tau]) * int(plan.pair_shape[tau][0])
                            * self.in_groups[g_i][4] * plan.num_points)
        return entries, row_numbers

    def _init_rows(self, entries):
        """The "rows" schedule, by output group: its Q_out (None for Q = I), whether its rows
        cover all its channels, and per row B' as (n, d_o, s_i·P), the start of the row's
        weights in schedule order and its place in the group; the weight gather (plan order
        → schedule order) and its inverse."""
        plan, P = self.plan, self.plan.num_points
        by_group = {g: [] for g in range(len(self.out_groups))}
        covered, gather, start = {}, [], 0
        for (g_o, g_i, row), cols in entries.items():
            n_o = self.out_groups[g_o][2]
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
            Bf = np.concatenate(parts).reshape(-1, d_o, s_i * P).astype(self.dtype)
            widx = np.concatenate(widx, axis=1)  # (n_o·n_i, n): (o, i) row-major
            by_group[g_o].append((Bf, start, row, d_o, off_i, n_i, st_i, s_i))
            gather.append(widx.ravel())
            start += widx.size
            covered[(g_o, g_i)] = covered.get((g_o, g_i), 0) + d_o
        assert start == plan.dim, "every weight belongs to exactly one row"
        self.gather = np.concatenate(gather) if gather else np.zeros(0, np.int64)
        self.scatter = np.empty_like(self.gather)
        self.scatter[self.gather] = np.arange(len(self.gather))
        self.groups = []
        for g, (_, off, n, st, s, r) in enumerate(self.out_groups):
            full = all(covered.get((g, gi), 0) == s for gi in range(len(self.in_groups)))
            Q = None if plan.rep_identity[r] else plan.rep_matrix(r).astype(self.dtype)
            self.groups.append(_OutGroup(off, n, st, s, Q, full, by_group[g]))

    def _chunks(self, g, b):
        """Output fields of group ``g`` in runs whose K̃·Q_inᵀ rows (b × s × C_in × P values)
        fit in CHUNK_BYTES (one run when Q_out = I: those rows are written in place)."""
        if g.Q is None:
            return [(0, g.n)]
        per_field = b * g.s * self.plan.in_size * self.plan.num_points * self.dtype.itemsize
        step = max(1, self.CHUNK_BYTES // per_field)
        return [(f, min(f + step, g.n)) for f in range(0, g.n, step)]

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
        """A per-thread scratch array of ``shape`` (its memory is reused across calls and
        shapes: no page faults)."""
        size = int(np.prod(shape))
        buf = getattr(self._scratch, slot, None)
        if buf is None or buf.size < size:
            buf = np.empty(size, self.dtype)
            setattr(self._scratch, slot, buf)
        return buf[:size].reshape(shape)

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
        if b == 0:  # an empty batch: empty in, empty out
            return out.reshape(w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape)
        if self.method == "blocks":
            self._expand_blocks(W, out)
            return out.reshape(w.shape[:-1] + (plan.out_size, plan.in_size) + plan.filter_shape)
        Wg = np.take(W, self.gather, axis=1)  # schedule order: one contiguous slab per row
        for g in self.groups:
            for f0, f1 in self._chunks(g, b):
                if g.Q is None:  # rows written in place
                    K, base, st = out, g.off, g.st
                else:  # rows in a cache-sized workspace, then Q_out into the filter
                    K, base, st = self._workspace((b, (f1 - f0) * g.s) + shape[2:], "chunk"), \
                        0, g.s
                if not g.full:
                    _out_view(K, base, f1 - f0, st, g.s)[...] = 0
                _fill_rows(g, Wg, K, base, st, f0, f1)
                if g.Q is not None:
                    np.matmul(g.Q, _out_view(K, 0, f1 - f0, g.s, g.s),
                              out=_out_view(out, g.off + f0 * g.st, f1 - f0, g.st, g.s))
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
        if G.size == 0:  # an empty batch: empty in, empty out
            return np.zeros(G.shape[:G.ndim - len(fshape)] + (plan.dim,), self.dtype)
        K = np.ascontiguousarray(G.reshape(-1, plan.out_size, plan.in_size, plan.num_points))
        b = K.shape[0]
        if self.method == "blocks":
            out = self._adjoint_blocks(K)
            return out if batched else out[0]
        R = self._workspace((b, plan.dim), "weights")  # schedule order
        for g in self.groups:
            for f0, f1 in self._chunks(g, b):
                if g.Q is None:
                    T, base, st = K, g.off, g.st
                else:  # Q_outᵀ G, a cache-sized run of output fields at a time
                    T, base, st = self._workspace((b, (f1 - f0) * g.s) + K.shape[2:], "chunk"), \
                        0, g.s
                    np.matmul(g.Q.T, _out_view(K, g.off + f0 * g.st, f1 - f0, g.st, g.s),
                              out=_out_view(T, 0, f1 - f0, g.s, g.s))
                _drain_rows(g, T, base, st, f0, f1, R)
        out = np.take(R, self.scatter, axis=1)
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

