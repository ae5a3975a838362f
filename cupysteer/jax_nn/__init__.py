r"""Field-wise operations on JAX arrays: the functions behind :mod:`cupysteer.torch.nn`'s
modules, pure ``jax.numpy`` (``jit``/``vmap``/``grad`` work; the field type is a static,
hashable argument), with parameters and statistics passed explicitly.

A feature map ``x`` is [N, C, *spatial] with C = ``field_type.size``; every function checks
the field type against its numerically verified structure
(:class:`cupysteer.fieldwise.FieldStructure`), like the torch modules, and names the field and
the alternative when it refuses one.

Modules (every name is re-exported here; import from ``cupysteer.jax_nn``):

* ``nonlinearities``: pointwise and gated non-linearities: :func:`pointwise`, :func:`relu`,
  :func:`elu`, :func:`gated1`, :func:`gated2`;
* ``norms``: norm non-linearities and batch norms: :func:`norm_nonlinearity`,
  :func:`inner_batch_norm` / :func:`inner_batch_statistics`, :func:`norm_batch_norm` /
  :func:`norm_batch_statistics`, escnn's :func:`gnorm_batch_norm` /
  :func:`gnorm_batch_statistics`, :func:`iid_batch_norm` / :func:`iid_batch_statistics`;
* ``pooling``: :func:`group_pooling`, :func:`norm_pool`, :func:`pointwise_max_pool`,
  :func:`pointwise_avg_pool`, :func:`norm_max_pool`, antialiased pooling and masking:
  :func:`pointwise_avg_pool_antialiased`, :func:`pointwise_max_pool_antialiased`,
  :func:`mask`;
* ``fourier``: Fourier non-linearities: :func:`fourier_pointwise`, :func:`fourier_elu`;
* ``spatial``: feature-map transformation :func:`transform` (and :func:`feature_points`);
  upsampling, restriction and disentangling: :func:`upsample`, :func:`restrict`,
  :func:`disentangle`;
* ``_common``: the shared checks :func:`structure`, :func:`check_map`.

Needs JAX: ``pip install -e ".[jax]"`` in the cupysteer checkout.
"""
from __future__ import annotations

try:
    import jax  # noqa: F401
    import jax.numpy  # noqa: F401
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError('cupysteer.jax_nn needs JAX: pip install -e ".[jax]" in the cupysteer '
                      'checkout') from _e

from ._common import check_map, structure  # noqa: F401 (public helpers, as before)
from .fourier import fourier_elu, fourier_pointwise
from .nonlinearities import elu, gated1, gated2, pointwise, relu
from .norms import (
    gnorm_batch_norm,
    gnorm_batch_statistics,
    iid_batch_norm,
    iid_batch_statistics,
    inner_batch_norm,
    inner_batch_statistics,
    norm_batch_norm,
    norm_batch_statistics,
    norm_nonlinearity,
)
from .pooling import (
    group_pooling,
    mask,
    norm_max_pool,
    norm_pool,
    pointwise_avg_pool,
    pointwise_avg_pool_antialiased,
    pointwise_max_pool,
    pointwise_max_pool_antialiased,
)
from .spatial import (  # noqa: F401 (feature_points: public helper, as before)
    disentangle,
    feature_points,
    restrict,
    transform,
    upsample,
)

__all__ = ["pointwise", "relu", "elu", "norm_nonlinearity", "gated1", "group_pooling",
           "norm_pool", "pointwise_max_pool", "pointwise_avg_pool", "inner_batch_norm",
           "inner_batch_statistics", "norm_batch_norm", "norm_batch_statistics", "transform"]
__all__ += ["upsample", "restrict", "disentangle"]  # upsampling, restriction, disentangling
__all__ += ["pointwise_avg_pool_antialiased", "pointwise_max_pool_antialiased", "mask"]
__all__ += ["fourier_pointwise", "fourier_elu", "gated2", "norm_max_pool",  # fourier, norms
            "gnorm_batch_statistics", "gnorm_batch_norm", "iid_batch_statistics",
            "iid_batch_norm"]
