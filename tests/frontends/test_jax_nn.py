"""cupysteer.jax_nn (existing field-wise operations and transform): equal to the torch modules
of cupysteer.torch.nn on the same inputs (float64, 1e-12), equivariant on the grid-preserving
elements, usable under jit/grad, and refusing wrong inputs with clear errors."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

import cupysteer as cs  # noqa: E402
from cupysteer import jax_nn as jnn  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

# C4 is D4's subgroup (the same code paths); D4 has reflections, O acts on R³
GROUPS = {"D4": cs.DihedralGroup(4), "O": r3.Octahedral()}


@pytest.fixture(autouse=True)
def x64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    with jax.enable_x64(True):
        yield
    torch.set_default_dtype(old)


def _pointwise(G):
    return cs.FieldType(G, [G.regular_representation, G.trivial_representation,
                            G.regular_representation])


def _mixed(G):
    irrep = G.standard_representation if isinstance(G, r3.Octahedral) else G.irreps()[-1]
    t = G.trivial_representation
    return cs.FieldType(G, [t, t, irrep, G.regular_representation])


def _x(t, size=None, seed=0):
    d = t.group.space.dimension
    size = size or (6 if d == 2 else 4)
    return np.random.default_rng(seed).standard_normal((2, t.size) + (size,) * d)


def _close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=0, atol=tol)


def _cases(G):
    """(jax function of x, torch module, field type) for every existing operation."""
    p, m = _pointwise(G), _mixed(G)
    d = G.space.dimension
    maxp = cnn.PointwiseMaxPool2d if d == 2 else cnn.PointwiseMaxPool3d
    avgp = cnn.PointwiseAvgPool2d if d == 2 else cnn.PointwiseAvgPool3d
    nnl = cnn.NormNonLinearity(m)
    with torch.no_grad():
        nnl.log_bias.copy_(torch.linspace(-1, 0.5, nnl.log_bias.numel()).reshape(
            nnl.log_bias.shape))
    # torch keeps log_bias in size order, the function takes it in field order
    lb = nnl.log_bias.detach().numpy().ravel()[
        np.argsort(cs.fieldwise.FieldStructure(m).size_order)]
    return [
        (lambda x: jnn.relu(x, p), cnn.ReLU(p), p),
        (lambda x: jnn.elu(x, p, 0.7), cnn.ELU(p, alpha=0.7), p),
        (lambda x: jnn.pointwise(x, p, jnp.tanh), cnn.PointwiseNonLinearity(p, "p_tanh"), p),
        (lambda x: jnn.norm_nonlinearity(x, m, lb), nnl, m),
        (lambda x: jnn.norm_nonlinearity(x, m, None, "squash"),
         cnn.NormNonLinearity(m, "squash", bias=False), m),
        (lambda x: jnn.gated1(x, m), cnn.GatedNonLinearity1(m), m),
        (lambda x: jnn.gated1(x, m, drop_gates=False),
         cnn.GatedNonLinearity1(m, drop_gates=False), m),
        (lambda x: jnn.group_pooling(x, p), cnn.GroupPooling(p), p),
        (lambda x: jnn.norm_pool(x, m), cnn.NormPool(m), m),
        (lambda x: jnn.pointwise_max_pool(x, p, 2), maxp(p, 2), p),
        (lambda x: jnn.pointwise_max_pool(x, p, 3, 1, 1), maxp(p, 3, 1, 1), p),
        (lambda x: jnn.pointwise_avg_pool(x, m, 3, 1, 1), avgp(m, 3, 1, 1), m),
    ]


def test_norm_nonlinearity_bias_is_in_field_order():
    """torch keeps log_bias in size order; the JAX function takes it in field order."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation, G.trivial_representation, G.irrep(1)])
    nnl = cnn.NormNonLinearity(t)
    with torch.no_grad():
        nnl.log_bias.copy_(torch.tensor([-1.0, 0.2, 0.5]).reshape(nnl.log_bias.shape))
    order = cs.fieldwise.FieldStructure(t).size_order          # fields by size: 1, 2, 0
    lb = np.empty(3)
    lb[order] = [-1.0, 0.2, 0.5]
    x = _x(t)
    _close(jnn.norm_nonlinearity(jnp.asarray(x), t, lb), nnl(torch.as_tensor(x)))


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_batch_norms_equal_the_torch_modules(name):
    G = GROUPS[name]
    p, m = _pointwise(G), _mixed(G)
    x = _x(p, seed=1)
    ibn = cnn.InnerBatchNorm(p).train()
    y = ibn(torch.as_tensor(x))
    mean, var = jnn.inner_batch_statistics(jnp.asarray(x), p)
    _close(jnn.inner_batch_norm(jnp.asarray(x), p, mean, var), y, 1e-10)
    # eval: running statistics, gathered from the per-size BatchNorm3d's into field order
    ibn.eval()
    fs = cs.fieldwise.FieldStructure(p)
    rm, rv = np.empty(fs.n_fields), np.empty(fs.n_fields)
    for g in fs.by_size:
        bn = getattr(ibn, f"batch_norm_[{g.size}]")
        rm[g.fields], rv[g.fields] = bn.running_mean.numpy(), bn.running_var.numpy()
    _close(jnn.inner_batch_norm(jnp.asarray(x), p, rm, rv), ibn(torch.as_tensor(x)))

    nbn = cnn.NormBatchNorm(m).train()
    x = _x(m, seed=2)
    y = nbn(torch.as_tensor(x))
    mt, var = jnn.norm_batch_statistics(jnp.asarray(x), m)
    _close(jnn.norm_batch_norm(jnp.asarray(x), m, mt, var), y, 1e-10)
    nbn.eval()
    with torch.no_grad():
        nbn.weight.uniform_(0.5, 1.5)
        nbn.bias.uniform_(-1, 1)
    _close(jnn.norm_batch_norm(jnp.asarray(x), m, nbn.running_mean.numpy(),
                               nbn.running_var.numpy(), nbn.weight.detach().numpy(),
                               nbn.bias.detach().numpy()), nbn(torch.as_tensor(x)))


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_functions_equal_the_torch_modules_and_are_equivariant(name):
    """Every function (jitted) equals its torch module (float64, 1e-12) and f(g·x) = g·f(x)
    (1e-10) for every grid-preserving g; jax_nn.transform equals cupysteer.torch.nn's."""
    G = GROUPS[name]
    for k, (fn, module, t) in enumerate(_cases(G)):
        x = _x(t, size=4)
        fn = jax.jit(fn)
        y = fn(jnp.asarray(x))
        _close(y, module(torch.as_tensor(x)))
        for g, _perm in cnn.grid_elements(G, x.shape[2:]):
            gx = jnn.transform(jnp.asarray(x), t, g)
            if k == 0:  # transform itself: once per group
                _close(gx, cnn.transform(torch.as_tensor(x), t, g))
            np.testing.assert_allclose(np.asarray(fn(gx)),
                                       np.asarray(jnn.transform(y, module.out_type, g)),
                                       rtol=0, atol=1e-10)


