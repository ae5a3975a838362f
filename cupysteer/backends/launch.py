"""Launch configuration of the kernels of ``kernels/expand.cu`` for a packed plan.

:func:`launch_config` picks the grid, the CUDA block, the tiles and the dynamic shared memory
of a forward or adjoint launch over a :class:`~cupysteer.backends.packing.PackedPlan`. Pure
NumPy, shared by the CuPy backend and the CPU emulation used in tests.

Blocks may have any size (d_out, d_in ≥ 1) and fields any number of channels:
:func:`launch_config` tiles the work so that one CUDA block fits ``SHARED_MEMORY_LIMIT``
(48 KiB, the default without opting in):

* forward: ``tile`` points × ``cols`` output columns (``col_tiles`` tiles over the widest
  input field) per CUDA block, the irreps rows filled ``rows`` at a time;
* adjoint: chunks of ``rows`` irreps rows per CUDA block (blocks starting in the chunk), the
  chunk's weights accumulated in ``passes`` CUDA blocks of at most ``max_weights``.

Planar layers keep a single chunk and column tile (one CUDA block per field pair and point
tile); tiles are only split when a whole field pair cannot hold ``min(P, 8)`` points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .packing import BLK, FP, PackedPlan

__all__ = ["LaunchConfig", "launch_config", "PreparedLaunch", "PreparedTwoPass",
           "SHARED_MEMORY_LIMIT", "THREADS", "MIN_TILE"]

#: dynamic shared memory one CUDA block may use without opting in
SHARED_MEMORY_LIMIT = 48 * 1024
#: threads per CUDA block (within the kernels' ``__launch_bounds__``)
THREADS = 128


@dataclass(frozen=True)
class LaunchConfig:
    grid: tuple
    block: tuple
    shared_mem: int  # bytes of dynamic shared memory
    tile: int  # points per tile
    rows: int = 0  # irreps rows per chunk (>= every field's size: one chunk)
    cols: int = 0  # forward: output columns per CUDA block
    col_tiles: int = 1  # forward: column tiles over the widest input field
    max_weights: int = 0  # adjoint: weight accumulators per CUDA block
    passes: int = 1  # adjoint: CUDA blocks sharing one chunk's weights


#: smallest row chunk / column tile (or the whole field when smaller): below this the tiles
#: would mostly cost barriers
MIN_TILE = 8
#: points per CUDA block a whole field pair must hold before rows or columns are tiled
POINTS_TARGET = 8


def _row_chunks(max_out: int) -> list:
    return [max_out] + [r for r in (64, 32, 16, MIN_TILE) if r < max_out]


def _adjoint_chunks(packed: PackedPlan, rows: int) -> tuple:
    """(rows of G̃, weights) the largest adjoint chunk needs when chunks hold ``rows`` irreps
    rows: a field pair of at most ``rows`` channels is one chunk (all its rows and weights);
    a larger one has a chunk per ``rows`` rows: the blocks starting there, the rows they
    span."""
    fp, blk = packed.fieldpairs, packed.blocks
    live = fp[:, FP.block_begin] < fp[:, FP.block_end]
    if rows >= packed.max_out_size or not len(blk):
        return packed.max_out_size, packed.max_fieldpair_weights
    whole = live & (fp[:, FP.out_size] <= rows)
    ext, slots = 0, 0
    if whole.any():
        ext = int(fp[whole, FP.out_size].max())
        ends = fp[whole, FP.block_end] - 1
        first = fp[whole, FP.block_begin]
        slots = int((blk[ends, BLK.weight_offset] + blk[ends, BLK.count]
                     - blk[first, BLK.weight_offset]).max())
    split = live & ~whole
    if split.any():
        # chunk id of every block: (template, row // rows); templates are contiguous ranges
        tptr = packed.template_ptr
        tid = np.searchsorted(tptr, np.arange(len(blk)), side="right") - 1
        used = np.zeros(len(tptr) - 1, bool)
        used[np.searchsorted(tptr, fp[split, FP.block_begin], side="right") - 1] = True
        sel = used[tid]
        key = tid[sel] * (packed.max_out_size // rows + 1) + blk[sel, BLK.row] // rows
        _, inv = np.unique(key, return_inverse=True)
        n = inv.max() + 1
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.zeros(n, np.int64)
        np.minimum.at(lo, inv, blk[sel, BLK.row])
        np.maximum.at(hi, inv, blk[sel, BLK.row] + blk[sel, BLK.d_out])
        ext = max(ext, int((hi - lo).max()))
        slots = max(slots, int(np.bincount(inv, weights=blk[sel, BLK.count]).max()))
    return ext, slots


#: rough cost of one barrier of a CUDA block, in multiply-adds of the whole block
_SYNC_COST = 2048


def _forward_cost(packed: PackedPlan):
    """cost(tile, rows, cols, col_tiles) of the tiled forward, in multiply-adds: the K̃ fill
    repeated by every column tile after the first (when Q_in ≠ I), the work of every
    element of T and of the output (the same for all tilings, so left out), and the barriers
    of every CUDA block (two per chunk of rows, one more with Q_in ≠ I)."""
    fp, blk = packed.fieldpairs, packed.blocks
    live = fp[:, FP.block_begin] < fp[:, FP.block_end]
    fill = 0.0
    if live.any() and len(blk):
        per_block = (blk[:, BLK.count] * blk[:, BLK.d_out] * blk[:, BLK.d_in]) \
            .astype(np.float64)
        csum = np.concatenate([[0.0], np.cumsum(per_block)])
        f = live & (fp[:, FP.in_cob] >= 0)
        fill = float(((csum[fp[f, FP.block_end]] - csum[fp[f, FP.block_begin]])
                      * fp[f, FP.points]).sum())
    points, out_sizes, qin = fp[:, FP.points], fp[:, FP.out_size], fp[:, FP.in_cob] >= 0

    def cost(tile, rows, cols, nct):
        chunks = -(-out_sizes // rows)
        barriers = (-(-points // tile)) * nct * (1 + chunks * (2 + qin))
        return (nct - 1) * fill + _SYNC_COST * float(barriers.sum())
    return cost


def _too_large(packed, kind, per_point_min, fixed_min, item, limit):
    return ValueError(
        f"fields of size {packed.max_out_size}×{packed.max_in_size} need at least "
        f"{per_point_min + fixed_min} bytes of shared memory per point in the {kind} kernel "
        f"({item}-byte accumulation, smallest tiles: {min(packed.max_out_size, MIN_TILE)} "
        f"irreps rows × {min(packed.max_in_size, MIN_TILE)} columns), more than {limit} "
        f"(SHARED_MEMORY_LIMIT, the per-block default of CUDA); use float32 or smaller "
        f"fields (split a representation into several fields)")


def launch_config(packed: PackedPlan, kind: str, batch: int, accumulate_bytes: int,
                  threads: int = THREADS,
                  shared_limit: int = SHARED_MEMORY_LIMIT) -> LaunchConfig:
    """Grid, block, tiles and shared memory of ``kind`` ('forward' or 'adjoint').

    The whole field pair is one tile of rows and columns whenever it holds ``min(P, 8)``
    points within ``shared_limit`` bytes (planar layers: then the tile is the most points
    that fit, as ever): forward, two (s_out × s_in × tile) work arrays; adjoint, the same
    plus one accumulator per weight of a field pair. Larger fields (3D groups: up to 120
    channels with a dense Q, irreps up to 13 × 13) are tiled: the forward fills K̃ a chunk
    of ``rows`` irreps rows at a time into T (s_out × ``cols`` × tile) for one tile of
    output columns; the adjoint splits a field pair into chunks of irreps rows (G̃ on the rows
    the chunk's blocks span) and, if a chunk's weights still do not fit, into ``passes``.
    Among the layouts that fit, the one with the most points per tile (up to ``min(P, 8)``),
    then the fewest column tiles / passes, then the largest chunk wins. Raises ValueError,
    naming the sizes and the remedy, when even the smallest tiles do not fit.
    """
    if kind not in ("forward", "adjoint"):
        raise ValueError(f"kind must be 'forward' or 'adjoint', got {kind!r}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    item = accumulate_bytes
    P, so, si = packed.max_points, packed.max_out_size, packed.max_in_size
    cap = min(P, POINTS_TARGET)
    best = None
    if kind == "forward":
        per_point_min = None
        cands = []
        max_col_tiles = -(-si // min(si, MIN_TILE))
        for cols in sorted({-(-si // n) for n in range(1, max_col_tiles + 1)}, reverse=True):
            nct = -(-si // cols)
            for rows in _row_chunks(so):
                per_point = (so * cols + min(rows, so) * si) * item
                per_point_min = per_point if per_point_min is None else min(per_point_min,
                                                                            per_point)
                tile = min(P, shared_limit // per_point)
                if tile >= 1:
                    cands.append((tile, rows, cols, nct, per_point))
        if not cands:
            raise _too_large(packed, kind, per_point_min, 0, item, shared_limit)
        tile, rows, cols, nct, per_point = cands[0]
        if not (nct == 1 and rows >= so and tile >= cap):  # the whole field pair does not fit
            cost = _forward_cost(packed)
            tile, rows, cols, nct, per_point = min(cands, key=lambda c: cost(*c[:4]))
        best = (None, dict(tile=tile, rows=rows, cols=cols, col_tiles=nct), per_point, 0)
    else:
        per_point_min = fixed_min = None
        for rows in _row_chunks(so):
            ext, slots = _adjoint_chunks(packed, rows)
            per_point = 2 * ext * si * item
            if per_point_min is None or per_point < per_point_min:
                per_point_min, fixed_min = per_point, min(slots, 1) * item
            tile, passes, weights = (shared_limit - slots * item) // per_point, 1, slots
            if tile < 1:  # the chunk's weights in several passes
                tile = max(1, min(cap, (shared_limit // 2) // per_point))
                room = (shared_limit - tile * per_point) // item
                if room < 1:
                    continue
                passes = -(-slots // room)
                weights = -(-slots // passes)
                tile = (shared_limit - weights * item) // per_point
            tile = min(P, tile)
            key = (min(tile, cap), -passes, rows, tile)
            if best is None or key > best[0]:
                best = (key, dict(tile=tile, rows=rows, max_weights=weights, passes=passes),
                        per_point, weights * item)
        if best is None:
            raise _too_large(packed, kind, per_point_min, fixed_min, item, shared_limit)
    _, params, per_point, fixed = best
    # spread the points evenly over the tiles
    tiles = -(-P // params["tile"])
    params["tile"] = tile = -(-P // tiles)
    shared = tile * per_point + fixed
    if kind == "forward":
        grid = (packed.num_fieldpairs, tiles * params["col_tiles"], batch)
    else:
        grid = (packed.num_fieldpairs, -(-so // params["rows"]) * params["passes"], batch)
    if grid[0] > 2 ** 31 - 1 or grid[2] > 65535:
        raise ValueError(f"launch grid {grid} exceeds CUDA's limits (x < 2^31, y and z at most "
                         f"65535): expand at most 65535 batch items per call")
    if grid[1] > 65535:
        raise ValueError(f"launch grid {grid} exceeds CUDA's limits (y at most 65535): "
                         f"{P} points in tiles of {tile} make too many tiles; use float32 or "
                         f"smaller fields")
    params.pop("tile")
    return LaunchConfig(grid, (threads, 1, 1), int(shared), int(tile), **params)


class PreparedLaunch:
    """One launch with everything but its two arrays fixed: the kernel handle, the
    configuration and the argument tuple around the input and the output (the plan tables on
    one device and the scalars of :mod:`~cupysteer.backends.kernel_source`).

    Built once per (plan set, dtype, kind, output type, batch, device) by the CuPy backend;
    calling it is the hot path: two tuple concatenations and the kernel call.
    """

    __slots__ = ("kernel", "config", "out_dtype", "_head", "_mid", "_tail")

    def __init__(self, kernel, config: LaunchConfig, args: tuple, data, out, out_dtype):
        """``args``: the kernel's arguments with the objects ``data`` and ``out`` standing for
        the input and the output array (found by identity)."""
        i = next(k for k, a in enumerate(args) if a is data)
        j = next(k for k, a in enumerate(args) if a is out)
        if not i < j:
            raise ValueError("the kernel's input argument must come before its output")
        self.kernel, self.config, self.out_dtype = kernel, config, out_dtype
        self._head, self._mid, self._tail = args[:i], args[i + 1:j], args[j + 1:]

    def __call__(self, data, out) -> None:
        cfg = self.config
        self.kernel(cfg.grid, cfg.block, self._head + (data,) + self._mid + (out,) + self._tail,
                    shared_mem=cfg.shared_mem)


class PreparedTwoPass:
    """Two prepared launches through a workspace: ``first(data, work)`` then
    ``second(work, out)``, the workspace new from ``alloc()`` on every call (CuPy's pool:
    stream-ordered, so concurrent calls on different streams never share one). The v2
    adjoint with several point tiles: partial sums per tile, then their fixed-order sum."""

    __slots__ = ("first", "second", "config", "out_dtype", "_alloc")

    def __init__(self, first: PreparedLaunch, second: PreparedLaunch, alloc):
        self.first, self.second, self._alloc = first, second, alloc
        self.config, self.out_dtype = first.config, second.out_dtype

    def __call__(self, data, out) -> None:
        work = self._alloc()
        self.first(data, work)
        self.second(work, out)
