"""cupysteer.jax_nn's Fourier non-linearities, gated2, norm_max_pool and escnn's batch norms
equal the torch modules (float64, 1e-10) — batch statistics in training mode, given
statistics and parameters in eval mode — under ``jax.jit``, and are equivariant (through
jax_nn.transform) for every grid-preserving element of D4 and the octahedral group."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import jax_nn as jnn  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

GROUPS = {"D4": lambda: cs.DihedralGroup(4), "O": r3.Octahedral}


@pytest.fixture(autouse=True)
def _x64():
    """float64 JAX for these tests only (a global config change would leak into other files)."""
    with jax.enable_x64(True):
        yield


def mixed_type(G):
    irrep = G.standard_representation if isinstance(G, r3.Octahedral) else G.irreps()[-1]
    R = G.regular_representation
    return cs.FieldType(G, [R, irrep, G.trivial_representation, R])


def _x(t, size, seed):
    d = t.group.space.dimension
    return np.random.default_rng(seed).standard_normal((3, t.size) + (size,) * d) + 0.3


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), atol=tol, rtol=0)


def _randomise(m):
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(0.5 + torch.rand(p.shape, generator=gen) if "weight" in name
                    else 0.3 * torch.randn(p.shape, generator=gen))
    return m


def _per_rep(m, suffix):
    return [getattr(m, f"{name}_{suffix}", None) for name, *_ in m._groups]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_batch_norms_equal_torch(float64, group):
    G = GROUPS[group]()
    t = mixed_type(G)
    size = 3 if G.space.dimension == 3 else 4
    x = _x(t, size, 1)
    for kind in ("gnorm", "iid"):
        m = _randomise(cnn.GNormBatchNorm(t) if kind == "gnorm" else
                       (cnn.IIDBatchNorm3d if size == 3 else cnn.IIDBatchNorm2d)(t))
        stats_fn = getattr(jnn, f"{kind}_batch_statistics")
        norm_fn = jax.jit(getattr(jnn, f"{kind}_batch_norm"), static_argnums=1)
        w = [p.detach().numpy() for p in _per_rep(m, "weight")]
        b = [None if p is None else p.detach().numpy() for p in _per_rep(m, "bias")]
        if kind == "iid":
            b = [v if v is not None else np.zeros((1, 0)) for v in b]
        y = m.train()(torch.as_tensor(x))
        stats = stats_fn(jnp.asarray(x), t)
        _close(norm_fn(jnp.asarray(x), t, stats, w, b), y)
        running = [(mu if not (kind == "iid" and mu is None) else None, v) for mu, v in
                   zip(_per_rep(m, "running_mean"), _per_rep(m, "running_var"))]
        running = [(None if mu is None else mu.numpy(), v.numpy()) for mu, v in running]
        _close(norm_fn(jnp.asarray(x), t, running, w, b), m.eval()(torch.as_tensor(x)))
        # training-mode gradients: the batch statistics are constants (as escnn, as torch)
        xt = torch.as_tensor(x).requires_grad_(True)
        G_out = np.random.default_rng(7).standard_normal(x.shape)
        (m.train()(xt) * torch.as_tensor(G_out)).sum().backward()
        grad = jax.grad(lambda v: (norm_fn(v, t, stats_fn(v, t), w, b) * G_out).sum())(
            jnp.asarray(x))
        _close(grad, xt.grad)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_gated2_and_norm_max_pool_equal_torch_and_are_equivariant(float64, group):
    G = GROUPS[group]()
    t = mixed_type(G)
    gates_t = cs.FieldType(G, [G.trivial_representation] * len(t))
    size = 4
    x, g = _x(t, size, 2), _x(gates_t, size, 3)
    m2 = _randomise(cnn.GatedNonLinearity2((gates_t, t)))
    bias = m2.bias.detach().numpy().ravel()
    fn = jax.jit(jnn.gated2, static_argnums=2)
    _close(fn(jnp.asarray(g), jnp.asarray(x), t, bias), m2(torch.as_tensor(g),
                                                           torch.as_tensor(x)))
    pool = jax.jit(jnn.norm_max_pool, static_argnums=(1, 2, 3, 4))
    for args in ((2, None, 0), (3, 1, 1)):
        m = cnn.NormMaxPool(t, *args)
        y = pool(jnp.asarray(x), t, *args)
        _close(y, m(torch.as_tensor(x)))
        for h, _ in cnn.grid_elements(G, x.shape[2:]):
            lhs = pool(jnn.transform(jnp.asarray(x), t, h), t, *args)
            np.testing.assert_allclose(lhs, jnn.transform(y, t, h), atol=1e-10, rtol=0)


def test_fourier_equals_torch_and_is_equivariant(float64):
    for m in (cnn.FourierELU(cs.SO2(), 2, [(0,), (1,), (2,)], 8),
              cnn.FourierPointwise(r3.SO3(), 2, [(0,), (1,)], "cube", function="p_tanh"),
              cnn.FourierELU(cs.SO2(), 1, [(0,), (1,), (2,)], 12, out_irreps=[(0,), (1,)])):
        x = _x(m.in_type, 3, 5)
        fn = jax.jit(jnn.fourier_pointwise, static_argnums=(1, 2))
        y = fn(jnp.asarray(x), m.sampling, m.function)
        _close(y, m(torch.as_tensor(x)), 1e-12)
        for h, _ in cnn.grid_elements(m.in_type.group, x.shape[2:]):
            lhs = fn(jnn.transform(jnp.asarray(x), m.in_type, h), m.sampling, m.function)
            np.testing.assert_allclose(lhs, jnn.transform(y, m.out_type, h), atol=1e-10,
                                       rtol=0)
    grad = jax.grad(lambda v: jnn.fourier_elu(v, m.sampling).sum())(jnp.asarray(x))
    assert np.isfinite(np.asarray(grad)).all()


def test_errors():
    G = cs.CyclicGroup(4)
    t = mixed_type(G)
    with pytest.raises(TypeError, match="FourierSampling"):
        jnn.fourier_pointwise(jnp.zeros((1, 5, 2, 2)), "SO2")
    with pytest.raises(ValueError, match="gates must have shape"):
        jnn.gated2(jnp.zeros((1, 2, 2, 2)), jnp.zeros((1, t.size, 2, 2)), t)
    with pytest.raises(ValueError, match="kernel_size"):
        jnn.norm_max_pool(jnp.zeros((1, t.size, 2, 2)), t, 0)
