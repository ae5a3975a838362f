"""cupysteer.jax: the pure jax.numpy expansion equals the NumPy backend; its custom_vjp is the
exact adjoint (finite differences, NumPy adjoint); jit/grad/vmap; the functional conv."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import jax as csj  # noqa: E402


def mixed_d4():
    """Non-contiguous mixed field types: every code path of the plan (several pair types,
    identity and non-identity Q, channels to sort)."""
    G = cs.DihedralGroup(4)
    R, irr = G.regular_representation, [p.representation for p in G.irreps()]
    return (cs.FieldType(G, [R, irr[0], R, irr[2]]),
            cs.FieldType(G, [irr[1], R, irr[0], irr[3], R]))


@pytest.fixture(scope="module")
def basis():
    return cs.LayerBasis(*mixed_d4(), 3)


@pytest.fixture(scope="module")
def tiny():
    G = cs.CyclicGroup(4)
    return cs.LayerBasis(cs.FieldType(G, [G.regular_representation]),
                         cs.FieldType(G, [G.irrep(1).representation,
                                          G.trivial_representation]), 3)


@pytest.mark.parametrize("make", [
    mixed_d4,
    lambda: (lambda G: (cs.FieldType(G, [G.trivial_representation] * 2),
                        cs.FieldType(G, [G.regular_representation])))(cs.CyclicGroup(6)),
    lambda: (lambda G: (cs.FieldType(G, [p.representation for p in G.irreps()]),
                        cs.FieldType(G, [p.representation for p in G.irreps()][::-1])))(cs.SO2(3)),
], ids=["D4-mixed", "C6-lifting", "SO2-irreps"])
def test_filter_and_adjoint_equal_numpy_float64(make):
    b = cs.LayerBasis(*make(), 5)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, b.dim))
    G = rng.standard_normal((2,) + b.shape)
    with jax.enable_x64(True):
        f = jax.jit(lambda w: (csj.expand(b, w), csj.adjoint(b, G)))
        K, g = f(w)
        assert K.dtype == np.float64
        np.testing.assert_allclose(np.asarray(K), b.expand(w), rtol=0, atol=1e-13)
        np.testing.assert_allclose(np.asarray(g), b.adjoint(G), rtol=0, atol=1e-12)


def test_float32_jit_and_vmap(basis):
    w = basis.init_weights(np.random.default_rng(1))
    K = jax.jit(lambda w: csj.expand(basis, w))(w)
    assert K.dtype == np.float32
    scale = np.abs(K).max()
    assert np.abs(np.asarray(K) - basis.expand(w)).max() <= 1e-6 * scale
    W = np.stack([w, 2 * w, -w])
    Kb = jax.jit(jax.vmap(lambda w: csj.expand(basis, w)))(W)
    assert np.abs(np.asarray(Kb) - basis.expand(W)).max() <= 1e-6 * scale * 2


def test_grad_is_numpy_adjoint_and_finite_differences(basis, tiny):
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        w = rng.standard_normal(basis.dim)
        G = rng.standard_normal(basis.shape)
        loss = lambda w: jnp.sum(csj.expand(basis, w) * G)  # noqa: E731
        g, lw = jax.jit(lambda w: (jax.grad(loss)(w), w @ csj.adjoint(basis, G)))(w)
        np.testing.assert_allclose(np.asarray(g), basis.adjoint(G), atol=1e-12)
        np.testing.assert_allclose(float(loss(w)), float(lw), rtol=1e-12)  # dot-product test
        # a non-linear loss: first and second derivatives against central differences
        wt = rng.standard_normal(tiny.dim)
        Gt = rng.standard_normal(tiny.shape)
        V = rng.standard_normal((3, tiny.dim))
        cubic = lambda w: jnp.sum(jnp.tanh(csj.expand(tiny, w)) * Gt)  # noqa: E731
        grad = jax.grad(cubic)
        eps = 1e-6

        @jax.jit
        def check(w):
            fd = jax.vmap(lambda v: (cubic(w + eps * v) - cubic(w - eps * v)) / (2 * eps))(V)
            fd2 = jax.vmap(lambda v: (grad(w + eps * v) - grad(w - eps * v)) / (2 * eps))(V)
            hvp = jax.vmap(lambda v: jax.grad(lambda w: grad(w) @ v)(w))(V)  # grad of grad
            return fd, V @ grad(w), fd2, hvp

        fd, an, fd2, hvp = check(wt)
        np.testing.assert_allclose(np.asarray(fd), np.asarray(an), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(fd2), np.asarray(hvp), rtol=1e-5, atol=1e-8)


def test_check_grads(tiny):
    from jax.test_util import check_grads
    with jax.enable_x64(True):
        w = np.random.default_rng(3).standard_normal(tiny.dim)
        check_grads(jax.jit(lambda w: jnp.tanh(csj.expand(tiny, w))), (w,), order=1,
                    modes=["rev"])
        check_grads(jax.jit(lambda w: jnp.tanh(csj.expand(tiny, w, custom_vjp=False))), (w,),
                    order=1, modes=["fwd"])


def test_expand_bias_and_conv2d_matches_direct_correlation(tiny):
    rng = np.random.default_rng(4)
    w = tiny.init_weights(rng)
    bias = rng.standard_normal(tiny.num_bias).astype(np.float32)
    x = rng.standard_normal((2, tiny.in_type.size, 6, 7)).astype(np.float32)
    y = jax.jit(lambda w, b, x: csj.conv2d(x, tiny, w, b, padding=1))(w, bias, x)
    K, eb = tiny.expand(w), tiny.expand_bias(bias)
    np.testing.assert_allclose(np.asarray(csj.expand_bias(tiny, bias)), eb, atol=1e-6)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((2, tiny.out_type.size, 6, 7), np.float64)
    for r in range(3):
        for c in range(3):
            ref += np.einsum("oi,nihw->nohw", K[:, :, r, c], xp[:, :, r:r + 6, c:c + 7])
    ref += eb[:, None, None]
    np.testing.assert_allclose(np.asarray(y), ref, atol=1e-5)


def test_conv2d_dilation_follows_the_basis():
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    b = cs.LayerBasis(t, t, 3, dilation=2)
    w = b.init_weights(np.random.default_rng(5))
    x = jnp.ones((1, 4, 9, 9))
    assert jax.eval_shape(lambda x: csj.conv2d(x, b, w, padding=2), x).shape == (1, 4, 9, 9)
    with pytest.raises(ValueError, match="dilation"):
        jax.eval_shape(lambda x: csj.conv2d(x, b, w, dilation=1), x)


def test_conv2d_equivariance_c4():
    G = cs.CyclicGroup(4)
    tin = cs.FieldType(G, [G.trivial_representation, G.regular_representation])
    tout = cs.FieldType(G, [G.regular_representation, G.irrep(1).representation])
    b = cs.LayerBasis(tin, tout, 5)
    w = csj.init_weights(b, jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (1, tin.size, 15, 15))
    rin = jnp.asarray(tin.representation(1), jnp.float32)
    rout = jnp.asarray(tout.representation(1), jnp.float32)
    act = lambda rho, z: jnp.rot90(jnp.einsum("ab,nbhw->nahw", rho, z), 1, axes=(-2, -1))  # noqa

    @jax.jit
    def rel_error(x):
        y = csj.conv2d(x, b, w, padding=2)
        return jnp.abs(csj.conv2d(act(rin, x), b, w, padding=2) - act(rout, y)).max() / \
            jnp.abs(y).max()

    assert float(rel_error(x)) <= 1e-5


def test_expand_eager_uses_the_numpy_backend(basis):
    w = basis.init_weights(np.random.default_rng(6))
    K = csj.expand_eager(basis, jnp.asarray(w))
    np.testing.assert_array_equal(np.asarray(K), basis.expand(w))
    with pytest.raises(TypeError, match="concrete"):
        jax.jit(lambda w: csj.expand_eager(basis, w))(w)


def test_errors(basis):
    with pytest.raises(ValueError, match="weights must have shape"):
        csj.expand(basis, jnp.zeros(basis.dim + 1))
    with pytest.raises(TypeError, match="LayerBasis"):
        csj.expand("not a basis", jnp.zeros(3))
