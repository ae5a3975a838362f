r"""Field-wise operations on JAX arrays: the functions behind :mod:`cupysteer.torch.nn`'s
modules, pure ``jax.numpy`` (``jit``/``vmap``/``grad`` work; the field type is a static,
hashable argument), with parameters and statistics passed explicitly.

A feature map ``x`` is [N, C, *spatial] with C = ``field_type.size``; every function checks
the field type against its numerically verified structure
(:class:`cupysteer.fieldwise.FieldStructure`), like the torch modules, and names the field and
the alternative when it refuses one.

Sections (each engineer appends a section below, headed like these):

* existing field-wise operations: :func:`pointwise`, :func:`relu`, :func:`elu`,
  :func:`norm_nonlinearity`, :func:`gated1`, :func:`group_pooling`, :func:`norm_pool`,
  :func:`pointwise_max_pool`, :func:`pointwise_avg_pool`, :func:`inner_batch_norm` /
  :func:`inner_batch_statistics`, :func:`norm_batch_norm` / :func:`norm_batch_statistics`;
* feature-map transformation: :func:`transform`;
* upsampling, restriction and disentangling: :func:`upsample`, :func:`restrict`,
  :func:`disentangle`;
* antialiased pooling and masking: :func:`pointwise_avg_pool_antialiased`,
  :func:`pointwise_max_pool_antialiased`, :func:`mask`;
* Fourier non-linearities, gates, norm max pooling, escnn's batch norms:
  :func:`fourier_pointwise`, :func:`fourier_elu`, :func:`gated2`, :func:`norm_max_pool`,
  :func:`gnorm_batch_norm` / :func:`gnorm_batch_statistics`, :func:`iid_batch_norm` /
  :func:`iid_batch_statistics`.

Needs JAX: ``pip install -e ".[jax]"`` in the cupysteer checkout.
"""
from __future__ import annotations

try:
    import jax
    import jax.numpy as jnp
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError('cupysteer.jax_nn needs JAX: pip install -e ".[jax]" in the cupysteer '
                      'checkout') from _e

import numpy as np

from .equivariance import grid_candidates, point_permutation
from .field_type import FieldType
from .fieldwise import FieldStructure
from .fourier import FourierSampling
from .restriction import FieldDisentangling, FieldRestriction

__all__ = ["pointwise", "relu", "elu", "norm_nonlinearity", "gated1", "group_pooling",
           "norm_pool", "pointwise_max_pool", "pointwise_avg_pool", "inner_batch_norm",
           "inner_batch_statistics", "norm_batch_norm", "norm_batch_statistics", "transform"]
__all__ += ["upsample", "restrict", "disentangle"]  # upsampling, restriction, disentangling
__all__ += ["pointwise_avg_pool_antialiased", "pointwise_max_pool_antialiased", "mask"]
__all__ += ["fourier_pointwise", "fourier_elu", "gated2", "norm_max_pool",  # fourier, norms
            "gnorm_batch_statistics", "gnorm_batch_norm", "iid_batch_statistics",
            "iid_batch_norm"]


# ==========================================================================================
# Shared checks
# ==========================================================================================
def structure(field_type, name: str = "field_type") -> FieldStructure:
    """The :class:`~cupysteer.fieldwise.FieldStructure` of ``field_type`` (clear error if it is
    not a FieldType)."""
    if not isinstance(field_type, FieldType):
        raise TypeError(f"{name} must be a cupysteer FieldType, got {type(field_type).__name__}")
    return FieldStructure(field_type)


def check_map(x, field_type: FieldType, what: str, name: str = "x") -> None:
    """Refuse anything but an array [N, field_type.size, *spatial] of the group's space."""
    d = int(field_type.group.space.dimension)
    shape = getattr(x, "shape", None)
    if shape is None or not hasattr(x, "dtype"):
        raise TypeError(f"{what}: {name} must be a JAX array [N, C, *spatial], got "
                        f"{type(x).__name__}")
    if len(shape) != d + 2 or shape[1] != field_type.size:
        raise ValueError(f"{what}: {name} must have shape [N, {field_type.size}, "
                         f"{', '.join(['…'] * d)}] ({field_type.size} channels of "
                         f"{field_type!r}, {d} spatial dimensions), got {tuple(shape)}")


