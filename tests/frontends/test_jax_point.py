"""cupysteer.jax.point_conv: the NumPy reference's result; jax.grad against the contract's
adjoints (finite differences are not needed: the output is linear in weights and features)."""
from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed")

import cupysteer as cs  # noqa: E402
from cupysteer import jax as cj  # noqa: E402
from cupysteer.pointconv import PointConvBasis  # noqa: E402

G = cs.DihedralGroup(2)
B = PointConvBasis(cs.FieldType(G, [G.regular_representation, G.trivial_representation]),
                   cs.FieldType(G, [G.irrep(1, 1), G.regular_representation]),
                   width=1.5, n_rings=3)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 2))
    ei = rng.integers(0, 8, size=(2, 25))
    return (x, ei, rng.normal(size=(8, B.in_type.size)), rng.normal(size=B.dim),
            rng.normal(size=B.n_bias))


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_matches_numpy(aggregation):
    x, ei, f, w, b = _data()
    with jax.enable_x64(True):
        y = cj.point_conv(B, w, f, x, ei, b, aggregation=aggregation, chunk_edges=9)
        np.testing.assert_allclose(np.asarray(y), B.apply(w, f, x, ei, b, aggregation),
                                   atol=1e-12)


def test_grad_is_the_adjoint():
    x, ei, f, w, b = _data(1)
    h = np.random.default_rng(2).normal(size=(8, B.out_type.size))

    def loss(w, f):
        return (cj.point_conv(B, w, f, x, ei, aggregation="sum") * h).sum()
    with jax.enable_x64(True):
        gw, gf = jax.grad(loss, argnums=(0, 1))(w, f)
        value = float(loss(w, f))
    # the loss is bilinear: <grad, w> = loss, and the same for f
    assert np.isclose(value, float(np.dot(np.asarray(gw), w)), rtol=1e-10)
    assert np.isclose(value, float(np.sum(np.asarray(gf) * f)), rtol=1e-10)
    with pytest.raises(ValueError, match="aggregation"):
        cj.point_conv(B, w, f, x, ei, aggregation="max")


@pytest.mark.parametrize("chunk", [-1, 0, 2.5, "8"])
def test_bad_chunk_edges_are_refused_as_in_the_core(chunk):
    """chunk_edges=-1 used to return the bias only, 0 a bare range() error."""
    x, ei, f, w, b = _data()
    with pytest.raises((ValueError, TypeError), match="chunk_edges") as jax_err:
        cj.point_conv(B, w, f, x, ei, b, chunk_edges=chunk)
    with pytest.raises((ValueError, TypeError), match="chunk_edges") as core_err:
        B.apply(w, f, x, ei, b, chunk_edges=chunk)
    assert str(jax_err.value) == str(core_err.value)


@pytest.mark.parametrize("n", [-1, 1])
def test_weights_and_bias_of_another_length_are_refused(n):
    """JAX clamps out-of-range gathers: dim ± 1 weights used to run silently."""
    x, ei, f, w, b = _data()
    bad_w = np.random.default_rng(3).normal(size=B.dim + n)
    with pytest.raises(ValueError, match=rf"weights must have shape \({B.dim},\)"):
        cj.point_conv(B, bad_w, f, x, ei, b)
    with pytest.raises(ValueError, match=rf"weights must have shape \({B.dim},\)"):
        cj.point_conv(B, w.reshape(1, -1), f, x, ei, b)
    bad_b = np.zeros(B.n_bias + n) if B.n_bias + n >= 0 else np.zeros((1, B.n_bias))
    with pytest.raises(ValueError, match=rf"bias must have shape \({B.n_bias},\)"):
        cj.point_conv(B, w, f, x, ei, bad_b)
    with jax.enable_x64(True):  # the right shapes still run, also under jax.grad
        g = jax.grad(lambda w: cj.point_conv(B, w, f, x, ei, b).sum())(w)
    assert g.shape == (B.dim,)
