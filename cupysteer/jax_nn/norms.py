"""Norm non-linearities and batch norms on JAX arrays (torch: cupysteer.torch.nn
``NormNonLinearity``, ``InnerBatchNorm``, ``NormBatchNorm``, ``GNormBatchNorm``,
``IIDBatchNorm2d``/``3d``), parameters and statistics passed explicitly; escnn's batch norms
keep their statistics per representation in the order of
:attr:`cupysteer.fieldwise.FieldStructure.by_representation`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..field_type import FieldType
from ..fieldwise import FieldStructure
from ._common import _field_vector, _per_channel, _prepare

_NORM_FUNCTIONS = {"n_relu": jax.nn.relu, "n_sigmoid": jax.nn.sigmoid,
                   "squash": lambda t: t / (1.0 + t)}


def norm_nonlinearity(x, field_type: FieldType, log_bias=None, function: str = "n_relu",
                      eps: float = 1e-10):
    r"""x_f · f(‖x_f‖ − b_f)/‖x_f‖ per field (0 where ‖x_f‖ < eps), b_f = exp(log_bias_f);
    ``log_bias`` is (n_fields,) in **field order** (torch's ``log_bias`` parameter is in size
    order: ``log_bias[0, argsort(size_order)]``) or None (no bias). Any field."""
    fs = _prepare(x, field_type, "norm_nonlinearity")
    if function not in _NORM_FUNCTIONS:
        raise ValueError(f"function must be one of {', '.join(map(repr, _NORM_FUNCTIONS))}, "
                         f"got {function!r}")
    if function == "squash" and log_bias is not None:
        raise ValueError("function='squash' takes no bias: pass log_bias=None")
    ndim = x.ndim - 2
    cf = fs.channel_field
    norms2 = jnp.zeros((x.shape[0], fs.n_fields) + x.shape[2:], x.dtype).at[:, cf].add(x * x)
    norms = jnp.sqrt(jnp.maximum(norms2, eps * eps))
    shifted = norms
    if log_bias is not None:
        lb = jnp.asarray(log_bias, x.dtype).reshape(-1)
        if lb.shape[0] != fs.n_fields:
            raise ValueError(f"log_bias must have {fs.n_fields} entries (one per field), got "
                             f"shape {jnp.shape(log_bias)}")
        shifted = norms - jnp.exp(lb).reshape((1, -1) + (1,) * ndim)
    scale = _NORM_FUNCTIONS[function](shifted) / norms
    scale = jnp.where(norms2 < eps * eps, 0.0, scale)
    return x * scale[:, cf]


def inner_batch_statistics(x, field_type: FieldType):
    """(mean, var): per field (field order), over the batch, the pixels and the field's
    channels (biased variance, as a batch norm normalises with in training mode)."""
    fs = _prepare(x, field_type, "inner_batch_statistics")
    fs.require_pointwise("inner_batch_statistics", "use norm_batch_statistics for it")
    counts = np.asarray(field_type.field_sizes, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    s1 = jnp.zeros(fs.n_fields, x.dtype).at[fs.channel_field].add(x.mean(axes)) / counts
    s2 = jnp.zeros(fs.n_fields, x.dtype).at[fs.channel_field].add((x * x).mean(axes)) / counts
    return s1, s2 - s1 * s1


def inner_batch_norm(x, field_type: FieldType, mean, var, weight=None, bias=None,
                     eps: float = 1e-5):
    """(x − mean_f)/√(var_f + eps) · weight_f + bias_f, one statistic per field shared by its
    channels (field order; torch ``InnerBatchNorm`` keeps them per size group:
    ``batch_norm_[s].running_mean`` lists the fields of size s in order). Pointwise fields."""
    fs = _prepare(x, field_type, "inner_batch_norm")
    fs.require_pointwise("inner_batch_norm", "use norm_batch_norm (norms of the fields)")
    n, nd, cf = fs.n_fields, x.ndim - 2, fs.channel_field
    scale = jax.lax.rsqrt(_field_vector(var, n, "var", x.dtype) + eps)
    if weight is not None:
        scale = scale * _field_vector(weight, n, "weight", x.dtype)
    out = (x - _per_channel(_field_vector(mean, n, "mean", x.dtype), cf, nd)) \
        * _per_channel(scale, cf, nd)
    if bias is not None:
        out = out + _per_channel(_field_vector(bias, n, "bias", x.dtype), cf, nd)
    return out


def norm_batch_statistics(x, field_type: FieldType):
    """(mean_trivial, var): the batch mean of the trivial irreps coordinates (Bᵀ E[x], B the
    invariant basis) and per field E‖x_f − μ_f‖²/s_f (biased), as torch's ``NormBatchNorm``
    in training mode."""
    fs = _prepare(x, field_type, "norm_batch_statistics")
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    B = jnp.asarray(fs.invariant_basis, x.dtype)
    mean_t = B.T @ flat.mean((0, 2))
    centred = flat - (B @ mean_t)[:, None]
    sq = (centred * centred).mean((0, 2))
    var = jnp.zeros(fs.n_fields, x.dtype).at[fs.channel_field].add(sq)
    return mean_t, var / np.asarray(field_type.field_sizes, np.float64)


def norm_batch_norm(x, field_type: FieldType, mean_trivial, var, weight=None, bias=None,
                    eps: float = 1e-5):
    """(x − B mean_trivial) · weight_f/√(var_f + eps) + B bias: torch's ``NormBatchNorm``
    (``mean_trivial``, ``bias``: one entry per trivial irreps coordinate; ``var``, ``weight``:
    one per field). Any field."""
    fs = _prepare(x, field_type, "norm_batch_norm")
    nt, n = len(fs.trivial_coordinates), fs.n_fields
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    B = jnp.asarray(fs.invariant_basis, x.dtype)
    centred = flat - (B @ _field_vector(mean_trivial, nt, "mean_trivial", x.dtype))[:, None]
    scale = jax.lax.rsqrt(_field_vector(var, n, "var", x.dtype) + eps)
    if weight is not None:
        scale = scale * _field_vector(weight, n, "weight", x.dtype)
    out = centred * scale[fs.channel_field][:, None]
    if bias is not None:
        out = out + (B @ _field_vector(bias, nt, "bias", x.dtype))[:, None]
    return out.reshape(x.shape)


def _rep_blocks(fs: FieldStructure):
    """Per representation: (rep, channels (n, s), Q, trivial coordinates, irrep of each
    coordinate)."""
    out = []
    for g in fs.by_representation:
        rep = g.key
        triv, owner, p = [], [], 0
        for i, psi in enumerate(rep.irreps):
            if psi.is_trivial:
                triv.append(p)
            owner += [i] * psi.dim
            p += psi.dim
        out.append((rep, g.channels, rep.change_of_basis, np.array(triv, np.int64),
                    np.array(owner, np.int64)))
    return out


def gnorm_batch_statistics(x, field_type: FieldType) -> list:
    """[(means (n, t), vars (n, n_irreps))] per representation: escnn's ``GNormBatchNorm``
    batch statistics in the irreps coordinates (trivial means; per irrep block the mean
    squared centred coordinate, times N/(N − 1)). Constants for autodiff
    (``jax.lax.stop_gradient``), as escnn detaches them: gradients equal escnn's."""
    fs = _prepare(x, field_type, "gnorm_batch_statistics")
    x = jax.lax.stop_gradient(x)
    stats = []
    for rep, ch, Q, triv, owner in _rep_blocks(fs):
        z = jnp.einsum("ds,bnsp->bndp", jnp.asarray(Q.T, x.dtype),
                       x[:, ch.ravel()].reshape((x.shape[0],) + ch.shape + (-1,)))
        count = z.shape[0] * z.shape[3]
        means = z[:, :, triv].mean((0, 3))
        sq = (z * z).mean((0, 3)).at[:, triv].add(-means * means)
        dims = np.bincount(owner).astype(np.float64)
        var = jnp.zeros((ch.shape[0], len(dims)), x.dtype).at[:, owner].add(sq) / dims
        stats.append((means, var * (count / (count - 1) if count > 1 else 1.0)))
    return stats


