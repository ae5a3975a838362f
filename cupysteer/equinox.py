"""Equinox module: a steerable convolution as an ``eqx.Module`` (a thin wrapper over
:func:`cupysteer.jax.conv2d` / :func:`~cupysteer.jax.conv3d`).

Needs Equinox (``pip install -e ".[equinox]"`` in the cupysteer checkout). Parameters are
e2cnn's / escnn's: ``weights`` (dim,) in their weight order and ``bias`` (one per trivial
output irrep), so a checkpoint's ``weights`` and ``bias`` arrays drop in. The basis is a
static field compared by value (:class:`~cupysteer.jax.StaticBasis`): two equal layers share
one trace under ``eqx.filter_jit``.

>>> import jax, cupysteer as cs
>>> from cupysteer.equinox import SteerableConv
>>> G = cs.CyclicGroup(4)
>>> t = cs.FieldType(G, [G.regular_representation] * 2)
>>> conv = SteerableConv(t, t, 5, padding=2, key=jax.random.key(0))
>>> conv(jax.numpy.ones((8, 9, 9))).shape                  # (C, H, W), or batched (N, C, H, W)
(8, 9, 9)
"""
from __future__ import annotations

try:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
except ImportError as _e:  # pragma: no cover - exercised with a patched sys.modules
    raise ImportError("cupysteer.equinox needs Equinox: pip install -e \".[equinox]\" in the "
                      "cupysteer checkout") from _e

from . import jax as csj
from .basis import LayerBasis
from .field_type import FieldType

__all__ = ["SteerableConv"]


class SteerableConv(eqx.Module):
    """G-steerable convolution ``in_type → out_type``: 2D for the planar groups (input
    ``(C, H, W)`` or ``(N, C, H, W)``), 3D for the groups of :mod:`cupysteer.r3` (``(C, D1,
    D2, D3)`` or batched, escnn's axes). ``stride``/``padding``: an int or a tuple; ``dilation``
    and ``basis_settings`` (``rings``, ``sigma``, ``frequencies_cutoff``, …) build the
    :class:`~cupysteer.LayerBasis`. ``key``: a JAX PRNG key for the generalised He init.
    Anisotropic grids: ``kernel_size`` one size per spatial axis and ``spacing=`` the physical
    step per axis (passed to the :class:`~cupysteer.LayerBasis`; ``padding`` per axis)."""

    weights: jax.Array
    bias: jax.Array | None
    static_basis: csj.StaticBasis = eqx.field(static=True)
    stride: tuple = eqx.field(static=True)
    padding: tuple = eqx.field(static=True)

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size, *,
                 stride=1, padding=0, dilation: int = 1, use_bias: bool = True, key,
                 dtype=jnp.float32, **basis_settings):
        basis = LayerBasis(in_type, out_type, kernel_size, dilation, **basis_settings)
        n = len(basis.filter_shape)
        self.static_basis = csj.StaticBasis(basis)
        self.stride = csj._tuple(stride, n, "stride")
        self.padding = csj._tuple(padding, n, "padding")
        self.weights = csj.init_weights(basis, key, dtype)
        T = basis.num_bias
        self.bias = jnp.zeros((T,), dtype) if use_bias and T else None

    @property
    def basis(self) -> LayerBasis:
        return self.static_basis.basis

    def __call__(self, x, *, key=None):
        n = len(self.basis.filter_shape)
        conv = csj.conv2d if n == 2 else csj.conv3d
        batched = jnp.ndim(x) == n + 2
        y = conv(x if batched else x[None], self.static_basis, self.weights, self.bias,
                 self.stride, self.padding)
        return y if batched else y[0]