def _prepare(x, field_type, what: str) -> FieldStructure:
    fs = structure(field_type)
    check_map(x, field_type, what)
    return fs


def _per_channel(v, channel_field, ndim: int):
    """A per-field vector (n_fields,) spread over the channels, shaped (C, 1, …, 1)."""
    return jnp.asarray(v)[channel_field].reshape((-1,) + (1,) * ndim)


# ==========================================================================================
# Existing field-wise operations (torch: cupysteer.torch.nn nonlinearities/pooling/batchnorm)
# ==========================================================================================
_NOT_POINTWISE = ("use norm_nonlinearity (norm-based, any field) or gated1 (gates: trivial "
                  "fields) for it, or change the representation to a regular or quotient one")


def pointwise(x, field_type: FieldType, function):
    """``function`` (elementwise on arrays) applied to every channel; pointwise fields only
    (torch: ``PointwiseNonLinearity``)."""
    if not callable(function):
        raise ValueError(f"function must be an elementwise callable, got {function!r}")
    _prepare(x, field_type, "pointwise").require_pointwise("pointwise", _NOT_POINTWISE)
    return function(x)


def relu(x, field_type: FieldType):
    """max(x, 0) on every channel; pointwise fields only (torch: ``ReLU``)."""
    _prepare(x, field_type, "relu").require_pointwise("relu", _NOT_POINTWISE)
    return jax.nn.relu(x)


def elu(x, field_type: FieldType, alpha: float = 1.0):
    """ELU on every channel; pointwise fields only (torch: ``ELU``)."""
    _prepare(x, field_type, "elu").require_pointwise("elu", _NOT_POINTWISE)
    return jax.nn.elu(x, alpha)


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


def gated1(x, field_type: FieldType, gates=None, drop_gates: bool = True, bias=None):
    """Gated fields times sigmoid(gate − bias) (torch: ``GatedNonLinearity1``; ``gates`` lists
    'gate'/'gated' per field, default: first half gates; as e2cnn, the gated fields sorted by
    size (stable) take the gates in turn). Gates: trivial fields of size 1; ``bias``: one per
    gate (gate order) or None. Output: the gated fields (``drop_gates``) or every field, the
    gates replaced by sigmoid(gate − bias)."""
    fs = _prepare(x, field_type, "gated1")
    n = fs.n_fields
    if gates is None:
        if n % 2:
            raise ValueError(f"field_type has {n} fields: without gates= the number must be "
                             f"even; pass gates=['gate', 'gated', …]")
        gates = ["gate"] * (n // 2) + ["gated"] * (n // 2)
    gates = list(gates)
    if len(gates) != n or any(g not in ("gate", "gated") for g in gates):
        raise ValueError(f"gates must list 'gate' or 'gated' for each of the {n} fields, got "
                         f"{gates!r}")
    gate_f = [f for f, g in enumerate(gates) if g == "gate"]
    gated_f = [f for f, g in enumerate(gates) if g == "gated"]
    if len(gate_f) != len(gated_f):
        raise ValueError(f"gates: {len(gate_f)} gates for {len(gated_f)} gated fields")
    fs.require_trivial("gated1: the gates", gate_f, "; mark it 'gated'")
    order = np.argsort(field_type.field_sizes[gated_f], kind="stable")
    gate_number = np.empty(len(gated_f), np.int64)
    gate_number[order] = np.arange(len(gated_f))              # gated field i → its gate
    gated_ch = np.concatenate([fs.channels(f) for f in gated_f])
    gate_of = np.concatenate([np.full(fs.channels(f).size, k)
                              for f, k in zip(gated_f, gate_number)])
    gate_ch = np.array([fs.channels(f)[0] for f in gate_f], np.int64)
    g = x[:, gate_ch]
    if bias is not None:
        g = g - _field_vector(bias, len(gate_f), "bias", x.dtype).reshape(
            (1, -1) + (1,) * (x.ndim - 2))
    sig = jax.nn.sigmoid(g)
    gated = x[:, gated_ch] * sig[:, gate_of]
    if drop_gates:
        return gated
    return x.at[:, gated_ch].set(gated).at[:, gate_ch].set(sig)


def _per_field(x, fs: FieldStructure, reduce):
    """[N, C, …] → [N, n_fields, …]: ``reduce`` over axis 2 of each size group's fields."""
    out = jnp.zeros((x.shape[0], fs.n_fields) + x.shape[2:], x.dtype)
    for g in fs.by_size:
        part = x[:, g.channels.ravel()].reshape((x.shape[0], -1, g.size) + x.shape[2:])
        out = out.at[:, g.fields].set(reduce(part))
    return out


def group_pooling(x, field_type: FieldType):
    """The maximum over each field's channels: one trivial field per field (torch:
    ``GroupPooling``); pointwise fields only."""
    fs = _prepare(x, field_type, "group_pooling")
    fs.require_pointwise("group_pooling", "use norm_pool (the norm of each field)")
    return _per_field(x, fs, lambda p: p.max(2))


def norm_pool(x, field_type: FieldType):
    """The norm of each field's channels: one trivial field per field (torch: ``NormPool``)."""
    fs = _prepare(x, field_type, "norm_pool")
    return _per_field(x, fs, lambda p: jnp.sqrt((p * p).sum(2)))


def _window(v, n: int, name: str, allow_none: bool = False):
    if v is None and allow_none:
        return None
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(t) != n or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0
                          for a in t):
        raise ValueError(f"{name} must be an int >= 0 or a tuple of {n} of them, got {v!r}")
    return tuple(int(a) for a in t)