def gnorm_batch_norm(x, field_type: FieldType, stats, weights=None, biases=None,
                     eps: float = 1e-5):
    """torch's ``GNormBatchNorm`` with the statistics ``stats`` ([(means, vars)] per
    representation) and optional per-representation ``weights`` (n, n_irreps) / ``biases``
    (n, t)."""
    fs = _prepare(x, field_type, "gnorm_batch_norm")
    out = x
    for k, (rep, ch, Q, triv, owner) in enumerate(_rep_blocks(fs)):
        means, var = (jnp.asarray(a, x.dtype) for a in stats[k])
        scale = jax.lax.rsqrt(var + eps)
        if weights is not None:
            scale = scale * jnp.asarray(weights[k], x.dtype)
        scale = scale[:, owner]                                      # (n, s)
        shift = jnp.zeros(scale.shape, x.dtype).at[:, triv].set(-means * scale[:, triv])
        if biases is not None:
            shift = shift.at[:, triv].add(jnp.asarray(biases[k], x.dtype))
        part = x[:, ch.ravel()].reshape((x.shape[0],) + ch.shape + (-1,))
        Qj = jnp.asarray(Q, x.dtype)
        z = jnp.einsum("ds,bnsp->bndp", Qj.T, part) * scale[None, :, :, None]
        y = jnp.einsum("ds,bnsp->bndp", Qj, z + shift[None, :, :, None])
        out = out.at[:, ch.ravel()].set(y.reshape((x.shape[0], -1) + x.shape[2:]))
    return out


