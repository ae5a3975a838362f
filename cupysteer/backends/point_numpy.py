r"""The point-convolution contract, NumPy reference (shared with the CUDA backend).

A point convolution works in irreps coordinates: g = Q_inᵀ f per node, then per edge
e = (j → i) the message K̃(x_j − x_i) g_j is added to target i, blockwise at irreps level;
the caller applies Q_out (and bias, mean scaling) afterwards. This module knows no space and
no group: it only executes a **block table** against a sampled **basis**.

Block table: an int64 array (n_blocks, 7) whose columns are :data:`BLOCK_COLUMNS`::

    out_offset, in_offset, d_out, d_in, n_basis, weight_offset, basis_offset

Basis: a float array (E, n_entries); for block b, basis element k and entry (r, c)::

    basis[e, basis_offset + (k·d_out + r)·d_in + c]

(blocks of the same irreps pair share ``basis_offset``). The block filter is

.. math::  \tilde K_b[e] = \sum_{k<n_\text{basis}} w[\text{weight\_offset} + k]\;
           B_{b,k}[e] \in \mathbb R^{d_\text{out}\times d_\text{in}}

and the three operations are

.. math::  y[\text{dst}_e, o_b{:}o_b{+}d_\text{out}] \mathrel{+}= \tilde K_b[e]\,
           g[\text{src}_e, i_b{:}i_b{+}d_\text{in}]                    \quad(\text{contract})

   \bar g[\text{src}_e, i_b{:}] \mathrel{+}= \tilde K_b[e]^T\, \bar y[\text{dst}_e, o_b{:}]
   \quad(\text{contract\_adjoint\_features})

   \bar w[\text{weight\_offset}+k] = \sum_e \bar y[\text{dst}_e, o_b{:}]^T B_{b,k}[e]\,
   g[\text{src}_e, i_b{:}]   \quad(\text{contract\_adjoint\_weights})

Per target, edges are summed in increasing edge order (``np.add.at`` is sequential), so the
result is deterministic. Blocks sharing (basis_offset, n_basis, d_out, d_in) are processed
together (one einsum per irreps pair).
"""
from __future__ import annotations

import numpy as np

__all__ = ["BLOCK_COLUMNS", "check_table", "block_groups", "contract",
           "contract_adjoint_features", "contract_adjoint_weights"]

#: the columns of a block table, in order
BLOCK_COLUMNS = ("out_offset", "in_offset", "d_out", "d_in", "n_basis", "weight_offset",
                 "basis_offset")
_FLOATS = (np.float32, np.float64)


def check_table(table) -> np.ndarray:
    """The block table as an (n_blocks, 7) int64 array, with non-negative entries."""
    t = np.asarray(table)
    if t.ndim != 2 or t.shape[1] != len(BLOCK_COLUMNS) or t.dtype.kind not in "iu":
        raise ValueError(f"table must be an integer array (n_blocks, 7) with columns "
                         f"{BLOCK_COLUMNS}, got dtype {t.dtype} shape {t.shape}")
    t = t.astype(np.int64, copy=False)
    if len(t) and (t.min() < 0 or (t[:, 2:5] == 0).any()):
        raise ValueError("table: offsets must be >= 0 and d_out, d_in, n_basis >= 1")
    return t


