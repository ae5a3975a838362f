r"""Padded (e2cnn-style) forms of a layer basis: references and baselines, never the hot path.

* :func:`dense`: the full (dim, C_out, C_in, *filter_shape) basis, built block by block from the
  irreps-pair bases and the fields' Q — independent of every plan executor, so tests compare
  the backends against it;
* :func:`padded_blocks`: e2cnn's own storage, one padded (d, size_out, size_in, P) buffer per
  (in representation name, out representation name), which the CUDA ``padded`` baseline
  expands with one GEMM per block;
* :func:`padded_bytes`: what that storage costs in float32.

Each irreps block is :math:`Q_\text{out}[:, a:a+d_o]\, B_\tau\, Q_\text{in}[:, c:c+d_i]^T`.
"""
from __future__ import annotations

import numpy as np

from ._memory import check_host
from .layout import group_fields, rep_pair_order

__all__ = ["dense", "padded_blocks", "padded_bytes"]


def _rotated(pb, rout, oo, rin, ii) -> np.ndarray:
    """The pair basis of irreps block (oo, ii) in the fields' channel coordinates."""
    do, di = pb.shape
    a, c = rout.irrep_offsets[oo], rin.irrep_offsets[ii]
    return np.einsum("ab,nbcp,dc->nadp", rout.change_of_basis[:, a:a + do], pb.values,
                     rin.change_of_basis[:, c:c + di])


def _check(entries: int, dtype, what, hint) -> None:
    extra = 0 if np.dtype(dtype) == np.float64 else np.dtype(dtype).itemsize
    check_host(entries * (8 + extra), what, hint)


def padded_bytes(basis) -> int:
    """Bytes of e2cnn's padded float32 basis for the layer: one (d, size_out, size_in, P)
    buffer per (in repr name, out repr name) block, shared by that block's fields."""
    t_in, t_out = basis.in_type, basis.out_type
    size = {r.name: r.size for r in t_in.representations + t_out.representations}
    return 4 * len(basis.points) * sum(b.elements * size[b.in_name] * size[b.out_name]
                                       for b in basis.weight_blocks)


def padded_blocks(basis, dtype=np.float64) -> list:
    """e2cnn's storage: per (in repr name, out repr name) block its padded basis
    E (d, size_out, size_in, P), shared by the block's fields, with the block's weight
    slice and channels. Items: dict(E, lo, n_out, n_in, out_channels, in_channels)."""
    tin, tout, P = basis.in_type, basis.out_type, len(basis.points)
    gin, gout = group_fields(tin, "in_type"), group_fields(tout, "out_type")
    n = padded_bytes(basis) // 4  # entries of all padded blocks
    _check(n, dtype, lambda: f"padded_blocks: the padded basis of {basis} ({n} entries)",
           "use the irreps-level plan (expand) instead")
    blocks = []
    for wb in basis.weight_blocks:
        rin = tin.representations[gin[wb.in_name][0]]
        rout = tout.representations[gout[wb.out_name][0]]
        pos, _ = rep_pair_order(rin, rout, basis.pair_basis, tin.group.space)
        E = np.zeros((wb.elements, rout.size, rin.size, P))
        for (ii, oo), where in pos.items():
            E[where] = _rotated(basis.pair_basis(rin.irreps[ii], rout.irreps[oo]), rout, oo,
                                rin, ii)
        channels = [np.concatenate([np.arange(t.channels(f).start, t.channels(f).stop)
                                    for f in fields])
                    for t, fields in ((tout, gout[wb.out_name]), (tin, gin[wb.in_name]))]
        blocks.append(dict(E=E.astype(dtype, copy=False), lo=wb.lo, n_out=wb.n_out,
                           n_in=wb.n_in, out_channels=channels[0], in_channels=channels[1]))
    return blocks


def dense(basis, dtype=np.float64) -> np.ndarray:
    """The padded basis (dim, C_out, C_in, *filter_shape), built directly from the irreps
    blocks and the fields' Q (a reference independent of the plan executors)."""
    shape = (basis.dim,) + basis.shape
    _check(int(np.prod(shape)), dtype, lambda: f"dense: the padded basis of shape {shape}",
           "use expand (the irreps-level plan) or padded_blocks instead")
    tin, tout, plan, blk = basis.in_type, basis.out_type, basis.plan, basis.blocks
    D = np.zeros((basis.dim, tout.size, tin.size, len(basis.points)))
    for beta in range(plan.num_blocks):
        Pf, Qf = int(blk.out_field[beta]), int(blk.in_field[beta])
        rout, rin = tout.representations[Pf], tin.representations[Qf]
        pb = basis.pair_basis(*basis.irreps_pairs[int(blk.pair[beta])])
        E = _rotated(pb, rout, int(blk.out_irrep[beta]), rin, int(blk.in_irrep[beta]))
        w = plan.weight_index[plan.block_weight[beta]:plan.block_weight[beta] + len(pb)]
        D[w, tout.channels(Pf), tin.channels(Qf)] = E
    return D.reshape(shape).astype(dtype, copy=False)
