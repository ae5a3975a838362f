"""cupysteer.torch.nn: field-wise modules, transform and check_equivariance.

Every module is equivariant (float64, ≤ 1e-10) for every grid-preserving element of C4, D4,
C8 (its 90° elements) and the octahedral group (3D), in training and eval mode; gradients
(gradcheck), state-dict round trips (and e2cnn's keys), copies, pickles and torch.compile
work; wrong field types are refused naming the field and the alternative. Whole models:
test_torch_nn_models.py."""
import copy
import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402


def _groups():
    return {"C4": cs.CyclicGroup(4), "D4": cs.DihedralGroup(4), "C8": cs.CyclicGroup(8),
            "O": r3.Octahedral()}


def pointwise_type(G):
    """Regular, trivial and (where the group has a proper one) quotient fields."""
    reps = [G.regular_representation, G.trivial_representation]
    if G == cs.CyclicGroup(4) or G == cs.CyclicGroup(8):
        reps.append(G.quotient_representation(2))
    elif G == cs.DihedralGroup(4):
        reps.append(G.quotient_representation((None, 2)))
    return cs.FieldType(G, reps)


def mixed_type(G):
    """A regular, a non-trivial irrep (not pointwise) and a trivial field."""
    irrep = G.standard_representation if isinstance(G, r3.Octahedral) else G.irreps()[-1]
    return cs.FieldType(G, [G.regular_representation, irrep, G.trivial_representation])


def gated_type(G):
    irrep = G.standard_representation if isinstance(G, r3.Octahedral) else G.irreps()[-1]
    t = G.trivial_representation
    return cs.FieldType(G, [t, t, irrep, G.regular_representation])


def _pool(G, t, kind):
    three = G.space.dimension == 3
    if kind == "max":
        return (cnn.PointwiseMaxPool3d if three else cnn.PointwiseMaxPool2d)(t, 3, 1, 1)
    return (cnn.PointwiseAvgPool3d if three else cnn.PointwiseAvgPool2d)(t, 2)


def _with_random_parameters(m):
    """Parameters and running statistics (the state dict's floating entries) drawn at random,
    so that biases, log-biases, weights and running statistics all matter."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in m.state_dict(keep_vars=True).items():
            if p.is_floating_point() and p.numel() > 1 or name.endswith("log_bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
                if "var" in name or name.endswith("weight"):
                    p.abs_().add_(0.5)
    return m


MODULES = {
    "ReLU": lambda G: cnn.ReLU(pointwise_type(G)),
    "ELU": lambda G: cnn.ELU(pointwise_type(G), alpha=0.7),
    "p_tanh": lambda G: cnn.PointwiseNonLinearity(pointwise_type(G), "p_tanh"),
    "n_relu": lambda G: cnn.NormNonLinearity(mixed_type(G)),
    "n_sigmoid": lambda G: cnn.NormNonLinearity(mixed_type(G), "n_sigmoid"),
    "squash": lambda G: cnn.NormNonLinearity(mixed_type(G), "squash", bias=False),
    "gated": lambda G: cnn.GatedNonLinearity1(gated_type(G)),
    "gated_keep": lambda G: cnn.GatedNonLinearity1(gated_type(G), drop_gates=False),
    "gated_mixed": lambda G: cnn.GatedNonLinearity1(  # gates after and between gated fields
        cs.FieldType(G, [gated_type(G).representations[i] for i in (2, 0, 1, 3)]),
        gates=["gated", "gate", "gate", "gated"], drop_gates=False),
    "InnerBatchNorm": lambda G: cnn.InnerBatchNorm(pointwise_type(G)),
    "NormBatchNorm": lambda G: cnn.NormBatchNorm(mixed_type(G)),
    "GroupPooling": lambda G: cnn.GroupPooling(pointwise_type(G)),
    "NormPool": lambda G: cnn.NormPool(mixed_type(G)),
    "MaxPool": lambda G: _pool(G, pointwise_type(G), "max"),
    "AvgPool": lambda G: _pool(G, mixed_type(G), "avg"),
    "FieldDropout": lambda G: cnn.FieldDropout(mixed_type(G), p=0.3),
}
STOCHASTIC = {"FieldDropout"}  # equivariant in distribution: checked in eval mode only


def _input(m, seed=0):
    G = m.in_type.group
    size = (4 if G.space.dimension == 3 else 8) if isinstance(
        m, (cnn.PointwiseAvgPool2d, cnn.PointwiseAvgPool3d)) else (
        3 if G.space.dimension == 3 else 5)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, m.in_type.size, *[size] * G.space.dimension, generator=gen,
                       dtype=torch.float64)


CASES = [(g, m, mode) for g in _groups() for m in MODULES for mode in ("train", "eval")
         if not (m in STOCHASTIC and mode == "train")]


@pytest.mark.parametrize("group,module,mode", CASES)
def test_equivariant(float64, group, module, mode):
    G = _groups()[group]
    m = _with_random_parameters(MODULES[module](G)).train(mode == "train")
    errors = cnn.check_equivariance(m, m.in_type, m.out_type, x=_input(m), atol=1e-10, rtol=0)
    n = {"C4": 4, "D4": 8, "C8": 4, "O": 24}[group]  # C8: the rotations by 90° only
    assert len(errors) == n
    assert max(err for _, err in errors) <= 1e-10


def test_c8_checks_its_90_degree_elements_only():
    G = cs.CyclicGroup(8)
    assert [g for g, _ in cnn.grid_elements(G, (5, 5))] == [0, 2, 4, 6]
    assert [g for g, _ in cnn.grid_elements(G, (4, 6))] == [0, 4]  # a non-square grid
    assert len(cnn.grid_elements(r3.Octahedral(), (3, 3, 3))) == 24


def test_check_equivariance_detects_a_wrong_module(float64):
    """A plain ReLU on a field of C4's irrep 1 (a rotation of its two channels) is not
    equivariant: the check raises, naming the element; with atol=None it returns errors."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.irrep(1)])
    relu = torch.nn.ReLU()
    with pytest.raises(AssertionError, match="ReLU is not equivariant under g = 1"):
        cnn.check_equivariance(relu, t, t)
    errors = cnn.check_equivariance(relu, t, t, atol=None)
    assert [g for g, _ in errors] == [0, 1, 2, 3]
    assert errors[0][1] == 0.0 and min(err for _, err in errors[1:]) > 0.1


