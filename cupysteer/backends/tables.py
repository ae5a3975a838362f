"""Index tables shared by the plan executors that run on whole arrays (NumPy, JAX).

Both the NumPy reference (:mod:`.numpy_backend`) and the JAX schedule (:mod:`.jax_schedule`)
group the fields of a side by representation and the irreps blocks by irreps pair τ; the
grouping is computed here once, from an :class:`~cupysteer.plan.ExpansionPlan`, in pure NumPy:

* :func:`fields_by_rep`: the fields of each representation, representations in order of
  first appearance (the order both executors process them in);
* :func:`progressions`: those fields split into runs whose channel offsets form an arithmetic
  progression (the NumPy backend's strided views), and :func:`group_of`;
* :func:`block_weights` / :func:`pair_blocks`: per irreps pair τ, its blocks with the weight
  of every (block, element) and the filter rows / columns each block covers;
* :func:`bias_expansion`: the (C_out, T) matrix from one bias per trivial output irrep to
  one per output channel.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from ..plan import ExpansionPlan

__all__ = ["fields_by_rep", "progressions", "group_of", "block_weights", "PairBlocks",
           "pair_blocks", "bias_expansion"]


def fields_by_rep(reps) -> list:
    """[(rep id, [fields of that representation, increasing])] for the fields' representation
    ids ``reps``, representations in order of first appearance."""
    return [(r, [f for f in range(len(reps)) if reps[f] == r])
            for r in dict.fromkeys(int(x) for x in reps)]


def progressions(offsets, sizes, reps) -> list:
    """Split the fields into groups of one representation whose channel offsets form an
    arithmetic progression (a periodic field type such as [ψ0, ψ1, ψ2] × 8 gives one group
    per representation): (fields, first channel, count, channel stride, size, rep id)."""
    groups = []
    for r, fields in fields_by_rep(reps):
        i = 0
        while i < len(fields):
            j = i + 1
            stride = int(offsets[fields[j]] - offsets[fields[i]]) if j < len(fields) else 0
            while j < len(fields) and offsets[fields[j]] - offsets[fields[j - 1]] == stride:
                j += 1
            n, s = j - i, int(sizes[fields[i]])
            groups.append((fields[i:j], int(offsets[fields[i]]), n, stride if n > 1 else s, s, r))
            i = j
    return groups


def group_of(groups, n_fields: int) -> np.ndarray:
    """(n_fields,) int64: the index in ``groups`` (of :func:`progressions`) of each field."""
    table = np.empty(n_fields, np.int64)
    for k, g in enumerate(groups):
        table[g[0]] = k
    return table


def block_weights(plan: ExpansionPlan, blocks: np.ndarray, n: int) -> np.ndarray:
    """(len(blocks), n) int64: the weight of element e of each of ``blocks`` (blocks of
    irreps pairs with ``n`` basis elements)."""
    return plan.weight_index[plan.block_weight[blocks][:, None] + np.arange(n)]


class PairBlocks(NamedTuple):
    """The blocks of one irreps pair τ (an ``n``-element basis of d_out × d_in matrices)."""

    tau: int
    blocks: np.ndarray   # (nb,) block indices, increasing
    n: int
    d_out: int
    d_in: int
    weights: np.ndarray  # (nb, n) weight of each (block, element)
    rows: np.ndarray     # (nb, d_out) filter rows (output channels) of each block
    cols: np.ndarray     # (nb, d_in) filter columns (input channels) of each block


def pair_blocks(plan: ExpansionPlan) -> Iterator[PairBlocks]:
    """The blocks of every irreps pair that has any, in increasing τ."""
    for tau in np.unique(plan.block_pair):
        tau = int(tau)
        blocks = np.flatnonzero(plan.block_pair == tau)
        n = int(plan.pair_count[tau])
        do, di = (int(v) for v in plan.pair_shape[tau])
        yield PairBlocks(tau, blocks, n, do, di, block_weights(plan, blocks, n),
                         plan.block_row[blocks][:, None] + np.arange(do),
                         plan.block_col[blocks][:, None] + np.arange(di))


def bias_expansion(plan: ExpansionPlan) -> np.ndarray:
    """(C_out, T) matrix: column t is the column of the field's Q for trivial irrep t."""
    M = np.zeros((plan.out_size, plan.num_bias))
    for t, (f, row) in enumerate(zip(plan.bias_field, plan.bias_row)):
        off = int(plan.out_field_offset[f])
        Q = plan.rep_matrix(int(plan.out_field_rep[f]))
        M[off:off + Q.shape[0], t] = Q[:, int(row) - off]
    return M
