"""Device-side form of one or more expansion plans: :func:`pack_plans` and :class:`PackedPlan`.

:func:`pack_plans` flattens plans (one layer, or a whole network) into the tables that
``kernels/expand.cu`` reads. It is pure NumPy, shared by the CuPy backend and the CPU
emulation used in tests, so both launch exactly the same thing. How a launch tiles the work
over these tables is :mod:`cupysteer.backends.launch`.

The column names of the two integer tables are defined once, here:
:data:`FIELDPAIR_COLUMNS` and :data:`BLOCK_COLUMNS`. The code below fills the tables by those
names (:data:`FP` / :data:`BLK` give a column's index by name), and
:func:`cupysteer.backends.kernel_source.table_defines` generates the kernels' ``FP_…`` /
``BLK_…`` ``#define`` lines from the same lists (``FP_OUT_OFFSET 0``, …, ``FP_FIELDS 12``),
so the Python and CUDA sides cannot drift apart.

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
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..plan import ExpansionPlan

__all__ = ["PackedPlan", "pack_plans", "FIELDPAIR_COLUMNS", "BLOCK_COLUMNS", "FP", "BLK",
           "FP_FIELDS", "BLK_FIELDS", "ENTRY_COLUMNS", "ENT", "ENT_FIELDS", "pack_entries"]

#: columns of ``PackedPlan.fieldpairs``, in order (the kernels' ``FP_<NAME>`` constants)
FIELDPAIR_COLUMNS = ("out_offset", "out_size", "out_cob", "in_offset", "in_size", "in_cob",
                     "block_begin", "block_end", "filter_base", "in_channels", "points",
                     "weight_base")
#: columns of ``PackedPlan.blocks``, in order (the kernels' ``BLK_<NAME>`` constants)
BLOCK_COLUMNS = ("row", "col", "d_out", "d_in", "count", "basis_offset", "weight_offset")
#: index of each column by name: ``fieldpairs[:, FP.out_size]``, ``blocks[:, BLK.count]``
FP = namedtuple("FieldPairColumns", FIELDPAIR_COLUMNS)(*range(len(FIELDPAIR_COLUMNS)))
BLK = namedtuple("BlockColumns", BLOCK_COLUMNS)(*range(len(BLOCK_COLUMNS)))
FP_FIELDS, BLK_FIELDS = len(FIELDPAIR_COLUMNS), len(BLOCK_COLUMNS)
#: columns of ``PackedPlan.entries`` (the v2 kernels' ``ENT_<NAME>`` constants): one row per
#: nonzero entry (row, col) of K̃ of a template — entry (a, c) of a block — with the offset of
#: its basis values for element 0 (``basis_offset + (a·d_in + c)·P``), the block's first
#: position slot, its element count and the stride between its elements (d_out·d_in·P)
ENTRY_COLUMNS = ("row", "col", "basis_offset", "slot", "count", "estride")
ENT = namedtuple("EntryColumns", ENTRY_COLUMNS)(*range(len(ENTRY_COLUMNS)))
ENT_FIELDS = len(ENTRY_COLUMNS)


def _table(columns: Sequence[str], values: dict) -> np.ndarray:
    """(n, len(columns)) int64 table from one array (or broadcast scalar) per column name."""
    if set(values) != set(columns):
        raise ValueError(f"table columns {sorted(values)} differ from {sorted(columns)}")
    return np.stack(np.broadcast_arrays(*(np.asarray(values[c], np.int64) for c in columns)), 1)


@dataclass(frozen=True, eq=False)
class PackedPlan:
    fieldpairs: np.ndarray  # (F, FP_FIELDS) int64, columns FIELDPAIR_COLUMNS
    blocks: np.ndarray  # (B, BLK_FIELDS) int64, columns BLOCK_COLUMNS; the templates
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
    # v2 kernels (:func:`pack_entries`): (E, ENT_FIELDS) int64, every template's entries
    # sorted by (row, col); entry_ptr (B + 1,): a template's blocks b0:b1 own the entries
    # entry_ptr[b0]:entry_ptr[b1]
    entries: np.ndarray = None
    entry_ptr: np.ndarray = None

    @property
    def num_fieldpairs(self) -> int:
        return len(self.fieldpairs)


def pack_plans(plans: Sequence[ExpansionPlan]) -> PackedPlan:
    """Concatenate plans into one kernel descriptor (weights and filters laid end to end),
    sharing one block template between field pairs with the same block structure."""
    plans = list(plans)
    if not plans:
        raise ValueError("plans must contain at least one ExpansionPlan")
    fps, templ_blocks, templ_pos, basis, cob, templ_points = [], [], [], [], [], []
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
        # every block of the plan; weight_offset is set per template below
        local = _table(BLOCK_COLUMNS, dict(
            row=plan.block_row - plan.out_field_offset[plan.block_out_field],
            col=plan.block_col - plan.in_field_offset[plan.block_in_field],
            d_out=do, d_in=di, count=count, basis_offset=plan.pair_offset[plan.block_pair] + b_off,
            weight_offset=0))
        # blocks sorted by (row, col) inside each field pair (the plan keeps a field pair's
        # blocks contiguous)
        no, ni = len(plan.out_field_offset), len(plan.in_field_offset)
        ptr = plan.fieldpair_ptr
        begin, end, base = np.zeros(no * ni, np.int64), np.zeros(no * ni, np.int64), \
            np.zeros(no * ni, np.int64)
        fp_of = plan.block_out_field * ni + plan.block_in_field
        order = np.lexsort((local[:, BLK.col], local[:, BLK.row], fp_of))
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
                templ = local[sel]
                templ[:, BLK.weight_offset] = offs
                templ_blocks.append(templ)
                templ_points.append(np.full(b1 - b0, P, np.int64))
                templ_pos.append(rel)
                templates[key] = (n_blocks, n_blocks + b1 - b0)
                n_blocks += b1 - b0
                n_pos += len(rel)
            begin[f], end[f] = templates[key]
        po, pi = np.divmod(np.arange(no * ni), ni)
        rep_cob = np.where(plan.rep_identity, -1, plan.rep_offset + c_off)
        fps.append(_table(FIELDPAIR_COLUMNS, dict(
            out_offset=plan.out_field_offset[po], out_size=plan.out_field_size[po],
            out_cob=rep_cob[plan.out_field_rep[po]],
            in_offset=plan.in_field_offset[pi], in_size=plan.in_field_size[pi],
            in_cob=rep_cob[plan.in_field_rep[pi]],
            block_begin=begin, block_end=end, filter_base=f_off, in_channels=plan.in_size,
            points=P, weight_base=base + w_off)))
        basis.append(plan.basis)
        cob.append(plan.change_of_basis)
        w_off += plan.dim
        f_off += plan.out_size * plan.in_size * P
        b_off += len(plan.basis)
        c_off += len(plan.change_of_basis)
    fieldpairs = np.ascontiguousarray(np.concatenate(fps), np.int64)
    blocks = np.concatenate(templ_blocks) if templ_blocks else np.zeros((0, BLK_FIELDS))
    positions = np.concatenate(templ_pos) if templ_pos else np.zeros(0)
    tptr = np.array(sorted({0, *(e for _, e in templates.values())}), np.int64)
    blocks = np.ascontiguousarray(blocks, np.int64)
    entries, entry_ptr = pack_entries(
        blocks, np.concatenate(templ_points) if templ_points else np.zeros(0, np.int64), tptr)
    return PackedPlan(
        fieldpairs=fieldpairs, blocks=blocks,
        positions=np.ascontiguousarray(positions, np.int64),
        basis=np.concatenate(basis), cob=np.concatenate(cob), dim=w_off, filter_size=f_off,
        weight_offsets=tuple(weight_offsets), filter_offsets=tuple(filter_offsets),
        filter_shapes=tuple(shapes), max_points=max(p.num_points for p in plans),
        max_out_size=int(fieldpairs[:, FP.out_size].max()),
        max_in_size=int(fieldpairs[:, FP.in_size].max()),
        max_fieldpair_weights=max_fp_w,
        template_ptr=tptr, entries=entries, entry_ptr=entry_ptr)


def pack_entries(blocks: np.ndarray, points: np.ndarray, template_ptr: np.ndarray) -> tuple:
    """(entries, entry_ptr) of the v2 kernels: one row per entry (a, c) of every block
    (columns :data:`ENTRY_COLUMNS`), each template's entries sorted by (row, col) (blocks are
    disjoint: no two entries of a template share (row, col)); ``entry_ptr[b]`` = Σ of
    d_out·d_in over the blocks before b, so template t owns
    ``entries[entry_ptr[template_ptr[t]]:entry_ptr[template_ptr[t + 1]]]``. ``points``: P of
    every block's layer."""
    dd = blocks[:, BLK.d_out] * blocks[:, BLK.d_in]
    entry_ptr = np.concatenate([[0], np.cumsum(dd)]).astype(np.int64)
    n = int(entry_ptr[-1])
    if n == 0:
        return np.zeros((0, ENT_FIELDS), np.int64), entry_ptr
    b = np.repeat(np.arange(len(blocks)), dd)
    k = np.arange(n) - entry_ptr[b]  # a·d_in + c inside the block
    din = blocks[b, BLK.d_in]
    a, c = k // din, k % din
    P = points[b]
    table = _table(ENTRY_COLUMNS, dict(
        row=blocks[b, BLK.row] + a, col=blocks[b, BLK.col] + c,
        basis_offset=blocks[b, BLK.basis_offset] + k * P, slot=blocks[b, BLK.weight_offset],
        count=blocks[b, BLK.count], estride=dd[b] * P))
    tid = np.searchsorted(template_ptr, b, side="right") - 1
    order = np.lexsort((table[:, ENT.col], table[:, ENT.row], tid))
    return np.ascontiguousarray(table[order]), entry_ptr