def test_check_equivariance_leaves_the_module_unchanged(float64):
    m = cnn.InnerBatchNorm(pointwise_type(cs.CyclicGroup(4)))
    before = copy.deepcopy(m.state_dict())
    cnn.check_equivariance(m, m.in_type, m.out_type)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


# ---- transform -------------------------------------------------------------------------------

def test_feature_points_follow_the_filter_grid():
    for space, k in ((cs.r2.SPACE, 5), (cs.r2.SPACE, 4), (r3.SPACE, 3)):
        np.testing.assert_array_equal(cnn.feature_points((k,) * space.dimension),
                                      space.grid_points(k))


def test_transform_is_rot90_and_an_action(float64):
    """C4's generator rotates a trivial field by torch.rot90 (counter-clockwise, y up);
    transform(transform(x, h), g) = transform(x, g·h) for D4 and the octahedral group."""
    G = cs.CyclicGroup(4)
    x = torch.randn(1, 1, 5, 5)
    t = cs.FieldType(G, [G.trivial_representation])
    torch.testing.assert_close(cnn.transform(x, t, 1), torch.rot90(x, 1, dims=(-2, -1)))
    for G, shape in ((cs.DihedralGroup(4), (5, 5)), (r3.Octahedral(), (3, 3, 3))):
        t = mixed_type(G)
        x = torch.randn(1, t.size, *shape)
        els = [g for g, _ in cnn.grid_elements(G, shape)][:8]
        for g in els:
            for h in els[::3]:
                gh = G.compose(g, h) if hasattr(G, "compose") else g @ h
                torch.testing.assert_close(cnn.transform(cnn.transform(x, t, h), t, g),
                                           cnn.transform(x, t, gh), rtol=0, atol=1e-12)


