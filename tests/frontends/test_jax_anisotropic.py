"""JAX, Flax and Equinox layers on anisotropic / non-cubic grids."""
from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the JAX front end needs jax")

import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
import cupysteer.jax as csj  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.equivariance import point_permutation  # noqa: E402


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _act(ftype, g, x, points):
    """(g·x)(p) = ρ(g) x(g⁻¹p) for a NumPy feature map with pixels at ``points``."""
    perm = point_permutation(ftype.group, g, points)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    out = np.empty_like(flat)
    out[:, :, perm] = np.einsum("ab,nbp->nap", ftype.representation(g), flat)
    return out.reshape(x.shape)


def test_conv2d_uses_the_grid_dilation_not_the_point_step():
    G = cs.DihedralGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    b = cs.LayerBasis(t, t, (5, 3), dilation=2, spacing=(1.0, 2.0))
    assert b.dilation == 2 and b.points[1, 0] - b.points[0, 0] == 4.0  # x step 2·2
    w = b.init_weights(np.random.default_rng(0), np.float64)
    x = np.random.default_rng(1).standard_normal((1, t.size, 13, 9))
    y = np.asarray(csj.conv2d(x, b, w, padding=(4, 2)))
    ref = jax.lax.conv_general_dilated(x, jnp.asarray(b.expand(w)), (1, 1), ((4, 4), (2, 2)),
                                       rhs_dilation=(2, 2),
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"))
    np.testing.assert_allclose(y, np.asarray(ref), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="differs from the basis grid's dilation 2"):
        csj.conv2d(x, b, w, padding=(4, 2), dilation=4)
    line = cs.LayerBasis(t, t, (1, 5), dilation=2, rings=[0, 2, 4])  # one row: still checked
    with pytest.raises(ValueError, match="differs from the basis grid's dilation 2"):
        csj.conv2d(x, line, np.ones(line.dim), padding=(0, 4), dilation=1)
    # exact equivariance on the rectangle's symmetries (4 of the 8 of D4)
    pts = G.space.grid_points((13, 9), 1, (1.0, 2.0))
    elements = [g for g in G.elements() if point_permutation(G, g, pts) is not None
                and point_permutation(G, g, b.points) is not None]
    assert len(elements) == 4
    for g in elements:
        gy = np.asarray(csj.conv2d(_act(t, g, x, pts), b, w, padding=(4, 2)))
        np.testing.assert_allclose(gy, _act(t, g, y, pts), rtol=0, atol=1e-10 * abs(y).max())


def test_flax_and_equinox_modules_take_sizes_and_spacing():
    pytest.importorskip("flax", reason="cupysteer.flax needs flax")
    pytest.importorskip("equinox", reason="cupysteer.equinox needs equinox")
    from flax import nnx

    import cupysteer.equinox as cseqx
    import cupysteer.flax as csflax
    G = r3.Octahedral()
    tin = cs.FieldType(G, [G.trivial_representation])
    tout = cs.FieldType(G, [G.regular_representation])
    x = jnp.asarray(np.random.default_rng(2).standard_normal((1, 1, 5, 7, 7)))
    kw = dict(padding=(1, 2, 2), spacing=(3, 1, 1), dtype=jnp.float64)
    f = csflax.SteerableConv(tin, tout, (3, 5, 5), rngs=nnx.Rngs(0), **kw)
    e = cseqx.SteerableConv(tin, tout, (3, 5, 5), key=jax.random.key(0), **kw)
    assert f.basis == e.basis and f.basis.spacing == (3.0, 1.0, 1.0)
    assert f.static_basis == e.static_basis
    unit = cseqx.SteerableConv(tin, tout, (3, 5, 5), key=jax.random.key(0), padding=(1, 2, 2))
    assert unit.static_basis != e.static_basis  # other points: another trace
    for m in (f, e):
        w = m.weights[...]
        y = m(x)
        assert y.shape == (1, 24, 5, 7, 7)
        ref = csj.conv3d(x, m.basis, w, None if m.bias is None else m.bias[...],
                         padding=(1, 2, 2))
        np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=0, atol=1e-12)


def test_jit_does_not_reuse_a_dilated_layer_for_a_spaced_one():
    """``k=4, dilation=2`` and ``k=4, spacing=2`` sample the same points: StaticBasis must
    still tell them apart, or jax.jit / eqx.filter_jit reuse one trace for both."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    kw = dict(rings=[1, 3], sigma=[0.6, 0.6], frequencies_cutoff=lambda r: 2.0)
    a = csj.StaticBasis(cs.LayerBasis(t, t, 4, dilation=2, **kw))
    b = csj.StaticBasis(cs.LayerBasis(t, t, 4, spacing=2, **kw))
    assert a != b and hash(a) != hash(b)
    w = jnp.asarray(a.basis.init_weights(np.random.default_rng(0), np.float64))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((1, t.size, 12, 12)))
    f = jax.jit(lambda x, w, basis: csj.conv2d(x, basis, w), static_argnums=2)
    for s, shape in ((a, (1, 4, 6, 6)), (b, (1, 4, 9, 9))):  # 12 − 3·2 and 12 − 3·1
        y = f(x, w, s)
        assert y.shape == shape
        np.testing.assert_allclose(np.asarray(y), np.asarray(csj.conv2d(x, s, w)), rtol=0,
                                   atol=1e-12)


def test_equinox_filter_jit_keeps_a_dilated_and_a_spaced_layer_apart():
    eqx = pytest.importorskip("equinox", reason="the Equinox layer needs equinox")
    from cupysteer.equinox import SteerableConv
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    kw = dict(rings=[1, 3], sigma=[0.6, 0.6], frequencies_cutoff=lambda r: 2.0,
              key=jax.random.PRNGKey(0))
    ma, mb = SteerableConv(t, t, 4, dilation=2, **kw), SteerableConv(t, t, 4, spacing=2, **kw)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((1, t.size, 12, 12)))
    g = eqx.filter_jit(lambda m, x: m(x))
    assert g(ma, x).shape == ma(x).shape == (1, 4, 6, 6)
    assert g(mb, x).shape == mb(x).shape == (1, 4, 9, 9)