def _pool_args(x, kernel_size, stride, padding):
    n = x.ndim - 2
    k = _window(kernel_size, n, "kernel_size")
    if min(k) < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}")
    s = _window(stride, n, "stride", allow_none=True) or k
    p = _window(padding, n, "padding")
    return (1, 1) + k, (1, 1) + s, ((0, 0), (0, 0)) + tuple((a, a) for a in p)


def pointwise_max_pool(x, field_type: FieldType, kernel_size, stride=None, padding=0):
    """``max_pool`` on every channel over the 2 or 3 spatial axes (torch:
    ``PointwiseMaxPool2d``/``3d``, padding with −∞, floor mode); pointwise fields only."""
    fs = _prepare(x, field_type, "pointwise_max_pool")
    fs.require_pointwise("pointwise_max_pool", "pool it with pointwise_avg_pool (linear: any "
                         "field), or reduce each field first (group_pooling / norm_pool)")
    win, st, pad = _pool_args(x, kernel_size, stride, padding)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, win, st, pad)


def pointwise_avg_pool(x, field_type: FieldType, kernel_size, stride=None, padding=0):
    """``avg_pool`` on every channel (torch: ``PointwiseAvgPool2d``/``3d`` with
    count_include_pad=True, floor mode); any field (it is linear)."""
    _prepare(x, field_type, "pointwise_avg_pool")
    win, st, pad = _pool_args(x, kernel_size, stride, padding)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, win, st, pad)
    return total / float(np.prod(win))


def _field_vector(v, n: int, name: str, dtype):
    a = jnp.asarray(v, dtype).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries, got shape {jnp.shape(v)}")
    return a


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


# ==========================================================================================
# Feature-map transformation (torch: cupysteer.torch.nn.transform)
# ==========================================================================================
def feature_points(shape) -> np.ndarray:
    """The (P, d) points of a feature-map grid of spatial ``shape`` in row-major order (last
    axis x increasing, the others y/z decreasing, centred; as the torch front end)."""
    shape = tuple(int(s) for s in shape)
    d = len(shape)
    index = np.indices(shape).reshape(d, -1).T
    pts = np.empty(index.shape, dtype=np.float64)
    for j in range(d):
        axis = d - 1 - j
        centred = index[:, axis] - (shape[axis] - 1) / 2
        pts[:, j] = centred if j == 0 else -centred
    return pts


def transform(x, field_type: FieldType, g):
    """``g · x``: out(p) = ρ(g) x(g⁻¹ p) for a grid-preserving element ``g`` (rotations by
    multiples of 90°, the square's/cube's reflections in the group, on a square/cubic grid);
    a clear error for any other element."""
    structure(field_type)
    check_map(x, field_type, "transform")
    group = field_type.group
    try:
        A = group.action_matrices([g])[0]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"g must be an element of {group!r}: {exc}") from None
    pts = feature_points(x.shape[2:])
    for h in grid_candidates(group):
        if np.abs(group.action_matrices([h])[0] - A).max() >= 1e-9:
            continue
        perm = point_permutation(group, h, pts)
        if perm is None:
            break
        rho = jnp.asarray(field_type.representation.evaluate([h])[0], x.dtype)
        y = jnp.einsum("ab,nbp->nap", rho, x.reshape(x.shape[0], x.shape[1], -1))
        return y[:, :, np.argsort(perm)].reshape(x.shape)
    raise ValueError(f"g = {g!r} does not map the {'×'.join(map(str, x.shape[2:]))} grid onto "
                     f"itself (or is not an element of {group!r}); transform is exact only for "
                     f"grid-preserving elements")


