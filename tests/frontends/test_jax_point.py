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
