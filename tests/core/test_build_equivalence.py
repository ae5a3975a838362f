"""The faster layer construction builds exactly what the straightforward one built.

* ``build_layout`` (no sort of the block table; field pairs placed by key) and
  ``make_plan`` (per-representation tables, flat ``take``) against the reference algorithms
  below (the implementation they replaced, kept here verbatim in substance): the same weight
  blocks, irreps pairs, block table, weight order and every array of the plan, for random
  planar and 3D field types (several names per side, repeated and interleaved fields);
* the cache keys of a batch (``pair_keys``) are the documented per-pair string.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import cupysteer as cs
from cupysteer import layout
from cupysteer.cache import CACHE_VERSION, pair_key, pair_keys, points_digest
from tests._strategies import prop


# ---- the reference algorithms ----------------------------------------------------------------
def reference_layout(in_type, out_type, pair_basis):
    """Segments per (name pair, irreps pair), then a stable lexsort of the blocks by field
    pair, then the weights gathered block by block."""
    space = in_type.group.space
    taus, segs, weight_blocks, lo = {}, [], [], 0
    named = [(names, layout.rep_pair_order(names[2], names[3], pair_basis, space))
             for names in layout._name_pairs(in_type, out_type)]
    for (in_name, out_name, rin, rout, fin, fout), (pos, d) in named:
        if d == 0:
            continue
        fo, fi = np.asarray(fout), np.asarray(fin)
        nf = len(fo) * len(fi)
        weight_blocks.append(layout.WeightBlock(in_name, out_name, lo, lo + d * nf, len(fo),
                                                len(fi), d))
        for (ii, oo), p in pos.items():
            tau = taus.setdefault((rin.irreps[ii], rout.irreps[oo]), len(taus))
            segs.append((np.repeat(fo, len(fi)), np.tile(fi, len(fo)), oo, ii, tau,
                         lo + np.arange(nf)[:, None] * d + p[None, :]))
        lo += d * nf
    cat = np.concatenate
    bP, bQ = cat([s[0] for s in segs]), cat([s[1] for s in segs])
    rep = [len(s[0]) for s in segs]
    boo, bii, btau = (np.repeat([s[k] for s in segs], rep) for k in (2, 3, 4))
    rows = cat([s[5].ravel() for s in segs])
    n = cat([np.full(len(s[0]), s[5].shape[1]) for s in segs])
    start = cat([[0], np.cumsum(n)[:-1]])
    order = np.lexsort((bQ, bP))
    n_sorted = n[order]
    first = np.repeat(start[order] - cat([[0], np.cumsum(n_sorted)[:-1]]), n_sorted)
    blocks = layout.BlockTable(bP[order], bQ[order], boo[order], bii[order], btau[order])
    return layout.Layout(lo, list(taus), weight_blocks, blocks,
                         rows[first + np.arange(n_sorted.sum())])


def reference_plan_arrays(lay, tin, tout, pair_bases, P):
    """The plan arrays that the per-field tables gave."""
    def offset_table(ftype):
        reps = ftype.representations
        table = np.zeros((len(reps), max(len(r.irreps) for r in reps)), np.int64)
        for f, r in enumerate(reps):
            table[f, :len(r.irreps)] = r.irrep_offsets
        return table
    blk = lay.blocks
    counts = np.array([len(pb) for pb in pair_bases], np.int64)
    reps = list(dict.fromkeys(tout.representations + tin.representations))
    rep_id = {r: i for i, r in enumerate(reps)}
    trivial = [(f, tout.field_offsets[f] + o) for f, r in enumerate(tout.representations)
               for psi, o in zip(r.irreps, r.irrep_offsets) if psi.is_trivial]
    nfi = len(tin)
    return {
        "pair_shape": np.array([pb.shape for pb in pair_bases], np.int64).reshape(-1, 2),
        "block_row": tout.field_offsets[blk.out_field]
        + offset_table(tout)[blk.out_field, blk.out_irrep],
        "block_col": tin.field_offsets[blk.in_field]
        + offset_table(tin)[blk.in_field, blk.in_irrep],
        "block_weight": np.concatenate([[0], np.cumsum(counts[blk.pair])[:-1]]),
        "fieldpair_ptr": np.searchsorted(blk.out_field * nfi + blk.in_field,
                                         np.arange(len(tout) * nfi + 1)),
        "out_field_rep": [rep_id[r] for r in tout.representations],
        "in_field_rep": [rep_id[r] for r in tin.representations],
        "rep_size": np.array([r.size for r in reps]),
        "change_of_basis": np.concatenate([r.change_of_basis.ravel() for r in reps]),
        "bias_field": [t[0] for t in trivial], "bias_row": [t[1] for t in trivial],
        "basis": np.concatenate([pb.values.ravel() for pb in pair_bases]),
        "weight_index": lay.weight_index,
    }


# ---- strategies ------------------------------------------------------------------------------
def _candidates(G):
    reps = [psi.representation for psi in G.irreps()]
    if G.is_finite:
        reps.append(G.regular_representation)
    return reps


PLANAR = [cs.CyclicGroup(4), cs.CyclicGroup(6), cs.DihedralGroup(3), cs.DihedralGroup(2, axis=0.4),
          cs.SO2(2), cs.O2(2), cs.FlipGroup()]


@st.composite
def layer_types(draw, groups=tuple(PLANAR)):
    G = draw(st.sampled_from(groups))
    cands = _candidates(G)
    side = st.lists(st.sampled_from(range(len(cands))), min_size=1, max_size=7)
    t_in = cs.FieldType(G, [cands[i] for i in draw(side)])
    t_out = cs.FieldType(G, [cands[i] for i in draw(side)])
    return t_in, t_out, draw(st.sampled_from([3, 5]))


def _check(t_in, t_out, k):
    try:
        L = cs.LayerBasis(t_in, t_out, k, cache=False)
    except cs.EmptyBasisError:
        return
    ref = reference_layout(t_in, t_out, L.pair_basis)
    got = layout.build_layout(t_in, t_out, L.pair_basis, "")
    assert (got.dim, got.irreps_pairs, got.weight_blocks) == (ref.dim, ref.irreps_pairs,
                                                              ref.weight_blocks)
    for a, b in zip(got.blocks + (got.weight_index,), ref.blocks + (ref.weight_index,)):
        assert a.dtype == b.dtype == np.int64 and np.array_equal(a, b)
    assert L.dim == ref.dim and np.array_equal(L.plan.weight_index, ref.weight_index)
    pbs = [L.pair_basis(a, b) for a, b in ref.irreps_pairs]
    want = reference_plan_arrays(ref, t_in, t_out, pbs, L.plan.num_points)
    for name, value in want.items():
        have = getattr(L.plan, name)
        assert np.array_equal(np.asarray(have), np.asarray(value)), name
    assert L.plan.basis.tobytes() == want["basis"].tobytes()


@prop(60)
@given(layer_types())
def test_planar_layout_and_plan_equal_the_reference(types):
    _check(*types)


@prop(15)
@given(layer_types(groups=(cs.r3.Octahedral(), cs.r3.SO3(1), cs.r3.DihedralZ(2))))
def test_3d_layout_and_plan_equal_the_reference(types):
    t_in, t_out, _ = types
    _check(t_in, t_out, 3)


def test_reference_layers_equal_the_reference():
    """The benchmark's four layers (one name pair per side; SO(2): four per side)."""
    for G, reps, k in ((cs.CyclicGroup(8), None, 5), (cs.DihedralGroup(4), None, 5),
                       (cs.SO2(3), [cs.SO2(3).irrep(j).representation for j in range(4)], 7)):
        reps = reps or [G.regular_representation]
        t = cs.FieldType(G, reps * 3)
        _check(t, t, k)


def test_plan_fields_keep_their_types():
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation] * 2)
    plan = cs.LayerBasis(t, t, 3, cache=False).plan
    for f in dataclasses.fields(plan):
        v = getattr(plan, f.name)
        if isinstance(v, np.ndarray):
            assert not v.flags.writeable and v.flags.c_contiguous
    assert isinstance(plan.rep_identity, list)  # as given (only arrays are converted)


def test_pair_keys_are_the_documented_strings():
    for G in (cs.CyclicGroup(8), cs.DihedralGroup(4, axis=0.3), cs.SO2(3), cs.r3.Octahedral()):
        irreps = list(G.irreps())
        pairs = [(a, b) for a in irreps for b in irreps]
        s, p = G.space.resolve_settings(3), G.space.grid_points(3)
        want = [f"v{CACHE_VERSION}|{a.group.cache_id}|{a.id}|{b.id}|{s!r}|{points_digest(p)}"
                for a, b in pairs]
        assert pair_keys(pairs, s, p) == want
        assert [pair_key(a, b, s, p) for a, b in pairs] == want
