"""GNormBatchNorm, IIDBatchNorm1d/2d/3d, GatedNonLinearity2 and NormMaxPool
(cupysteer.torch.nn): equivariance (float64, ≤ 1e-10) for every grid-preserving element of
C4, D4, the octahedral group (training and eval mode), C8 and SO(3) (its cube rotations), and
for continuous elements of SO(2)/SO(3) on the fibre; gradcheck, torch.compile, state-dict round
trips, copies, pickles and clear errors. Equality with e2cnn/escnn:
test_torch_nn_norms_fixtures.py."""
import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

GROUPS = {"C4": lambda: cs.CyclicGroup(4), "D4": lambda: cs.DihedralGroup(4),
          "O": r3.Octahedral}


def mixed_type(G):
    """Regular (change of basis ≠ I, trivial irreps inside; twice, not contiguous), a
    non-trivial irrep and a trivial field."""
    if isinstance(G, r3.SO3):
        return cs.FieldType(G, [G.irrep(0), G.irrep(1), G.irrep(2), G.irrep(1)])
    irrep = G.standard_representation if isinstance(G, r3.Octahedral) else G.irreps()[-1]
    R = G.regular_representation
    return cs.FieldType(G, [R, irrep, G.trivial_representation, R])


def gated_types(G):
    t = mixed_type(G)
    return cs.FieldType(G, [G.trivial_representation] * len(t)), t


def _norm_max_pool(G):
    return cnn.NormMaxPool(mixed_type(G), 2)


MODULES = {
    "GNormBatchNorm": lambda G: cnn.GNormBatchNorm(mixed_type(G)),
    "IIDBatchNorm": lambda G: (cnn.IIDBatchNorm3d if G.space.dimension == 3
                               else cnn.IIDBatchNorm2d)(mixed_type(G)),
    "IIDBatchNorm_batch_stats": lambda G: (
        cnn.IIDBatchNorm3d if G.space.dimension == 3 else cnn.IIDBatchNorm2d)(
        mixed_type(G), momentum=None, affine=False, track_running_stats=False),
    "NormMaxPool": _norm_max_pool,
    "NormMaxPool_3s1p1": lambda G: cnn.NormMaxPool(mixed_type(G), 3, 1, 1),
}


def _randomise(m):
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_((0.5 + torch.rand(p.shape, generator=gen)) if "weight" in name
                    else 0.3 * torch.randn(p.shape, generator=gen))
    return m


def _input(t, size, seed=0):
    d = t.group.space.dimension
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, t.size, *(size,) * d, generator=gen) + 0.3


def _warm(m, t, size):
    """Two training steps so that the running statistics are not their initial values."""
    m.train()
    for seed in (1, 2):
        m(_input(t, size, seed))
    return m


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_equivariant(float64, group, module, mode):
    G = GROUPS[group]()
    three = G.space.dimension == 3
    size = (4 if three else 6) if module == "NormMaxPool" else (3 if three else 5)
    m = _warm(_randomise(MODULES[module](G)), mixed_type(G), size)
    m.train(mode == "train")
    x = _input(m.in_type, size, seed=3)
    errors = cnn.check_equivariance(m, m.in_type, m.out_type, x=x, atol=1e-10, rtol=0)
    assert len(errors) >= (12 if three else 4)


