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
representations) share one template: ``block_begin:block_end``. ``row``/``col`` are
relative to the field pair; the block's weights are
``weights[weight_base + positions[weight_offset + e]]`` for ``e < count`` and its basis is
``basis[basis_offset:]`` laid out (count, d_out, d_in, P). A field pair's weights are the
contiguous range ``weight_base + [0, n)`` (e2cnn's layout), its template's blocks are
contiguous and their position slots consecutive.
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
        no, ni = len(plan.out_field_offset), len(plan.in_field_offset)
        ptr = plan.fieldpair_ptr
        begin, end, base = np.zeros(no * ni, np.int64), np.zeros(no * ni, np.int64), \
            np.zeros(no * ni, np.int64)
        for f in range(no * ni):
            b0, b1 = int(ptr[f]), int(ptr[f + 1])
            if b0 == b1:
                continue
            w = plan.weight_index[plan.block_weight[b0]:plan.block_weight[b1 - 1] + count[b1 - 1]]
            base[f] = int(w.min())
            rel = w - base[f]
            max_fp_w = max(max_fp_w, len(w))
            key = (local[b0:b1].tobytes(), rel.tobytes())
            if key not in templates:
                offs = n_pos + np.concatenate([[0], np.cumsum(count[b0:b1])[:-1]])
                templ_blocks.append(np.concatenate([local[b0:b1], offs[:, None]], 1))
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
        max_fieldpair_weights=max_fp_w)


@dataclass(frozen=True)
class LaunchConfig:
    grid: tuple
    block: tuple
    shared_mem: int  # bytes of dynamic shared memory
    tile: int  # points per tile


def launch_config(packed: PackedPlan, kind: str, batch: int, accumulate_bytes: int,
                  threads: int = THREADS,
                  shared_limit: int = SHARED_MEMORY_LIMIT) -> LaunchConfig:
    """Grid, block, tile and shared memory of ``kind`` ('forward' or 'adjoint').

    The tile (points per CUDA block) is the largest that keeps the two (s_out × s_in × tile)
    work arrays (plus, for the adjoint, one accumulator per weight of a field pair) within
    ``shared_limit`` bytes.
    """
    if kind not in ("forward", "adjoint"):
        raise ValueError(f"kind must be 'forward' or 'adjoint', got {kind!r}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    cell = 2 * packed.max_out_size * packed.max_in_size * accumulate_bytes
    fixed = packed.max_fieldpair_weights * accumulate_bytes if kind == "adjoint" else 0
    tile = min(packed.max_points, (shared_limit - fixed) // cell)
    if tile < 1:
        raise ValueError(
            f"fields of size {packed.max_out_size}×{packed.max_in_size} need "
            f"{cell + fixed} bytes of shared memory per point, more than {shared_limit}; "
            f"use float32 or smaller fields")
    # spread the points evenly over the tiles
    tiles = -(-packed.max_points // tile)
    tile = -(-packed.max_points // tiles)
    shared = tile * cell + fixed
    if kind == "forward":
        grid = (packed.num_fieldpairs, tiles, batch)
    else:
        grid = (packed.num_fieldpairs, 1, batch)
    if grid[0] > 2 ** 31 - 1 or grid[1] > 65535 or grid[2] > 65535:
        raise ValueError(f"launch grid {grid} exceeds CUDA's limits (x < 2^31, y and z at most "
                         f"65535): expand at most 65535 batch items per call")
    return LaunchConfig(grid, (threads, 1, 1), int(shared), int(tile))
