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


def group_fields(ftype: FieldType, side: str) -> dict:
    """name → list of field indices (fibre order); checks that a name means one rep."""
    groups, rep_of = {}, {}
    for i, r in enumerate(ftype.representations):
        seen = rep_of.get(r.name)
        if seen is not None and seen is not r and seen != r:
            raise ValueError(f"{side}: two different representations share the name "
                             f"{r.name!r}; give them distinct names")
        rep_of[r.name] = r
        groups.setdefault(r.name, []).append(i)
    return groups


def _name_pairs(in_type: FieldType, out_type: FieldType, gin: dict | None = None,
                gout: dict | None = None):
    """(in name, out name, in representation, out representation, in fields, out fields), in
    the weight order (names sorted as strings); ``gin`` / ``gout``: the types'
    :func:`group_fields` if already made."""
    gin = group_fields(in_type, "in_type") if gin is None else gin
    gout = group_fields(out_type, "out_type") if gout is None else gout
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
    if len(keys) == 1:  # one irreps pair: a stable sort of its key (none if already sorted)
        key = slow[0]
        k = key.tolist()
        if all(a <= b for a, b in zip(k, k[1:])):
            return {keys[0]: np.arange(len(k))}, len(k)
        order = np.argsort(key, kind="stable")
        return {keys[0]: np.argsort(order, kind="stable")}, len(order)
    lens = [len(r) for r in slow]
    starts = np.cumsum([0] + lens)
    key = np.concatenate(slow)
    which = np.repeat(np.arange(len(keys)), lens)
    within = np.arange(len(key)) - starts[which]
    order = np.lexsort((within, which, key))  # slowest key first; (ii, oo) order is `which`
    pos = np.empty(len(key), np.int64)
    pos[order] = np.arange(len(key))
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
    gin, gout = group_fields(in_type, "in_type"), group_fields(out_type, "out_type")
    named = [(names, rep_pair_order(names[2], names[3], pair_basis, space))
             for names in _name_pairs(in_type, out_type, gin, gout)]
    check_layout_size(in_type, out_type, named)
    taus: dict = {}  # irreps pairs τ in first-use order
    weight_blocks: list[WeightBlock] = []
    segs: list = []  # per segment (one per non-empty irreps pair): out / in irrep index, τ
    parts: dict = {}  # (in name, out name) → (lo, d, segments, positions of their elements)
    lo = 0
    for (in_name, out_name, rin, rout, fin, fout), (pos, d) in named:
        if d == 0:
            continue
        nf = len(fout) * len(fin)
        weight_blocks.append(WeightBlock(in_name, out_name, lo, lo + d * nf, len(fout), len(fin),
                                         d))
        segs += [(oo, ii, taus.setdefault((rin.irreps[ii], rout.irreps[oo]), len(taus)))
                 for ii, oo in pos]
        parts[in_name, out_name] = (lo, d, len(pos), list(pos.values()))
        lo += d * nf
    if lo == 0:
        raise EmptyBasisError(f"the basis from {in_type} to {out_type} is empty {empty_hint}")
    blocks, weight_index = _tables(parts, np.array(segs, np.int64).reshape(-1, 3), gin, gout,
                                   (len(out_type), len(in_type)))
    return Layout(lo, list(taus), weight_blocks, blocks, weight_index)