def test_transform_errors():
    G = cs.CyclicGroup(8)
    t = cs.FieldType(G, [G.regular_representation])
    x = torch.randn(1, 8, 5, 5)
    with pytest.raises(ValueError, match=r"g = 1 does not map the 5×5 grid onto itself"):
        cnn.transform(x, t, 1)
    with pytest.raises(ValueError, match=r"g = 2 does not map the 4×6 grid"):
        cnn.transform(torch.randn(1, 8, 4, 6), t, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 8, …, …\]"):
        cnn.transform(torch.randn(1, 7, 5, 5), t, 2)
    with pytest.raises(TypeError, match="field_type must be a cupysteer FieldType"):
        cnn.transform(x, G.regular_representation, 2)
    O = r3.Octahedral()
    inversion = -np.eye(3)
    t3 = cs.FieldType(O, [O.trivial_representation])
    with pytest.raises(ValueError, match=r"g must be an element of Octahedral\(\).*is not in"):
        cnn.transform(torch.randn(1, 1, 3, 3, 3), t3, inversion)
    rx = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # 90° about x: swaps D1 and D2
    cnn.transform(torch.randn(1, 1, 3, 3, 3), t3, rx)
    with pytest.raises(ValueError, match="does not map the 4×3×3 grid onto itself"):
        cnn.transform(torch.randn(1, 1, 4, 3, 3), t3, rx)


# ---- gradients, state, copies, compile ---------------------------------------------------

GRAD_MODULES = ["ELU", "n_relu", "n_sigmoid", "gated", "InnerBatchNorm", "NormBatchNorm",
                "NormPool", "AvgPool", "GroupPooling"]


@pytest.mark.parametrize("module", GRAD_MODULES)
def test_gradcheck(float64, module):
    m = _with_random_parameters(MODULES[module](cs.CyclicGroup(4)))
    x = _input(m)[:, :, :3, :3].clone().requires_grad_(True)
    params = [p for p in m.parameters()]
    assert torch.autograd.gradcheck(lambda x, *p: m(x), (x, *params), atol=1e-6)


def test_norm_nonlinearity_gradient_at_zero_is_finite(float64):
    m = cnn.NormNonLinearity(mixed_type(cs.CyclicGroup(4)))
    x = torch.zeros(1, m.in_type.size, 2, 2, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.log_bias.grad).all()
    for pool in (cnn.NormPool(m.in_type),):
        x.grad = None
        pool(x).sum().backward()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_state_dict_copy_and_pickle(float64, module):
    G = cs.DihedralGroup(4)
    m = _with_random_parameters(MODULES[module](G)).eval()
    x = _input(m)
    ref = m(x)
    fresh = MODULES[module](G).eval()
    fresh.load_state_dict(m.state_dict(), strict=True)
    for other in (fresh, copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        torch.testing.assert_close(other(x), ref, rtol=0, atol=0)
        assert other.in_type == m.in_type and other.out_type == m.out_type


def test_state_dict_keys_follow_e2cnn():
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation, G.trivial_representation,
                         G.regular_representation])
    ibn = cnn.InnerBatchNorm(t)
    assert sorted(ibn.state_dict()) == sorted(
        f"batch_norm_[{s}].{k}" for s in (1, 4)
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))
    assert ibn.get_submodule("batch_norm_[4]").num_features == 2
    bn = ibn.get_submodule("batch_norm_[4]")
    assert (bn.eps, bn.momentum, bn.affine) == (1e-05, 0.1, True)
    nl = cnn.NormNonLinearity(mixed_type(G))
    assert sorted(nl.state_dict()) == ["eps", "log_bias"]
    assert tuple(nl.log_bias.shape) == (1, 3, 1, 1) and float(nl.eps) == pytest.approx(1e-10)
    assert tuple(cnn.NormNonLinearity(mixed_type(r3.Octahedral())).log_bias.shape) == (
        1, 3, 1, 1, 1)
    nbn = cnn.NormBatchNorm(mixed_type(G))
    assert {k: tuple(v.shape) for k, v in nbn.state_dict().items()} == {
        "weight": (3,), "bias": (2,), "running_var": (3,), "running_mean": (2,),
        "num_batches_tracked": ()}
    # e2cnn's derived index buffers are accepted (and dropped) by a strict load
    ibn.load_state_dict({**ibn.state_dict(), "indices_4": torch.tensor([0, 4, 5, 9]),
                         "indices_1": torch.tensor([4, 5])}, strict=True)


