"""JAX backend: the gather/einsum schedule of an :class:`~cupysteer.plan.ExpansionPlan`
(:mod:`.gather`) executed in pure ``jax.numpy``, and the two JAX primitives built on it.

:func:`forward` / :func:`adjoint` execute a :class:`~.gather.GatherPlan` (they work under
``jit``, ``grad`` and ``vmap`` on every JAX backend). :data:`expand_p` / :data:`adjoint_p` are
primitives whose JVP is themselves (expansion is linear), whose transpose is each other (so
reverse mode runs the explicit adjoint, not a transpose of the gathers JAX would derive), and
whose batching rule maps over leading axes: ``jvp``, ``jacfwd``, ``grad``, ``jacrev``,
``hessian`` and ``vmap`` all work, in any combination. The plan is a primitive parameter and
hashes by value, so equal layers share compiled computations. The public functions are
:mod:`cupysteer.jax`.

Imports JAX at module level: only :mod:`cupysteer.jax` imports this module, and it needs JAX.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from .gather import GatherPlan, Segment, build, schedule

__all__ = ["Segment", "GatherPlan", "JaxPlan", "build", "schedule", "forward", "adjoint",
           "forward_jit", "adjoint_jit", "expand_p", "adjoint_p", "ops"]

#: the schedule's former name (it is not specific to JAX)
JaxPlan = GatherPlan


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


def forward(jp: GatherPlan, w):
    """Weights (..., dim) → filter (..., C_out, C_in, *filter_shape)."""
    if w.shape[-1] != jp.dim:
        raise ValueError(f"weights must have shape (..., {jp.dim}), got {w.shape}")
    lead = w.shape[:-1]
    if 0 in lead:  # an empty batch: empty in, empty out (no -1 to infer in the reshapes)
        return jnp.zeros(lead + (jp.out_size, jp.in_size) + jp.filter_shape, w.dtype)
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


def adjoint(jp: GatherPlan, G):
    """The exact transpose of :func:`forward`: filter gradient → weight gradient (..., dim)."""
    fshape = (jp.out_size, jp.in_size) + jp.filter_shape
    if G.shape[G.ndim - len(fshape):] != fshape:
        raise ValueError(f"filter_grad must have shape (..., *{fshape}), got {G.shape}")
    lead = G.shape[:G.ndim - len(fshape)]
    if 0 in lead:
        return jnp.zeros(lead + (jp.dim,), G.dtype)
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


#: jitted forward / adjoint (the plan is a static argument, hashed by value)
forward_jit = jax.jit(forward, static_argnums=0)
adjoint_jit = jax.jit(adjoint, static_argnums=0)


# ---- primitives: linear, each the other's transpose ------------------------------------------

expand_p = Primitive("cupysteer_expand")
adjoint_p = Primitive("cupysteer_adjoint")


def _fshape(jp):
    return (jp.out_size, jp.in_size) + jp.filter_shape


def _expand_aval(w, *, plan):
    return jax.core.ShapedArray(w.shape[:-1] + _fshape(plan), w.dtype, weak_type=w.weak_type)


def _adjoint_aval(G, *, plan):
    lead = G.shape[:G.ndim - len(_fshape(plan))]
    return jax.core.ShapedArray(lead + (plan.dim,), G.dtype, weak_type=G.weak_type)


def _batch(prim):
    def rule(args, dims, *, plan):
        (x,), (d,) = args, dims
        if d is not None and d != 0:    # None: not mapped
            x = jnp.moveaxis(x, d, 0)   # both functions map over every leading axis
        return prim.bind(x, plan=plan), (None if d is None else 0)
    return rule


expand_p.def_impl(lambda w, *, plan: forward_jit(plan, w))
adjoint_p.def_impl(lambda G, *, plan: adjoint_jit(plan, G))
expand_p.def_abstract_eval(_expand_aval)
adjoint_p.def_abstract_eval(_adjoint_aval)
mlir.register_lowering(expand_p, mlir.lower_fun(lambda w, *, plan: forward(plan, w),
                                                multiple_results=False))
mlir.register_lowering(adjoint_p, mlir.lower_fun(lambda G, *, plan: adjoint(plan, G),
                                                 multiple_results=False))
ad.deflinear2(expand_p, lambda ct, w, *, plan: [adjoint_p.bind(ct, plan=plan)])
ad.deflinear2(adjoint_p, lambda ct, G, *, plan: [expand_p.bind(ct, plan=plan)])
batching.primitive_batchers[expand_p] = _batch(expand_p)
batching.primitive_batchers[adjoint_p] = _batch(adjoint_p)


def ops(jp: GatherPlan):
    """(expand, adjoint) of a schedule as functions of one array: the primitives."""
    return (lambda w: expand_p.bind(w, plan=jp)), (lambda G: adjoint_p.bind(G, plan=jp))