def test_jit_and_grad():
    G = cs.CyclicGroup(4)
    t = _mixed(G)
    x = jnp.asarray(_x(t))
    f = jax.jit(lambda x, lb: jnn.norm_nonlinearity(x, t, lb).sum(), static_argnums=())
    g = jax.grad(f, argnums=1)(x, jnp.zeros(4))
    assert g.shape == (4,) and bool(jnp.isfinite(g).all()) and float(jnp.abs(g).sum()) > 0
    y = jax.jit(jnn.group_pooling, static_argnums=1)(jnp.asarray(_x(_pointwise(G))),
                                                     _pointwise(G))
    assert y.shape == (2, 3, 6, 6)


def test_clear_errors():
    G = cs.CyclicGroup(4)
    m = _mixed(G)
    x = jnp.asarray(_x(m))
    with pytest.raises(ValueError, match="pointwise fields.*norm_nonlinearity"):
        jnn.relu(x, m)
    with pytest.raises(TypeError, match="field_type must be a cupysteer FieldType"):
        jnn.relu(x, "regular")
    with pytest.raises(ValueError, match=r"x must have shape \[N, 7"):
        jnn.norm_pool(x[:, :3], m)
    with pytest.raises(ValueError, match="log_bias must have 4 entries"):
        jnn.norm_nonlinearity(x, m, jnp.zeros(3))
    with pytest.raises(ValueError, match="kernel_size must be"):
        jnn.pointwise_avg_pool(x, m, 0)
    x = jnp.zeros((1, 2, 6, 6))
    with pytest.raises(ValueError, match="g = 1 does not map the 6×6 grid"):
        jnn.transform(x, cs.FieldType(cs.CyclicGroup(8), [cs.CyclicGroup(8).irrep(1)]),
                      1)


UPSAMPLINGS = [dict(scale_factor=2), dict(scale_factor=3, mode="nearest"),
               dict(scale_factor=2, align_corners=True), dict(size=8), dict(size=7, mode="nearest"),
               dict(size=9, align_corners=True), dict(scale_factor=1.5)]


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_upsample_and_disentangle_equal_the_torch_modules(name):
    G = GROUPS[name]
    t = _mixed(G)
    three = G.space.dimension == 3
    x = _x(t, size=4 if three else 5)
    for kw in UPSAMPLINGS[:3] if three else UPSAMPLINGS:
        m = (cnn.R3Upsampling if three else cnn.R2Upsampling)(t, **kw)
        _close(jnn.upsample(jnp.asarray(x), t, **kw), m(torch.as_tensor(x)))
    if name == "D4":
        same, r = jnn.restrict(jnp.asarray(x), t, (0, 1))
        assert r == cnn.RestrictionModule(t, (0, 1)).out_type and same.shape == x.shape
    else:
        r = t
    for to_irreps in (False, True):
        y, out_type = jnn.disentangle(jnp.asarray(x), r, to_irreps)
        m = cnn.DisentangleModule(r, to_irreps)
        assert out_type == m.out_type
        _close(y, m(torch.as_tensor(x)))


def test_upsample_errors():
    t = _mixed(cs.CyclicGroup(4))
    x = jnp.zeros((1, t.size, 4, 4))
    with pytest.raises(ValueError, match="exactly one of scale_factor and size"):
        jnn.upsample(x, t)
    with pytest.raises(ValueError, match="mode must be 'nearest' or 'bilinear'"):
        jnn.upsample(x, t, 2, mode="trilinear")


def test_gated1_gates_by_size_with_bias():
    """Gated fields of decreasing size take the gates in size order (e2cnn's), with a bias."""
    G = cs.DihedralGroup(4)
    t1 = G.trivial_representation
    t = cs.FieldType(G, [t1, G.regular_representation, t1, G.irrep(1, 1).representation])
    gates = ["gate", "gated", "gate", "gated"]
    for drop in (True, False):
        m = cnn.GatedNonLinearity1(t, gates, drop_gates=drop)
        with torch.no_grad():
            m.bias.copy_(torch.tensor([0.7, -0.4]).reshape(m.bias.shape))
        x = _x(t)
        _close(jnn.gated1(jnp.asarray(x), t, gates, drop, bias=[0.7, -0.4]),
               m(torch.as_tensor(x)))
