"""Launch configuration of the v2 kernels (``kernels/expand_v2.cu``, ``method="fused"``).

:func:`launch_config_v2` picks grid, block, tiles and dynamic shared memory for the forward
and the adjoint of a :class:`~cupysteer.backends.packing.PackedPlan` on one device, given its
opt-in shared-memory limit per CUDA block (``cudaDevAttrMaxSharedMemoryPerBlockOptin``:
64 KiB on sm_75, 163 KiB on sm_80, 227 KiB on sm_90; 48 KiB without opting in) and its SM
count. Pure NumPy, shared by the CuPy backend and the CPU emulation.

Forward (shared = (max_weights + tile·(s_out·cols + rows·s_in))·item): among the layouts
that fit (row chunks, column tiles, point tiles), the one of least estimated time (the same
cost model as the adjoint: the fill repeated per column tile when Q_in ≠ I, the change of
basis, barriers; more CUDA blocks than SMs only where it pays).

Forward of irreps-only launches (:func:`is_direct`: Q_in = Q_out = I on every field pair and
every template's weight positions the identity, e.g. SO(2)/SO(3) irreps fields): the kernel
``expand_forward_direct_v2`` (``kernel="direct"``; shared = 0): no per-block staging of the
weights (read in place, beside the basis loads: the v2 forward's two dependent L2 latencies
per block are gone), four elements' loads in flight per thread, ``__launch_bounds__(128, 8)``
(64 registers, eight CUDA blocks per SM against the general forward's six); the point tile
is the one of least estimated latency-bound time (:func:`_forward_direct`). In the cost model
(benchmarks/cost_model.py) this is what v1 was predicted faster on (SO(2) irreps 0–3 ×8 7×7,
SO(3) irreps 0–3 ×4 7³): the direct kernel beats v1 there (BENCHMARKS.md).

Adjoint (shared = 2·ext·s_in·tile·item + max_weights·4): every (row chunk, weight pass,
point tile) is one CUDA block; a small cost model in cycles picks the layout: total work /
(SMs·threads) + a share per CUDA block + the largest block's work / threads + its fixed
latency (throughput plus critical path), where the work is
G̃ = Q_outᵀ G Q_in (recomputed by every pass) plus the weights' dot products (lanes along
points: padded to 32 points per warp instruction). With more than one tile a second kernel
sums the tiles' partial gradients in a fixed order.

``vec`` (forward): 2 when every basis address the fill reads as a pair is provably even
(all entry offsets, element strides and tile starts even, and the basis array's alignment
checked by the backend), else 1.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .kernel_source import adjoint_args_v2, forward_args_v2, reduce_args_v2
from .launch import (
    MIN_TILE,
    PreparedLaunch,
    PreparedTwoPass,
    _adjoint_chunks,
    _row_chunks,
    _too_large,
)
from .packing import BLK, ENT, FP, PackedPlan

__all__ = ["LaunchConfigV2", "launch_config_v2", "prepare_v2", "is_direct", "SMS_DEFAULT",
           "WARP"]

#: SMs assumed when the device does not say (an H100/H200 SXM)
SMS_DEFAULT = 132
WARP = 32


@dataclass(frozen=True)
class LaunchConfigV2:
    grid: tuple
    block: tuple
    shared_mem: int  # bytes of dynamic shared memory (above 48 KiB: the kernel opts in)
    tile: int  # points per tile
    rows: int = 0  # irreps rows per chunk
    cols: int = 0  # forward: output columns per CUDA block
    col_tiles: int = 1  # forward
    max_weights: int = 0  # forward: staged weights; adjoint: weight slots per CUDA block
    passes: int = 1  # adjoint: CUDA blocks sharing one chunk's weights
    tiles: int = 1  # adjoint: point tiles (> 1: partial sums and a second pass)
    vec: int = 1  # forward: points per basis load in the fill (1 or 2)
    reduce_grid: tuple = ()  # adjoint with tiles > 1: grid of expand_reduce_v2
    kernel: str = "forward"  # forward: 'forward' (expand_forward_v2) or 'direct'


def _even_basis(packed: PackedPlan, tile: int) -> bool:
    e = packed.entries
    return bool(len(e)) and tile % 2 == 0 and not (e[:, ENT.basis_offset] % 2).any() \
        and not (e[:, ENT.estride] % 2).any()


def _spread(P: int, tile: int) -> tuple:
    tiles = -(-P // tile)
    return -(-P // tiles), tiles


def _cost(total: float, nblocks: int, block: float, shared: int, sms: int,
          threads: int, per_sm: int = 6) -> float:
    """Estimated cycles of a launch: the larger of the work spread over the SMs it can use
    (at most one per CUDA block) and the waves of CUDA blocks (resident per SM: ``per_sm``,
    six by the registers of ``__launch_bounds__(128, 6)``, eight for the direct kernel's
    ``(128, 8)``, fewer when shared memory is the limit) times a block's critical path, plus
    a small share of SM time per CUDA block."""
    used = max(1, min(sms, nblocks))
    resident = max(1, min(per_sm, _SMEM_PER_SM // (shared + 1024)))
    waves = -(-nblocks // (sms * resident))
    return max(total / (used * threads), waves * (block + _BLOCK_LATENCY)) \
        + nblocks * _BLOCK_SHARE / used


def _tiles_to_try(P: int, fit: int, smallest: int = WARP) -> list:
    """Point tiles worth trying: the most that fit, and smaller ones down to ``smallest``
    (the adjoint: one warp of points)."""
    top = min(P, fit)
    return sorted({top} | {t for t in (256, 128, 64, 32, 16, 8) if smallest <= t < top}
                  | {-(-P // k) for k in (2, 3, 4) if 8 <= -(-P // k) < top})


def is_direct(packed: PackedPlan) -> bool:
    """Whether the forward may use ``expand_forward_direct_v2``: Q_in = Q_out = I on every
    field pair (irreps fields) and every template's weight positions are the identity
    (``positions[ws + j] == j``: the weights are read in place, in slot order)."""
    fp, blk = packed.fieldpairs, packed.blocks
    if not len(fp) or (fp[:, FP.in_cob] >= 0).any() or (fp[:, FP.out_cob] >= 0).any():
        return False
    for b0, b1 in np.unique(fp[:, [FP.block_begin, FP.block_end]], axis=0):
        if b0 < b1:
            ws = blk[b0, BLK.weight_offset]
            ns = blk[b1 - 1, BLK.weight_offset] + blk[b1 - 1, BLK.count] - ws
            if not np.array_equal(packed.positions[ws:ws + ns], np.arange(ns)):
                return False
    return True


def _forward_direct(packed, batch, sms, threads):
    """The direct kernel's layout: whole columns, no shared memory; the point tile of least
    estimated time. A thread's items (entry, point) run in series, each a chain of its
    entry's elements whose basis and weight loads come from L2 (_L2_CHAIN cycles per element,
    four in flight) after its entry row (_ITEM cycles), so a block's critical path is
    ⌈entries·tile / threads⌉ rounds of the longest chain: small tiles where the fill is
    latency-bound, as long as the blocks fit the SMs."""
    fp, ent, eptr = packed.fieldpairs, packed.entries, packed.entry_ptr
    P = packed.max_points
    b0, b1 = fp[:, FP.block_begin], fp[:, FP.block_end]
    nent = (eptr[b1] - eptr[b0]).astype(np.float64)
    cnt = np.concatenate([[0.0], np.cumsum(ent[:, ENT.count].astype(np.float64))])
    elems = cnt[eptr[b1]] - cnt[eptr[b0]]
    longest = float(ent[:, ENT.count].max()) if len(ent) else 0.0
    pts = fp[:, FP.points].astype(np.float64)
    best = None
    for tile in _tiles_to_try(P, P, smallest=8):
        tile, tiles = _spread(P, tile)
        nblocks = len(fp) * tiles * batch
        block = -(-float(nent.max()) * tile // threads) * (longest * _L2_CHAIN + _ITEM) \
            + _SYNC
        key = (_cost(batch * float((pts * elems).sum()), nblocks, block, 0, sms, threads,
                     per_sm=8), -tile)
        if best is None or key < best[0]:
            best = (key, tile, tiles)
    _, tile, tiles = best
    vec = 2 if _even_basis(packed, tile) else 1
    return dict(grid=(packed.num_fieldpairs, tiles, batch), tile=tile,
                rows=packed.max_out_size, cols=packed.max_in_size, col_tiles=1,
                max_weights=0, vec=vec, kernel="direct"), 0


def _forward(packed, batch, item, limit, sms, threads):
    if is_direct(packed):
        return _forward_direct(packed, batch, sms, threads)
    P, so, si = packed.max_points, packed.max_out_size, packed.max_in_size
    fp, blk = packed.fieldpairs, packed.blocks
    slots = packed.max_fieldpair_weights
    qin_any = bool((fp[:, FP.in_cob] >= 0).any())
    qin, qout = fp[:, FP.in_cob] >= 0, fp[:, FP.out_cob] >= 0
    per_block = (blk[:, BLK.count] * blk[:, BLK.d_out] * blk[:, BLK.d_in]).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(per_block)])
    fill = csum[fp[:, FP.block_end]] - csum[fp[:, FP.block_begin]]
    fso, fsi = fp[:, FP.out_size].astype(np.float64), fp[:, FP.in_size].astype(np.float64)
    pts = fp[:, FP.points].astype(np.float64)
    change = qin * fso * fsi * fsi + qout * fso * fso * fsi  # per point, all columns
    best, per_point_min = None, None
    max_col_tiles = -(-si // min(si, MIN_TILE))
    for cols in sorted({-(-si // n) for n in range(1, max_col_tiles + 1)}, reverse=True):
        nct = -(-si // cols)
        for rows in _row_chunks(so):
            per_point = (so * cols + (min(rows, so) * si if qin_any else 0)) * item
            per_point_min = per_point if per_point_min is None else min(per_point_min, per_point)
            fit = (limit - slots * item) // per_point
            if fit < 1:
                continue
            chunks = -(-so // rows)
            for tile in _tiles_to_try(P, fit, smallest=8):
                tile, tiles = _spread(P, tile)
                total = float((pts * (fill * np.where(qin, nct, 1) + change)).sum())
                nblocks = len(fp) * tiles * nct * batch
                # a thread's items run in series, each waiting on its loads (the fill's
                # basis loads come from L2): _LOAD_CHAIN cycles per multiply-add on the path
                block = _LOAD_CHAIN * tile * float((fill + change / nct).max()) / threads \
                    + 3 * chunks * _SYNC
                shared = tile * per_point + slots * item
                key = (_cost(batch * total, nblocks, block, shared, sms, threads), nct, -rows,
                       -tile)
                if best is None or key < best[0]:
                    best = (key, (tile, tiles, rows, cols, nct, per_point))
    if best is None:
        raise _too_large(packed, "forward", per_point_min, slots * item, item, limit)
    tile, tiles, rows, cols, nct, per_point = best[1]
    vec = 2 if _even_basis(packed, tile) else 1
    return dict(grid=(packed.num_fieldpairs, tiles * nct, batch), tile=tile, rows=rows,
                cols=cols, col_tiles=nct, max_weights=slots, vec=vec), \
        tile * per_point + slots * item


def _adjoint_work(packed):
    """Per field pair: (G̃ multiply-adds per point and chunk row, dot-product multiply-adds
    per point) as arrays, and the largest d_out·d_in."""
    fp, blk = packed.fieldpairs, packed.blocks
    so, si = fp[:, FP.out_size], fp[:, FP.in_size]
    g = si * ((fp[:, FP.out_cob] >= 0) * so + (fp[:, FP.in_cob] >= 0) * si + 1)
    per_block = (blk[:, BLK.count] * blk[:, BLK.d_out] * blk[:, BLK.d_in]).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(per_block)])
    dots = csum[fp[:, FP.block_end]] - csum[fp[:, FP.block_begin]]
    dd = int((blk[:, BLK.d_out] * blk[:, BLK.d_in]).max()) if len(blk) else 1
    return g.astype(np.float64), dots, dd


def _adjoint(packed, batch, item, limit, sms, threads):
    P, so, si = packed.max_points, packed.max_out_size, packed.max_in_size
    live = packed.fieldpairs[:, FP.block_begin] < packed.fieldpairs[:, FP.block_end]
    g, dots, dd = _adjoint_work(packed)
    pts = packed.fieldpairs[:, FP.points].astype(np.float64)
    best, per_point_min, fixed_min = None, None, None
    for rows in _row_chunks(so):
        ext, slots = _adjoint_chunks(packed, rows)
        chunks = -(-packed.fieldpairs[:, FP.out_size] // rows)
        per_point = 2 * ext * si * item
        if per_point_min is None or per_point < per_point_min:
            per_point_min, fixed_min = per_point, min(slots, 1) * 4
        for passes in (1, 2, 4, 8, 16, 32):
            weights = -(-slots // passes)
            if passes > 1 and -(-slots // (passes // 2)) == weights:
                break
            fit = (limit - weights * 4) // per_point
            if fit < 1:
                continue
            for tile in _tiles_to_try(P, fit):
                tile, tiles = _spread(P, tile)
                lanes = -(-tile // WARP) * WARP / tile  # lanes idle past the last point
                gwork = float((live * g * ext * pts * chunks * passes).sum())
                total = gwork + float(dots.sum()) * lanes
                nblocks = int(live.sum() * chunks.max() * passes * tiles) * batch
                block = ext * si * tile * (so + si + 1) / threads \
                    + weights * dd * -(-tile // WARP) / (threads // WARP)
                cost = _cost(batch * total, nblocks, block, tile * per_point + weights * 4,
                             sms, threads) \
                    + (batch * dim_cost(packed) / sms if tiles > 1 else 0)
                key = (cost, tiles, passes, -rows)
                if best is None or key < best[0]:
                    best = (key, dict(tile=tile, tiles=tiles, rows=rows, max_weights=weights,
                                      passes=passes), tile * per_point + weights * 4)
    if best is None:
        raise _too_large(packed, "adjoint", per_point_min, fixed_min, item, limit)
    _, params, shared = best
    nct = -(-so // params["rows"]) * params["passes"] * params["tiles"]
    params["grid"] = (packed.num_fieldpairs, nct, batch)
    if params["tiles"] > 1:
        params["reduce_grid"] = (-(-packed.dim // threads), 1, batch)
    return params, shared


#: cycles a CUDA block spends on fixed latency (table loads, barriers), and the share of an
#: SM's time that costs when ~8 blocks are resident and overlap
_BLOCK_LATENCY, _BLOCK_SHARE = 1500.0, 50.0
#: shared memory per SM (sm_90: 228 KiB, 1 KiB of it reserved per CUDA block)
_SMEM_PER_SM = 228 * 1024
#: cycles of one barrier
_SYNC = 40.0
#: cycles per multiply-add on a forward block's critical path (dependent loads)
_LOAD_CHAIN = 8.0
#: direct kernel: cycles per element of a fill item's chain (an L2 latency over four loads
#: in flight) and per item (its entry row, index arithmetic)
_L2_CHAIN, _ITEM = 68.0, 80.0


def dim_cost(packed) -> float:
    """SM-cycles of the second pass per batch item (a load and an add per weight and tile,
    ~4 per cycle per SM), plus its launch."""
    return packed.dim / 4.0 + _BLOCK_LATENCY


def launch_config_v2(packed: PackedPlan, kind: str, batch: int, accumulate_bytes: int,
                     threads: int = 128, shared_limit: int = 48 * 1024,
                     sms: int = SMS_DEFAULT) -> LaunchConfigV2:
    """Grid, block, tiles and shared memory of the v2 ``kind`` ('forward' or 'adjoint') for
    ``batch`` items on a device allowing ``shared_limit`` bytes of dynamic shared memory per
    CUDA block (its opt-in limit) with ``sms`` SMs. Raises ValueError naming the sizes and the
    remedy when nothing fits, or the grid would exceed CUDA's limits."""
    if kind not in ("forward", "adjoint"):
        raise ValueError(f"kind must be 'forward' or 'adjoint', got {kind!r}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if threads % WARP or not WARP <= threads <= 128:
        raise ValueError(f"threads must be a multiple of 32 in [32, 128] (the v2 kernels use "
                         f"whole warps and __launch_bounds__(128)), got {threads}")
    fp = packed.fieldpairs
    span = int((fp[:, FP.out_size] * fp[:, FP.in_channels] * fp[:, FP.points]).max())
    if span >= 2 ** 31:
        raise ValueError(f"a field pair spans {span} filter entries (s_out × C_in × P), more "
                         f"than the v2 kernels' 32-bit offsets hold; use method='fused_v1' or "
                         f"fewer input channels per layer")
    if kind == "forward":
        params, shared = _forward(packed, batch, accumulate_bytes, shared_limit, sms, threads)
    else:
        params, shared = _adjoint(packed, batch, accumulate_bytes, shared_limit, sms, threads)
    grid = params.pop("grid")
    if grid[0] > 2 ** 31 - 1 or grid[2] > 65535:
        raise ValueError(f"launch grid {grid} exceeds CUDA's limits (x < 2^31, y and z at most "
                         f"65535): expand at most 65535 batch items per call")
    if grid[1] > 65535:
        raise ValueError(f"launch grid {grid} exceeds CUDA's limits (y at most 65535): "
                         f"{packed.max_points} points in tiles of {params['tile']} make too "
                         f"many tiles; use float32 or smaller fields")
    return LaunchConfigV2(grid, (threads, 1, 1), int(shared), **params)


def _address(a) -> int:
    """Device address of a CuPy array (the CPU stand-in's arrays: their host address)."""
    ptr = getattr(getattr(a, "data", None), "ptr", None)
    return int(ptr) if ptr is not None else int(a.ctypes.data)


def prepare_v2(kernel, cupy, t: dict, packed: PackedPlan, cfg: LaunchConfigV2, kind: str,
               out_dtype, batch: int, dtype):
    """The prepared v2 launch of ``kind`` (the CuPy backend's hot path): ``kernel(name,
    shared_mem)`` gives the opted-in kernel ('forward', 'adjoint' or 'reduce'), ``t`` the
    plan tables on the device. The forward keeps ``vec = 2`` only if the basis array's
    address is a multiple of two elements (the offsets were proven even by
    :func:`launch_config_v2`); the adjoint with several point tiles is a
    :class:`~cupysteer.backends.launch.PreparedTwoPass` through a (batch, tiles, dim)
    workspace."""
    p, item = packed, np.dtype(dtype).itemsize
    data, out = object(), object()
    tables = (t["basis"], t["cob"], t["fieldpairs"], t["blocks"], t["positions"])
    if kind == "forward":
        if cfg.vec == 2 and _address(t["basis"]) % (2 * item):
            cfg = dataclasses.replace(cfg, vec=1)
        args = forward_args_v2(data, p.dim, *tables, t["entries"], t["entry_ptr"], out,
                               p.filter_size, cfg)
        return PreparedLaunch(kernel(cfg.kernel, cfg.shared_mem), cfg, args, data, out,
                              out_dtype)
    kern = kernel("adjoint", cfg.shared_mem)
    if cfg.tiles == 1:  # the weight gradient written directly
        args = adjoint_args_v2(data, p.filter_size, *tables, out, p.dim, p.dim, cfg)
        return PreparedLaunch(kern, cfg, args, data, out, out_dtype)
    args = adjoint_args_v2(data, p.filter_size, *tables, out, cfg.tiles * p.dim, p.dim, cfg)
    first = PreparedLaunch(kern, cfg, args, data, out, out_dtype)
    red = dataclasses.replace(cfg, grid=cfg.reduce_grid, shared_mem=0)
    second = PreparedLaunch(kernel("reduce", 0), red, reduce_args_v2(data, cfg.tiles, p.dim, out),
                            data, out, out_dtype)
    shape = (batch, cfg.tiles, p.dim)
    return PreparedTwoPass(first, second, lambda: cupy.empty(shape, dtype))