@pytest.mark.parametrize("module", ["GNormBatchNorm", "IIDBatchNorm"])
@pytest.mark.parametrize("group", ["C8", "SO3"])
def test_equivariant_more_groups(float64, group, module):
    """C8 (its 90° elements only) and SO(3) (irreps fields; the cube's rotations)."""
    G = cs.CyclicGroup(8) if group == "C8" else r3.SO3()
    size = 3
    m = _warm(_randomise(MODULES[module](G)), mixed_type(G), size)
    x = _input(m.in_type, size, seed=3)
    errors = cnn.check_equivariance(m, m.in_type, m.out_type, x=x, atol=1e-10, rtol=0)
    assert len(errors) == (4 if group == "C8" else 24)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_gated2_equivariant(float64, group):
    G = GROUPS[group]()
    gates_t, gated_t = gated_types(G)
    m = _randomise(cnn.GatedNonLinearity2((gates_t, gated_t)))
    size = 3 if G.space.dimension == 3 else 5
    g_in, x = _input(gates_t, size, 1), _input(gated_t, size, 2)
    y = m(g_in, x)
    grid = cnn.grid_elements(G, tuple(x.shape[2:]))
    assert len(grid) >= 4
    for g, _ in grid:
        lhs = m(cnn.transform(g_in, gates_t, g), cnn.transform(x, gated_t, g))
        torch.testing.assert_close(lhs, cnn.transform(y, gated_t, g), atol=1e-10, rtol=0)


@pytest.mark.parametrize("cls", ["GNormBatchNorm", "IIDBatchNorm1d"])
def test_continuous_elements_on_the_fibre(float64, cls):
    """Every statistic is invariant: exact for any element of SO(2) / SO(3) (fibre only)."""
    for G, elements in ((cs.SO2(4), [0.3, 1.1, 2.9]),
                        (r3.SO3(), r3.SO3().sample(3, np.random.default_rng(0)))):
        t = cs.FieldType(G, [G.irrep(0), G.irrep(1), G.irrep(2), G.irrep(1)]
                         if G == r3.SO3() else [G.irrep(0), G.irrep(1), G.irrep(2)])
        m = _randomise(getattr(cnn, cls)(t))
        pixel = (1,) * G.space.dimension if cls == "GNormBatchNorm" else ()  # one pixel
        x = torch.randn(64, t.size, generator=torch.Generator().manual_seed(0)) + 0.2
        for mode in (True, False):
            m.train(mode)
            y = m(x.reshape(x.shape + pixel)).reshape(x.shape)
            for g in elements:
                R = torch.tensor(t.representation.evaluate([g])[0])
                yg = m((x @ R.T).reshape(x.shape + pixel)).reshape(x.shape)
                torch.testing.assert_close(yg, y @ R.T, atol=1e-10, rtol=0)


def test_iid_batch_norm_dimensions(float64):
    G = cs.CyclicGroup(4)
    t = mixed_type(G)
    cnn.IIDBatchNorm1d(t)(torch.randn(8, t.size))
    cnn.IIDBatchNorm1d(t)(torch.randn(8, t.size, 3))
    with pytest.raises(ValueError, match="IIDBatchNorm2d: input must have shape"):
        cnn.IIDBatchNorm2d(t)(torch.randn(8, t.size, 3))
    with pytest.raises(ValueError, match="IIDBatchNorm3d: input must have shape"):
        cnn.IIDBatchNorm3d(t)(torch.randn(8, t.size, 3, 3))


GRAD = ["GNormBatchNorm", "IIDBatchNorm", "NormMaxPool"]


@pytest.mark.parametrize("module", GRAD)
def test_gradcheck(float64, module):
    """The batch norms in eval mode (after a training pass): in training mode their batch
    statistics are constants for autograd, as escnn's, so the gradient is not the derivative
    gradcheck measures (test_training_gradients_equal_escnn compares it with escnn's)."""
    m = _randomise(MODULES[module](cs.CyclicGroup(4)))
    x = _input(m.in_type, 4).requires_grad_(True)
    if module != "NormMaxPool":
        m(x.detach())
        m.eval()
    params = list(m.parameters())
    assert torch.autograd.gradcheck(lambda x, *p: m(x), (x, *params), atol=1e-6)


