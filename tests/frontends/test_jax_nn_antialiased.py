"""cupysteer.jax_nn's antialiased pools and mask: e2cnn's/escnn's outputs on their fixtures,
the torch modules' outputs (float64), jit, gradients, exact equivariance, errors."""
import json

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import r3

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from cupysteer import jax_nn  # noqa: E402

from _paths import DATA  # noqa: E402

FUNCTIONS = {"PointwiseAvgPoolAntialiased": jax_nn.pointwise_avg_pool_antialiased,
             "PointwiseAvgPoolAntialiased3D": jax_nn.pointwise_avg_pool_antialiased,
             "PointwiseMaxPoolAntialiased": jax_nn.pointwise_max_pool_antialiased,
             "PointwiseMaxPoolAntialiased3D": jax_nn.pointwise_max_pool_antialiased}


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _cases(data):
    meta = json.loads((DATA / data / "meta.json").read_text())["module_cases"]["cases"]
    z = np.load(DATA / data / "modules.npz")
    return [(name, kw, z[f"case{i}.input"], z[f"case{i}.output"])
            for i, (name, kw, _) in enumerate(meta)]


def _call(name, kw, x, t):
    if name == "MaskModule":
        kw = {k: v for k, v in kw.items() if k != "S"}
        return jax_nn.mask(x, t, **kw)
    return FUNCTIONS[name](x, t, **kw)


def test_outputs_equal_e2cnn_and_escnn():
    C4, O = cs.CyclicGroup(4), r3.Octahedral()
    n = 0
    for data, t in (("e2cnn_c8mnist", cs.FieldType(C4, [C4.regular_representation] * 2)),
                    ("escnn_3d_model", cs.FieldType(O, [O.regular_representation]))):
        for name, kw, x, y in _cases(data):
            out = np.asarray(_call(name, kw, jnp.asarray(x), t))
            assert out.shape == y.shape, (name, kw)
            assert np.abs(out - y).max() <= 1e-6 * np.abs(y).max(), (name, kw)
            n += 1
    assert n == 14


def test_jit_grad_and_exact_equivariance():
    D4 = cs.DihedralGroup(4)
    t = cs.FieldType(D4, [D4.regular_representation, D4.trivial_representation])
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, t.size, 13, 13)))

    def net(x):
        y = jax_nn.mask(x, t, margin=1)
        y = jax_nn.pointwise_max_pool_antialiased(y, t, 3, stride=1, padding=1, sigma=0.4)
        return jax_nn.pointwise_avg_pool_antialiased(y, t, 0.66, 2)

    y = jax.jit(net)(x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(net(x)), rtol=1e-12, atol=1e-12)
    g = jax.grad(lambda x: (net(x) ** 2).sum())(x)
    assert np.isfinite(np.asarray(g)).all()
    for h in D4.elements():  # all 8 preserve the 13×13 and 7×7 grids
        gx, gy = jax_nn.transform(x, t, h), jax_nn.transform(y, t, h)
        assert float(jnp.abs(net(gx) - gy).max()) <= 1e-10


def test_clear_errors():
    D4 = cs.DihedralGroup(4)
    irr = cs.FieldType(D4, [D4.irrep(1, 1).representation])
    x = jnp.zeros((1, 2, 9, 9))
    with pytest.raises(ValueError, match="pointwise_max_pool_antialiased.*avg"):
        jax_nn.pointwise_max_pool_antialiased(x, irr, 2)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        jax_nn.pointwise_avg_pool_antialiased(x, irr, -1.0, 2)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        jax_nn.pointwise_avg_pool_antialiased(x, irr, 0.66, 0)
    with pytest.raises(ValueError, match="same size S"):
        jax_nn.mask(jnp.zeros((1, 2, 9, 8)), irr)
