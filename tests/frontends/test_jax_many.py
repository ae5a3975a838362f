"""cupysteer.jax.expand_many: many layers' filters from one jitted computation, equal to
per-layer expansion (cupysteer.jax.expand and the NumPy reference), with the same gradients."""
from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import cupysteer as cs  # noqa: E402
from cupysteer import jax as csj  # noqa: E402
from cupysteer import r3  # noqa: E402


@pytest.fixture(scope="module")
def bases():
    G = cs.CyclicGroup(4)
    R, T = G.regular_representation, G.trivial_representation
    t2 = cs.FieldType(G, [R, R])
    O = r3.Octahedral()
    o = cs.FieldType(O, [O.regular_representation])
    return [cs.LayerBasis(cs.FieldType(G, [T] * 3), t2, 5),
            cs.LayerBasis(t2, cs.FieldType(G, [R, G.irreps()[1].representation]), 3),
            cs.LayerBasis(o, o, 3)]


def weights(bases, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.standard_normal(batch + (b.dim,)), jnp.float32) for b in bases]


def test_equals_per_layer(bases):
    ws = weights(bases)
    got = csj.expand_many(bases, ws)
    assert isinstance(got, tuple) and len(got) == len(bases)
    for f, b, w in zip(got, bases, ws):
        assert f.shape == b.shape and f.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(f), np.asarray(csj.expand(b, w)))
        np.testing.assert_allclose(np.asarray(f), b.expand(np.asarray(w, np.float64)),
                                   rtol=1e-5, atol=1e-5)
    plain = csj.expand_many(bases, ws, custom_vjp=False)
    for f, g in zip(got, plain):
        np.testing.assert_allclose(np.asarray(f), np.asarray(g), rtol=1e-6, atol=1e-6)


def test_batched_and_inside_jit(bases):
    ws = weights(bases, (2,), seed=1)
    got = jax.jit(lambda ws: csj.expand_many(bases, ws))(ws)
    for f, b, w in zip(got, bases, ws):
        assert f.shape == (2,) + b.shape
        np.testing.assert_allclose(np.asarray(f), np.asarray(csj.expand(b, w)), rtol=1e-6,
                                   atol=1e-6)


def test_gradients_are_the_adjoints(bases):
    ws = weights(bases, seed=2)
    rng = np.random.default_rng(3)
    Gs = [jnp.asarray(rng.standard_normal(b.shape), jnp.float32) for b in bases]

    def loss(ws):
        return sum(jnp.vdot(f, G) for f, G in zip(csj.expand_many(bases, ws), Gs))

    grads = jax.jit(jax.grad(loss))(ws)
    for g, b, G in zip(grads, bases, Gs):
        np.testing.assert_allclose(np.asarray(g), b.adjoint(np.asarray(G, np.float64)),
                                   rtol=1e-4, atol=1e-4)


def test_one_executable_per_layer_set(bases):
    ws = weights(bases, seed=4)
    csj.expand_many(bases, ws)
    n = csj._expand_many_jit._cache_size()
    for seed in (5, 6):
        csj.expand_many(bases, weights(bases, seed=seed))
    assert csj._expand_many_jit._cache_size() == n  # no retrace for new values


def test_errors(bases):
    with pytest.raises(ValueError, match="one array per basis: 3 bases, 2 weight arrays"):
        csj.expand_many(bases, weights(bases)[:2])
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(\.\.\., "):
        csj.expand_many(bases, [weights(bases)[0], jnp.zeros(3), weights(bases)[2]])
    with pytest.raises(ValueError, match="at least one"):
        csj.expand_many([], [])
    with pytest.raises(TypeError, match="LayerBasis"):
        csj.expand_many(["not a basis"], [jnp.zeros(3)])


def test_static_bases_are_accepted(bases):
    ws = weights(bases)
    got = csj.expand_many([csj.StaticBasis(b) for b in bases], ws)
    for b, w, f in zip(bases, ws, got):
        np.testing.assert_allclose(np.asarray(f), b.expand(np.asarray(w)), rtol=1e-6, atol=1e-6)


def test_static_basis_tells_dilations_apart():
    """Equal plans but other sample points (another dilation) convolve differently, so the
    by-value identity includes the points."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    kw = dict(maximum_offset=0, frequencies_cutoff=lambda r: 2.0)
    a = cs.LayerBasis(t, t, 3, dilation=1, rings=[0, 1], sigma=[0.005, 0.4], **kw)
    b = cs.LayerBasis(t, t, 3, dilation=2, rings=[0, 2], sigma=[0.01, 0.8], **kw)
    assert csj.StaticBasis(a) != csj.StaticBasis(b)
    assert csj.StaticBasis(a) == csj.StaticBasis(cs.LayerBasis(t, t, 3, dilation=1, rings=[0, 1],
                                                               sigma=[0.005, 0.4], **kw))