# ==========================================================================================
# Upsampling and disentangling (torch: cupysteer.torch.nn R2/R3Upsampling, DisentangleModule)
# ==========================================================================================
def _source(n_in: int, n_out: int, scale, mode: str, align_corners: bool):
    """(i0, i1, λ) per output index along one axis, as torch's interpolate samples: ``scale``
    is 1/scale_factor when given, else n_in/n_out."""
    i = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        i0 = np.minimum(np.floor(i * scale).astype(np.int64), n_in - 1)
        return i0, i0, np.zeros(n_out)
    if align_corners:
        src = i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = np.maximum((i + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0


def upsample(x, field_type: FieldType, scale_factor=None, size=None, mode=None,
             align_corners: bool = False):
    """torch's ``interpolate`` (R2Upsampling/R3Upsampling: ``'bilinear'``/``'trilinear'``
    (default) or ``'nearest'``), separable along each spatial axis; any field. See
    :mod:`cupysteer.torch.nn.upsampling` for where it is exactly equivariant."""
    structure(field_type)
    check_map(x, field_type, "upsample")
    d = x.ndim - 2
    linear = "bilinear" if d == 2 else "trilinear"
    mode = linear if mode is None else mode
    if mode not in ("nearest", linear):
        raise ValueError(f"mode must be 'nearest' or {linear!r} for {d}D maps, got {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("pass exactly one of scale_factor and size")
    if scale_factor is not None and not (isinstance(scale_factor, (int, float))
                                         and not isinstance(scale_factor, bool)
                                         and scale_factor > 0):
        raise ValueError(f"scale_factor must be a number > 0, got {scale_factor!r}")
    size = (size,) * d if isinstance(size, int) else size
    for axis in range(d):
        n_in = x.shape[2 + axis]
        if size is None:
            n_out, scale = int(np.floor(n_in * scale_factor)), 1.0 / scale_factor
        else:
            n_out, scale = int(size[axis]), n_in / int(size[axis])
        i0, i1, lam = _source(n_in, n_out, scale, mode, bool(align_corners))
        shape = (1,) * (2 + axis) + (n_out,) + (1,) * (d - 1 - axis)
        lam = jnp.asarray(lam, x.dtype).reshape(shape)
        a, b = jnp.take(x, i0, axis=2 + axis), jnp.take(x, i1, axis=2 + axis)
        x = a if mode == "nearest" else a + (b - a) * lam
    return x


def restrict(x, field_type: FieldType, subgroup_id):
    """(x, out_type): the same array, its field type restricted to the subgroup
    ``subgroup_id`` (:class:`cupysteer.restriction.FieldRestriction`; planar groups only)."""
    r = FieldRestriction(field_type, subgroup_id)
    check_map(x, field_type, "restrict")
    return x, r.out_type


def disentangle(x, field_type: FieldType, to_irreps: bool = False):
    """y = M x (:class:`cupysteer.restriction.FieldDisentangling`: e2cnn's permutation, or
    each field to its irreps coordinates with ``to_irreps=True``); returns (y, out_type)."""
    structure(field_type)
    check_map(x, field_type, "disentangle")
    d = FieldDisentangling(field_type, to_irreps)
    if d.permutation is not None:
        return x[:, d.permutation], d.out_type
    return jnp.einsum("ab,nb...->na...", jnp.asarray(d.matrix, x.dtype), x), d.out_type


# ==========================================================================================
# Antialiased pooling and masking (torch: cupysteer.torch.nn antialiased / mask; the same
# formulas, see their docstrings; tests/frontends/test_jax_nn_antialiased.py compares them)
# ==========================================================================================
def _gaussian(sigma, radius: float, ndim: int) -> np.ndarray:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    size = 2 * int(round(radius * sigma)) + 1
    axis = (np.arange(size) - (size - 1) / 2.0) ** 2
    g = np.exp(-sum(np.meshgrid(*[axis] * ndim, indexing="ij")) / (2.0 * sigma ** 2))
    return g / g.sum()


def _blur(x, g: np.ndarray, stride, padding):
    """The same Gaussian on every channel: one single-channel convolution over N·C maps."""
    n, (N, C) = x.ndim - 2, x.shape[:2]
    s = _window(stride, n, "stride")
    if min(s) < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}")
    p = _window(padding, n, "padding")
    y = jax.lax.conv_general_dilated(x.reshape((N * C, 1) + x.shape[2:]),
                                     jnp.asarray(g[None, None], x.dtype), s,
                                     [(a, a) for a in p])
    return y.reshape((N, C) + y.shape[2:])


def pointwise_avg_pool_antialiased(x, field_type: FieldType, sigma, stride, padding=None):
    """Gaussian blur (s = 2·round(3σ) + 1, padding (s − 1)/2 by default) with ``stride`` on
    every channel (torch: ``PointwiseAvgPoolAntialiased2d``/``3d``); any field."""
    _prepare(x, field_type, "pointwise_avg_pool_antialiased")
    g = _gaussian(sigma, 3.0, x.ndim - 2)
    return _blur(x, g, stride, (len(g) - 1) // 2 if padding is None else padding)


def pointwise_max_pool_antialiased(x, field_type: FieldType, kernel_size, stride=None,
                                   padding=0, sigma=0.6):
    """``max_pool`` at stride 1, then the Gaussian blur (s = 2·round(4σ) + 1) with ``stride``
    (default ``kernel_size``), padding ``padding`` + (s − 1)/2 (torch:
    ``PointwiseMaxPoolAntialiased2d``/``3d``); pointwise fields only."""
    fs = _prepare(x, field_type, "pointwise_max_pool_antialiased")
    fs.require_pointwise("pointwise_max_pool_antialiased", "use "
                         "pointwise_avg_pool_antialiased (linear: any field)")
    win, st, pad = _pool_args(x, kernel_size, 1, padding)
    y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, win, st, pad)
    g = _gaussian(sigma, 4.0, x.ndim - 2)
    stride = win[2:] if stride is None else stride
    return _blur(y, g, stride, tuple(a + (len(g) - 1) // 2 for a, _ in pad[2:]))


def mask(x, field_type: FieldType, margin: float = 0.0, sigma: float = 2.0):
    """x · mask, mask = 1 where r ≤ t and exp((t − r)/σ²) outside, r the squared distance to
    the centre c = (S − 1)/2, t = (c − c·margin/100)² (torch: ``MaskModule``); any field;
    the spatial axes must all have size S."""
    _prepare(x, field_type, "mask")
    S = x.shape[2]
    if any(a != S for a in x.shape[2:]):
        raise ValueError(f"mask: every spatial axis must have the same size S, got "
                         f"{tuple(x.shape[2:])}")
    c = (S - 1) / 2.0
    t = (c - margin / 100.0 * c) ** 2
    axis = (np.arange(S) - c) ** 2
    r = sum(np.meshgrid(*[axis] * (x.ndim - 2), indexing="ij"))
    return x * jnp.asarray(np.where(r > t, np.exp((t - r) / sigma ** 2), 1.0), x.dtype)


# ==========================================================================================
# Fourier non-linearities, GatedNonLinearity2, NormMaxPool and escnn's batch norms (torch:
# cupysteer.torch.nn FourierPointwise/FourierELU, GatedNonLinearity2, NormMaxPool,
# GNormBatchNorm, IIDBatchNorm2d/3d); statistics per representation in the order of
# FieldStructure.by_representation
# ==========================================================================================
_FOURIER_FUNCTIONS = {"p_relu": jax.nn.relu, "p_elu": jax.nn.elu,
                      "p_sigmoid": jax.nn.sigmoid, "p_tanh": jnp.tanh}


def fourier_pointwise(x, sampling: FourierSampling, function: str = "p_relu"):
    """ŷ = A⁺ f(A x̂) for every field of x̂ (torch: ``FourierPointwise``): ``sampling`` is a
    :class:`cupysteer.fourier.FourierSampling`; x holds C / dim ρ fields of its spectral
    regular representation ρ."""
    if not isinstance(sampling, FourierSampling):
        raise TypeError(f"sampling must be a cupysteer.fourier.FourierSampling, got "
                        f"{type(sampling).__name__}")
    if function not in _FOURIER_FUNCTIONS:
        raise ValueError(f"function must be one of {', '.join(map(repr, _FOURIER_FUNCTIONS))}, "
                         f"got {function!r}")
    rho = sampling.representation
    channels = max(1, x.shape[1] // rho.size) if x.ndim >= 2 else 1
    check_map(x, FieldType(rho.group, [rho] * channels), "fourier_pointwise")
    A, Ainv = jnp.asarray(sampling.A, x.dtype), jnp.asarray(sampling.A_inv, x.dtype)
    x_hat = x.reshape((x.shape[0], channels, rho.size, -1))
    y = _FOURIER_FUNCTIONS[function](jnp.einsum("bcfp,gf->bcgp", x_hat, A))
    y_hat = jnp.einsum("bcgp,fg->bcfp", y, Ainv)
    return y_hat.reshape((x.shape[0], channels * Ainv.shape[0]) + x.shape[2:])


def fourier_elu(x, sampling: FourierSampling):
    """:func:`fourier_pointwise` with ELU (torch: ``FourierELU``)."""
    return fourier_pointwise(x, sampling, "p_elu")


def gated2(gates, x, field_type: FieldType, bias=None):
    """x_f · sigmoid(gate − bias) (torch: ``GatedNonLinearity2``): ``field_type`` is the gated
    fields' type; ``gates`` [N, n_fields, …] (one trivial gate per field), given to the fields
    sorted by size (stable), as e2cnn; ``bias``: one per gate or None."""
    fs = _prepare(x, field_type, "gated2")
    n = fs.n_fields
    if jnp.shape(gates) != (x.shape[0], n) + x.shape[2:]:
        raise ValueError(f"gated2: gates must have shape {(x.shape[0], n) + x.shape[2:]} (one "
                         f"gate per field), got {jnp.shape(gates)}")
    gate_of_field = np.empty(n, np.int64)
    gate_of_field[fs.size_order] = np.arange(n)
    if bias is not None:
        gates = gates - _field_vector(bias, n, "bias", x.dtype).reshape(
            (1, -1) + (1,) * (x.ndim - 2))
    return x * jax.nn.sigmoid(gates)[:, gate_of_field[fs.channel_field]]


def norm_max_pool(x, field_type: FieldType, kernel_size, stride=None, padding=0,
                  dilation=1):
    """In every window each field takes its value at the pixel of largest field norm (the
    first such pixel, row-major; torch: ``NormMaxPool``, ceil_mode=False)."""
    fs = _prepare(x, field_type, "norm_max_pool")
    d = x.ndim - 2
    k = _window(kernel_size, d, "kernel_size")
    s = _window(stride, d, "stride", allow_none=True) or k
    p, dil = _window(padding, d, "padding"), _window(dilation, d, "dilation")
    if min(k) < 1 or min(s) < 1 or min(dil) < 1:
        raise ValueError("kernel_size, stride and dilation must be >= 1")
    cf = fs.channel_field
    norms = jnp.sqrt(jnp.zeros((x.shape[0], fs.n_fields) + x.shape[2:], x.dtype)
                     .at[:, cf].add(x * x))
    pad = ((0, 0), (0, 0)) + tuple((a, a) for a in p)
    norms, xp = jnp.pad(norms, pad, constant_values=-jnp.inf), jnp.pad(x, pad)
    out = [(x.shape[2 + i] + 2 * p[i] - dil[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(d)]
    cand_n, cand_x = [], []
    for offset in np.ndindex(*k):
        index = (slice(None), slice(None)) + tuple(
            slice(o * dil[i], o * dil[i] + s[i] * (out[i] - 1) + 1, s[i])
            for i, o in enumerate(offset))
        cand_n.append(norms[index])
        cand_x.append(xp[index])
    best = jnp.argmax(jnp.stack(cand_n), axis=0)                    # (N, n_fields, *out)
    return jnp.take_along_axis(jnp.stack(cand_x), best[None][:, :, cf], axis=0)[0]


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
    squared centred coordinate, times N/(N − 1))."""
    fs = _prepare(x, field_type, "gnorm_batch_statistics")
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
    field's channels of the unbiased variance of the centred entries)."""
    fs = _prepare(x, field_type, "iid_batch_statistics")
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
