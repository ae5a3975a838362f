"""Flax NNX module: a steerable convolution as an ``nnx.Module`` (a thin wrapper over
:func:`cupysteer.jax.conv2d` / :func:`~cupysteer.jax.conv3d`).

Needs Flax (``pip install -e ".[flax]"`` in the cupysteer checkout). Parameters are
``nnx.Param``\\ s in e2cnn's / escnn's layout: ``weights`` (dim,) in their weight order and
``bias`` (one per trivial output irrep). The
basis is a static attribute compared by value (:class:`~cupysteer.jax.StaticBasis`): two equal
layers share one trace under ``nnx.jit``.

>>> import jax, cupysteer as cs
>>> from flax import nnx
>>> from cupysteer.flax import SteerableConv
>>> G = cs.CyclicGroup(4)
>>> t = cs.FieldType(G, [G.regular_representation] * 2)
>>> conv = SteerableConv(t, t, 5, padding=2, rngs=nnx.Rngs(0))
>>> conv(jax.numpy.ones((1, 8, 9, 9))).shape
(1, 8, 9, 9)
"""
from __future__ import annotations

try:
    import jax.numpy as jnp
    from flax import nnx
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError("cupysteer.flax needs Flax: pip install -e \".[flax]\" in the "
                      "cupysteer checkout") from _e

from . import jax as csj
from .basis import LayerBasis
from .field_type import FieldType

__all__ = ["SteerableConv"]


class SteerableConv(nnx.Module):
    """G-steerable convolution ``in_type → out_type``: 2D for the planar groups (input
    ``(N, C, H, W)`` or ``(C, H, W)``), 3D for the groups of :mod:`cupysteer.r3` (``(N, C, D1,
    D2, D3)``, escnn's axes). ``stride``/``padding``: an int or a tuple; ``dilation`` and
    ``basis_settings`` build the :class:`~cupysteer.LayerBasis`; ``rngs``: ``nnx.Rngs`` for
    the generalised He init of ``weights``. Anisotropic grids:
    ``kernel_size`` one size per spatial axis and ``spacing=`` the physical step per axis
    (passed to the :class:`~cupysteer.LayerBasis`; ``padding`` per axis)."""

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size, *,
                 stride=1, padding=0, dilation: int = 1, use_bias: bool = True,
                 rngs: nnx.Rngs, dtype=jnp.float32, **basis_settings):
        basis = LayerBasis(in_type, out_type, kernel_size, dilation, **basis_settings)
        n = len(basis.filter_shape)
        self.static_basis = csj.StaticBasis(basis)
        self.stride = csj._tuple(stride, n, "stride")
        self.padding = csj._tuple(padding, n, "padding")
        self.weights = nnx.Param(csj.init_weights(basis, rngs.params(), dtype))
        T = basis.num_bias
        self.bias = nnx.Param(jnp.zeros((T,), dtype)) if use_bias and T else None

    @property
    def basis(self) -> LayerBasis:
        return self.static_basis.basis

    def __call__(self, x):
        n = len(self.basis.filter_shape)
        conv = csj.conv2d if n == 2 else csj.conv3d
        batched = jnp.ndim(x) == n + 2
        bias = None if self.bias is None else self.bias[...]
        y = conv(x if batched else x[None], self.static_basis, self.weights[...], bias,
                 self.stride, self.padding)
        return y if batched else y[0]
