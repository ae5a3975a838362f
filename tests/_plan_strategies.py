"""Hypothesis strategies for random :class:`~cupysteer.plan.ExpansionPlan` s of any shape, built
directly from the plan contract (no group theory): irreps of any dimension (3D groups: up to
2l + 1 = 13), representations made of several irreps with a dense random orthogonal change of
basis Q (up to ~60 channels here, 120 in a dedicated test), any filter_shape ((k, k, k),
(k, k) or (P,)), empty irreps pairs and field pairs without blocks. A plan is random but
consistent in the ways a real basis is:

* fields with the same two representations have the same block structure (the NumPy backend
  shares one schedule between them, the packed plan one template);
* a field pair's weights are one contiguous range (e2cnn's layout), in a random order that is
  the same for every field pair of one representation pair;
* each irreps pair τ has n_τ ≥ 0 basis elements (n_τ = 0: no block, as for pairs the kernel
  size cannot carry).

:func:`dense_filter` / :func:`dense_adjoint` are the plain-loop reference: the full filter built
block by block with einsum, then Q_out · K̃ · Q_inᵀ, no shared code with any backend.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from cupysteer.plan import ExpansionPlan

__all__ = ["plan_specs", "build_plan", "random_plans", "dense_filter", "dense_adjoint",
           "PlanSpec"]


def _orthogonal(n: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class PlanSpec(dict):
    """The drawn description of a plan (printed by hypothesis on failure)."""

    def __repr__(self):
        return "PlanSpec(" + ", ".join(f"{k}={v!r}" for k, v in self.items()) + ")"


def build_plan(irrep_dims, reps, identity, out_fields, in_fields, counts, filter_shape,
               seed: int, order_seed: int | None = None) -> ExpansionPlan:
    """A plan from a description.

    ``irrep_dims[t]``: dimension of irrep type t (type 0 of dimension 1 is "trivial": a bias
    entry per occurrence in an output field). ``reps[r]``: the irrep types of representation r
    in order. ``identity[r]``: Q = I (else dense random orthogonal). ``out_fields`` /
    ``in_fields``: representation id of each field. ``counts[(t_out, t_in)]``: n_τ (missing: 0).
    """
    rng = np.random.default_rng(seed)
    P = int(np.prod(filter_shape))
    rep_size = np.array([sum(irrep_dims[t] for t in r) for r in reps], np.int64)
    irrep_off = [np.concatenate([[0], np.cumsum([irrep_dims[t] for t in r])[:-1]]).astype(int)
                 for r in reps]
    Qs = [np.eye(s) if identity[r] else _orthogonal(int(s), rng) for r, s in enumerate(rep_size)]
    # irreps pairs τ: every (t_out, t_in) with n_τ > 0 that some field pair uses, first-use order
    taus, tau_of = [], {}
    for ro in dict.fromkeys(out_fields):
        for ri in dict.fromkeys(in_fields):
            for to in reps[ro]:
                for ti in reps[ri]:
                    if counts.get((to, ti), 0) > 0 and (to, ti) not in tau_of:
                        tau_of[(to, ti)] = len(taus)
                        taus.append((to, ti))
    pair_shape = np.array([(irrep_dims[a], irrep_dims[b]) for a, b in taus],
                          np.int64).reshape(-1, 2)
    pair_count = np.array([counts[t] for t in taus], np.int64)
    sizes = pair_count * pair_shape.prod(1) * P
    pair_offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    basis = rng.standard_normal(int(sizes.sum()))

    out_off = np.concatenate([[0], np.cumsum(rep_size[out_fields])[:-1]]).astype(np.int64)
    in_off = np.concatenate([[0], np.cumsum(rep_size[in_fields])[:-1]]).astype(np.int64)
    # blocks, by field pair
    brow, bcol, bpair, bof, bif = [], [], [], [], []
    fp_blocks = []  # per field pair: (list of block ids, number of weights)
    for P_ in range(len(out_fields)):
        for Q_ in range(len(in_fields)):
            ro, ri = out_fields[P_], in_fields[Q_]
            ids, nw = [], 0
            for oo, to in enumerate(reps[ro]):
                for ii, ti in enumerate(reps[ri]):
                    tau = tau_of.get((to, ti))
                    if tau is None:
                        continue
                    ids.append(len(brow))
                    brow.append(out_off[P_] + irrep_off[ro][oo])
                    bcol.append(in_off[Q_] + irrep_off[ri][ii])
                    bpair.append(tau)
                    bof.append(P_)
                    bif.append(Q_)
                    nw += int(pair_count[tau])
            fp_blocks.append((ids, nw, (ro, ri)))
    B = len(brow)
    n_blk = pair_count[np.asarray(bpair, np.int64)] if B else np.zeros(0, np.int64)
    block_weight = np.concatenate([[0], np.cumsum(n_blk)[:-1]]).astype(np.int64) if B else \
        np.zeros(0, np.int64)
    # weights: field pairs in a random order, each a contiguous range permuted the same way
    # for every field pair of one representation pair
    orng = np.random.default_rng(seed if order_seed is None else order_seed)
    perms = {}
    weight_index = np.zeros(int(n_blk.sum()), np.int64)
    lo = 0
    for f in orng.permutation(len(fp_blocks)):
        ids, nw, key = fp_blocks[f]
        if nw == 0:
            continue
        if key not in perms:
            perms[key] = orng.permutation(nw)
        slots = np.concatenate([block_weight[b] + np.arange(n_blk[b]) for b in ids])
        weight_index[slots] = lo + perms[key]
        lo += nw
    nfi = len(in_fields)
    fp = np.asarray(bof, np.int64) * nfi + np.asarray(bif, np.int64)
    ptr = np.searchsorted(fp, np.arange(len(out_fields) * nfi + 1)).astype(np.int64)
    bias = [(f, out_off[f] + irrep_off[r][k]) for f, r in enumerate(out_fields)
            for k, t in enumerate(reps[r]) if t == 0 and irrep_dims[0] == 1]
    return ExpansionPlan(
        out_size=int(rep_size[out_fields].sum()), in_size=int(rep_size[in_fields].sum()),
        num_points=P, dim=lo, filter_shape=tuple(filter_shape), basis=basis,
        pair_shape=pair_shape, pair_count=pair_count, pair_offset=pair_offset,
        block_pair=bpair, block_row=brow, block_col=bcol, block_out_field=bof,
        block_in_field=bif, block_weight=block_weight, weight_index=weight_index,
        fieldpair_ptr=ptr, out_field_offset=out_off, out_field_size=rep_size[out_fields],
        out_field_rep=out_fields, in_field_offset=in_off, in_field_size=rep_size[in_fields],
        in_field_rep=in_fields, rep_size=rep_size,
        rep_offset=np.concatenate([[0], np.cumsum(rep_size ** 2)[:-1]]).astype(np.int64),
        rep_identity=np.asarray(identity, bool),
        change_of_basis=np.concatenate([Q.ravel() for Q in Qs]),
        bias_field=[b[0] for b in bias], bias_row=[b[1] for b in bias])


@st.composite
def plan_specs(draw, max_dim: int = 9, big_dims=(13,), max_field: int = 60,
               max_channels: int = 90, max_points: int = 343, max_count: int = 6,
               max_fields: int = 3, shapes=("3d", "3d", "flat", "2d")):
    """A :class:`PlanSpec` (see :func:`build_plan`); ``big_dims`` are drawn rarely."""
    n_types = draw(st.integers(1, 5), label="irrep types")
    dim_st = st.integers(1, max_dim)
    if big_dims:
        dim_st = st.one_of(dim_st, dim_st, dim_st, dim_st, st.sampled_from(list(big_dims)))
    dims = [draw(st.sampled_from([1, 1, 3])) if t == 0 else draw(dim_st)
            for t in range(n_types)]
    dims = [min(d, max_field) for d in dims]
    n_reps = draw(st.integers(1, 3), label="representations")
    reps = []
    for _ in range(n_reps):
        r = [draw(st.integers(0, n_types - 1))]
        while True:
            t = draw(st.integers(-1, n_types - 1))  # -1: stop
            if t < 0 or sum(dims[x] for x in r) + dims[t] > max_field:
                break
            r.append(t)
        reps.append(r)
    identity = [len(r) == 1 and draw(st.booleans()) or draw(st.integers(0, 5)) == 0
                for r in reps]
    size = [sum(dims[t] for t in r) for r in reps]

    def fields(label):
        fs = [draw(st.integers(0, n_reps - 1), label=label)]
        while len(fs) < max_fields and draw(st.booleans()):
            r = draw(st.integers(0, n_reps - 1), label=label)
            if sum(size[x] for x in fs) + size[r] > max_channels:
                break
            fs.append(r)
        return fs

    out_fields, in_fields = fields("out field"), fields("in field")
    counts = {}
    for a in range(n_types):
        for b in range(n_types):
            counts[(a, b)] = draw(st.sampled_from([0] + list(range(1, max_count + 1))))
    kind = draw(st.sampled_from(list(shapes)), label="filter kind")
    if kind == "3d":
        ks = [k for k in range(1, 8) if k ** 3 <= max_points]
        k = draw(st.sampled_from(ks))
        shape = (k, k, k)
    elif kind == "2d":
        k = draw(st.integers(1, min(9, int(max_points ** 0.5))))
        shape = (k, k)
    else:
        shape = (draw(st.integers(1, max_points)),)
    return PlanSpec(irrep_dims=dims, reps=reps, identity=identity, out_fields=out_fields,
                    in_fields=in_fields, counts=counts, filter_shape=shape,
                    seed=draw(st.integers(0, 2 ** 32 - 1)))


def random_plans(**kw):
    """Strategy: an ExpansionPlan with at least one weight (see :func:`plan_specs`)."""
    return plan_specs(**kw).map(lambda s: build_plan(**s)).filter(lambda p: p.dim > 0)


# ---- the dense reference ----------------------------------------------------------------------

def _blockdiag(plan, side):
    n = plan.out_size if side == "out" else plan.in_size
    M = np.zeros((n, n))
    for off, r in zip(getattr(plan, f"{side}_field_offset"), getattr(plan, f"{side}_field_rep")):
        Q = plan.rep_matrix(int(r))
        M[off:off + len(Q), off:off + len(Q)] = Q
    return M


def dense_filter(plan: ExpansionPlan, W) -> np.ndarray:
    """(b, C_out, C_in, *filter_shape) filters of weights W (b, dim), float64: every block
    filled with einsum over its basis elements, then Q_out · K̃ · Q_inᵀ."""
    W = np.atleast_2d(np.asarray(W, np.float64))
    Kt = np.zeros((len(W), plan.out_size, plan.in_size, plan.num_points))
    for b in range(plan.num_blocks):
        tau = int(plan.block_pair[b])
        do, di = plan.pair_shape[tau]
        r, c = int(plan.block_row[b]), int(plan.block_col[b])
        n = int(plan.pair_count[tau])
        w = W[:, plan.weight_index[plan.block_weight[b]:plan.block_weight[b] + n]]
        Kt[:, r:r + do, c:c + di] += np.einsum("be,eacp->bacp", w, plan.pair_values(tau))
    K = np.einsum("ab,zbcp,dc->zadp", _blockdiag(plan, "out"), Kt, _blockdiag(plan, "in"),
                  optimize=True)
    return K.reshape((len(W), plan.out_size, plan.in_size) + plan.filter_shape)


def dense_adjoint(plan: ExpansionPlan, G) -> np.ndarray:
    """(b, dim) weight gradients of filter gradients G (b, C_out, C_in, *filter_shape): the
    transpose of :func:`dense_filter`, step by step."""
    G = np.asarray(G, np.float64).reshape(-1, plan.out_size, plan.in_size, plan.num_points)
    Gt = np.einsum("ab,zadp,dc->zbcp", _blockdiag(plan, "out"), G, _blockdiag(plan, "in"),
                   optimize=True)
    out = np.zeros((len(G), plan.dim))
    for b in range(plan.num_blocks):
        tau = int(plan.block_pair[b])
        do, di = plan.pair_shape[tau]
        r, c = int(plan.block_row[b]), int(plan.block_col[b])
        n = int(plan.pair_count[tau])
        idx = plan.weight_index[plan.block_weight[b]:plan.block_weight[b] + n]
        out[:, idx] += np.einsum("zacp,eacp->ze", Gt[:, r:r + do, c:c + di],
                                 plan.pair_values(tau))
    return out
