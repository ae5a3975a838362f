"""Device-side form of one or more expansion plans, and the kernels' launch configuration.

:func:`pack_plans` flattens plans (one layer, or a whole network) into the tables that
``kernels/expand.cu`` reads. It is pure NumPy, shared by the CuPy backend and the CPU
emulation used in tests, so both launch exactly the same thing.

``fieldpairs`` (F, 12) int64, one row per (output field, input field) of every layer,
including pairs without basis elements (their output is written as zeros)::

    out_offset, out_size, out_cob, in_offset, in_size, in_cob,
    block_begin, block_end, filter_base, in_channels, points, weight_base

``*_cob`` is the offset of the field's Q in ``cob``, or −1 for Q = I. ``filter_base`` is
the layer's offset in the flat output of one batch item; ``in_channels`` and ``points``
are the layer's C_in and P (the output of a layer is (C_out, C_in, P), C order).

``blocks`` (B, 7) int64, one row per irreps block of a *template*::

    row, col, d_out, d_in, count, basis_offset, weight_offset

Field pairs with the same block structure (typically all pairs of fields with the same two
representations) share one template: ``block_begin:block_end``, its blocks sorted by
(row, col) (the adjoint finds the blocks of a chunk of rows by binary search). ``row``/``col``
are relative to the field pair; the block's weights are
``weights[weight_base + positions[weight_offset + e]]`` for ``e < count`` and its basis is
``basis[basis_offset:]`` laid out (count, d_out, d_in, P). A field pair's weights are the
contiguous range ``weight_base + [0, n)`` (e2cnn's layout), its template's blocks are
contiguous and their position slots consecutive (in the sorted block order).

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
from typing import Sequence

import numpy as np

from .plan import ExpansionPlan

__all__ = ["PackedPlan", "pack_plans", "LaunchConfig", "launch_config",
           "FP_FIELDS", "BLK_FIELDS"]

FP_FIELDS, BLK_FIELDS = 12, 7
SHARED_MEMORY_LIMIT = 48 * 1024
THREADS = 128


@dataclass(frozen=True, eq=False)
class PackedPlan:
    fieldpairs: np.ndarray  # (F, 12) int64
    blocks: np.ndarray  # (B, 7) int64, templates
    positions: np.ndarray  # int64, weight positions relative to a field pair's weight_base
    basis: np.ndarray  # float64
    cob: np.ndarray  # float64
    dim: int  # total weights
    filter_size: int  # total output elements per batch item
    weight_offsets: tuple  # start of each layer in the weights
    filter_offsets: tuple  # start of each layer in the output
    filter_shapes: tuple  # (C_out, C_in, *filter_shape) per layer
    max_points: int
    max_out_size: int
    max_in_size: int
    max_fieldpair_weights: int
    # (n_templates + 1,) int64: template t is blocks[template_ptr[t]:template_ptr[t + 1]]
    template_ptr: np.ndarray = None

    @property
    def num_fieldpairs(self) -> int:
        return len(self.fieldpairs)


def pack_plans(plans: Sequence[ExpansionPlan]) -> PackedPlan:
    """Concatenate plans into one kernel descriptor (weights and filters laid end to end),
    sharing one block template between field pairs with the same block structure."""
    plans = list(plans)
    if not plans:
        raise ValueError("plans must contain at least one ExpansionPlan")
    fps, templ_blocks, templ_pos, basis, cob = [], [], [], [], []
    templates: dict = {}
    n_blocks = n_pos = 0
    w_off = f_off = b_off = c_off = 0
    weight_offsets, filter_offsets, shapes = [], [], []
    max_fp_w = 0
    for plan in plans:
        weight_offsets.append(w_off)
        filter_offsets.append(f_off)
        shapes.append((plan.out_size, plan.in_size) + tuple(plan.filter_shape))
        P = plan.num_points
        do, di = plan.pair_shape[plan.block_pair].T
        count = plan.pair_count[plan.block_pair]
        local = np.stack([plan.block_row - plan.out_field_offset[plan.block_out_field],
                          plan.block_col - plan.in_field_offset[plan.block_in_field],
                          do, di, count, plan.pair_offset[plan.block_pair] + b_off], 1)
        # blocks sorted by (row, col) inside each field pair (the plan keeps a field pair's
        # blocks contiguous)
        no, ni = len(plan.out_field_offset), len(plan.in_field_offset)
        ptr = plan.fieldpair_ptr
        begin, end, base = np.zeros(no * ni, np.int64), np.zeros(no * ni, np.int64), \
            np.zeros(no * ni, np.int64)
        fp_of = plan.block_out_field * ni + plan.block_in_field
        order = np.lexsort((local[:, 1], local[:, 0], fp_of))
        n_sorted = count[order]
        slot_ptr = np.concatenate([[0], np.cumsum(n_sorted)]).astype(np.int64)
        # the weights of every block in sorted order, laid end to end
        w_sorted = plan.weight_index[np.repeat(plan.block_weight[order] - slot_ptr[:-1], n_sorted)
                                     + np.arange(slot_ptr[-1])]
        for f in range(no * ni):
            b0, b1 = int(ptr[f]), int(ptr[f + 1])
            if b0 == b1:
                continue
            sel = order[b0:b1]
            w = w_sorted[slot_ptr[b0]:slot_ptr[b1]]
            base[f] = int(w.min())
            rel = w - base[f]
            max_fp_w = max(max_fp_w, len(w))
            key = (local[sel].tobytes(), rel.tobytes())
            if key not in templates:
                offs = n_pos + np.concatenate([[0], np.cumsum(count[sel])[:-1]])
                templ_blocks.append(np.concatenate([local[sel], offs[:, None]], 1))
                templ_pos.append(rel)
                templates[key] = (n_blocks, n_blocks + b1 - b0)
                n_blocks += b1 - b0
                n_pos += len(rel)
            begin[f], end[f] = templates[key]
        po, pi = np.divmod(np.arange(no * ni), ni)
        rep_cob = np.where(plan.rep_identity, -1, plan.rep_offset + c_off)
        fps.append(np.stack([
            plan.out_field_offset[po], plan.out_field_size[po], rep_cob[plan.out_field_rep[po]],
            plan.in_field_offset[pi], plan.in_field_size[pi], rep_cob[plan.in_field_rep[pi]],
            begin, end, np.full(no * ni, f_off), np.full(no * ni, plan.in_size),
            np.full(no * ni, P), base + w_off], 1))
        basis.append(plan.basis)
        cob.append(plan.change_of_basis)
        w_off += plan.dim
        f_off += plan.out_size * plan.in_size * P
        b_off += len(plan.basis)
        c_off += len(plan.change_of_basis)
    fieldpairs = np.ascontiguousarray(np.concatenate(fps), np.int64)
    blocks = np.concatenate(templ_blocks) if templ_blocks else np.zeros((0, BLK_FIELDS))
    positions = np.concatenate(templ_pos) if templ_pos else np.zeros(0)
    return PackedPlan(
        fieldpairs=fieldpairs, blocks=np.ascontiguousarray(blocks, np.int64),
        positions=np.ascontiguousarray(positions, np.int64),
        basis=np.concatenate(basis), cob=np.concatenate(cob), dim=w_off, filter_size=f_off,
        weight_offsets=tuple(weight_offsets), filter_offsets=tuple(filter_offsets),
        filter_shapes=tuple(shapes), max_points=max(p.num_points for p in plans),
        max_out_size=int(fieldpairs[:, 1].max()), max_in_size=int(fieldpairs[:, 4].max()),
        max_fieldpair_weights=max_fp_w,
        template_ptr=np.array(sorted({0, *(e for _, e in templates.values())}), np.int64))


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
    live = fp[:, 6] < fp[:, 7]
    if rows >= packed.max_out_size or not len(blk):
        return packed.max_out_size, packed.max_fieldpair_weights
    whole = live & (fp[:, 1] <= rows)
    ext, slots = 0, 0
    if whole.any():
        ext = int(fp[whole, 1].max())
        ends = fp[whole, 7] - 1
        slots = int((blk[ends, 6] + blk[ends, 4] - blk[fp[whole, 6], 6]).max())
    split = live & ~whole
    if split.any():
        # chunk id of every block: (template, row // rows); templates are contiguous ranges
        tptr = packed.template_ptr
        tid = np.searchsorted(tptr, np.arange(len(blk)), side="right") - 1
        used = np.zeros(len(tptr) - 1, bool)
        used[np.searchsorted(tptr, fp[split, 6], side="right") - 1] = True
        sel = used[tid]
        key = tid[sel] * (packed.max_out_size // rows + 1) + blk[sel, 0] // rows
        _, inv = np.unique(key, return_inverse=True)
        n = inv.max() + 1
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.zeros(n, np.int64)
        np.minimum.at(lo, inv, blk[sel, 0])
        np.maximum.at(hi, inv, blk[sel, 0] + blk[sel, 2])
        ext = max(ext, int((hi - lo).max()))
        slots = max(slots, int(np.bincount(inv, weights=blk[sel, 4]).max()))
    return ext, slots


#: rough cost of one barrier of a CUDA block, in multiply-adds of the whole block
_SYNC_COST = 2048


def _forward_cost(packed: PackedPlan):
    """cost(tile, rows, cols, col_tiles) of the tiled forward, in multiply-adds: the K̃ fill
    repeated by every column tile after the first (when Q_in ≠ I), the work of every
    element of T and of the output (the same for all tilings, so left out), and the barriers
    of every CUDA block (two per chunk of rows, one more with Q_in ≠ I)."""
    fp, blk = packed.fieldpairs, packed.blocks
    live = fp[:, 6] < fp[:, 7]
    fill = 0.0
    if live.any() and len(blk):
        per_block = (blk[:, 4] * blk[:, 2] * blk[:, 3]).astype(np.float64)
        csum = np.concatenate([[0.0], np.cumsum(per_block)])
        f = live & (fp[:, 5] >= 0)
        fill = float(((csum[fp[f, 7]] - csum[fp[f, 6]]) * fp[f, 10]).sum())
    points, out_sizes, qin = fp[:, 10], fp[:, 1], fp[:, 5] >= 0

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