def test_norm_nonlinearity_bias_order_is_by_size():
    """log_bias entries ordered by field size (e2cnn): field sizes 4, 2, 1 → entries
    (field 2, field 1, field 0)."""
    G = cs.CyclicGroup(4)
    m = cnn.NormNonLinearity(cs.FieldType(G, [G.regular_representation, G.irrep(1),
                                              G.trivial_representation]))
    assert m.bias_index.tolist() == [2, 1, 0]
    with torch.no_grad():
        m.log_bias.copy_(torch.tensor([math.log(5.0), -50.0, -50.0]).view(1, 3, 1, 1))
    x = torch.zeros(1, m.in_type.size, 1, 1)
    x[0, 6] = 3.0  # the trivial field (size 1, log_bias entry 0): norm 3 < bias 5 → 0
    x[0, 0] = 3.0  # the regular field: bias ≈ 0 → kept
    y = m(x).detach()
    assert float(y[0, 6]) == 0.0 and abs(float(y[0, 0]) - 3.0) < 1e-6


def test_torch_compile(float64):
    m = _with_random_parameters(cnn.NormNonLinearity(mixed_type(cs.CyclicGroup(4))))
    x = _input(m)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), m(x), rtol=1e-12, atol=1e-12)


# ---- what each module accepts --------------------------------------------------------------

def test_pointwise_modules_refuse_other_fields():
    G = cs.CyclicGroup(4)
    t = mixed_type(G)
    cases = [(cnn.ReLU, "NormNonLinearity"), (cnn.ELU, "GatedNonLinearity1"),
             (cnn.PointwiseNonLinearity, "NormNonLinearity"),
             (cnn.InnerBatchNorm, "NormBatchNorm"), (cnn.GroupPooling, "NormPool"),
             (lambda t: cnn.PointwiseMaxPool2d(t, 2), "PointwiseAvgPool")]
    for make, alternative in cases:
        with pytest.raises(ValueError, match=rf"needs pointwise fields .*field 1 "
                                             rf"\('irrep_2', channels 4\.\.4\).*{alternative}"):
            make(t)


def test_argument_errors():
    G = cs.CyclicGroup(4)
    t = pointwise_type(G)
    with pytest.raises(TypeError, match="in_type must be a cupysteer FieldType"):
        cnn.ReLU([G.regular_representation])
    with pytest.raises(ValueError, match="function must be one of 'p_relu'"):
        cnn.PointwiseNonLinearity(t, "relu")
    with pytest.raises(ValueError, match="function must be one of 'n_relu'"):
        cnn.NormNonLinearity(t, "p_relu")
    with pytest.raises(ValueError, match="'squash' takes no bias"):
        cnn.NormNonLinearity(t, "squash")
    with pytest.raises(ValueError, match="the gates must be trivial fields of size 1.*field 0 "
                                         r"\('regular'"):
        cnn.GatedNonLinearity1(cs.FieldType(G, [G.regular_representation, G.irrep(1)]))
    with pytest.raises(ValueError, match="number must be even"):
        cnn.GatedNonLinearity1(t)
    with pytest.raises(ValueError, match="3 gates for 1 gated"):
        cnn.GatedNonLinearity1(gated_type(G), gates=["gate", "gate", "gated", "gate"])
    with pytest.raises(ValueError, match="gates must list 'gate' or 'gated'"):
        cnn.GatedNonLinearity1(gated_type(G), gates=["gate"])
    with pytest.raises(ValueError, match="p must be a probability"):
        cnn.FieldDropout(t, p=1.5)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 0"):
        cnn.PointwiseAvgPool2d(t, 2.5)
    with pytest.raises(ValueError, match="acts on R\\^3.*use PointwiseMaxPool3d"):
        cnn.PointwiseMaxPool2d(pointwise_type(r3.Octahedral()), 2)
    relu = cnn.ReLU(t)
    with pytest.raises(ValueError, match=r"ReLU: input must have shape \[N, 7, …, …\]"):
        relu(torch.randn(1, 8, 3, 3))
    with pytest.raises(ValueError, match="2 spatial dimensions"):
        relu(torch.randn(1, 7, 3))


