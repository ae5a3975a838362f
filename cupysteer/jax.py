"""JAX adapter: filter expansion as a pure ``jax.numpy`` function with the exact adjoint as its
``custom_vjp``, and a functional steerable convolution.

Needs ``pip install "cupysteer[jax]"``.

>>> import jax, jax.numpy as jnp, cupysteer as cs
>>> from cupysteer import jax as csj
>>> G = cs.CyclicGroup(4)
>>> t = cs.FieldType(G, [G.regular_representation] * 2)
>>> basis = cs.LayerBasis(t, t, 5)
>>> w = csj.init_weights(basis, jax.random.key(0))
>>> x = jnp.ones((1, 8, 9, 9))
>>> jax.jit(lambda w, x: csj.conv2d(x, basis, w, padding=2))(w, x).shape
(1, 8, 9, 9)

Which path runs where:

* :func:`expand`, :func:`adjoint`, :func:`expand_bias`, :func:`conv2d`, :func:`conv3d`: pure
  ``jax.numpy``
  (gathers, einsums and the per-representation change of basis, derived from the layer's
  :class:`~cupysteer.ExpansionPlan`), so they work under ``jit``, ``grad`` and ``vmap`` on
  every JAX backend (CPU, GPU, TPU). ``expand``'s reverse-mode derivative is the explicit
  adjoint (``custom_vjp``); forward mode (``jvp``/``jacfwd``) is not available for
  ``custom_vjp`` functions, so pass ``custom_vjp=False`` there (JAX then differentiates the
  gathers and einsums itself; same values).
* :func:`expand_eager`: outside ``jit`` only. CPU arrays go to the NumPy backend (zero-copy
  in through DLPack); arrays on a CUDA device go to the CuPy backend through DLPack, zero-copy
  on the device. Not differentiable.
"""
from __future__ import annotations

try:
    import jax
    import jax.numpy as jnp
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError('cupysteer.jax needs JAX: pip install "cupysteer[jax]"') from _e

import threading
import weakref
from dataclasses import dataclass

import numpy as np

from . import dlpack as _dl
from .basis import LayerBasis

__all__ = ["expand", "adjoint", "expand_bias", "conv2d", "conv3d", "init_weights",
           "expand_eager"]


# ---- the plan in gather/einsum form -----------------------------------------------------------

@dataclass(frozen=True)
class _Segment:
    start: int      # first channel in the representation-sorted order
    n: int          # fields
    size: int       # channels per field
    Q: np.ndarray | None  # (size, size), None for the identity


@dataclass(frozen=True, eq=False)
class _JaxPlan:
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
    sizes = getattr(plan, f"{side}_field_size")
    reps = getattr(plan, f"{side}_field_rep")
    perm, segments, start = [], [], 0
    for r in dict.fromkeys(int(x) for x in reps):
        fields = [f for f in range(len(reps)) if reps[f] == r]
        s = int(plan.rep_size[r])
        for f in fields:
            perm.extend(range(int(offs[f]), int(offs[f]) + s))
        Q = None if plan.rep_identity[r] else np.array(plan.rep_matrix(r))
        if segments and Q is None and segments[-1].Q is None:  # merge identity runs
            prev = segments[-1]
            segments[-1] = _Segment(prev.start, prev.n * prev.size + s * len(fields), 1, None)
        else:
            segments.append(_Segment(start, len(fields), s, Q))
        start += s * len(fields)
    perm = np.asarray(perm, np.int64)
    if np.array_equal(perm, np.arange(len(perm))):
        return None, None, tuple(segments)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return perm, inv, tuple(segments)


