"""JAX adapter: filter expansion as a pure ``jax.numpy`` function with the exact adjoint as its
``custom_vjp``, and a functional steerable convolution.

Needs JAX: ``pip install -e ".[jax]"`` in the cupysteer checkout (installed from its
repository, not from an index). Flax NNX and Equinox modules over these functions:
:mod:`cupysteer.flax`, :mod:`cupysteer.equinox`.

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
  :class:`~cupysteer.ExpansionPlan`), so they work under ``jit`` and ``vmap`` on every JAX
  backend (CPU, GPU, TPU). Both derivative modes work by default: ``expand`` and ``adjoint``
  are linear JAX primitives whose JVP is themselves and whose transpose is each other, so
  ``jvp``/``jacfwd`` run the expansion on tangents and ``grad``/``jacrev`` run the explicit
  adjoint; ``hessian`` and any nesting follow. ``custom_vjp=False`` lets JAX differentiate
  the gathers and einsums itself instead (same values).
* Bases hash by value here: two equal layers share one schedule (one primitive parameter),
  so a jitted function traced for one is reused for the other.
* :func:`expand_eager`: outside ``jit`` only. CPU arrays go to the NumPy backend (zero-copy
  in through DLPack); arrays on a CUDA device go to the CuPy backend through DLPack, zero-copy
  on the device. Not differentiable.

This module holds the public functions only; the schedule (built once per plan) and its
execution are :mod:`cupysteer.backends.jax_schedule`.
"""
from __future__ import annotations

try:
    import jax
    import jax.numpy as jnp
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError('cupysteer.jax needs JAX: pip install -e ".[jax]" in the cupysteer '
                      'checkout') from _e

from . import dlpack as _dl
from .backends import jax_schedule
from .basis import LayerBasis

__all__ = ["expand", "adjoint", "expand_bias", "conv2d", "conv3d", "init_weights",
           "expand_eager", "StaticBasis"]


class StaticBasis:
    """A :class:`~cupysteer.LayerBasis` that compares and hashes **by value** (the digest of
    its expansion plan, its filter shape, the digest of its sample points and the grid's
    dilation and spacing — ``k=4, dilation=2`` and ``k=4, spacing=2`` share points and plan
    but convolve with other input strides): for
    ``jax.jit(..., static_argnums=…)`` and the static fields of Flax/Equinox modules, so two
    equal layers share one trace. Every function here takes it
    wherever it takes a LayerBasis; ``.basis`` is the wrapped one."""

    __slots__ = ("basis", "digest")

    def __init__(self, basis):
        basis = basis.basis if isinstance(basis, StaticBasis) else basis
        if not isinstance(basis, LayerBasis):
            raise TypeError(f"StaticBasis wraps a LayerBasis, got {type(basis).__name__}")
        self.basis = basis
        # (plan digest, filter shape, SHA-256 of the points, dilation, spacing):
        # LayerBasis.definition's tail (equal points with another dilation convolve otherwise)
        self.digest = (jax_schedule.schedule(basis.plan).digest,) + basis.definition[3:]

    def __eq__(self, other):
        return isinstance(other, StaticBasis) and other.digest == self.digest

    def __hash__(self):
        return hash(self.digest)

    def __getstate__(self):
        return {"basis": self.basis, "digest": self.digest}

    def __setstate__(self, state):
        self.basis, self.digest = state["basis"], state["digest"]

    def __repr__(self):
        return f"StaticBasis({self.basis!r})"


def _as_basis(basis) -> LayerBasis:
    if isinstance(basis, StaticBasis):
        return basis.basis
    if not isinstance(basis, LayerBasis):
        raise TypeError(f"expected a LayerBasis (or StaticBasis), got {type(basis).__name__}")
    return basis


def _jax_plan(basis) -> jax_schedule.GatherPlan:
    return jax_schedule.schedule(_as_basis(basis).plan)


def _float(x, name):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got {x.dtype}; the filters are real-valued: "
                         f"pass {name}.real if its imaginary part is 0")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


# ---- public API ----------------------------------------------------------------------------------

def expand(basis: LayerBasis, weights, *, custom_vjp: bool = True):
    """Weights (..., dim) → filter (..., C_out, C_in, k, k) (k, k, k for groups acting on R³)
    in the weights' dtype; pure ``jax.numpy`` (jit/vmap, forward and reverse mode). The
    reverse-mode derivative is :func:`adjoint` (``custom_vjp=False``: JAX's own transpose of
    the gathers instead)."""
    w = _float(weights, "weights")
    if not custom_vjp:
        return jax_schedule.forward_jit(_jax_plan(basis), w)
    return jax_schedule.ops(_jax_plan(basis))[0](w)