def test_gates_are_matched_in_order(float64):
    """The i-th gated field is scaled by sigmoid of the i-th gate, wherever they sit."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.irrep(1), G.trivial_representation, G.trivial_representation,
                         G.regular_representation])
    m = cnn.GatedNonLinearity1(t, gates=["gated", "gate", "gate", "gated"])
    x = torch.randn(1, t.size, 2, 2)
    y = m(x)
    torch.testing.assert_close(y[:, :2], x[:, :2] * torch.sigmoid(x[:, 2:3]))
    torch.testing.assert_close(y[:, 2:], x[:, 4:] * torch.sigmoid(x[:, 3:4]))
    keep = cnn.GatedNonLinearity1(t, gates=["gated", "gate", "gate", "gated"], drop_gates=False)
    z = keep(x)
    torch.testing.assert_close(z[:, 2:4], torch.sigmoid(x[:, 2:4]))
    torch.testing.assert_close(z[:, [0, 1, 4, 5, 6, 7]], y)


def test_out_types():
    G = cs.DihedralGroup(4)
    t = mixed_type(G)
    assert cnn.NormPool(t).out_type == cs.FieldType(G, [G.trivial_representation] * 3)
    assert cnn.GroupPooling(pointwise_type(G)).out_type.size == 3
    gated = cnn.GatedNonLinearity1(gated_type(G))
    assert gated.out_type == cs.FieldType(G, list(gated_type(G).representations[2:]))
    assert cnn.GatedNonLinearity1(gated_type(G), drop_gates=False).out_type == gated_type(G)
    for m in (cnn.ReLU(pointwise_type(G)), cnn.NormBatchNorm(t), cnn.FieldDropout(t)):
        assert m.out_type == m.in_type
    gs = e.FlipRot2dOnR2(4)
    et = e.FieldType(gs, [gs.regular_repr] * 2)
    pooled = cnn.GroupPooling(et).out_type
    assert isinstance(pooled, e.FieldType) and pooled.gspace == gs


def test_field_dropout(float64):
    G = cs.CyclicGroup(4)
    t = mixed_type(G)
    m = cnn.FieldDropout(t, p=0.5)
    x = torch.rand(64, t.size, 3, 3) + 1.0
    assert m.eval()(x) is x
    y = m.train()(x)
    ratio = (y / x).permute(1, 0, 2, 3).reshape(t.size, -1)
    for f in range(3):
        field = ratio[m.fields.channels(f)]
        assert set(torch.unique(field.round(decimals=9)).tolist()) == {0.0, 2.0}
        assert (field == field[:1]).all()  # a field's channels are dropped together
    kept = float((ratio[0] > 0).double().mean())
    assert 0.4 < kept < 0.6


def test_batch_norm_statistics(float64):
    """InnerBatchNorm: one mean and variance per field, shared by its channels; NormBatchNorm:
    the mean subtracted only in the invariant direction, each field divided by the root mean
    square of its centred entries; running statistics with e2cnn's momentum 0.1 and the
    unbiased correction; eval mode uses them."""
    G = cs.CyclicGroup(4)
    t = cs.FieldType(G, [G.regular_representation])
    x = torch.randn(8, 4, 5, 5, generator=torch.Generator().manual_seed(0)) * 3.0
    x = x + torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    y = cnn.InnerBatchNorm(t)(x).detach()
    v = float(x.var(unbiased=False))
    assert abs(float(y.mean())) < 1e-12
    assert float(y.var(unbiased=False)) == pytest.approx(v / (v + 1e-5), rel=1e-12)
    nbn = cnn.NormBatchNorm(t)
    y = nbn(x).detach()
    B = torch.tensor(nbn.fields.invariant_basis)
    mean_t = float(B.T @ x.mean((0, 2, 3)))
    centred = x - mean_t * B.view(1, 4, 1, 1)
    s2 = float((centred ** 2).mean())
    torch.testing.assert_close(y, centred / (s2 + 1e-5) ** 0.5, rtol=0, atol=1e-12)
    assert abs(float(B.T @ y.mean((0, 2, 3)))) < 1e-12
    assert float(y.mean((0, 2, 3)).std()) > 0.1  # the non-invariant part of the mean is kept
    assert int(nbn.num_batches_tracked) == 1
    n = 8 * 25  # samples per channel; one trivial coordinate subtracted from 4 entries
    unbiased = s2 * (n * 4) / (n * 4 - 1)
    assert float(nbn.running_var) == pytest.approx(0.9 + 0.1 * unbiased, rel=1e-12)
    assert float(nbn.running_mean) == pytest.approx(0.1 * mean_t, rel=1e-12)
    nbn.eval()
    ref = (x - float(nbn.running_mean) * B.view(1, 4, 1, 1)) / torch.sqrt(
        nbn.running_var + nbn.eps)
    torch.testing.assert_close(nbn(x).detach(), ref, rtol=0, atol=1e-12)
