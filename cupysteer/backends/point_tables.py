"""Host-side tables of the point-convolution kernels (``kernels/point_conv.cu``): the
checked block table and edge lists, the CSRs of edges by node, the channel tables and the
launch configuration of ``point_segments``. Pure NumPy; used by
:mod:`cupysteer.backends.point_cupy`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import point_numpy
from .point_numpy import BLOCK_COLUMNS

__all__ = ["CHANNEL_COLUMNS", "THREADS", "PointConfig", "segment_config", "check_table",
           "channel_table", "csr", "nodes", "host"]

_COL = {name: i for i, name in enumerate(BLOCK_COLUMNS)}
#: the channel table's columns (one row per (channel, block covering it), see
#: :func:`channel_table`)
CHANNEL_COLUMNS = ("basis", "nrun", "rstride", "kstride", "nbasis", "weight", "xoff")
#: threads per CUDA block (the kernels' __launch_bounds__ is (128, 8))
THREADS = 128


@dataclass(frozen=True)
class PointConfig:
    """Launch of ``point_segments``: ``nodes_per_block`` nodes per CUDA block, ``split``
    lanes per output element (partial sums in ``shared_mem`` bytes when split > 1)."""
    grid: tuple
    block: tuple
    shared_mem: int
    nodes_per_block: int
    split: int


def segment_config(n_nodes: int, width: int, max_degree: int, item: int,
                   threads: int = THREADS) -> PointConfig:
    """Lanes per element: a power of two up to max_degree / 8 that leaves every element of
    one node a lane (one lane when width ≥ threads); then as many nodes per CUDA block as
    fill its threads. A function of the shapes and the degrees only (reproducible)."""
    width = max(width, 1)
    split = 1
    while (split * 2 * width <= threads and split * 2 <= max(1, max_degree // 8)):
        split *= 2
    npb = max(1, threads // (width * split))
    grid = (max(1, -(-n_nodes // npb)), 1, 1)
    if grid[0] > 2 ** 31 - 1:
        raise ValueError(f"{n_nodes} nodes need {grid[0]} CUDA blocks, more than CUDA's 2^31-1")
    return PointConfig(grid, (threads, 1, 1), threads * item if split > 1 else 0, npb, split)


def host(x):
    """A host copy (NumPy, CuPy or anything array-like)."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


def nodes(x, name: str, n: int, count: str) -> np.ndarray:
    """``x`` as int64 (E,) node indices in [0, n), checked."""
    a = host(x)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (E,), got shape {a.shape}")
    if n < 0:
        raise ValueError(f"{count} must be >= 0, got {n}")
    if len(a) and (a.min() < 0 or a.max() >= n):
        bad = int(a.min() if a.min() < 0 else a.max())
        raise ValueError(f"{name} holds node {bad} outside [0, {n}) ({count} = {n})")
    return np.ascontiguousarray(a, np.int64)


def check_table(table) -> np.ndarray:
    """The block table as int64 (n_blocks, 7) on the host, checked by the NumPy reference's
    :func:`~cupysteer.backends.point_numpy.check_table` (one contract, one set of errors)."""
    return np.ascontiguousarray(point_numpy.check_table(host(table)), np.int64)


def csr(keys: np.ndarray, n: int):
    """(ptr (n+1,), order): ``order`` lists the indices stably sorted by key."""
    order = np.argsort(keys, kind="stable").astype(np.int64)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, order


def channel_table(table: np.ndarray, adjoint: bool, width: int):
    """(ptr (width+1,), rows (n, 7)): for every channel (output channel of the forward, input
    channel of the feature adjoint), one row per block covering it, in block order, with
    the columns :data:`CHANNEL_COLUMNS` — where the channel's row (column) of the block's
    basis starts (``basis``), the length and stride of the sum (``nrun``, ``rstride``), the
    stride between basis elements (``kstride`` = d_out·d_in), ``nbasis``, the first weight
    (``weight``) and the offset of the summed vector (``xoff``: in_offset / out_offset)."""
    c = {k: table[:, _COL[k]] for k in BLOCK_COLUMNS}
    off, size = (c["in_offset"], c["d_in"]) if adjoint else (c["out_offset"], c["d_out"])
    blocks = np.repeat(np.arange(len(table), dtype=np.int64), size)
    fixed = np.arange(int(size.sum()), dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
    ptr, order = csr(off[blocks] + fixed, width)
    b, f = blocks[order], fixed[order]
    d_out, d_in = c["d_out"][b], c["d_in"][b]
    rows = np.stack([c["basis_offset"][b] + (f if adjoint else f * d_in),
                     d_out if adjoint else d_in, d_in if adjoint else np.ones_like(b),
                     d_out * d_in, c["n_basis"][b], c["weight_offset"][b],
                     (c["out_offset"] if adjoint else c["in_offset"])[b]], 1)
    return ptr, rows.reshape(-1, len(CHANNEL_COLUMNS)).astype(np.int64)
