r"""The weight layout of a layer (e2cnn's / escnn's order) and the assembly of its plan.

Fields are grouped by representation name. One weight slice per (in name, out name) pair
with a non-empty basis, sorted as strings (a :class:`WeightBlock`); inside a slice the
weights run (out field, in field, element), and the elements of a representation pair run
slowest by ``space.element_order`` (the ring on the plane, the harmonic degree in R³), then
input irrep, output irrep, then the pair basis' own order.

Every irreps block β — the (output irrep of an output field) × (input irrep of an input field)
sub-matrix of the filter — is one row of a :class:`BlockTable`; :func:`make_plan` turns the
table, the pair bases and the fields' changes of basis into the
:class:`~cupysteer.plan.ExpansionPlan`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ._memory import check_host
from .field_type import FieldType
from .plan import ExpansionPlan

__all__ = ["WeightBlock", "BlockTable", "Layout", "EmptyBasisError", "group_fields",
           "layer_pairs", "rep_pair_order", "build_layout", "make_plan"]


class EmptyBasisError(ValueError):
    """The layer has no basis element at all."""


class WeightBlock(NamedTuple):
    """One weight slice ``[lo, hi)``: every (out field, in field) of the representations named
    ``out_name`` and ``in_name``, ``elements`` weights each."""

    in_name: str
    out_name: str
    lo: int
    hi: int
    n_out: int
    n_in: int
    elements: int


class BlockTable(NamedTuple):
    """Per irreps block β (arrays of length B, blocks of one field pair contiguous): the
    output / input field, the irrep's index inside that field's representation, and the
    irreps pair τ (an index into ``Layout.irreps_pairs``)."""

    out_field: np.ndarray
    in_field: np.ndarray
    out_irrep: np.ndarray
    in_irrep: np.ndarray
    pair: np.ndarray


class Layout(NamedTuple):
    """A layer's weight layout: ``dim`` weights in ``weight_blocks``; the irreps pairs in
    first-use order; the block table; the weight of every (block, element)."""

    dim: int
    irreps_pairs: list
    weight_blocks: list
    blocks: BlockTable
    weight_index: np.ndarray


class _Segment(NamedTuple):
    """The blocks of one (irreps pair, weight block): fields and the weights of each."""

    out_fields: np.ndarray
    in_fields: np.ndarray
    out_irrep: int
    in_irrep: int
    pair: int
    weights: np.ndarray  # (fields, n_τ)


def group_fields(ftype: FieldType, side: str) -> dict:
    """name → list of field indices (fibre order); checks that a name means one rep."""
    groups, rep_of = {}, {}
    for i, r in enumerate(ftype.representations):
        if r.name in rep_of and rep_of[r.name] != r:
            raise ValueError(f"{side}: two different representations share the name "
                             f"{r.name!r}; give them distinct names")
        rep_of[r.name] = r
        groups.setdefault(r.name, []).append(i)
    return groups


def _name_pairs(in_type: FieldType, out_type: FieldType):
    """(in name, out name, in representation, out representation, in fields, out fields), in
    the weight order (names sorted as strings)."""
    gin, gout = group_fields(in_type, "in_type"), group_fields(out_type, "out_type")
    for in_name, out_name in sorted((a, b) for a in gin for b in gout):
        yield (in_name, out_name, in_type.representations[gin[in_name][0]],
               out_type.representations[gout[out_name][0]], gin[in_name], gout[out_name])


def layer_pairs(in_type: FieldType, out_type: FieldType) -> list:
    """Every (in irrep, out irrep) pair the layer needs, in first-use order."""
    pairs = {}
    for _, _, rin, rout, _, _ in _name_pairs(in_type, out_type):
        for pin in rin.irreps:
            for pout in rout.irreps:
                pairs.setdefault((pin, pout), None)
    return list(pairs)


def rep_pair_order(rin, rout, pair_basis: Callable, space) -> tuple[dict, int]:
    """Per (ii, oo) with a non-empty pair basis: positions of its elements in the
    representation pair's element order, and the total count (see the module docstring)."""
    keys, slow = [], []
    for ii, pin in enumerate(rin.irreps):
        for oo, pout in enumerate(rout.irreps):
            pb = pair_basis(pin, pout)
            if len(pb):
                keys.append((ii, oo))
                slow.append(space.element_order(pb))
    if not keys:
        return {}, 0
    key = np.concatenate(slow)
    which = np.concatenate([np.full(len(r), k) for k, r in enumerate(slow)])
    within = np.concatenate([np.arange(len(r)) for r in slow])
    order = np.lexsort((within, which, key))  # slowest key first; (ii, oo) order is `which`
    pos = np.empty(len(key), np.int64)
    pos[order] = np.arange(len(key))
    starts = np.cumsum([0] + [len(r) for r in slow])
    return {k: pos[starts[i]:starts[i + 1]] for i, k in enumerate(keys)}, len(key)