def _float(a, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype not in _FLOATS or a.ndim != ndim:
        raise ValueError(f"{name} must be a float32/float64 array with {ndim} dimensions, "
                         f"got dtype {a.dtype} shape {a.shape}")
    return a


def _edges(src, dst, E: int, n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    s, d = np.asarray(src), np.asarray(dst)
    for name, a, n in (("src", s, n_src), ("dst", d, n_dst)):
        if a.ndim != 1 or a.dtype.kind not in "iu" or len(a) != E:
            raise ValueError(f"{name} must be an integer array of length E={E} (one index per "
                             f"edge), got dtype {a.dtype} shape {a.shape}")
        if E and (a.min() < 0 or a.max() >= n):
            raise ValueError(f"{name}: node indices must lie in [0, {n}), got range "
                             f"[{a.min()}, {a.max()}]")
    return s.astype(np.int64, copy=False), d.astype(np.int64, copy=False)


def _check_sizes(t: np.ndarray, basis: np.ndarray, n_weights: int, c_in: int, c_out: int):
    if not len(t):
        return
    end = t[:, 6] + t[:, 4] * t[:, 2] * t[:, 3]
    checks = (("basis", end.max(), basis.shape[1], "basis columns (n_entries)"),
              ("weights", (t[:, 5] + t[:, 4]).max(), n_weights, "weights"),
              ("g", (t[:, 1] + t[:, 3]).max(), c_in, "input channels (C_in_irr)"),
              ("y", (t[:, 0] + t[:, 2]).max(), c_out, "output channels (C_out_irr)"))
    for name, need, have, what in checks:
        if need > have:
            raise ValueError(f"{name}: the block table needs {need} {what}, got {have}")


def _groups(t: np.ndarray):
    """Row indices of the blocks sharing (basis_offset, n_basis, d_out, d_in), with those."""
    key = t[:, [6, 4, 2, 3]]
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    for u, (boff, n, do, di) in enumerate(uniq.tolist()):
        yield np.flatnonzero(inv.ravel() == u), boff, n, do, di


def block_groups(table) -> list:
    """The table grouped by irreps pair, for vectorised front ends: per distinct
    (basis_offset, n_basis, d_out, d_in), (out channels (blocks·d_out,), in channels
    (blocks·d_in,), weight indices (blocks, n_basis), basis_offset, n_basis, d_out, d_in)."""
    t = check_table(table)
    return [(_cols(t[rows, 0], do), _cols(t[rows, 1], di),
             t[rows, 5][:, None] + np.arange(n), boff, n, do, di)
            for rows, boff, n, do, di in _groups(t)]


def _cols(offsets: np.ndarray, d: int) -> np.ndarray:
    """(len(offsets)·d,) channel indices offsets[b] + r, block-major."""
    return (offsets[:, None] + np.arange(d)).ravel()


def _pair_basis(basis: np.ndarray, boff: int, n: int, do: int, di: int) -> np.ndarray:
    return basis[:, boff:boff + n * do * di].reshape(len(basis), n, do, di)


def contract(table, basis, weights, g, src, dst, n_targets: int) -> np.ndarray:
    """y (n_targets, C_out_irr): Σ over edges of K̃_b[e] @ g[src[e], block]  (see module).

    ``g`` (n_sources, C_in_irr), ``weights`` (n_weights,), ``basis`` (E, n_entries), all one
    float dtype; ``src`` / ``dst`` (E,) integer node indices. C_out_irr is the largest
    out_offset + d_out of the table."""
    t = check_table(table)
    basis, g = _float(basis, "basis", 2), _float(g, "g", 2)
    w = _float(weights, "weights", 1)
    _same_dtype(basis=basis, g=g, weights=w)
    s, d = _edges(src, dst, len(basis), len(g), int(n_targets))
    c_out = int((t[:, 0] + t[:, 2]).max()) if len(t) else 0
    _check_sizes(t, basis, len(w), g.shape[1], c_out)
    msg = np.zeros((len(basis), c_out), basis.dtype)
    gs = g[s]
    for rows, boff, n, do, di in _groups(t):
        B = _pair_basis(basis, boff, n, do, di)
        W = w[t[rows, 5][:, None] + np.arange(n)]  # (blocks, n)
        x = gs[:, _cols(t[rows, 1], di)].reshape(len(s), len(rows), di)
        m = np.einsum("ekrc,bk,ebc->ebr", B, W, x, optimize=True)
        np.add.at(msg, (slice(None), _cols(t[rows, 0], do)), m.reshape(len(s), len(rows) * do))
    y = np.zeros((int(n_targets), c_out), basis.dtype)
    np.add.at(y, d, msg)
    return y


def contract_adjoint_features(table, basis, weights, grad_y, src, dst,
                              n_sources: int) -> np.ndarray:
    """grad_g (n_sources, C_in_irr): Σ over edges of K̃_b[e]ᵀ @ grad_y[dst[e], block]; the
    exact transpose of :func:`contract` in g. C_in_irr is the largest in_offset + d_in."""
    t = check_table(table)
    basis, gy = _float(basis, "basis", 2), _float(grad_y, "grad_y", 2)
    w = _float(weights, "weights", 1)
    _same_dtype(basis=basis, grad_y=gy, weights=w)
    s, d = _edges(src, dst, len(basis), int(n_sources), len(gy))
    c_in = int((t[:, 1] + t[:, 3]).max()) if len(t) else 0
    _check_sizes(t, basis, len(w), c_in, gy.shape[1])
    msg = np.zeros((len(basis), c_in), basis.dtype)
    ys = gy[d]
    for rows, boff, n, do, di in _groups(t):
        B = _pair_basis(basis, boff, n, do, di)
        W = w[t[rows, 5][:, None] + np.arange(n)]
        x = ys[:, _cols(t[rows, 0], do)].reshape(len(d), len(rows), do)
        m = np.einsum("ekrc,bk,ebr->ebc", B, W, x, optimize=True)
        np.add.at(msg, (slice(None), _cols(t[rows, 1], di)), m.reshape(len(d), len(rows) * di))
    out = np.zeros((int(n_sources), c_in), basis.dtype)
    np.add.at(out, s, msg)
    return out


def contract_adjoint_weights(table, basis, grad_y, g, src, dst, n_weights: int) -> np.ndarray:
    """grad_w (n_weights,): Σ_e grad_y[dst[e], block]ᵀ B_{b,k}[e] g[src[e], block] at
    weight_offset + k; the exact transpose of :func:`contract` in the weights."""
    t = check_table(table)
    basis, gy, g = (_float(basis, "basis", 2), _float(grad_y, "grad_y", 2),
                    _float(g, "g", 2))
    _same_dtype(basis=basis, grad_y=gy, g=g)
    s, d = _edges(src, dst, len(basis), len(g), len(gy))
    _check_sizes(t, basis, int(n_weights), g.shape[1], gy.shape[1])
    out = np.zeros(int(n_weights), basis.dtype)
    gs, ys = g[s], gy[d]
    for rows, boff, n, do, di in _groups(t):
        B = _pair_basis(basis, boff, n, do, di)
        x = gs[:, _cols(t[rows, 1], di)].reshape(len(s), len(rows), di)
        y = ys[:, _cols(t[rows, 0], do)].reshape(len(d), len(rows), do)
        gw = np.einsum("ekrc,ebr,ebc->bk", B, y, x, optimize=True)
        np.add.at(out, t[rows, 5][:, None] + np.arange(n), gw)
    return out


def _same_dtype(**arrays):
    dtypes = {k: a.dtype for k, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"basis, features and weights must share one float dtype, got "
                         f"{', '.join(f'{k}: {v}' for k, v in dtypes.items())}")