def _build(basis: LayerBasis) -> _JaxPlan:
    plan = basis.plan
    P, Co, Ci = plan.num_points, plan.out_size, plan.in_size
    out_perm, out_inv, out_seg = _sort_fields(plan, "out")
    in_perm, in_inv, in_seg = _sort_fields(plan, "in")
    oinv = np.arange(Co) if out_inv is None else out_inv
    iinv = np.arange(Ci) if in_inv is None else in_inv
    pairs, wslots, targets = [], [], []
    for tau in range(len(plan.pair_count)):
        blocks = np.flatnonzero(plan.block_pair == tau)
        if len(blocks) == 0:
            continue
        n = int(plan.pair_count[tau])
        do, di = (int(v) for v in plan.pair_shape[tau])
        pairs.append((np.array(plan.pair_values(tau).reshape(n, do * di * P)), len(blocks)))
        wslots.append(plan.weight_index[plan.block_weight[blocks][:, None] + np.arange(n)])
        rows = oinv[plan.block_row[blocks][:, None] + np.arange(do)]        # (nb, do)
        cols = iinv[plan.block_col[blocks][:, None] + np.arange(di)]        # (nb, di)
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
    return _JaxPlan(
        dim=plan.dim, out_size=Co, in_size=Ci, P=P, filter_shape=tuple(plan.filter_shape),
        pairs=tuple(pairs), wslot=wslot, wslot_inv=i32(np.argsort(wslot)), gidx=gidx, vidx=vidx,
        out_perm=out_perm, out_inv=out_inv, in_perm=in_perm, in_inv=in_inv,
        out_segments=out_seg, in_segments=in_seg, bias_matrix=basis.bias_expansion())


_lock = threading.Lock()
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _jax_plan(basis) -> _JaxPlan:
    if not isinstance(basis, LayerBasis):
        raise TypeError(f"expected a LayerBasis, got {type(basis).__name__}")
    with _lock:
        jp = _PLANS.get(basis.plan)
        if jp is None:
            jp = _PLANS[basis.plan] = _build(basis)
    return jp


# ---- pure jax.numpy forward and adjoint ---------------------------------------------------------

def _float(x, name):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got {x.dtype}; the filters are real-valued: "
                         f"pass {name}.real if its imaginary part is 0")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


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


def _forward(jp: _JaxPlan, w):
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


def _adjoint(jp: _JaxPlan, G):
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


_forward_jit = jax.jit(_forward, static_argnums=0)
_adjoint_jit = jax.jit(_adjoint, static_argnums=0)


def _make_ops(jp: _JaxPlan):
    @jax.custom_vjp
    def exp(w):
        return _forward(jp, w)

    @jax.custom_vjp
    def adj(G):
        return _adjoint(jp, G)

    exp.defvjp(lambda w: (_forward(jp, w), None), lambda _, g: (adj(g),))
    adj.defvjp(lambda G: (_adjoint(jp, G), None), lambda _, g: (exp(g),))
    # jit: eager calls run as one XLA computation (compiled once per shape and dtype)
    return jax.jit(exp), jax.jit(adj)


def _ops(basis):
    """The jitted (expand, adjoint) of a basis, kept on its _JaxPlan (they reference the
    plan, so a registry keyed by the plan would keep both alive forever)."""
    jp = _jax_plan(basis)
    with _lock:
        ops = getattr(jp, "_ops", None)
        if ops is None:
            ops = _make_ops(jp)
            object.__setattr__(jp, "_ops", ops)
    return ops


# ---- public API ----------------------------------------------------------------------------------

def expand(basis: LayerBasis, weights, *, custom_vjp: bool = True):
    """Weights (..., dim) → filter (..., C_out, C_in, k, k) (k, k, k for groups acting on R³)
    in the weights' dtype; pure
    ``jax.numpy`` (jit/grad/vmap). The reverse-mode derivative is :func:`adjoint`."""
    w = _float(weights, "weights")
    if not custom_vjp:
        return _forward_jit(_jax_plan(basis), w)
    return _ops(basis)[0](w)


def adjoint(basis: LayerBasis, filter_grad, *, custom_vjp: bool = True):
    """The exact transpose of :func:`expand`: filter gradient (..., C_out, C_in, k, k) →
    weight gradient (..., dim)."""
    G = _float(filter_grad, "filter_grad")
    if not custom_vjp:
        return _adjoint_jit(_jax_plan(basis), G)
    return _ops(basis)[1](G)


def expand_bias(basis: LayerBasis, bias):
    """One bias per trivial output irrep (..., T) → one per output channel (..., C_out)."""
    b = _float(bias, "bias")
    M = _jax_plan(basis).bias_matrix
    if b.shape[-1:] != (M.shape[1],):
        raise ValueError(f"bias must have shape (..., {M.shape[1]}), got {b.shape}")
    return b @ jnp.asarray(M.T, b.dtype)