#: bytes per weight and per irreps block while a layout and its plan are built (the index
#: arrays of the layout, their sorted copies and the plan's tables)
WEIGHT_BYTES, BLOCK_BYTES = 64, 256


def check_layout_size(in_type: FieldType, out_type: FieldType, named: list) -> None:
    """Refuse a layer whose weight and block tables exceed the host limit, before they are
    built (``named``: per representation pair, its names and ``rep_pair_order``)."""
    weights = blocks = 0
    for names, (pos, d) in named:
        fields = len(names[4]) * len(names[5])
        weights += fields * d
        blocks += fields * len(pos)
    check_host(weights * WEIGHT_BYTES + blocks * BLOCK_BYTES,
               lambda: f"the layout and plan of a layer from {len(in_type)} to {len(out_type)} "
                       f"fields ({weights} weights in {blocks} irreps blocks)",
               "use fewer fields per layer (in_type / out_type)")


def build_layout(in_type: FieldType, out_type: FieldType, pair_basis: Callable,
                 empty_hint: str) -> Layout:
    """The weight layout of the layer ``in_type → out_type`` whose irreps-pair bases
    ``pair_basis(in_irrep, out_irrep)`` returns; :class:`EmptyBasisError` (with
    ``empty_hint``) when it has no weight at all."""
    space = in_type.group.space
    taus: dict = {}  # irreps pairs τ in first-use order
    segs: list[_Segment] = []
    weight_blocks: list[WeightBlock] = []
    lo = 0
    named = [(names, rep_pair_order(names[2], names[3], pair_basis, space))
             for names in _name_pairs(in_type, out_type)]
    check_layout_size(in_type, out_type, named)
    for (in_name, out_name, rin, rout, fin, fout), (pos, d) in named:
        if d == 0:
            continue
        fo, fi = np.asarray(fout), np.asarray(fin)
        nf = len(fo) * len(fi)
        weight_blocks.append(WeightBlock(in_name, out_name, lo, lo + d * nf, len(fo), len(fi),
                                         d))
        for (ii, oo), p in pos.items():
            tau = taus.setdefault((rin.irreps[ii], rout.irreps[oo]), len(taus))
            segs.append(_Segment(np.repeat(fo, len(fi)), np.tile(fi, len(fo)), oo, ii, tau,
                                 lo + np.arange(nf)[:, None] * d + p[None, :]))
        lo += d * nf
    if lo == 0:
        raise EmptyBasisError(f"the basis from {in_type} to {out_type} is empty {empty_hint}")
    cat = np.concatenate
    bP, bQ = cat([s.out_fields for s in segs]), cat([s.in_fields for s in segs])
    rep = [len(s.out_fields) for s in segs]
    boo, bii, btau = (np.repeat([getattr(s, k) for s in segs], rep)
                      for k in ("out_irrep", "in_irrep", "pair"))
    rows = cat([s.weights.ravel() for s in segs])
    n = cat([np.full(len(s.out_fields), s.weights.shape[1]) for s in segs])
    start = cat([[0], np.cumsum(n)[:-1]])
    order = np.lexsort((bQ, bP))  # blocks of a field pair contiguous, stable
    n_sorted = n[order]
    first = np.repeat(start[order] - cat([[0], np.cumsum(n_sorted)[:-1]]), n_sorted)
    blocks = BlockTable(bP[order], bQ[order], boo[order], bii[order], btau[order])
    return Layout(lo, list(taus), weight_blocks, blocks, rows[first + np.arange(n_sorted.sum())])


