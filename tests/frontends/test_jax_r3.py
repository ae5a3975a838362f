"""cupysteer.jax on bases of groups acting on R³: expand/adjoint equal the NumPy backend,
jit/grad/vmap, conv3d against torch's conv3d and exact equivariance of the layer."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import jax as csj  # noqa: E402
from cupysteer.r3 import groups as g3  # noqa: E402


def so3_mixed():
    G = g3.SO3(2)
    irr = [p.representation for p in G.irreps()]
    return (cs.FieldType(G, [irr[1], irr[0], irr[2], irr[1]]),
            cs.FieldType(G, [irr[2], irr[0], irr[1]]))


def o3_mixed():
    G = g3.O3(2)
    irr = [p.representation for p in G.irreps()]
    return cs.FieldType(G, irr[::2] + [irr[1]]), cs.FieldType(G, irr[::-1])


def octa_regular():
    G = g3.Octahedral()
    return (cs.FieldType(G, [G.trivial_representation, G.regular_representation]),
            cs.FieldType(G, [G.regular_representation, G.irrep(2).representation]))


CASES = {"SO3-mixed": so3_mixed, "O3-mixed": o3_mixed, "O-regular": octa_regular}


def _make(name, k=3):
    return cs.LayerBasis(*CASES[name](), k)


@pytest.fixture(scope="module")
def so3():
    return cs.LayerBasis(*so3_mixed(), 3)


@pytest.mark.parametrize("name", list(CASES))
def test_expand_and_adjoint_equal_numpy_float64(name):
    b = _make(name)
    assert b.shape[2:] == (3, 3, 3)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, b.dim))
    G = rng.standard_normal((2,) + b.shape)
    with jax.enable_x64(True):
        K, g = jax.jit(lambda w, G: (csj.expand(b, w), csj.adjoint(b, G)))(w, G)
        assert K.dtype == np.float64 and K.shape == (2,) + b.shape
        np.testing.assert_allclose(np.asarray(K), b.expand(w), rtol=0, atol=1e-13)
        np.testing.assert_allclose(np.asarray(g), b.adjoint(G), rtol=0, atol=1e-12)
        # without the custom_vjp (plain gathers and einsums): same values
        K2 = csj.expand(b, w[0], custom_vjp=False)
        np.testing.assert_allclose(np.asarray(K2), b.expand(w[0]), rtol=0, atol=1e-13)


def test_float32_jit_vmap(so3):
    w = so3.init_weights(np.random.default_rng(1))
    K = jax.jit(lambda w: csj.expand(so3, w))(w)
    assert K.dtype == np.float32 and K.shape == so3.shape
    scale = float(np.abs(K).max())
    assert np.abs(np.asarray(K) - so3.expand(w)).max() <= 1e-6 * scale
    W = np.stack([w, -2 * w])
    Kb = jax.jit(jax.vmap(lambda w: csj.expand(so3, w)))(W)
    assert np.abs(np.asarray(Kb) - so3.expand(W)).max() <= 4e-6 * scale


def test_grad_is_adjoint_and_finite_differences(so3):
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        w = rng.standard_normal(so3.dim)
        G = rng.standard_normal(so3.shape)
        loss = lambda w: jnp.sum(csj.expand(so3, w) * G)  # noqa: E731
        g = jax.jit(jax.grad(loss))(w)
        np.testing.assert_allclose(np.asarray(g), so3.adjoint(G), atol=1e-12)
        cubic = lambda w: jnp.sum(jnp.tanh(csj.expand(so3, w)) * G)  # noqa: E731
        v = rng.standard_normal(so3.dim)
        eps = 1e-6
        fd = (cubic(w + eps * v) - cubic(w - eps * v)) / (2 * eps)
        np.testing.assert_allclose(float(jax.grad(cubic)(w) @ v), float(fd), rtol=1e-7)


def _torch_reference(x, filt, bias, stride, padding, dilation):
    torch = pytest.importorskip("torch")
    y = torch.nn.functional.conv3d(torch.from_numpy(np.asarray(x)), torch.from_numpy(filt),
                                   None if bias is None else torch.from_numpy(bias),
                                   stride, padding, dilation)
    return y.numpy()


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, (1, 0, 2), 1), (1, 2, 2)])
def test_conv3d_equals_torch_conv3d(stride, padding, dilation):
    b = cs.LayerBasis(*so3_mixed(), 3, dilation=dilation)
    rng = np.random.default_rng(3)
    w = rng.standard_normal(b.dim)
    bias = rng.standard_normal(b.num_bias)
    x = rng.standard_normal((2, b.in_type.size, 7, 6, 8))
    with jax.enable_x64(True):
        y = jax.jit(lambda x, w, bb: csj.conv3d(x, b, w, bb, stride=stride, padding=padding))(
            x, w, bias)
        ref = _torch_reference(x, b.expand(w), b.expand_bias(bias), stride, padding, dilation)
        assert y.shape == ref.shape
        np.testing.assert_allclose(np.asarray(y), ref, rtol=0, atol=1e-11)


def test_conv3d_equals_steerable_conv3d():
    torch = pytest.importorskip("torch")
    from cupysteer.torch import SteerableConv3d
    tin, tout = so3_mixed()
    torch.manual_seed(0)
    layer = SteerableConv3d(tin, tout, 3, padding=1).double()
    x = np.random.default_rng(4).standard_normal((1, tin.size, 5, 5, 5))
    with torch.no_grad():
        layer.bias.normal_()
        ref = layer(torch.from_numpy(x)).numpy()
        w, bb = layer.weights.numpy(), layer.bias.numpy()
    with jax.enable_x64(True):
        y = csj.conv3d(x, layer.basis, w, bb, padding=1)
        np.testing.assert_allclose(np.asarray(y), ref, rtol=0, atol=1e-11)


def _act(rep, x, op):
    """(g·f)(p) = ρ(g) f(R⁻¹p) with R the grid operation ``op`` on the (−z, −y, x) axes."""
    return jnp.einsum("ab,nb...->na...", jnp.asarray(rep), op(x))


OPS = {  # element matrix (acting on (x, y, z)) -> array operation on the last three axes
    "rz90": (np.array([[0., -1, 0], [1, 0, 0], [0, 0, 1]]),
             lambda x: jnp.rot90(x, 1, axes=(-2, -1))),
    "rx90": (np.array([[1., 0, 0], [0, 0, -1], [0, 1, 0]]),
             lambda x: jnp.rot90(x, 3, axes=(-3, -2))),
    "ry90": (np.array([[0., 0, 1], [0, 1, 0], [-1, 0, 0]]),
             lambda x: jnp.rot90(x, 3, axes=(-3, -1))),
    "inversion": (-np.eye(3), lambda x: jnp.flip(x, axis=(-3, -2, -1))),
    "mirror_x": (np.diag([-1., 1, 1]), lambda x: jnp.flip(x, axis=-1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_conv3d_is_equivariant(name):
    b = _make(name)
    G = b.in_type.group
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        w = rng.standard_normal(b.dim)
        x = jnp.asarray(rng.standard_normal((1, b.in_type.size, 7, 7, 7)))
        f = jax.jit(lambda x: csj.conv3d(x, b, w, padding=1))
        y = f(x)
        checked = 0
        for R, op in OPS.values():
            if not G.contains(R[None])[0]:
                continue
            lhs = f(_act(b.in_type.representation(R), x, op))
            rhs = _act(b.out_type.representation(R), y, op)
            assert float(jnp.abs(lhs - rhs).max() / jnp.abs(y).max()) <= 1e-12
            checked += 1
        assert checked >= 3


def test_conv_dimension_errors(so3):
    w = np.zeros(so3.dim, np.float32)
    with pytest.raises(ValueError, match="conv3d"):
        csj.conv2d(jnp.zeros((1, so3.in_type.size, 5, 5)), so3, w)
    G2 = cs.CyclicGroup(4)
    t2 = cs.FieldType(G2, [G2.regular_representation])
    b2 = cs.LayerBasis(t2, t2, 3)
    with pytest.raises(ValueError, match="conv2d"):
        csj.conv3d(jnp.zeros((1, 4, 5, 5, 5)), b2, np.zeros(b2.dim, np.float32))
    with pytest.raises(ValueError, match="shape"):
        csj.conv3d(jnp.zeros((1, so3.in_type.size + 1, 5, 5, 5)), so3, w)
    with pytest.raises(ValueError, match="dilation"):
        csj.conv3d(jnp.zeros((1, so3.in_type.size, 5, 5, 5)), so3, w, dilation=2)
    with pytest.raises(ValueError, match="3-tuple"):
        csj.conv3d(jnp.zeros((1, so3.in_type.size, 5, 5, 5)), so3, w, padding=(1, 1))