def _field_names(groups: dict, n: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """(name → index in sorted order, name index of every field, its rank among its name's
    fields)."""
    index = {name: i for i, name in enumerate(sorted(groups))}
    name, rank = [0] * n, [0] * n
    for key, fields in groups.items():
        for r, f in enumerate(fields):
            name[f], rank[f] = index[key], r
    return index, np.array(name, np.int64), np.array(rank, np.int64)


def _run_starts(n: np.ndarray) -> np.ndarray:
    """Start of each of the consecutive runs of lengths ``n``."""
    return np.cumsum(n) - n


def _tables(parts: dict, segs: np.ndarray, gin: dict, gout: dict,
            shape: tuple) -> tuple[BlockTable, np.ndarray]:
    r"""The block table sorted by field pair (P, Q), each field pair's blocks contiguous in
    segment order, and the weight of every (block, element) in that order.

    A field pair belongs to one name pair j (no sort is needed): it is j's field pair
    f = rank(P)·n_in,j + rank(Q) and has m_j blocks (j's segments) and the d_j weights
    lo_j + f·d_j + pcat_j, pcat_j the positions of j's segments' elements concatenated."""
    iin, name_i, rank_i = _field_names(gin, shape[1])
    iout, name_o, rank_o = _field_names(gout, shape[0])
    which = np.full((len(iout), len(iin)), -1, np.int64)  # name pair of (out name, in name)
    for j, (a, b) in enumerate(parts):
        which[iout[b], iin[a]] = j
    lo, d, m, pcs = zip(*parts.values())
    n_in = np.array([len(gin[a]) for a, _ in parts], np.int64)
    d, m = np.array(d, np.int64), np.array(m, np.int64)
    fp = which.take(name_o[:, None] * which.shape[1] + name_i).ravel()
    key = np.flatnonzero(fp >= 0)  # field pairs P·F_in + Q with weights, in (P, Q) order
    P, Q = key // shape[1], key % shape[1]
    j = fp.take(key)
    pcat = np.concatenate([p for ps in pcs for p in ps])
    first = np.array(lo, np.int64)[j] + (rank_o[P] * n_in[j] + rank_i[Q]) * d[j]
    if len(parts) == 1:  # every field pair has the same blocks and element positions
        cols = [np.repeat(c[None, :], len(P), axis=0).ravel() for c in segs.T]
        return (BlockTable(np.repeat(P, m[0]), np.repeat(Q, m[0]), *cols),
                (first[:, None] + pcat).ravel())
    mj, dj = m[j], d[j]
    seg = _runs(_run_starts(m)[j], mj)
    blocks = BlockTable(np.repeat(P, mj), np.repeat(Q, mj),
                        *(np.ascontiguousarray(c).take(seg) for c in segs.T))
    weight_index = np.repeat(first, dj)
    weight_index += pcat.take(_runs(_run_starts(d)[j], dj))
    return blocks, weight_index


def _runs(start: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The concatenated ranges start[k] + range(n[k])."""
    out = np.repeat(start - _run_starts(n), n)
    out += np.arange(len(out))
    return out


def _channel_table(ftype: FieldType, rep_ids: list, reps: list) -> np.ndarray:
    """(fields, W) table: the first channel of each irrep of each field (the field's offset
    plus the irrep's offset inside its representation; W = most irreps of a
    representation), made per distinct representation."""
    per_rep = np.zeros((len(reps), max(len(r.irreps) for r in reps)), np.int64)
    for i, r in enumerate(reps):
        per_rep[i, :len(r.irreps)] = r.irrep_offsets
    return ftype.field_offsets[:, None] + per_rep[rep_ids]


def _first_channels(table: np.ndarray, field: np.ndarray, irrep: np.ndarray) -> np.ndarray:
    """``table[field, irrep]`` (as one flat ``take``)."""
    index = field * table.shape[1]
    index += irrep
    return table.ravel().take(index)


def _join(arrays) -> np.ndarray:
    """The arrays' values concatenated (raveled); without a copy when they are adjacent
    C-contiguous float64 views of one 1-D buffer (as both samplers make them)."""
    parts = [a for a in arrays if a.size]
    base = parts[0].base if parts else None
    if (base is not None and isinstance(base, np.ndarray) and base.ndim == 1
            and base.dtype == np.float64 and base.flags.c_contiguous
            and all(a.base is base and a.dtype == np.float64 and a.flags.c_contiguous
                    for a in parts)):
        origin = base.ctypes.data
        start = (parts[0].ctypes.data - origin) // 8
        pos = start
        for a in parts:
            if (a.ctypes.data - origin) // 8 != pos:
                break
            pos += a.size
        else:
            return base[start:pos]
    return np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)


def _bias(out_type: FieldType, rep_ids: list, reps: list) -> tuple[list, list]:
    """(field, channel in irreps coordinates) of every trivial output irrep, in field order."""
    trivial = [[o for psi, o in zip(r.irreps, r.irrep_offsets.tolist()) if psi.is_trivial]
               for r in reps]
    pairs = [(f, off + o) for f, (i, off) in enumerate(zip(rep_ids,
                                                           out_type.field_offsets.tolist()))
             for o in trivial[i]]
    return [f for f, _ in pairs], [c for _, c in pairs]


def make_plan(layout: Layout, in_type: FieldType, out_type: FieldType, pair_bases: list,
              filter_shape: tuple) -> ExpansionPlan:
    """The :class:`~cupysteer.plan.ExpansionPlan` of a layout; ``pair_bases`` are the sampled
    bases of ``layout.irreps_pairs`` in that order."""
    tin, tout, blk = in_type, out_type, layout.blocks
    P = int(np.prod(filter_shape))
    counts = np.array([len(pb) for pb in pair_bases], np.int64)
    shapes = np.array([pb.values.shape[1:3] for pb in pair_bases], np.int64).reshape(-1, 2)
    sizes = counts * shapes.prod(1) * P
    # distinct representations (by value, first occurrence), looked up by identity per field
    objects = {id(r): r for r in tout.representations + tin.representations}
    reps = list(dict.fromkeys(objects.values()))
    rep_id = {r: i for i, r in enumerate(reps)}
    by_id = {i: rep_id[r] for i, r in objects.items()}
    rep_size = np.array([r.size for r in reps])
    out_rep, in_rep = ([by_id[id(r)] for r in t.representations] for t in (tout, tin))
    brow = _first_channels(_channel_table(tout, out_rep, reps), blk.out_field, blk.out_irrep)
    bcol = _first_channels(_channel_table(tin, in_rep, reps), blk.in_field, blk.in_irrep)
    bweight = np.zeros(len(blk.pair), np.int64)
    np.cumsum(counts.take(blk.pair)[:-1], out=bweight[1:])
    nfi = len(tin)
    ptr = np.searchsorted(blk.out_field * nfi + blk.in_field, np.arange(len(tout) * nfi + 1))
    bias_field, bias_row = _bias(tout, out_rep, reps)
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
        out_field_offset=tout.field_offsets, out_field_size=tout.field_sizes,
        out_field_rep=out_rep,
        in_field_offset=tin.field_offsets, in_field_size=tin.field_sizes,
        in_field_rep=in_rep,
        rep_size=rep_size,
        rep_offset=np.concatenate([[0], np.cumsum(rep_size ** 2)[:-1]]),
        rep_identity=[r.is_identity_basis for r in reps],
        change_of_basis=np.concatenate([r.change_of_basis.ravel() for r in reps]),
        bias_field=bias_field, bias_row=bias_row,
    )