def _tuple(v, n, name):
    try:
        t = tuple(int(a) for a in (v if isinstance(v, (tuple, list)) else (v,) * n))
    except (TypeError, ValueError):
        t = ()
    if len(t) != n:
        raise ValueError(f"{name} must be an int or a {n}-tuple of ints, got {v!r} (strings "
                         f"such as 'same' are not supported: pass kernel_size // 2)")
    return t


def _pair(v, name):
    return _tuple(v, 2, name)


def _grid_dilation(basis, n=2) -> int:
    if len(basis.filter_shape) != n:
        grid = "×".join("k" * n)
        fn = "conv2d" if n == 2 else "conv3d"
        if len(basis.filter_shape) in (2, 3):
            other = "conv3d" if n == 2 else "conv2d"
            raise ValueError(f"{fn} needs a basis sampled on the {grid} grid; this basis has "
                             f"a {'×'.join(map(str, basis.filter_shape))} filter: use {other}")
        raise ValueError(f"{fn} needs a basis sampled on the {grid} grid (no explicit points)")
    if basis.filter_shape[0] == 1:
        return 1
    return int(round(float(basis.points[1, 0] - basis.points[0, 0])))


def _conv(x, basis, weights, bias, stride, padding, dilation, precision, n):
    d = _grid_dilation(basis, n)
    if (dilation is not None and _tuple(dilation, n, "dilation") != (d,) * n
            and basis.filter_shape[0] > 1):
        raise ValueError(f"dilation {dilation!r} differs from the basis grid's dilation {d}; "
                         f"build the LayerBasis with dilation={dilation!r}")
    x = jnp.asarray(x)
    if x.ndim != n + 2 or x.shape[1] != basis.in_type.size:
        raise ValueError(f"x must have shape (N, {basis.in_type.size}, "
                         f"{', '.join('DHW'[3 - n:])}), got {x.shape}")
    filt = expand(basis, weights)
    pad = _tuple(padding, n, "padding")
    spatial = "DHW"[3 - n:]
    y = jax.lax.conv_general_dilated(
        x, filt.astype(x.dtype), window_strides=_tuple(stride, n, "stride"),
        padding=tuple((p, p) for p in pad), rhs_dilation=(d,) * n,
        dimension_numbers=("NC" + spatial, "OI" + spatial, "NC" + spatial), precision=precision)
    if bias is not None:
        y = y + expand_bias(basis, bias).astype(y.dtype).reshape((-1,) + (1,) * n)
    return y


def conv2d(x, basis: LayerBasis, weights, bias=None, stride=1, padding=0, dilation=None, *,
           precision=None):
    """Steerable convolution of ``x`` [N, C_in, H, W] with the filter of ``weights``
    (``jax.lax.conv_general_dilated``, cross-correlation like ``torch.nn.functional.conv2d``),
    plus ``expand_bias(bias)`` when given. ``dilation`` defaults to the basis grid's own
    (``LayerBasis(..., dilation=d)``); another value is an error."""
    return _conv(x, basis, weights, bias, stride, padding, dilation, precision, 2)


def conv3d(x, basis: LayerBasis, weights, bias=None, stride=1, padding=0, dilation=None, *,
           precision=None):
    """Steerable convolution for a group acting on R³: ``x`` [N, C_in, D1, D2, D3] with the
    spatial axes (−z, −y, x) as escnn's ``R3Conv`` (and :class:`cupysteer.torch.SteerableConv3d`),
    a cross-correlation like ``torch.nn.functional.conv3d``, plus ``expand_bias(bias)`` when
    given. ``stride``/``padding``: an int or a 3-tuple; ``dilation`` as in :func:`conv2d`."""
    return _conv(x, basis, weights, bias, stride, padding, dilation, precision, 3)


def init_weights(basis: LayerBasis, key, dtype=jnp.float32):
    """Generalised He initialisation (``basis.he_std() · N(0, 1)``) from a JAX PRNG key."""
    std = jnp.asarray(basis.he_std(), dtype)
    return std * jax.random.normal(key, (basis.dim,), dtype)


def expand_eager(basis: LayerBasis, weights):
    """Outside ``jit``: expand a concrete JAX array with the native backend of its device
    (NumPy on CPU, the CuPy kernels on a CUDA device), through DLPack. Not differentiable."""
    if isinstance(weights, jax.core.Tracer):
        raise TypeError("expand_eager needs a concrete array; under jit/grad/vmap use "
                        "cupysteer.jax.expand")
    return _dl.expand(basis, weights)
