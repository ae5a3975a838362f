"""The field-wise modules equal e2cnn 0.2.3 and escnn 1.0.11 (float32, 1e-5) on the fixtures
of tests/data/fieldwise/ (scripts/make_fieldwise_fixtures.py, run in e2cnn's environment, and
scripts/make_escnn_fieldwise_fixtures.py, in escnn's): the anchors' parameters (seeded random)
are loaded through ``load_state_dict`` (their keys, derived index buffers dropped), two
training-mode passes (batch statistics; running statistics updated) and one eval-mode pass
give the anchors' outputs, and the running statistics end equal. Fourier modules:
test_torch_nn_fourier.py."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cupysteer as cs  # noqa: E402
from cupysteer import r3  # noqa: E402
from cupysteer.torch import nn as cnn  # noqa: E402

from _paths import DATA  # noqa: E402

E2CNN = DATA / "fieldwise" / "e2cnn.npz"
ESCNN = DATA / "fieldwise" / "escnn.npz"
C8 = cs.CyclicGroup(8)
R, T, I1, I2 = C8.regular_representation, C8.trivial_representation, C8.irrep(1), C8.irrep(2)


def ft(reps, G=C8):
    return cs.FieldType(G, reps)


E2CNN_CASES = {
    "norm_batch_norm": lambda: cnn.NormBatchNorm(ft([I1, I2, I1, I2, I1]),
                                                 train_with_running_var=True),
    "inner_batch_norm": lambda: cnn.InnerBatchNorm(ft([R, T, R])),
    "norm_relu": lambda: cnn.NormNonLinearity(ft([I1, I2, I1]), "n_relu"),
    "norm_sigmoid": lambda: cnn.NormNonLinearity(ft([I2, I1]), "n_sigmoid"),
    "gated1": lambda: cnn.GatedNonLinearity1(ft([T, T, I1, I2])),
    "gated1_keep": lambda: cnn.GatedNonLinearity1(
        ft([T, I1, T, I2]), gates=["gate", "gated", "gate", "gated"], drop_gates=False),
    "gated1_mixed": lambda: cnn.GatedNonLinearity1(
        ft([T, T, R, I1, T, I1]), gates=["gate", "gate", "gated", "gated", "gate", "gated"],
        drop_gates=False),
    "norm_max_pool": lambda: cnn.NormMaxPool(ft([I1, I2, R]), 2),
    "norm_max_pool_3s2p1": lambda: cnn.NormMaxPool(ft([I1, R]), 3, 2, 1),
}


def _state(d, case, which):
    head = f"{case}.{which}."
    return {k[len(head):]: torch.tensor(d[k]) for k in d.files if k.startswith(head)}


def _run(m, d, case):
    m.load_state_dict(_state(d, case, "state0"), strict=True)
    m.train()
    outs = {f"train{i}": m(torch.tensor(d[f"{case}.x{i}"])) for i in (1, 2)}
    m.eval()
    outs["eval"] = m(torch.tensor(d[f"{case}.x3"]))
    for name, y in outs.items():
        np.testing.assert_allclose(y.detach().numpy(), d[f"{case}.{name}"], atol=1e-5, rtol=0,
                                   err_msg=f"{case}: {name}")
    return m


@pytest.mark.parametrize("case", sorted(E2CNN_CASES))
def test_equals_e2cnn(case):
    d = np.load(E2CNN)
    m = _run(E2CNN_CASES[case](), d, case)
    end = _state(d, case, "state1")
    if case == "norm_batch_norm":  # e2cnn's per-size entries: one size (2), fields in order
        end = {"weight": end["2_weight"].reshape(-1),
               "running_var": end["2_running_var"].reshape(-1),
               "num_batches_tracked": end["num_batches_tracked"]}
    mine = m.state_dict()
    assert sorted(end) == sorted(mine)
    for k, v in end.items():
        np.testing.assert_allclose(mine[k].numpy(), v.numpy(), atol=1e-6, rtol=0, err_msg=k)


def test_norm_batch_norm_default_uses_batch_variance_in_training():
    """Default: the batch variance in training (torch's convention); the running statistics
    and the eval output still equal e2cnn's."""
    d = np.load(E2CNN)
    case = "norm_batch_norm"
    m = cnn.NormBatchNorm(ft([I1, I2, I1, I2, I1]))
    m.load_state_dict(_state(d, case, "state0"), strict=True)
    m.train()
    x = torch.tensor(d[f"{case}.x1"])
    y = m(x)
    var = (x * x).reshape(4, 5, 2, -1).sum(2).mean((0, 2)) / 2
    expected = x * (m.weight / torch.sqrt(var + 1e-5)).repeat_interleave(2)[:, None, None]
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)
    m(torch.tensor(d[f"{case}.x2"]))
    m.eval()
    np.testing.assert_allclose(m(torch.tensor(d[f"{case}.x3"])).detach().numpy(),
                               d[f"{case}.eval"], atol=1e-5, rtol=0)


def test_gated2_equals_e2cnn():
    d = np.load(E2CNN)
    m = cnn.GatedNonLinearity2((ft([T, T, T]), ft([I2, I1, I1])))
    m.load_state_dict({"bias": torch.tensor(d["gated2.bias"])}, strict=True)
    y = m(torch.tensor(d["gated2.gates"]), torch.tensor(d["gated2.x"]))
    np.testing.assert_allclose(y.detach().numpy(), d["gated2.out"], atol=1e-5, rtol=0)