def _irrep_offset_table(ftype: FieldType) -> np.ndarray:
    """(fields, max irreps per field) table of irrep offsets inside each field."""
    reps = ftype.representations
    table = np.zeros((len(reps), max(len(r.irreps) for r in reps)), np.int64)
    for f, r in enumerate(reps):
        table[f, :len(r.irreps)] = r.irrep_offsets
    return table


def _join(arrays) -> np.ndarray:
    """The arrays' values concatenated (raveled); without a copy when they are adjacent
    C-contiguous float64 views of one 1-D buffer (as the R³ sampler makes them)."""
    parts = [a for a in arrays if a.size]
    base = parts[0].base if parts else None
    if (base is not None and isinstance(base, np.ndarray) and base.ndim == 1
            and base.dtype == np.float64 and base.flags.c_contiguous
            and all(a.base is base and a.dtype == np.float64 and a.flags.c_contiguous
                    for a in parts)):
        start = (parts[0].ctypes.data - base.ctypes.data) // 8
        pos = start
        for a in parts:
            if (a.ctypes.data - base.ctypes.data) // 8 != pos:
                break
            pos += a.size
        else:
            return base[start:pos]
    return np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)


def make_plan(layout: Layout, in_type: FieldType, out_type: FieldType, pair_bases: list,
              filter_shape: tuple) -> ExpansionPlan:
    """The :class:`~cupysteer.plan.ExpansionPlan` of a layout; ``pair_bases`` are the sampled
    bases of ``layout.irreps_pairs`` in that order."""
    tin, tout, blk = in_type, out_type, layout.blocks
    P = int(np.prod(filter_shape))
    counts = np.array([len(pb) for pb in pair_bases], np.int64)
    shapes = np.array([pb.shape for pb in pair_bases], np.int64).reshape(-1, 2)
    sizes = counts * shapes.prod(1) * P
    reps = list(dict.fromkeys(tout.representations + tin.representations))
    rep_id = {r: i for i, r in enumerate(reps)}
    rep_size = np.array([r.size for r in reps])
    offs_out, offs_in = tout.field_offsets, tin.field_offsets
    brow = offs_out[blk.out_field] + _irrep_offset_table(tout)[blk.out_field, blk.out_irrep]
    bcol = offs_in[blk.in_field] + _irrep_offset_table(tin)[blk.in_field, blk.in_irrep]
    bweight = np.concatenate([[0], np.cumsum(counts[blk.pair])[:-1]]).astype(np.int64)
    nfi = len(tin)
    ptr = np.searchsorted(blk.out_field * nfi + blk.in_field, np.arange(len(tout) * nfi + 1))
    trivial = [(f, offs_out[f] + o) for f, r in enumerate(tout.representations)
               for psi, o in zip(r.irreps, r.irrep_offsets) if psi.is_trivial]
    return ExpansionPlan(
        out_size=tout.size, in_size=tin.size, num_points=P, dim=layout.dim,
        filter_shape=filter_shape,
        basis=_join([pb.values for pb in pair_bases]),
        pair_shape=shapes, pair_count=counts,
        pair_offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        block_pair=blk.pair, block_row=brow, block_col=bcol,
        block_out_field=blk.out_field, block_in_field=blk.in_field,
        block_weight=bweight, weight_index=layout.weight_index,
        fieldpair_ptr=ptr,
        out_field_offset=offs_out, out_field_size=tout.field_sizes,
        out_field_rep=[rep_id[r] for r in tout.representations],
        in_field_offset=offs_in, in_field_size=tin.field_sizes,
        in_field_rep=[rep_id[r] for r in tin.representations],
        rep_size=rep_size,
        rep_offset=np.concatenate([[0], np.cumsum(rep_size ** 2)[:-1]]),
        rep_identity=[r.is_identity_basis for r in reps],
        change_of_basis=np.concatenate([r.change_of_basis.ravel() for r in reps]),
        bias_field=[t[0] for t in trivial], bias_row=[t[1] for t in trivial],
    )
