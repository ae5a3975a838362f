"""Empty batches behave the same on every path (issue 16): a (0, dim) batch of weights gives a
(0, C_out, C_in, *filter) filter, a (0, C_out, C_in, *filter) gradient a (0, dim) one, in the
caller's framework and dtype: NumPy, torch, DLPack and JAX. (The DLPack cases are in
test_dlpack.py; the NumPy ones also in core/test_hardening.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import cupysteer as cs


@pytest.fixture(scope="module")
def basis():
    G = cs.DihedralGroup(4)
    t = cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation])
    return cs.LayerBasis(t, t, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy(basis, dtype):
    assert basis.expand(np.zeros((0, basis.dim), dtype)).shape == (0,) + basis.shape
    assert basis.adjoint(np.zeros((0,) + basis.shape, dtype)).shape == (0, basis.dim)


def test_torch(basis):
    torch = pytest.importorskip("torch")
    from cupysteer import torch as ct
    w = torch.zeros(0, basis.dim, dtype=torch.float64, requires_grad=True)
    f = ct.expand(basis, w)
    assert tuple(f.shape) == (0,) + basis.shape and f.dtype == torch.float64
    f.sum().backward()
    assert tuple(w.grad.shape) == (0, basis.dim)
    g = ct.adjoint(basis, torch.zeros((0,) + basis.shape))
    assert tuple(g.shape) == (0, basis.dim)


def test_jax(basis):
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from cupysteer import jax as cj
    f = cj.expand(basis, jnp.zeros((0, basis.dim)))
    assert tuple(f.shape) == (0,) + basis.shape
    g = cj.adjoint(basis, jnp.zeros((0,) + basis.shape))
    assert tuple(g.shape) == (0, basis.dim)
