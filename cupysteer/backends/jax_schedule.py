"""JAX backend: an :class:`~cupysteer.plan.ExpansionPlan` as a gather/einsum schedule in pure
``jax.numpy``, and its execution (forward, exact adjoint, ``custom_vjp`` pairs).

:func:`schedule` turns a plan into a :class:`JaxPlan` (memoised per plan): the channels
sorted by representation (:func:`cupysteer.backends.tables.fields_by_rep`), one basis matrix
per irreps pair (:func:`cupysteer.backends.tables.pair_blocks`), the gathers that place the
pair products in the filter, and the change of basis per run of fields of one
representation. :func:`forward` / :func:`adjoint` execute it (they work under ``jit``,
``grad`` and ``vmap`` on every JAX backend); :func:`ops` gives the jitted pair whose
reverse-mode derivatives are each other. The public functions are :mod:`cupysteer.jax`.

Imports JAX at module level: only :mod:`cupysteer.jax` imports this module, and it needs JAX.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..plan import ExpansionPlan
from .tables import bias_expansion, fields_by_rep, pair_blocks

__all__ = ["Segment", "JaxPlan", "build", "schedule", "forward", "adjoint", "forward_jit",
           "adjoint_jit", "ops"]


# ---- the plan in gather/einsum form -----------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    start: int      # first channel in the representation-sorted order
    n: int          # fields
    size: int       # channels per field
    Q: np.ndarray | None  # (size, size), None for the identity


@dataclass(frozen=True, eq=False)
class JaxPlan:
    dim: int
    out_size: int
    in_size: int
    P: int
    filter_shape: tuple
    pairs: tuple          # per irreps pair: (basis (n, do·di·P), number of blocks)
    wslot: np.ndarray     # weight read by each (block, element), pairs concatenated
    wslot_inv: np.ndarray
    gidx: np.ndarray      # (C_out·C_in·P,) position in V (NV = zero) of each sorted entry
    vidx: np.ndarray      # (NV,) sorted-filter entry of each V position
    out_perm: np.ndarray | None  # sorted channel i' is original channel perm[i']
    out_inv: np.ndarray | None
    in_perm: np.ndarray | None
    in_inv: np.ndarray | None
    out_segments: tuple
    in_segments: tuple
    bias_matrix: np.ndarray  # (C_out, T)


def _sort_fields(plan, side):
    """Channel permutation grouping the fields by representation, and the segments."""
    offs = getattr(plan, f"{side}_field_offset")
    reps = getattr(plan, f"{side}_field_rep")
    perm, segments, start = [], [], 0
    for r, fields in fields_by_rep(reps):
        s = int(plan.rep_size[r])
        for f in fields:
            perm.extend(range(int(offs[f]), int(offs[f]) + s))
        Q = None if plan.rep_identity[r] else np.array(plan.rep_matrix(r))
        if segments and Q is None and segments[-1].Q is None:  # merge identity runs
            prev = segments[-1]
            segments[-1] = Segment(prev.start, prev.n * prev.size + s * len(fields), 1, None)
        else:
            segments.append(Segment(start, len(fields), s, Q))
        start += s * len(fields)
    perm = np.asarray(perm, np.int64)
    if np.array_equal(perm, np.arange(len(perm))):
        return None, None, tuple(segments)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return perm, inv, tuple(segments)


def build(plan: ExpansionPlan) -> JaxPlan:
    """The gather/einsum schedule of ``plan`` (see :func:`schedule` for the memoised one)."""
    P, Co, Ci = plan.num_points, plan.out_size, plan.in_size
    out_perm, out_inv, out_seg = _sort_fields(plan, "out")
    in_perm, in_inv, in_seg = _sort_fields(plan, "in")
    oinv = np.arange(Co) if out_inv is None else out_inv
    iinv = np.arange(Ci) if in_inv is None else in_inv
    pairs, wslots, targets = [], [], []
    for pb in pair_blocks(plan):
        pairs.append((np.array(plan.pair_values(pb.tau).reshape(pb.n, pb.d_out * pb.d_in * P)),
                      len(pb.blocks)))
        wslots.append(pb.weights)
        rows = oinv[pb.rows]                                                # (nb, do)
        cols = iinv[pb.cols]                                                # (nb, di)
        t = (rows[:, :, None, None] * Ci + cols[:, None, :, None]) * P + np.arange(P)
        targets.append(t.reshape(-1))                                       # (nb·do·di·P,)
    wslot = np.concatenate([w.reshape(-1) for w in wslots])
    vidx = np.concatenate(targets)
    gidx = np.full(Co * Ci * P, len(vidx), np.int64)
    gidx[vidx] = np.arange(len(vidx))
    if Co * Ci * P >= 2 ** 31:
        raise ValueError(f"filter of {Co * Ci * P} entries is too large to index with int32")
    i32 = lambda a: None if a is None else np.asarray(a, np.int32)  # noqa: E731  (x64 off)
    wslot, vidx, gidx = i32(wslot), i32(vidx), i32(gidx)
    out_perm, out_inv, in_perm, in_inv = map(i32, (out_perm, out_inv, in_perm, in_inv))
    return JaxPlan(
        dim=plan.dim, out_size=Co, in_size=Ci, P=P, filter_shape=tuple(plan.filter_shape),
        pairs=tuple(pairs), wslot=wslot, wslot_inv=i32(np.argsort(wslot)), gidx=gidx, vidx=vidx,
        out_perm=out_perm, out_inv=out_inv, in_perm=in_perm, in_inv=in_inv,
        out_segments=out_seg, in_segments=in_seg, bias_matrix=bias_expansion(plan))


_lock = threading.Lock()
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def schedule(plan: ExpansionPlan) -> JaxPlan:
    """The :class:`JaxPlan` of ``plan``, built once and kept while the plan lives."""
    with _lock:
        jp = _PLANS.get(plan)
        if jp is None:
            jp = _PLANS[plan] = build(plan)
    return jp


# ---- pure jax.numpy forward and adjoint ---------------------------------------------------------

def _cob(K, segments, axis, transpose):
    """Apply Q (or Qᵀ) of every segment along ``axis`` (-3: output channels, -2: input)."""
    parts = []
    for seg in segments:
        lo, hi = seg.start, seg.start + seg.n * seg.size
        part = jax.lax.slice_in_dim(K, lo, hi, axis=K.ndim + axis)
        if seg.Q is not None:
            Q = jnp.asarray(seg.Q.T if transpose else seg.Q, K.dtype)
            shape = part.shape
            if axis == -3:
                part = part.reshape(shape[:-3] + (seg.n, seg.size) + shape[-2:])
                part = jnp.einsum("ab,...nbcp->...nacp", Q, part)
            else:
                part = part.reshape(shape[:-2] + (seg.n, seg.size, shape[-1]))
                part = jnp.einsum("...onbp,ab->...onap", part, Q)
            part = part.reshape(shape)
        parts.append(part)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=axis)


def forward(jp: JaxPlan, w):
    """Weights (..., dim) → filter (..., C_out, C_in, *filter_shape)."""
    if w.shape[-1] != jp.dim:
        raise ValueError(f"weights must have shape (..., {jp.dim}), got {w.shape}")
    lead = w.shape[:-1]
    W = jnp.take(w, jnp.asarray(jp.wslot), axis=-1)
    vals, lo = [], 0
    for B, nb in jp.pairs:
        n = B.shape[0]
        Wt = W[..., lo:lo + nb * n].reshape(lead + (nb, n))
        vals.append(jnp.einsum("...be,eq->...bq", Wt, jnp.asarray(B, w.dtype))
                    .reshape(lead + (-1,)))
        lo += nb * n
    vals.append(jnp.zeros(lead + (1,), w.dtype))
    V = jnp.concatenate(vals, axis=-1)
    K = jnp.take(V, jnp.asarray(jp.gidx), axis=-1).reshape(lead + (jp.out_size, jp.in_size, jp.P))
    K = _cob(K, jp.out_segments, -3, False)
    K = _cob(K, jp.in_segments, -2, False)
    if jp.out_inv is not None:
        K = jnp.take(K, jnp.asarray(jp.out_inv), axis=-3)
    if jp.in_inv is not None:
        K = jnp.take(K, jnp.asarray(jp.in_inv), axis=-2)
    return K.reshape(lead + (jp.out_size, jp.in_size) + jp.filter_shape)


def adjoint(jp: JaxPlan, G):
    """The exact transpose of :func:`forward`: filter gradient → weight gradient (..., dim)."""
    fshape = (jp.out_size, jp.in_size) + jp.filter_shape
    if G.shape[G.ndim - len(fshape):] != fshape:
        raise ValueError(f"filter_grad must have shape (..., *{fshape}), got {G.shape}")
    lead = G.shape[:G.ndim - len(fshape)]
    G = G.reshape(lead + (jp.out_size, jp.in_size, jp.P))
    if jp.out_perm is not None:
        G = jnp.take(G, jnp.asarray(jp.out_perm), axis=-3)
    if jp.in_perm is not None:
        G = jnp.take(G, jnp.asarray(jp.in_perm), axis=-2)
    G = _cob(G, jp.out_segments, -3, True)
    G = _cob(G, jp.in_segments, -2, True)
    V = jnp.take(G.reshape(lead + (-1,)), jnp.asarray(jp.vidx), axis=-1)
    grads, lo = [], 0
    for B, nb in jp.pairs:
        n, q = B.shape
        Vt = V[..., lo:lo + nb * q].reshape(lead + (nb, q))
        grads.append(jnp.einsum("...bq,eq->...be", Vt, jnp.asarray(B, G.dtype))
                     .reshape(lead + (-1,)))
        lo += nb * q
    g = jnp.concatenate(grads, axis=-1)
    return jnp.take(g, jnp.asarray(jp.wslot_inv), axis=-1)


#: jitted forward / adjoint (the plan is a static argument), without custom_vjp
forward_jit = jax.jit(forward, static_argnums=0)
adjoint_jit = jax.jit(adjoint, static_argnums=0)


def _make_ops(jp: JaxPlan):
    @jax.custom_vjp
    def exp(w):
        return forward(jp, w)

    @jax.custom_vjp
    def adj(G):
        return adjoint(jp, G)

    exp.defvjp(lambda w: (forward(jp, w), None), lambda _, g: (adj(g),))
    adj.defvjp(lambda G: (adjoint(jp, G), None), lambda _, g: (exp(g),))
    # jit: eager calls run as one XLA computation (compiled once per shape and dtype)
    return jax.jit(exp), jax.jit(adj)


def ops(jp: JaxPlan):
    """The jitted (expand, adjoint) of a schedule, each the other's reverse-mode derivative,
    kept on the JaxPlan (they reference the plan, so a registry keyed by the plan would keep
    both alive forever)."""
    with _lock:
        pair = getattr(jp, "_ops", None)
        if pair is None:
            pair = _make_ops(jp)
            object.__setattr__(jp, "_ops", pair)
    return pair