def iid_batch_statistics(x, field_type: FieldType) -> list:
    """[(means (n, s) or None, vars (n, 1))] per representation: escnn's ``IIDBatchNorm``
    batch statistics (the mean projected on the invariant subspace; the mean over the
    field's channels of the unbiased variance of the centred entries). Constants for
    autodiff (``jax.lax.stop_gradient``), as escnn detaches them: gradients equal escnn's."""
    fs = _prepare(x, field_type, "iid_batch_statistics")
    x = jax.lax.stop_gradient(x)
    stats = []
    for rep, ch, Q, triv, owner in _rep_blocks(fs):
        part = x[:, ch.ravel()].reshape((x.shape[0],) + ch.shape + (-1,))
        means = None
        if len(triv):
            P = Q[:, triv] @ Q[:, triv].T
            means = part.mean((0, 3)) @ jnp.asarray(P.T, x.dtype)
            part = part - means[None, :, :, None]
        flat = jnp.moveaxis(part, 0, 2).reshape(ch.shape + (-1,))
        stats.append((means, jnp.var(flat, axis=2, ddof=1).mean(1, keepdims=True)))
    return stats


def iid_batch_norm(x, field_type: FieldType, stats, weights=None, biases=None,
                   eps: float = 1e-5):
    """torch's ``IIDBatchNorm2d``/``3d`` with the statistics ``stats`` and optional
    per-representation ``weights`` (n, 1) / ``biases`` (n, t)."""
    fs = _prepare(x, field_type, "iid_batch_norm")
    out = x
    for k, (rep, ch, Q, triv, owner) in enumerate(_rep_blocks(fs)):
        means, var = stats[k]
        part = x[:, ch.ravel()].reshape((x.shape[0],) + ch.shape + (-1,))
        if means is not None:
            part = part - jnp.asarray(means, x.dtype)[None, :, :, None]
        scale = jax.lax.rsqrt(jnp.asarray(var, x.dtype) + eps)
        if weights is not None:
            scale = scale * jnp.asarray(weights[k], x.dtype)
        part = part * scale[None, :, :, None]
        if biases is not None and len(triv):
            part = part + (jnp.asarray(biases[k], x.dtype)
                           @ jnp.asarray(Q[:, triv].T, x.dtype))[None, :, :, None]
        out = out.at[:, ch.ravel()].set(part.reshape((x.shape[0], -1) + x.shape[2:]))
    return out