def test_field_dropout_matches_e2cnn_where_deterministic():
    """The masks are random in both: eval is the identity, and in training every field at
    every pixel is either zeroed or scaled by 1/(1 − p) (e2cnn's and ours, p = 0.3)."""
    d = np.load(E2CNN)
    t = ft([I1, R, T])
    m = cnn.FieldDropout(t, 0.3).eval()
    x = torch.tensor(d["field_dropout.x3"])
    np.testing.assert_array_equal(m(x).numpy(), d["field_dropout.eval"])
    np.testing.assert_array_equal(d["field_dropout.eval"], d["field_dropout.x3"])
    m.train()
    x1 = d["field_dropout.x1"]
    for y in (d["field_dropout.train1"], m(torch.tensor(x1)).numpy()):
        for f in range(len(t)):
            c = t.channels(f)
            ratio = y[:, c] / x1[:, c]
            per_pixel = ratio[:, :1]
            assert np.allclose(ratio, per_pixel, atol=1e-5)  # one factor per field and pixel
            assert np.all(np.isclose(per_pixel, 0.0, atol=1e-6)
                          | np.isclose(per_pixel, 1 / 0.7, atol=1e-5))


O = r3.Octahedral()
S = r3.SO3()
T2D = ft([R, I1, T, R, I1])
T3D = cs.FieldType(O, [O.regular_representation, O.standard_representation,
                       O.trivial_representation])
SO3T = cs.FieldType(S, [S.irrep(0), S.irrep(1), S.irrep(2), S.irrep(1)])
ESCNN_CASES = {"iid2d": lambda: cnn.IIDBatchNorm2d(T2D), "iid3d": lambda: cnn.IIDBatchNorm3d(T3D),
               "gnorm2d": lambda: cnn.GNormBatchNorm(T2D),
               "gnorm3d": lambda: cnn.GNormBatchNorm(SO3T)}


@pytest.mark.parametrize("case", sorted(ESCNN_CASES))
def test_equals_escnn(case):
    d = np.load(ESCNN)
    key = f"bn_{case}"
    m = _run(ESCNN_CASES[case](), d, key)  # escnn's derived buffers are dropped on loading
    end = {k: v for k, v in _state(d, key, "state1").items()
           if not k.startswith("vars_") and not k.endswith(("_avg", "_change_of_basis",
                                                             "_change_of_basis_inv"))}
    mine = m.state_dict()
    assert sorted(end) == sorted(mine)
    for k, v in end.items():
        np.testing.assert_allclose(mine[k].numpy(), v.numpy(), atol=1e-6, rtol=0, err_msg=k)
    # the representations (escnn's names) and their changes of basis are escnn's
    reps = list(dict.fromkeys(m.in_type.representations))
    assert sorted(k[len(key) + 7:] for k in d.files if k.startswith(f"{key}.basis.")) == \
        sorted(r.name for r in reps)
    for r in reps:
        np.testing.assert_allclose(r.change_of_basis, d[f"{key}.basis.{r.name}"], atol=1e-6)


@pytest.mark.parametrize("case", sorted(ESCNN_CASES))
def test_training_gradients_equal_escnn(case):
    """escnn detaches the batch statistics: the gradient of sum(out · G) in training mode is
    escnn's (the statistics are constants for autograd)."""
    d = np.load(ESCNN)
    key = f"bn_{case}"
    m = ESCNN_CASES[case]()
    m.load_state_dict(_state(d, key, "state0"), strict=True)
    x = torch.tensor(d[f"{key}.x1"], requires_grad=True)
    (m.train()(x) * torch.tensor(d[f"{key}.grad_G"])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), d[f"{key}.grad_x"], atol=1e-5, rtol=0)


def test_norm_batch_norm_needs_every_size_of_e2cnn_entries():
    """e2cnn's per-size entries fill the per-field ones; a missing size or a wrong number of
    values is named (never uninitialised memory)."""
    m = cnn.NormBatchNorm(ft([I1, I1, cs.CyclicGroup(8).irrep(4)]))  # sizes 2, 2, 1
    sd = {"2_weight": torch.full((1, 2, 1, 1, 1), 2.0),
          "2_running_var": torch.full((1, 2, 1, 1, 1), 3.0),
          "num_batches_tracked": torch.tensor(1)}
    with pytest.raises(ValueError, match=r"not \['1_weight'\].*field size"):
        m.load_state_dict(sd)
    sd.update({"1_weight": torch.full((1, 1, 1, 1, 1), 4.0),
               "1_running_var": torch.full((1, 1, 1, 1, 1), 5.0)})
    m.load_state_dict(dict(sd))
    torch.testing.assert_close(m.weight.detach(), torch.tensor([2.0, 2.0, 4.0]))
    torch.testing.assert_close(m.running_var, torch.tensor([3.0, 3.0, 5.0]))
    sd["2_weight"] = torch.ones(1, 3, 1, 1, 1)
    with pytest.raises(ValueError, match=r"2_weight: 3 values for the 2 fields of size 2"):
        m.load_state_dict(sd)


def test_gated1_loads_escnn_bias_and_state_dicts_without_bias():
    m = cnn.GatedNonLinearity1(ft([T, T, I1, I2]))
    m.load_state_dict({"bias": torch.tensor([[0.5, -0.25]])})  # escnn: (1, n_gates)
    torch.testing.assert_close(m.bias.detach(), torch.tensor([0.5, -0.25]).reshape(1, 2, 1, 1))
    m.load_state_dict({})  # a state dict from before the bias: the plain gate
    torch.testing.assert_close(m.bias.detach(), torch.zeros(1, 2, 1, 1))
