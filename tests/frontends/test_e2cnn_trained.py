"""A model trained with e2cnn 0.2.3, rebuilt from SteerableConv2d on compat field types.

tests/data/e2cnn_trained (by scripts/make_e2cnn_trained_fixture.py, under the e2cnn venv):
a D4 model conv1 → ReLU → conv2 → (ReLU | norm-ReLU | ReLU) → conv3 trained for 30 Adam steps,
its trained ``weights``/``bias`` (and the norm non-linearity's ``log_bias``), e2cnn's expanded
filters and biases, a test batch with e2cnn's outputs in eval and train mode, and e2cnn's
gradients of sum(output · G) for a fixed G. The e2cnn parameters are copied in as they are.
"""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cupysteer.compat import e2cnn as e  # noqa: E402
from cupysteer.torch import SteerableConv2d  # noqa: E402

from _helpers import e2cnn_field as field  # noqa: E402
from _helpers import e2cnn_gspace as gspace  # noqa: E402
from _paths import DATA  # noqa: E402

DATA = DATA / "e2cnn_trained"
META = json.loads((DATA / "meta.json").read_text())
Z = dict(np.load(DATA / "model.npz"))
PARAMS = sorted(k[len("grad."):] for k in Z if k.startswith("grad."))


def ftype(gs, specs):
    return e.FieldType(gs, [field(gs, s) for s in specs])


class NormReLU(torch.nn.Module):
    """e2cnn NormNonLinearity('n_relu', bias=True) on one field (all channels of the input):
    x · relu(|x| − exp(log_bias)) / max(|x|, eps), and 0 where |x| ≤ eps."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps
        self.log_bias = torch.nn.Parameter(torch.zeros(1, 1, 1, 1))  # e2cnn's shape

    def forward(self, x):
        norms = x.norm(dim=1, keepdim=True)
        m = torch.relu(norms - torch.exp(self.log_bias)) / torch.clamp(norms, min=self.eps)
        return x * torch.where(norms <= self.eps, torch.zeros_like(m), m)


class Rebuilt(torch.nn.Module):
    """The model of meta.json from cupysteer layers, with e2cnn's parameter names."""

    def __init__(self, meta):
        super().__init__()
        gs = gspace(meta["gspace"])
        self.layers = [L["name"] for L in meta["layers"]]
        self.acts = {}  # layer name -> [(activation, channel slice, NormReLU name or None)]
        nonlin = {n["after"]: n for n in meta["nonlinearities"]}
        for L in meta["layers"]:
            tout = ftype(gs, L["out_fields"])
            setattr(self, L["name"], SteerableConv2d(
                ftype(gs, L["in_fields"]), tout, L["kernel_size"], stride=L["stride"],
                padding=L["padding"], dilation=L["dilation"], bias=L["bias"],
                initialize=False))
            if L["name"] not in nonlin:
                continue
            n, pos, acts = nonlin[L["name"]], 0, []
            for spec, rep in zip(L["out_fields"], tout.representations):
                kind, module = n["fields"][spec], None
                if kind == "norm_relu":  # one such field per layer (one log_bias entry)
                    module = n["parameter"].rsplit(".", 1)[0]
                    assert not hasattr(self, module)
                    setattr(self, module, NormReLU(n["eps"]))
                else:
                    # e2cnn's ReLU is pointwise: trivial and regular fields only
                    assert kind == "relu" and spec in ("trivial", "regular"), (spec, kind)
                acts.append((kind, slice(pos, pos + rep.size), module))
                pos += rep.size
            self.acts[L["name"]] = acts

    def forward(self, x):
        for name in self.layers:
            x = getattr(self, name)(x)
            if name in self.acts:
                x = torch.cat([torch.relu(x[:, sl]) if kind == "relu"
                               else getattr(self, module)(x[:, sl])
                               for kind, sl, module in self.acts[name]], dim=1)
        return x


def e2cnn_state_dict():
    """What e2cnn's eval-mode state_dict holds for these parameters, with its derived entries
    (``filter``, ``expanded_bias``), as tensors."""
    modules = {L["name"] for L in META["layers"]}
    modules |= {n["parameter"].split(".")[0] for n in META["nonlinearities"] if "parameter" in n}
    return {k: torch.from_numpy(v) for k, v in Z.items() if k.split(".")[0] in modules}


@pytest.fixture
def model():
    m = Rebuilt(META)
    m.load_state_dict(e2cnn_state_dict(), strict=True)
    return m


def rel_err(a, b):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_fixture_is_a_trained_model():
    tr = META["training"]
    assert tr["losses"][-1] < 0.5 * tr["losses"][0]
    assert all(v > 0.05 for v in tr["max_abs_change_from_init"].values())
    assert META["checks"]["max_abs_output_eval_minus_train"] == 0.0
    assert PARAMS == sorted(k for k in Z if not k.startswith("grad.") and
                            k.split(".")[-1] in ("weights", "bias", "log_bias"))


def test_parameters_shapes_and_names(model):
    names = dict(model.named_parameters())
    assert sorted(names) == PARAMS
    for L in META["layers"]:
        conv = getattr(model, L["name"])
        assert conv.weights.shape == (L["n_params"],)
        assert conv.bias.shape == (L["n_bias"],)
        assert conv.basis.shape == tuple(L["filter_shape"])
    # the derived e2cnn entries were dropped: the state dict holds the parameters only
    assert sorted(model.state_dict()) == PARAMS


@pytest.mark.parametrize("layer", [L["name"] for L in META["layers"]])
def test_filters_and_biases_equal_e2cnn(model, layer):
    conv = getattr(model, layer)
    for mode in (True, False):
        conv.train(mode)
        filt, bias = conv.expand_parameters()
        assert filt.dtype == torch.float32
        assert rel_err(filt, Z[f"{layer}.filter"]) <= 1e-5
        np.testing.assert_allclose(bias.detach().numpy(), Z[f"{layer}.expanded_bias"],
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_outputs_equal_e2cnn(model, mode):
    model.train(mode == "train")
    x = torch.from_numpy(Z["input"])
    with torch.no_grad():
        out = model(x)
    assert out.dtype == torch.float32 and out.shape == Z[f"output_{mode}"].shape
    assert rel_err(out, Z[f"output_{mode}"]) <= 1e-5
    # eval mode reuses the cached filter: a second call gives the same output
    with torch.no_grad():
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gradients_equal_e2cnn(model, mode):
    """e2cnn's gradients (train mode; its eval mode gives none to ``weights``) equal ours in
    both modes (eval mode: the cached filter's backward is the adjoint)."""
    model.train(mode == "train")
    out = model(torch.from_numpy(Z["input"]))
    (out * torch.from_numpy(Z["grad_output"])).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert rel_err(p.grad, Z[f"grad.{name}"]) <= 1e-5, name


def test_exported_model_equals_e2cnn(model):
    """Every SteerableConv2d exported to a plain torch Conv2d: same outputs."""
    model.eval()
    for L in META["layers"]:
        setattr(model, L["name"], getattr(model, L["name"]).export())
    with torch.no_grad():
        out = model(torch.from_numpy(Z["input"]))
    assert rel_err(out, Z["output_eval"]) <= 1e-5
