"""cupysteer.jax: both derivative modes by default (jvp, jacfwd, grad, jacrev, hessian through
expand and conv2d/conv3d), reverse mode through the explicit adjoint primitive, vmap of every
combination, and schedules equal and hashed by value (jit caches hit across equal layers)."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import jax as csj  # noqa: E402
from cupysteer.backends import jax_schedule  # noqa: E402
from cupysteer.r3 import groups as g3  # noqa: E402


def _types():
    G = cs.DihedralGroup(4)
    return (cs.FieldType(G, [G.regular_representation, G.irrep(1, 1).representation]),
            cs.FieldType(G, [G.trivial_representation, G.irrep(1, 0).representation]))


B2 = cs.LayerBasis(*_types(), 3)
_O = g3.Octahedral()
B3 = cs.LayerBasis(cs.FieldType(_O, [_O.trivial_representation]),
                   cs.FieldType(_O, [_O.irrep(1).representation]), 3)


def _loss(basis, conv, custom_vjp=True):
    x = jnp.asarray(np.random.default_rng(0).standard_normal(
        (1, basis.in_type.size) + (5,) * (len(basis.shape) - 2)))

    def f(w):
        if conv is None:
            return jnp.sum(jnp.sin(csj.expand(basis, w, custom_vjp=custom_vjp)))
        y = conv(x, basis, w, padding=1) if custom_vjp else None
        return jnp.sum(jnp.tanh(y) ** 2)
    return f


def _reference(basis, conv):
    """The same loss with JAX differentiating the gathers itself (no primitive)."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal(
        (1, basis.in_type.size) + (5,) * (len(basis.shape) - 2)))
    n = len(basis.shape) - 2
    spatial = "DHW"[3 - n:]

    def f(w):
        K = csj.expand(basis, w, custom_vjp=False)
        if conv is None:
            return jnp.sum(jnp.sin(K))
        y = jax.lax.conv_general_dilated(
            x, K, (1,) * n, ((1, 1),) * n,
            dimension_numbers=("NC" + spatial, "OI" + spatial, "NC" + spatial))
        return jnp.sum(jnp.tanh(y) ** 2)
    return f


@pytest.mark.parametrize("basis,conv", [(B2, None), (B2, csj.conv2d), (B3, csj.conv3d)],
                         ids=["expand", "conv2d", "conv3d"])
def test_every_derivative_mode_equals_jax_differentiating_the_gathers(basis, conv):
    with jax.enable_x64(True):
        w = jnp.asarray(np.random.default_rng(1).standard_normal(basis.dim))
        t = jnp.asarray(np.random.default_rng(2).standard_normal(basis.dim))
        f, ref = _loss(basis, conv), _reference(basis, conv)
        close = lambda a, b: np.testing.assert_allclose(  # noqa: E731
            np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)
        close(jax.jvp(f, (w,), (t,))[1], jax.jvp(ref, (w,), (t,))[1])
        close(jax.grad(f)(w), jax.grad(ref)(w))
        close(jax.jit(jax.grad(f))(w), jax.grad(ref)(w))
        close(jax.jit(jax.jacfwd(f))(w), jax.grad(ref)(w))
        close(jax.jit(jax.hessian(f))(w), jax.jit(jax.hessian(ref))(w))
        ws = jnp.stack([w, t])
        close(jax.vmap(jax.grad(f))(ws), jax.vmap(jax.grad(ref))(ws))


def test_expand_jvp_and_jacfwd_are_the_expansion():
    """Expansion is linear: its JVP along t is expand(t), its Jacobian the dense basis."""
    w = jnp.ones(B2.dim)
    t = jnp.asarray(np.random.default_rng(3).standard_normal(B2.dim), jnp.float32)
    _, tangent = jax.jvp(lambda w: csj.expand(B2, w), (w,), (t,))
    np.testing.assert_allclose(np.asarray(tangent), B2.expand(np.asarray(t)), atol=1e-5)
    J = jax.jacfwd(lambda w: csj.expand(B2, w))(w)
    np.testing.assert_allclose(np.moveaxis(np.asarray(J), -1, 0), B2.dense(np.float32),
                               atol=1e-6)


def test_reverse_mode_runs_the_explicit_adjoint():
    jaxpr = jax.make_jaxpr(jax.grad(lambda w: jnp.sum(csj.expand(B2, w) ** 2)))(
        jnp.ones(B2.dim))
    names = {e.primitive.name for e in jaxpr.eqns}
    assert {"cupysteer_expand", "cupysteer_adjoint"} <= names
    assert "gather" not in names and "scatter-add" not in names  # no derived transpose


def test_equal_bases_share_one_schedule_and_one_trace():
    a = cs.LayerBasis(*_types(), 3, cache=False)
    b = cs.LayerBasis(*_types(), 3, cache=False)
    pa, pb = jax_schedule.schedule(a.plan), jax_schedule.schedule(b.plan)
    assert pa == pb and hash(pa) == hash(pb)
    assert pa != jax_schedule.schedule(cs.LayerBasis(*_types(), 5).plan)
    traces = []

    def run(w, plan):
        traces.append(1)
        return jax_schedule.expand_p.bind(w, plan=plan)

    run_static = jax.jit(run, static_argnums=1)
    w = jnp.ones(a.dim)
    run_static(w, pa)
    run_static(w, pb)
    assert len(traces) == 1


def test_primitives_evaluate_eagerly_and_under_vmap_with_any_axis():
    w = np.random.default_rng(4).standard_normal((3, B2.dim)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(csj.expand(B2, w)), B2.expand(w), atol=1e-5)
    out = jax.vmap(lambda v: csj.expand(B2, v), in_axes=1)(jnp.asarray(w.T))
    np.testing.assert_allclose(np.asarray(out), B2.expand(w), atol=1e-5)
    G = np.random.default_rng(5).standard_normal((2,) + B2.shape).astype(np.float32)
    out = jax.vmap(lambda g: csj.adjoint(B2, g), in_axes=0)(jnp.asarray(G))
    np.testing.assert_allclose(np.asarray(out), B2.adjoint(G), atol=1e-4)
