"""Pooling and masking on JAX arrays (torch: cupysteer.torch.nn ``GroupPooling``,
``NormPool``, ``PointwiseMaxPool``/``AvgPool``, ``NormMaxPool``, the antialiased pools and
``MaskModule``; the same formulas, see their docstrings;
tests/frontends/test_jax_nn_antialiased.py compares the antialiased ones)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..field_type import FieldType
from ..fieldwise import FieldStructure
from ._common import _pool_args, _prepare, _window


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