def test_gated2_gradcheck(float64):
    gates_t, gated_t = gated_types(cs.CyclicGroup(4))
    m = cnn.GatedNonLinearity2((gates_t, gated_t))
    g, x = (_input(t, 2, s).requires_grad_(True) for t, s in ((gates_t, 1), (gated_t, 2)))
    assert torch.autograd.gradcheck(lambda g, x, b: m(g, x), (g, x, m.bias), atol=1e-6)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(g, x), m(g, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_state_dict_copy_pickle_and_compile(float64, module):
    G = cs.DihedralGroup(4)
    m = _warm(_randomise(MODULES[module](G)), mixed_type(G), 4).eval()
    x = _input(m.in_type, 4, 9)
    ref = m(x)
    fresh = MODULES[module](G).eval()
    fresh.load_state_dict(m.state_dict(), strict=True)
    for other in (fresh, copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        torch.testing.assert_close(other(x), ref, rtol=0, atol=0)
        assert other.in_type == m.in_type and other.out_type == m.out_type
    torch.testing.assert_close(torch.compile(m, backend="aot_eager", fullgraph=True)(x), ref)


def test_parameters_and_buffers_follow_escnn():
    G = cs.CyclicGroup(4)
    t = mixed_type(G)  # regular: 4 irreps, 1 trivial; irrep_2: 1-dim; irrep_0: trivial
    shapes = {k: tuple(v.shape) for k, v in cnn.GNormBatchNorm(t).state_dict().items()}
    assert shapes == {"regular_running_var": (2, 3), "regular_running_mean": (2, 1),
                      "regular_weight": (2, 3), "regular_bias": (2, 1),
                      "irrep_2_running_var": (1, 1), "irrep_2_running_mean": (1, 0),
                      "irrep_2_weight": (1, 1), "irrep_2_bias": (1, 0),
                      "irrep_0_running_var": (1, 1), "irrep_0_running_mean": (1, 1),
                      "irrep_0_weight": (1, 1), "irrep_0_bias": (1, 1),
                      "num_batches_tracked": ()}
    iid = cnn.IIDBatchNorm2d(t)
    shapes = {k: tuple(v.shape) for k, v in iid.state_dict().items()}
    assert shapes == {"regular_running_mean": (2, 4), "regular_running_var": (2, 1),
                      "regular_weight": (2, 1), "regular_bias": (2, 1),
                      "irrep_2_running_var": (1, 1), "irrep_2_weight": (1, 1),
                      "irrep_0_running_mean": (1, 1), "irrep_0_running_var": (1, 1),
                      "irrep_0_weight": (1, 1), "irrep_0_bias": (1, 1),
                      "num_batches_tracked": ()}
    assert (iid.eps, iid.momentum, iid.affine, iid.track_running_stats) == (1e-5, 0.1, True,
                                                                             True)
    assert not any("weight" in k or "bias" in k
                   for k in cnn.GNormBatchNorm(t, affine=False).state_dict())
    g2 = cnn.GatedNonLinearity2(gated_types(G))
    assert sorted(g2.state_dict()) == ["bias"] and tuple(g2.bias.shape) == (1, 4, 1, 1)
    assert cnn.NormMaxPool(t, 3).stride == (3, 3)
    assert cnn.NormMaxPool(mixed_type(r3.Octahedral()), 2, 1).stride == (1, 1, 1)


def test_running_statistics_momentum(float64):
    t = mixed_type(cs.CyclicGroup(4))
    m = cnn.IIDBatchNorm2d(t, momentum=None).train()
    xs = [_input(t, 4, s) for s in (1, 2)]
    for x in xs:
        m(x)
    m2 = cnn.IIDBatchNorm2d(t, momentum=1.0).train()
    per_batch = []
    for x in xs:
        m2(x)
        per_batch.append(m2.regular_running_var.clone())
    torch.testing.assert_close(m.regular_running_var, (per_batch[0] + per_batch[1]) / 2)
    assert int(m.num_batches_tracked) == 2


def test_gated2_pairs_gates_by_size(float64):
    """As e2cnn: the gated fields sorted by size take the gates in turn."""
    G = cs.CyclicGroup(4)
    gated = cs.FieldType(G, [G.regular_representation, G.irrep(1), G.irrep(2)])
    m = cnn.GatedNonLinearity2((cs.FieldType(G, [G.trivial_representation] * 3), gated))
    with torch.no_grad():
        m.bias.zero_()
    g, x = torch.randn(1, 3, 2, 2), torch.randn(1, 7, 2, 2)
    y = m(g, x)
    s = torch.sigmoid(g)
    torch.testing.assert_close(y[:, 6:7], x[:, 6:7] * s[:, 0:1])  # irrep(2): size 1
    torch.testing.assert_close(y[:, 4:6], x[:, 4:6] * s[:, 1:2])  # irrep(1): size 2
    torch.testing.assert_close(y[:, 0:4], x[:, 0:4] * s[:, 2:3])  # regular: size 4


def test_errors():
    G = cs.CyclicGroup(4)
    t = mixed_type(G)
    with pytest.raises(TypeError, match="pair"):
        cnn.GatedNonLinearity2(t)
    with pytest.raises(ValueError, match="the gates .* must be trivial fields"):
        cnn.GatedNonLinearity2((t, t))
    with pytest.raises(ValueError, match="2 gates for 4 gated fields"):
        cnn.GatedNonLinearity2((cs.FieldType(G, [G.trivial_representation] * 2), t))
    with pytest.raises(ValueError, match="share one group"):
        cnn.GatedNonLinearity2((cs.FieldType(cs.CyclicGroup(8), [cs.CyclicGroup(8)
                                                                 .trivial_representation]),
                                cs.FieldType(G, [G.irrep(1)])))
    m = cnn.GatedNonLinearity2(gated_types(G))
    with pytest.raises(ValueError, match="gates must have shape"):
        m(torch.randn(1, 3, 2, 2), torch.randn(1, t.size, 2, 2))
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        cnn.NormMaxPool(t, 0)
    with pytest.raises(TypeError, match="in_type must be a cupysteer FieldType"):
        cnn.GNormBatchNorm("regular")
    with pytest.raises(ValueError, match=r"input must have shape \[N, 10"):
        cnn.GNormBatchNorm(t)(torch.randn(2, 9, 3, 3))


def _exported_equal(m, *inputs, atol=1e-10):
    m.eval()
    plain = cnn.export(m)
    assert not any(hasattr(x, "in_type") for x in plain.modules())  # no field types left
    torch.testing.assert_close(plain(*inputs), m(*inputs), atol=atol, rtol=0)
    assert cnn.export(plain) is not None  # exporting again keeps it plain


@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("group", ["D4", "O"])
def test_export_equals_eval_mode(float64, group, module):
    G = GROUPS[group]()
    size = 4 if G.space.dimension == 3 else 6
    if module == "IIDBatchNorm_batch_stats":
        with pytest.raises(ValueError, match="track_running_stats=False"):
            cnn.export(MODULES[module](G))
        return
    m = _warm(_randomise(MODULES[module](G)), mixed_type(G), size)
    _exported_equal(m, _input(m.in_type, size, 4))


def test_export_iid1d_and_gates(float64):
    G = cs.CyclicGroup(4)
    t = mixed_type(G)
    m = _randomise(cnn.IIDBatchNorm1d(t)).train()
    for _ in range(2):
        m(torch.randn(5, t.size, 3) + 0.3)
    m.eval()
    x = torch.randn(5, t.size, 3)
    torch.testing.assert_close(cnn.export(m)(x), m(x), atol=1e-10, rtol=0)
    assert isinstance(cnn.export(m), torch.nn.BatchNorm1d)
    for drop in (True, False):  # gates after their gated fields; a bias ≠ 0
        g1 = cnn.GatedNonLinearity1(
            cs.FieldType(G, [G.regular_representation, G.trivial_representation, G.irrep(1),
                             G.trivial_representation]),
            gates=["gated", "gate", "gated", "gate"], drop_gates=drop)
        with torch.no_grad():
            g1.bias.normal_()
        _exported_equal(g1, _input(g1.in_type, 3, 1))
    gates_t, gated_t = gated_types(G)
    g2 = _randomise(cnn.GatedNonLinearity2((gates_t, gated_t)))
    _exported_equal(g2, _input(gates_t, 3, 1), _input(gated_t, 3, 2))