def adjoint(basis: LayerBasis, filter_grad, *, custom_vjp: bool = True):
    """The exact transpose of :func:`expand`: filter gradient (..., C_out, C_in, k, k) →
    weight gradient (..., dim)."""
    G = _float(filter_grad, "filter_grad")
    if not custom_vjp:
        return jax_schedule.adjoint_jit(_jax_plan(basis), G)
    return jax_schedule.ops(_jax_plan(basis))[1](G)


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
    if basis.dilation is not None:  # the grid's own (anisotropic grids: not the point step)
        return basis.dilation
    if basis.filter_shape[-1] == 1:  # pickled by 0.1: the step along x of a k×…×k grid
        return 1
    return int(round(float(basis.points[1, 0] - basis.points[0, 0])))


def _conv(x, basis, weights, bias, stride, padding, dilation, precision, n):
    basis = _as_basis(basis)
    d = _grid_dilation(basis, n)
    if (dilation is not None and _tuple(dilation, n, "dilation") != (d,) * n
            and max(basis.filter_shape) > 1):
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
    (``LayerBasis(..., dilation=d)``); another value is an error. Anisotropic grids
    (``LayerBasis(..., kernel_size=(k_H, k_W), spacing=(s_H, s_W))``) convolve the same way:
    the spacing lives in the basis, ``padding`` may be per axis."""
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
    basis = _as_basis(basis)
    std = jnp.asarray(basis.he_std(), dtype)
    return std * jax.random.normal(key, (basis.dim,), dtype)


def expand_eager(basis: LayerBasis, weights):
    """Outside ``jit``: expand a concrete JAX array with the native backend of its device
    (NumPy on CPU, the CuPy kernels on a CUDA device), through DLPack. Not differentiable."""
    if isinstance(weights, jax.core.Tracer):
        raise TypeError("expand_eager needs a concrete array; under jit/grad/vmap use "
                        "cupysteer.jax.expand")
    return _dl.expand(_as_basis(basis), weights)


def expand_many(bases, weights, *, custom_vjp: bool = True) -> tuple:
    """Every layer's filter at once: ``weights[i]`` (..., ``bases[i].dim``) → a tuple of
    filters, as :func:`expand` gives them one by one (same values, same reverse-mode
    derivative), traced and compiled as one jitted computation (one dispatch per call
    outside ``jit``; inside a jitted training step it is inlined like :func:`expand`). The
    JAX counterpart of :func:`cupysteer.torch.grouped.expand_together`.

    >>> fs = jax.jit(lambda ws: expand_many([b1, b2], ws))([w1, w2])  # doctest: +SKIP
    """
    bases, weights = tuple(bases), tuple(weights)
    if not bases:
        raise ValueError("bases must hold at least one LayerBasis")
    if len(weights) != len(bases):
        raise ValueError(f"weights must hold one array per basis: {len(bases)} bases, "
                         f"{len(weights)} weight arrays")
    bases = tuple(_as_basis(b) for b in bases)
    plans = tuple(_jax_plan(b) for b in bases)
    ws = tuple(_float(w, f"weights[{i}]") for i, w in enumerate(weights))
    for i, (b, w) in enumerate(zip(bases, ws)):
        if w.shape[-1:] != (b.dim,):
            raise ValueError(f"weights[{i}] must have shape (..., {b.dim}) for bases[{i}], "
                             f"got {w.shape}")
    return _expand_many_jit(plans, ws, custom_vjp)


def _expand_all(plans, ws, custom_vjp):
    if custom_vjp:
        return tuple(jax_schedule.ops(p)[0](w) for p, w in zip(plans, ws))
    return tuple(jax_schedule.forward(p, w) for p, w in zip(plans, ws))


# the schedules are static (hashed by identity, memoised per plan): one executable per
# (layer set, shapes, dtypes)
_expand_many_jit = jax.jit(_expand_all, static_argnums=(0, 2))


__all__ += ["expand_many"]  # appended with expand_many (issue 13)



# ---- point convolutions (issue 19) ---------------------------------------------------------------
import numpy as _np  # noqa: E402

from .backends.point_numpy import block_groups as _block_groups  # noqa: E402
from .pointconv import AGGREGATIONS as _AGGREGATIONS  # noqa: E402
from .pointconv import _chunk as _chunk_edges  # noqa: E402  (the core's validation)


def _point_messages(groups, B, w, g, src, c_out):
    """(E, c_out) messages K̃(δ_e) g_src (the contract of cupysteer.backends.point_numpy),
    one einsum per irreps pair; ``groups``: :func:`_static_groups` (hashable, static)."""
    msg = jnp.zeros((len(src), c_out), g.dtype)
    gs = g[src]
    for oc, ic, wi, bo, n, do, di in groups:
        x = gs[:, _np.array(ic)].reshape(len(src), len(wi), di)
        m = jnp.einsum("ekrc,bk,ebc->ebr", B[:, bo:bo + n * do * di].reshape(len(B), n, do, di),
                       w[_np.array(wi)], x)
        msg = msg.at[:, _np.array(oc)].add(m.reshape(len(src), len(oc)))
    return msg


#: one XLA program per (table, chunk shapes) instead of one dispatch per operation
_point_messages_jit = jax.jit(_point_messages, static_argnums=(0, 5))


def _static_groups(table) -> tuple:
    """:func:`~cupysteer.backends.point_numpy.block_groups` as nested tuples (a jit key)."""
    return tuple((tuple(oc.tolist()), tuple(ic.tolist()), tuple(map(tuple, wi.tolist())),
                  int(bo), int(n), int(do), int(di))
                 for oc, ic, wi, bo, n, do, di in _block_groups(table))


def point_conv(basis, weights, features, positions, edge_index, bias=None, *,
               aggregation: str = "mean", chunk_edges: int | None = None):
    r"""Steerable point convolution (:class:`~cupysteer.pointconv.PointConvBasis`) in JAX:
    y_i = agg_{e=(j→i)} K(x_j − x_i) f_j (+ bias), K = Q_out K̃ Q_inᵀ at irreps level.

    ``positions`` and ``edge_index`` must be concrete (NumPy or JAX arrays, not traced): the
    basis is evaluated per edge chunk by the NumPy core and is a constant for JAX;
    ``weights``, ``features`` and ``bias`` are differentiable (``jax.grad`` works) and the
    messages are summed per target with ``jax.ops.segment_sum``."""
    if aggregation not in _AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {_AGGREGATIONS}, got {aggregation!r}")
    x = _np.asarray(positions, _np.float64)
    ei = _np.asarray(edge_index)
    basis.check_graph(_np.zeros((len(x), basis.in_type.size)), x, ei)
    if features.shape != (len(x), basis.in_type.size):
        raise ValueError(f"features must have shape ({len(x)}, {basis.in_type.size}), got "
                         f"{features.shape}")
    chunk = _chunk_edges(chunk_edges)  # None: the core's default; else an int >= 1
    _check_shape(weights, "weights", (basis.dim,), "one per basis element: basis.dim")
    if bias is not None:
        _check_shape(bias, "bias", (basis.n_bias,), "one per trivial output irrep")
    f = jnp.asarray(features)
    w = jnp.asarray(weights, f.dtype)[_np.asarray(basis.weight_index)]
    g = f @ jnp.asarray(basis.in_type.change_of_basis, f.dtype)
    c = basis.out_type.size
    y = jnp.zeros((len(x), c), f.dtype)
    groups = _static_groups(basis.table)
    for a in range(0, ei.shape[1], chunk):
        s, t = ei[0, a:a + chunk], ei[1, a:a + chunk]
        B = jnp.asarray(basis.evaluate_basis(x[s] - x[t]), f.dtype)
        y = y + jax.ops.segment_sum(_point_messages_jit(groups, B, w, g, s, c), t,
                                    num_segments=len(x))
    out = y @ jnp.asarray(basis.out_type.change_of_basis, f.dtype).T
    if aggregation == "mean":
        deg = _np.maximum(_np.bincount(ei[1], minlength=len(x)), 1)
        out = out / jnp.asarray(deg, f.dtype)[:, None]
    if bias is not None:
        out = out + jnp.asarray(basis.bias_expansion, f.dtype) @ jnp.asarray(bias, f.dtype)
    return out


def _check_shape(array, name: str, shape: tuple, what: str):
    """Refuse an array of another shape (JAX clamps out-of-range gathers: a short or long
    ``weights`` would otherwise run silently)."""
    got = tuple(jnp.shape(array))
    if got != shape:
        raise ValueError(f"{name} must have shape {shape} ({what}), got {got}")


__all__ += ["point_conv"]  # appended with point_conv (issue 19)
