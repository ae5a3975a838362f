"""The Flax NNX and Equinox modules: thin wrappers over cupysteer.jax.conv2d/conv3d with
e2cnn/escnn-layout parameters; jit and grad on CPU equal the functional form and the torch
layer with the same weights; equal layers share one trace (the basis is a by-value static)."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import jax as csj  # noqa: E402
from cupysteer.r3 import groups as g3  # noqa: E402

eqx = pytest.importorskip("equinox", reason="equinox is in the test extra")
nnx = pytest.importorskip("flax.nnx", reason="flax is in the test extra")
from cupysteer import equinox as cseqx  # noqa: E402
from cupysteer import flax as csflax  # noqa: E402


def _types():
    G = cs.DihedralGroup(4)
    return (cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation]),
            cs.FieldType(G, [G.trivial_representation, G.regular_representation]))


def _eqx(seed=0, **kw):
    return cseqx.SteerableConv(*_types(), 3, padding=1, key=jax.random.key(seed), **kw)


def _nnx(seed=0, **kw):
    return csflax.SteerableConv(*_types(), 3, padding=1, rngs=nnx.Rngs(seed), **kw)


X = jnp.asarray(np.random.default_rng(0).standard_normal((2, 10, 7, 7)), jnp.float32)


def _params(m):
    w = m.weights if isinstance(m, cseqx.SteerableConv) else m.weights[...]
    b = m.bias if isinstance(m, cseqx.SteerableConv) else m.bias[...]
    return w, b


@pytest.mark.parametrize("make", [_eqx, _nnx], ids=["equinox", "flax"])
def test_parameters_in_e2cnn_layout_and_outputs_equal_the_function(make):
    m = make()
    w, b = _params(m)
    assert w.shape == (m.basis.dim,) and b.shape == (m.basis.num_bias,)
    ref = csj.conv2d(X, m.basis, w, b, padding=1)
    np.testing.assert_allclose(np.asarray(m(X)), np.asarray(ref), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(m(X[0])), np.asarray(ref[0]), rtol=1e-5, atol=1e-5)


def test_same_weights_same_output_as_the_torch_layer():
    torch = pytest.importorskip("torch")
    from cupysteer.torch import SteerableConv2d
    m = _eqx()
    layer = SteerableConv2d(*_types(), 3, padding=1)
    with torch.no_grad():
        layer.weights.copy_(torch.from_numpy(np.array(m.weights)))
        layer.bias.normal_()
        b = jnp.asarray(layer.bias.numpy())
        y = layer(torch.from_numpy(np.asarray(X))).numpy()
    m = eqx.tree_at(lambda t: t.bias, m, b)
    np.testing.assert_allclose(np.asarray(m(X)), y, rtol=1e-4, atol=1e-5)


def test_equinox_jit_grad_and_one_trace_for_equal_layers():
    a, b = _eqx(0), _eqx(1)
    traces = []

    @eqx.filter_jit
    def loss_grad(m, x):
        traces.append(1)
        return eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2))(m)

    g = loss_grad(a, X)
    loss_grad(b, X)
    assert len(traces) == 1  # equal static bases: the second layer reuses the trace
    w, bias = _params(a)
    gw, gb = jax.grad(lambda w, bb: jnp.sum(csj.conv2d(X, a.basis, w, bb, padding=1) ** 2),
                      argnums=(0, 1))(w, bias)
    np.testing.assert_allclose(np.asarray(g.weights), np.asarray(gw), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(g.bias), np.asarray(gb), rtol=1e-4, atol=1e-4)


def test_flax_nnx_jit_grad_and_one_trace_for_equal_layers():
    a, b = _nnx(0), _nnx(1)
    traces = []

    @nnx.jit
    def loss_grad(m, x):
        traces.append(1)
        return nnx.grad(lambda m: jnp.sum(m(x) ** 2))(m)

    g = loss_grad(a, X)
    loss_grad(b, X)
    assert len(traces) == 1
    w, bias = _params(a)
    gw = jax.grad(lambda w: jnp.sum(csj.conv2d(X, a.basis, w, bias, padding=1) ** 2))(w)
    np.testing.assert_allclose(np.asarray(g["weights"][...]), np.asarray(gw), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("which", ["equinox", "flax"])
def test_3d_module(which):
    O = g3.Octahedral()
    tin = cs.FieldType(O, [O.trivial_representation])
    tout = cs.FieldType(O, [O.regular_representation])
    m = (cseqx.SteerableConv(tin, tout, 3, padding=1, key=jax.random.key(0))
         if which == "equinox" else
         csflax.SteerableConv(tin, tout, 3, padding=1, rngs=nnx.Rngs(0)))
    x = jnp.ones((1, 1, 5, 5, 5))
    w, b = _params(m)
    np.testing.assert_allclose(np.asarray(m(x)),
                               np.asarray(csj.conv3d(x, m.basis, w, b, padding=1)), atol=1e-5)


def test_static_basis_equality_and_errors():
    a = csj.StaticBasis(cs.LayerBasis(*_types(), 3, cache=False))
    b = csj.StaticBasis(cs.LayerBasis(*_types(), 3, cache=False))
    assert a == b and hash(a) == hash(b) and a.basis is not b.basis
    assert a != csj.StaticBasis(cs.LayerBasis(*_types(), 5))
    with pytest.raises(TypeError, match="StaticBasis wraps a LayerBasis"):
        csj.StaticBasis("C4")
    with pytest.raises(TypeError, match="LayerBasis"):
        csj.expand("C4", jnp.ones(3))
